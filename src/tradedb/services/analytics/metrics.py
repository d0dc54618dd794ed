"""Daily performance: equity curves in USD and the `performance_metrics` rows built on them.

Scopes (docs/metrics.md has every formula):

- a strategy on an exchange: allocated capital (bot_config `capital.<strategy>.<exchange>`,
  USD; 0 when absent) + realised P&L of its closing trades + unrealised P&L of the
  positions it held, marked at the end of the day, P&L converted from its quote currency
  to USD at that time, less fees it paid in a third currency;
- an exchange (strategy NULL): every wallet of the exchange valued in USD;
- everything (strategy and exchange NULL): the sum over exchanges.

A day d ends at the next 00:00 UTC: its equity counts every event timestamped before that
instant and prices quoted at or before it. daily_pnl is the change of equity less the
funding (deposits, withdrawals, opening balances) that arrived that day. The trade counts
(round trips: services.analytics.round_trips) and the Sharpe ratio and maximum drawdown
(services.analytics.figures) run from the start of the scope's curve to day d.
Every day's rows are upserted in one transaction: computing a day again changes nothing
unless its inputs changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from tradedb.errors import Unvaluable, ValidationError
from tradedb.models import Performance
from tradedb.models.values import market_assets, to_decimal, to_iso_date
from tradedb.services.analytics.figures import ReturnSeries, Undefined, daily_return, percent
from tradedb.services.analytics.round_trips import RoundTrip, StrategyBook
from tradedb.services.analytics.valuation import Valuer
from tradedb.services.ledger.positions import unrealized_pnl
from tradedb.store import Store
from tradedb.store.analytics import DAY_MS, AnalyticsRecords, Fill, Flow

CAPITAL_KEY = "capital."
ZERO = Decimal(0)
_EPOCH_DAY = date(1970, 1, 1)


@dataclass(frozen=True, order=True)
class Scope:
    """Whose performance a row is: strategy and exchange, None meaning all of them."""

    strategy: str | None
    exchange: str | None

    @property
    def label(self) -> str:
        if self.strategy is not None:
            return f"{self.strategy} on {self.exchange}"
        return self.exchange or "all exchanges"


@dataclass(frozen=True)
class Skipped:
    """A scope left without a row from `date` on (or on that date only), and why."""

    scope: Scope
    date: str
    reason: str


@dataclass(frozen=True)
class MetricsResult:
    rows: list[Performance]
    skipped: list[Skipped]
    # Strategy scopes with no allocated capital configured: their equity is P&L alone,
    # so their percentages, Sharpe ratio and drawdown stay NULL until it is positive.
    without_capital: list[Scope]


def compute_metrics(
    store: Store,
    start_date: object = None,
    end_date: object = None,
    valuer: Valuer | None = None,
    *,
    risk_free_rate: float = 0.0,
    progress: Callable[[str, int], None] | None = None,
) -> MetricsResult:
    """Compute and upsert the performance_metrics rows of each day from `start_date` to
    `end_date` (UTC dates, inclusive; by default the days from the first to the last
    trade or wallet movement), one transaction per day.

    The curves always start at each scope's first event, whatever `start_date` says, so
    a day's row is the same however the range is chosen. `progress(date, rows)` is
    called after each day is written.
    """
    records = AnalyticsRecords.of(store)
    valuer = valuer or Valuer(store)
    span = records.event_span()
    first_asked = None if start_date is None else _date(start_date, "start_date")
    last_asked = None if end_date is None else _date(end_date, "end_date")
    if first_asked is not None and last_asked is not None and last_asked < first_asked:
        raise ValidationError(
            "end_date", last_asked.isoformat(), f"is before start_date {first_asked}"
        )
    if span is None:
        return MetricsResult([], [], [])
    first_event, last_event = (_day_of(span[0]), _day_of(span[1]))
    last_day = last_asked or last_event
    first_row = max(first_asked or first_event, first_event)
    if last_day < first_row:
        return MetricsResult([], [], [])
    with store.db.snapshot():
        end_ms = _end_of(last_day)
        changes = records.daily_balance_changes(end_ms)
        flows = records.flows(end_ms)
        fills = records.fills(end_ms)
        capitals = _capitals(records.config_values(CAPITAL_KEY))
    curves = _Curves(
        valuer,
        changes=changes,
        flows=flows,
        fills=fills,
        capitals=capitals,
        risk_free_rate=risk_free_rate,
    )
    rows: list[Performance] = []
    day = first_event
    while day <= last_day:
        day_rows = curves.advance(day, write=day >= first_row)
        if day >= first_row:
            written = records.upsert_performance(day_rows)
            rows += written
            if progress is not None:
                progress(day.isoformat(), len(written))
        day += timedelta(days=1)
    return MetricsResult(rows, curves.skipped, sorted(curves.without_capital))


# --- the curves ----------------------------------------------------------------------------


@dataclass
class _Curve:
    """One scope's equity curve, advanced a day at a time."""

    scope: Scope
    previous: Decimal  # equity at the end of the day before
    series: ReturnSeries
    closed: int = 0
    wins: int = 0
    losses: int = 0
    broken: bool = False

    def count(self, trip: RoundTrip) -> None:
        self.closed += 1
        if trip.pnl > 0:
            self.wins += 1
        elif trip.pnl < 0:
            self.losses += 1

    def row(self, day: date, equity: Decimal, pnl: Decimal) -> dict[str, object]:
        """Close the day: the row's values, and the day's return into the statistics."""
        returned = daily_return(self.previous, pnl)
        if returned is not None:
            self.series.add(day.isoformat(), returned)
        self.previous = equity
        decided = self.wins + self.losses
        return {
            "date": day.isoformat(),
            "strategy": self.scope.strategy,
            "exchange": self.scope.exchange,
            "total_portfolio_value": equity,
            "daily_pnl": pnl,
            "daily_pnl_percent": None if returned is None else percent(returned),
            "total_trades": self.closed,
            "winning_trades": self.wins,
            "losing_trades": self.losses,
            "win_rate": percent(Fraction(self.wins, decided)) if decided else None,
            "sharpe_ratio": _stored(self.series.sharpe_ratio()),
            "max_drawdown": _stored(self.series.max_drawdown()),
        }


class _Curves:
    def __init__(
        self,
        valuer: Valuer,
        *,
        changes: list[tuple[int, str, str, Decimal]],
        flows: list[Flow],
        fills: list[Fill],
        capitals: dict[tuple[str, str], Decimal],
        risk_free_rate: float,
    ) -> None:
        self.valuer = valuer
        self.risk_free_rate = risk_free_rate
        self.changes: dict[int, list[tuple[str, str, Decimal]]] = defaultdict(list)
        for day, exchange, asset, change in changes:
            self.changes[day].append((exchange, asset, change))
        self.flows: dict[int, list[Flow]] = defaultdict(list)
        for flow in flows:
            self.flows[flow.timestamp // DAY_MS].append(flow)
        self.fills: dict[int, list[Fill]] = defaultdict(list)
        for fill in fills:
            self.fills[fill.timestamp // DAY_MS].append(fill)
        self.capitals = capitals
        self.balances: dict[str, dict[str, Decimal]] = {}
        # Every (strategy, exchange)'s book, fills without a strategy included: their
        # round trips count in the exchange's and the portfolio's rows.
        self.books: dict[Scope, StrategyBook] = {}
        self.curves: dict[Scope, _Curve] = {}
        self.skipped: list[Skipped] = []
        self.without_capital: set[Scope] = set()

    def _curve(self, scope: Scope, start: Decimal = ZERO) -> _Curve:
        curve = self.curves.get(scope)
        if curve is None:
            curve = self.curves[scope] = _Curve(scope, start, ReturnSeries(self.risk_free_rate))
        return curve

    def _break(self, curve: _Curve, day: date, reason: str) -> None:
        if not curve.broken:
            curve.broken = True
            self.skipped.append(
                Skipped(curve.scope, day.isoformat(), f"from this day on: {reason}")
            )

    def advance(self, day: date, *, write: bool) -> list[dict[str, object]]:
        """Move every curve to the end of `day`; the day's rows (if `write`)."""
        index = (day - _EPOCH_DAY).days
        end = _end_of(day)
        for exchange, asset, change in self.changes.get(index, []):
            wallets = self.balances.setdefault(exchange, {})
            wallets[asset] = wallets.get(asset, ZERO) + change
        self._replay(index)
        rows = self._portfolio_rows(day, index, end)
        rows += self._strategy_rows(day, end)
        return rows if write else []

    def _replay(self, index: int) -> None:
        """Apply the day's fills to the books, counting each round trip they close in its
        strategy's, its exchange's and the portfolio's curves."""
        for fill in self.fills.get(index, []):
            scope = Scope(fill.strategy, fill.exchange)
            book = self.books.get(scope)
            if book is None:
                capital = ZERO
                if fill.strategy is not None:
                    configured = self.capitals.get((fill.strategy, fill.exchange))
                    if configured is None:
                        self.without_capital.add(scope)
                    capital = configured or ZERO
                    self._curve(scope, capital)
                book = self.books[scope] = StrategyBook(fill.strategy, fill.exchange, capital)
            trip = book.apply(fill)
            if trip is None:
                continue
            counted = [Scope(None, fill.exchange), Scope(None, None)]
            if fill.strategy is not None:
                counted.append(scope)
            for each in counted:
                self._curve(each).count(trip)

    def _portfolio_rows(self, day: date, index: int, end: int) -> list[dict[str, object]]:
        rows = []
        everything = self._curve(Scope(None, None)) if self.balances else None
        totals = [ZERO, ZERO]  # equity, pnl
        for exchange in sorted(self.balances):
            curve = self._curve(Scope(None, exchange))
            if curve.broken:
                if everything is not None:
                    self._break(everything, day, f"{exchange} cannot be valued")
                continue
            try:
                equity = sum(
                    (
                        self.valuer.value_usd(amount, asset, end, exchange=exchange)
                        for asset, amount in sorted(self.balances[exchange].items())
                        if amount
                    ),
                    ZERO,
                )
                funding = sum(
                    (
                        self.valuer.value_usd(
                            flow.change, flow.asset, flow.timestamp, exchange=exchange
                        )
                        for flow in self.flows.get(index, [])
                        if flow.exchange == exchange
                    ),
                    ZERO,
                )
            except Unvaluable as exc:
                self._break(curve, day, _reason(exc))
                if everything is not None:
                    self._break(everything, day, f"on {exchange}, {_reason(exc)}")
                continue
            pnl = equity - curve.previous - funding
            totals[0] += equity
            totals[1] += pnl
            rows.append(curve.row(day, equity, pnl))
        if everything is not None and not everything.broken:
            rows.append(everything.row(day, totals[0], totals[1]))
        return rows

    def _strategy_rows(self, day: date, end: int) -> list[dict[str, object]]:
        rows = []
        strategies = [(scope, book) for scope, book in self.books.items() if scope.strategy]
        for scope, book in sorted(strategies):
            curve = self.curves[scope]
            if curve.broken:
                continue
            try:
                equity = self._strategy_equity(scope, book, end)
            except Unvaluable as exc:
                self._break(curve, day, _reason(exc))
                continue
            pnl = equity - curve.previous
            if equity < 0:
                # total_portfolio_value cannot be negative; the curve goes on.
                curve.row(day, equity, pnl)
                self.skipped.append(
                    Skipped(scope, day.isoformat(), f"equity {equity} USD is negative")
                )
                continue
            rows.append(curve.row(day, equity, pnl))
        return rows

    def _strategy_equity(self, scope: Scope, book: StrategyBook, end: int) -> Decimal:
        exchange = scope.exchange
        in_quote: dict[str, Decimal] = defaultdict(Decimal, book.realized)
        for symbol, holding in sorted(book.holdings.items()):
            mark = self.valuer.market_price(symbol, end, exchange=exchange)
            in_quote[market_assets(symbol)[1]] += unrealized_pnl(holding, mark)
        equity = book.capital
        for currency, result in sorted(in_quote.items()):
            if result:
                equity += self.valuer.value_usd(result, currency, end, exchange=exchange)
        for currency, fees in sorted(book.third_currency_fees.items()):
            equity -= self.valuer.value_usd(fees, currency, end, exchange=exchange)
        return equity


# --- helpers -------------------------------------------------------------------------------


def _capitals(values: dict[str, str]) -> dict[tuple[str, str], Decimal]:
    """bot_config `capital.<strategy>.<exchange>` values (USD) by (strategy, exchange).
    Strategy names may hold dots; exchange ids never do."""
    capitals = {}
    for key, value in values.items():
        strategy, dot, exchange = key.removeprefix(CAPITAL_KEY).rpartition(".")
        if not dot or not strategy or not exchange:
            raise ValidationError(
                key, value, "is not a key of the form capital.<strategy>.<exchange>"
            )
        capital = to_decimal(value, key)
        if capital < 0:
            raise ValidationError(key, value, "allocated capital must not be negative")
        capitals[(strategy, exchange)] = capital
    return capitals


def _stored(figure: Decimal | Undefined) -> Decimal | None:
    """A figure for its performance_metrics column: NULL when it is undefined."""
    return None if isinstance(figure, Undefined) else figure


def _reason(exc: Unvaluable) -> str:
    return f"{exc.asset} {exc.rule}"


def _date(value: object, name: str) -> date:
    return date.fromisoformat(to_iso_date(value, name))


def _day_of(millis: int) -> date:
    return _EPOCH_DAY + timedelta(days=millis // DAY_MS)


def _end_of(day: date) -> int:
    """Epoch ms of the 00:00 UTC that ends `day`."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return int(midnight.timestamp()) * 1000
