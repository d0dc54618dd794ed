"""Reading back what analytics wrote: daily performance rows a page at a time, and the
latest portfolio snapshot whole.

`tradedb metrics` and `tradedb snapshot` compute and write; these only read, so they run
on a read-only database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from tradedb.errors import UnknownRecord, ValidationError
from tradedb.models import Performance, PortfolioSnapshot
from tradedb.models.values import check_exchange, check_name, parse_time_bound, to_iso_date
from tradedb.store import Page, Store
from tradedb.store.analytics import AnalyticsRecords


def performance_page(
    store: Store,
    *,
    strategy: str | None = None,
    exchange: str | None = None,
    first_date: object = None,
    last_date: object = None,
    limit: int = 100,
    after: str | None = None,
) -> Page[Performance]:
    """performance_metrics rows, newest day first, from `first_date` to `last_date` (UTC
    dates, both included). Without `strategy` or `exchange`, rows of every scope come,
    the portfolio-wide ones (strategy and exchange NULL) among them."""
    where: dict[str, str] = {}
    if strategy is not None:
        where["strategy"] = check_name(strategy, "strategy")
    if exchange is not None:
        where["exchange"] = check_exchange(exchange)
    first = None if first_date is None else to_iso_date(first_date, "first_date")
    last = None if last_date is None else to_iso_date(last_date, "last_date")
    if first is not None and last is not None and first > last:
        raise ValidationError("first_date", first, f"is after last_date={last}")
    return store.performance.list(
        where,
        since=first,
        until=None if last is None else _next_day(last),
        limit=limit,
        after=after,
        newest_first=True,
    )


@dataclass(frozen=True)
class PortfolioView:
    """Each exchange's latest snapshot: the newest of their times, the rows (by exchange,
    then asset, each with its own time) and their USD total."""

    timestamp: int
    rows: list[PortfolioSnapshot]

    @property
    def total_usd(self) -> Decimal:
        return sum((row.usd_value for row in self.rows), Decimal(0))


def latest_snapshot(
    store: Store, *, at: object = None, exchange: str | None = None
) -> PortfolioView:
    """Each exchange's newest snapshot taken at or before `at` (default: its newest of
    all); with `exchange`, only that exchange's. Exchanges are snapshotted at their own
    times, so each row keeps its own `timestamp`."""
    at_ms = None if at is None else parse_time_bound(at, "at")
    if exchange is not None:
        check_exchange(exchange)
    with store.db.snapshot():
        rows = AnalyticsRecords.of(store).latest_snapshots(at_ms, exchange)
    if not rows:
        raise UnknownRecord(
            "portfolio_snapshots",
            exchange or "any exchange",
            "no portfolio snapshot is stored"
            + ("" if at_ms is None else " at or before that time")
            + " (`tradedb snapshot` writes them)",
        )
    newest = max(row.timestamp for row in rows)
    return PortfolioView(newest, sorted(rows, key=lambda row: (row.exchange, row.asset)))


def _next_day(iso: str) -> str:
    return (date.fromisoformat(iso) + timedelta(days=1)).isoformat()
