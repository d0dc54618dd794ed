"""Portfolio snapshots: per exchange and asset, the amount held at a time, its USD price
and value, written to `portfolio_snapshots`.

Balances at t are rebuilt from the wallet journal (every journal line up to and including
t), because `wallets` holds only the balance of now. A snapshot of one time is written in
one transaction that first removes whatever an earlier run wrote for that time, so running
it again replaces it. A holding that cannot be valued gets no row (a row needs a price,
and a price is never invented); it is reported in the result instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from tradedb.errors import Unvaluable, ValidationError
from tradedb.models import PortfolioSnapshot
from tradedb.models.values import to_epoch_ms, to_iso_date
from tradedb.services.analytics.valuation import Valuation, Valuer
from tradedb.store import Store
from tradedb.store.analytics import AnalyticsRecords


@dataclass(frozen=True)
class UnvaluedHolding:
    """A balance the snapshot has no row for, and why."""

    exchange: str
    asset: str
    amount: Decimal
    reason: str


@dataclass(frozen=True)
class Snapshot:
    """What one snapshot wrote."""

    timestamp: int
    rows: list[PortfolioSnapshot]
    # Each row's valuation (the route and quotes behind its price), by (exchange, asset).
    valuations: dict[tuple[str, str], Valuation]
    unvalued: list[UnvaluedHolding]

    @property
    def total_usd(self) -> Decimal:
        """The USD value of the rows written (holdings without a price are not in it)."""
        return sum((row.usd_value for row in self.rows), Decimal(0))

    @property
    def complete(self) -> bool:
        return not self.unvalued


def snapshot_portfolio(store: Store, at_ms: object, valuer: Valuer | None = None) -> Snapshot:
    """Write one portfolio_snapshots row per exchange and asset held at `at_ms` (epoch ms
    or an aware datetime), replacing any snapshot of that time, in one transaction."""
    when = to_epoch_ms(at_ms, "at")
    valuer = valuer or Valuer(store)
    records = AnalyticsRecords.of(store)
    rows: list[dict[str, object]] = []
    valuations: dict[tuple[str, str], Valuation] = {}
    unvalued: list[UnvaluedHolding] = []
    for (exchange, asset), amount in records.balances_at(when).items():
        if amount < 0:
            # Only possible when journal lines were recorded out of time order.
            unvalued.append(
                UnvaluedHolding(exchange, asset, amount, "the journal sums to a negative balance")
            )
            continue
        try:
            valuation = valuer.price_usd(asset, when, exchange=exchange)
        except Unvaluable as exc:
            unvalued.append(UnvaluedHolding(exchange, asset, amount, exc.rule))
            continue
        valuations[(exchange, asset)] = valuation
        rows.append(
            {
                "timestamp": when,
                "exchange": exchange,
                "asset": asset,
                "amount": amount,
                "price_per_unit": valuation.price,
                "usd_value": valuer.value_usd(amount, asset, when, exchange=exchange),
            }
        )
    stored = records.replace_snapshot(when, rows)
    return Snapshot(when, stored, valuations, unvalued)


def snapshot_days(
    store: Store,
    start: object,
    end: object,
    valuer: Valuer | None = None,
    *,
    progress: Callable[[Snapshot], None] | None = None,
) -> list[Snapshot]:
    """Daily snapshots at 00:00 UTC of each day from `start` to `end` (dates, inclusive),
    each in its own transaction. Running it again replaces those days' snapshots."""
    first = date.fromisoformat(to_iso_date(start, "start"))
    last = date.fromisoformat(to_iso_date(end, "end"))
    if last < first:
        raise ValidationError("end", last.isoformat(), f"is before start {first.isoformat()}")
    valuer = valuer or Valuer(store)
    snapshots = []
    day = first
    while day <= last:
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        snapshot = snapshot_portfolio(store, midnight, valuer)
        snapshots.append(snapshot)
        if progress is not None:
            progress(snapshot)
        day += timedelta(days=1)
    return snapshots
