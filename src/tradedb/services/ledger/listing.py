"""What the front ends show of the ledger: filtered, paged listings and balances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradedb.models import Order, Position, Trade, Wallet
from tradedb.models.values import parse_time_bound
from tradedb.store import Store
from tradedb.store.repository import Page


@dataclass(frozen=True)
class Filters:
    """Filters shared by the ledger listings; None means "any"."""

    exchange: str | None = None
    symbol: str | None = None
    strategy: str | None = None
    status: str | None = None
    since: object = None
    until: object = None
    limit: int = 100
    after: str | None = None

    def where(self, *names: str) -> dict[str, Any]:
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def bounds(self) -> dict[str, Any]:
        return {
            "since": None if self.since is None else parse_time_bound(self.since, "since"),
            "until": None if self.until is None else parse_time_bound(self.until, "until"),
            "after": self.after,
            "limit": self.limit,
            "newest_first": True,
        }


def orders(store: Store, filters: Filters) -> Page[Order]:
    where = filters.where("exchange", "symbol", "strategy", "status")
    return store.orders.list(where, **filters.bounds())


def trades(store: Store, filters: Filters) -> Page[Trade]:
    where = filters.where("exchange", "symbol", "strategy", "status")
    return store.trades.list(where, **filters.bounds())


def positions(store: Store, filters: Filters) -> Page[Position]:
    where = filters.where("exchange", "symbol", "strategy", "status")
    return store.positions.list(where, **filters.bounds())


def balances(
    store: Store, *, exchange: str | None = None, asset: str | None = None
) -> list[Wallet]:
    """Every wallet (of one exchange or asset), in exchange then asset order."""
    where = {
        name: value
        for name, value in (("exchange", exchange), ("asset", asset))
        if value is not None
    }
    wallets = store.wallets.every(where, page_size=10_000)
    return sorted(wallets, key=lambda wallet: (wallet.exchange, wallet.asset))
