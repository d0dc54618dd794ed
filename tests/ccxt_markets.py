"""Markets to give a replayed ccxt client, so that it needs no load_markets request."""

from __future__ import annotations

from typing import Any


def spot_market(market_id: str, symbol: str) -> dict[str, Any]:
    """A ccxt unified spot market: the exchange's id for it, its BASE/QUOTE symbol, and
    the steps its amounts and prices go in (as ccxt's TICK_SIZE mode gives them)."""
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
        "precision": {"amount": 1e-08, "price": 1e-05},
        "limits": {"amount": {}, "price": {}, "cost": {}},
    }
