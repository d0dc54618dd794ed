"""tradedb: exact, durable storage and bookkeeping for crypto trading bots."""

__version__ = "0.1.0"
