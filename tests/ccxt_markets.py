"""Markets to give a replayed ccxt client, so that it needs no load_markets request."""

from __future__ import annotations

from typing import Any


def spot_market(market_id: str, symbol: str) -> dict[str, Any]:
    """A ccxt unified spot market: the exchange's id for it and its BASE/QUOTE symbol."""
    base, quote = symbol.split("/")
    return {
        "id": market_id,
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "baseId": base,
        "quoteId": quote,
        "type": "spot",
        "spot": True,
        "active": True,
    }
