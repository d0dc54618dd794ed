"""Sample records shared by the tests: valid create-record fields, one factory per table.

Each factory returns a fresh dict holding the fields a record of its table needs (and, for
some tables, a few more); `**changes` overrides or adds fields. Fields left out are left
out on purpose, so that the tests of the spec defaults can see them filled in.
"""

from __future__ import annotations

from typing import Any

TS = 1_700_000_000_000  # epoch milliseconds
CANDLE_TS = 1_700_006_400_000  # a multiple of every timeframe, 1d included


def trade(**changes: Any) -> dict[str, Any]:
    return {
        "symbol": "BTC/USDT",
        "side": "buy",
        "amount": "0.5",
        "price": "40000",
        "total_value": "20000",
        "timestamp": TS,
        "exchange": "kraken",
        **changes,
    }


def order(**changes: Any) -> dict[str, Any]:
    return {
        "order_id": "ord-1",
        "symbol": "BTC/USDT",
        "side": "buy",
        "order_type": "limit",
        "amount": "1",
        "price": "40000",
        "exchange": "kraken",
        "timestamp": TS,
        **changes,
    }


def position(**changes: Any) -> dict[str, Any]:
    return {
        "symbol": "BTC/USDT",
        "side": "long",
        "amount": "1",
        "entry_price": "40000",
        "exchange": "kraken",
        "opened_at": TS,
        **changes,
    }


def candle(**changes: Any) -> dict[str, Any]:
    return {
        "symbol": "BTC/USDT",
        "timestamp": CANDLE_TS,
        "open_price": "100",
        "high_price": "110",
        "low_price": "90",
        "close_price": "105",
        "volume": "12.5",
        "timeframe": "5m",
        "exchange": "kraken",
        **changes,
    }


def ticker(**changes: Any) -> dict[str, Any]:
    return {
        "symbol": "BTC/USDT",
        "bid_price": "99.5",
        "ask_price": "100.5",
        "last_price": "100",
        "price_change_percent_24h": "-1.2345",
        "timestamp": TS,
        "exchange": "kraken",
        **changes,
    }


def performance(**changes: Any) -> dict[str, Any]:
    return {"date": "2024-01-01", "total_portfolio_value": "10000", **changes}


def snapshot(**changes: Any) -> dict[str, Any]:
    return {
        "timestamp": TS,
        "asset": "BTC",
        "amount": "0.5",
        "usd_value": "20000",
        "price_per_unit": "40000",
        "exchange": "kraken",
        **changes,
    }


def config(**changes: Any) -> dict[str, Any]:
    """No config_type: it defaults to 'string'."""
    return {"config_key": "max_open_trades", "config_value": "3", **changes}


def log(**changes: Any) -> dict[str, Any]:
    return {"timestamp": TS, "level": "INFO", "message": "started", **changes}


def wallet(**changes: Any) -> dict[str, Any]:
    """No balances: available_balance and locked_balance default to 0."""
    return {"exchange": "kraken", "asset": "BTC", "last_updated": TS, **changes}


def balance(**changes: Any) -> dict[str, Any]:
    return {"exchange": "kraken", "asset": "BTC", "balance": "1.5", "timestamp": TS, **changes}
