"""Per-strategy comparison: the rows and series a report shows, exact, from the store.

A report row is one (strategy, exchange) scope of `performance_metrics` (strategy None is
the portfolio-wide scope, exchange None all exchanges), joined with the trades of the same
scope. The curve figures (return, CAGR, volatility, Sharpe, Sortino, Calmar, drawdowns,
best and worst day, monthly returns) come from the daily performance rows of the period
through services.analytics.figures, the same code that wrote the rows' own Sharpe ratio
and drawdown; the trade figures (fills, round trips, win rate, profit factor, ...) come
from the fills, through services.analytics.round_trips. A row with performance rows
counts only the trades of its own days, so that no row mixes periods; a strategy that
analytics has not yet summed up still shows what it traded in the report's period.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from tradedb.errors import UnknownRecord, ValidationError
from tradedb.models import Performance
from tradedb.models.timeframes import TIMEFRAME_NAMES, timeframe_of
from tradedb.models.values import (
    AMOUNT,
    check_exchange,
    check_name,
    market_assets,
    parse_time_bound,
    to_iso_date,
)
from tradedb.schema.money import from_units
from tradedb.services.analytics.figures import (
    Figure,
    MonthlyReturn,
    ReturnSeries,
    Undefined,
    daily_return,
)
from tradedb.services.analytics.round_trips import (
    RoundTrip,
    StrategyBook,
    TradeFigures,
    replay,
    trade_figures,
)
from tradedb.services.marketdata.history import MarketHistory
from tradedb.services.reports.indicators import Indicator, indicators, warmup
from tradedb.store import Store
from tradedb.store.analytics import AnalyticsRecords
from tradedb.store.bulk import CandleUnits
from tradedb.store.reports import Key, Marker, ReportRecords, TradeTotals

# The candle charts: every traded market (the most traded first), each in the finest stored
# timeframe that shows its trades in at most MAX_CANDLES candles, fewer when many markets
# share ALL_CANDLES (but never fewer than MIN_CANDLES), so a report stays a few MB.
MAX_CANDLES = 10_000
MIN_CANDLES = 2_000
ALL_CANDLES = 60_000
HOUR_MS = 3_600_000
# Open ends of a period, epoch ms.
_NO_START = 0
_NO_END = 2**62


@dataclass(frozen=True)
class ReportFilters:
    """What a report covers. Dates are UTC calendar days, both ends included."""

    strategies: tuple[str, ...] | None = None
    exchange: str | None = None
    first_date: str | None = None
    last_date: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        strategies: Iterable[str] | None = None,
        exchange: str | None = None,
        first_date: object = None,
        last_date: object = None,
    ) -> ReportFilters:
        names = None if not strategies else tuple(dict.fromkeys(strategies))
        for name in names or ():
            check_name(name, "strategy")
        first = None if first_date is None else to_iso_date(first_date, "first_date")
        last = None if last_date is None else to_iso_date(last_date, "last_date")
        if first is not None and last is not None and first > last:
            raise ValidationError("first_date", first, f"is after last_date={last}")
        return cls(
            strategies=names,
            exchange=None if exchange is None else check_exchange(exchange),
            first_date=first,
            last_date=last,
        )

    @property
    def since(self) -> int | None:
        """The first millisecond of the period."""
        return None if self.first_date is None else parse_time_bound(self.first_date, "first_date")

    @property
    def until(self) -> int | None:
        """The first millisecond after the period (the midnight after its last day)."""
        if self.last_date is None:
            return None
        return parse_time_bound(_next_day(self.last_date), "last_date")

    def describe(self) -> str:
        parts = [
            "strategy " + ", ".join(self.strategies) if self.strategies else "every strategy",
            f"exchange {self.exchange}" if self.exchange else "every exchange",
            f"from {self.first_date or 'the start'} to {self.last_date or 'the end'}",
        ]
        return ", ".join(parts)


@dataclass(frozen=True)
class Day:
    """One day of a scope: equity at the day's end, its P&L, and how far equity stood
    below its running peak (a positive percent)."""

    date: str
    equity: Decimal
    pnl: Decimal
    drawdown: Decimal


@dataclass(frozen=True)
class CurveFigures:
    """What the daily equity curve of a row did over its period (services.analytics.
    figures defines each); `returns` is how many daily returns they rest on."""

    returns: int
    total_return: Figure
    cagr: Figure
    volatility: Figure
    sharpe: Figure
    sortino: Figure
    calmar: Figure
    max_drawdown: Figure
    longest_drawdown_days: int | Undefined
    best_day: Figure
    worst_day: Figure

    @classmethod
    def of(cls, series: ReturnSeries) -> CurveFigures:
        return cls(
            returns=series.count,
            total_return=series.total_return(),
            cagr=series.cagr(),
            volatility=series.volatility(),
            sharpe=series.sharpe_ratio(),
            sortino=series.sortino_ratio(),
            calmar=series.calmar_ratio(),
            max_drawdown=series.max_drawdown(),
            longest_drawdown_days=series.longest_drawdown_days(),
            best_day=series.best_day(),
            worst_day=series.worst_day(),
        )


@dataclass(frozen=True)
class StrategyRow:
    """One (strategy, exchange) scope over its period: from `first_date` to `last_date`
    (its days with performance rows, else the report's period). Figures that cannot be
    given are `Undefined`, with the reason."""

    strategy: str | None
    exchange: str | None
    first_date: str | None
    last_date: str | None
    days: tuple[Day, ...]
    final_equity: Decimal | None
    total_pnl: Decimal | None
    curve: CurveFigures
    monthly_returns: tuple[MonthlyReturn, ...]
    fills: int
    trades: TradeFigures
    round_trips: tuple[RoundTrip, ...] = ()
    fees: dict[str, Decimal] = field(default_factory=dict)
    realized_pnl: dict[str, Decimal] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.strategy, self.exchange)

    @property
    def label(self) -> str:
        name = self.strategy if self.strategy is not None else "all strategies"
        return f"{name} @ {self.exchange}" if self.exchange is not None else name

    @property
    def has_trades(self) -> bool:
        return self.fills > 0


@dataclass(frozen=True)
class MarketChart:
    """A traded market's candles around its fills, the fills, and the indicators of the
    strategies that traded it (one value per candle)."""

    exchange: str
    symbol: str
    timeframe: str | None  # None: no candles stored for the window
    candles: tuple[CandleUnits, ...]
    markers: tuple[Marker, ...]
    indicators: tuple[Indicator, ...] = ()


@dataclass(frozen=True)
class Report:
    filters: ReportFilters
    rows: tuple[StrategyRow, ...]
    markets: tuple[MarketChart, ...]


def compare(store: Store, filters: ReportFilters) -> Report:
    """The report for `filters`: one row per scope, plus the candle charts' data.

    Raises UnknownRecord when nothing (no performance row, no trade) matches the filters.
    """
    records = ReportRecords(store.db)
    with store.db.snapshot():
        keys = records.performance_keys(
            strategies=filters.strategies,
            exchange=filters.exchange,
            first_date=filters.first_date,
            last_date=filters.last_date,
        )
        totals = records.trade_totals(
            strategies=filters.strategies,
            exchange=filters.exchange,
            since=filters.since,
            until=filters.until,
        )
        if not keys and not totals:
            raise UnknownRecord(
                "filters",
                filters.describe(),
                "no daily performance rows and no trades match these filters",
            )
        scopes = _scopes(keys, totals, filters)
        # Positions may have opened before the period: every fill up to its end is replayed.
        books = replay(AnalyticsRecords.of(store).fills(filters.until or _NO_END))
        rows = tuple(
            _row(store, records, key, filters, [book for k, book in books.items() if _in(k, key)])
            for key in scopes
        )
        markets = tuple(_markets(store, records, totals, filters))
    return Report(filters, rows, markets)


# --- which rows --------------------------------------------------------------------------


def _scopes(keys: list[Key], totals: list[TradeTotals], filters: ReportFilters) -> list[Key]:
    """Every performance scope; then strategies that traded but have no performance rows,
    once per exchange they traded on; then requested strategies that have neither, so
    that the report says "no trades" rather than leaving them out. Named strategies come
    first (by name), the portfolio-wide scopes last."""
    scopes = set(keys)
    with_performance = {strategy for strategy, _ in keys}
    for total in totals:
        if total.strategy is not None and total.strategy not in with_performance:
            scopes.add((total.strategy, total.exchange))
    seen = {strategy for strategy, _ in scopes}
    for name in filters.strategies or ():
        if name not in seen:
            scopes.add((name, filters.exchange))
    return sorted(scopes, key=lambda key: (key[0] is None, key[0] or "", key[1] or ""))


def _in(book_key: tuple[str | None, str], key: Key) -> bool:
    strategy, exchange = key
    return (strategy is None or book_key[0] == strategy) and (
        exchange is None or book_key[1] == exchange
    )


def _performance(
    store: Store, key: Key, filters: ReportFilters
) -> tuple[list[Performance], Performance | None]:
    """The scope's performance rows in the period, and the row just before it (whose
    equity the period's first day began with), if any."""
    strategy, exchange = key
    where = {"strategy": strategy, "exchange": exchange}
    until = None if filters.last_date is None else _next_day(filters.last_date)
    rows = list(store.performance.every(where, since=filters.first_date, until=until))
    before = None
    if filters.first_date is not None:
        earlier = store.performance.list(
            where, until=filters.first_date, limit=1, newest_first=True
        ).items
        before = earlier[0] if earlier else None
    return rows, before


# --- one row -----------------------------------------------------------------------------


def _row(
    store: Store,
    records: ReportRecords,
    key: Key,
    filters: ReportFilters,
    books: Sequence[StrategyBook],
) -> StrategyRow:
    strategy, exchange = key
    performance, before = _performance(store, key, filters)
    first_date = performance[0].date if performance else filters.first_date
    last_date = performance[-1].date if performance else filters.last_date
    # The trades of the row's own days, so that equity and trades cover one period.
    since = parse_time_bound(first_date, "first_date") if first_date else filters.since
    until = parse_time_bound(_next_day(last_date), "last_date") if last_date else filters.until
    totals = records.trade_totals(
        strategies=[strategy] if strategy is not None else filters.strategies,
        exchange=exchange,
        since=since,
        until=until,
    )
    fees: defaultdict[str, Decimal] = defaultdict(Decimal)
    realized: defaultdict[str, Decimal] = defaultdict(Decimal)
    for total in totals:
        quote = market_assets(total.symbol)[1]
        # The ledger charges a fee without a currency in the market's quote currency.
        fees[total.fee_currency or quote] += total.fees
        if total.realized_pnl is not None:
            realized[quote] += total.realized_pnl
    series, days = _curve(strategy, performance, before)
    start, end = since or _NO_START, until or _NO_END
    trips = sorted(
        (trip for book in books for trip in book.closed if start <= trip.closed_at < end),
        key=lambda trip: trip.closed_at,
    )
    # Without performance rows or filters, the exposure's period is the fills' own span.
    if since is None:
        start = min((b.first_fill for b in books if b.first_fill is not None), default=start)
    if until is None:
        end = max((b.last_fill + 1 for b in books if b.last_fill is not None), default=end)
    spans = [(trip.opened_at, trip.closed_at) for book in books for trip in book.closed]
    spans += [(opened, end) for book in books for opened in book.open_since().values()]
    period = (start, end)
    return StrategyRow(
        strategy=strategy,
        exchange=exchange,
        first_date=first_date,
        last_date=last_date,
        days=days,
        final_equity=performance[-1].total_portfolio_value if performance else None,
        total_pnl=sum((row.daily_pnl or Decimal(0) for row in performance), Decimal(0))
        if performance
        else None,
        curve=CurveFigures.of(series),
        monthly_returns=series.monthly_returns(),
        fills=sum(total.trades for total in totals),
        trades=trade_figures(trips, spans, period),
        round_trips=tuple(trips),
        fees={currency: amount for currency, amount in sorted(fees.items()) if amount},
        realized_pnl=dict(sorted(realized.items())),
    )


def _curve(
    strategy: str | None, performance: Sequence[Performance], before: Performance | None
) -> tuple[ReturnSeries, tuple[Day, ...]]:
    """The period's daily returns, each on the equity of the day before: the row before
    the period for its first day; at the very start of a curve, a strategy's capital (its
    equity less its P&L) and nothing for an exchange (its first day's equity is funding)."""
    series = ReturnSeries()
    days = []
    previous: Decimal | None = None
    if before is not None and performance and _next_day(before.date) == performance[0].date:
        previous = before.total_portfolio_value
    elif before is None and performance and strategy is not None:
        first = performance[0]
        previous = first.total_portfolio_value - (first.daily_pnl or Decimal(0))
    last_date = None
    for row in performance:
        if last_date is not None and _next_day(last_date) != row.date:
            previous = None  # a day without a row: its equity is unknown
        pnl = row.daily_pnl or Decimal(0)
        returned = None if previous is None else daily_return(previous, pnl)
        if returned is not None:
            series.add(row.date, returned)
        drawdown = series.drawdown()
        days.append(Day(row.date, row.total_portfolio_value, pnl, drawdown))
        previous, last_date = row.total_portfolio_value, row.date
    return series, tuple(days)


# --- the candle charts --------------------------------------------------------------------


def _markets(
    store: Store, records: ReportRecords, totals: list[TradeTotals], filters: ReportFilters
) -> Iterable[MarketChart]:
    traded: Counter[tuple[str, str]] = Counter()
    for total in totals:
        traded[(total.exchange, total.symbol)] += total.trades
    ranked = sorted(traded.items(), key=lambda item: (-item[1], item[0]))
    limit = min(MAX_CANDLES, max(MIN_CANDLES, ALL_CANDLES // max(len(ranked), 1)))
    history = MarketHistory(store)  # archived candles are charted too
    for (exchange, symbol), _ in ranked:
        markers = records.markers(
            exchange=exchange,
            symbol=symbol,
            strategies=filters.strategies,
            since=filters.since,
            until=filters.until,
        )
        since, until = _window(markers[0].timestamp, markers[-1].timestamp, filters)
        counts = history.candle_counts(exchange, symbol, since, until)
        timeframe = choose_timeframe(counts, limit)
        if timeframe is None:
            yield MarketChart(exchange, symbol, None, (), tuple(markers))
            continue
        # The indicators start from candles before the chart's first, as the strategies'
        # did in their session, so that the chart's first values are already theirs.
        strategies = sorted({marker.strategy for marker in markers if marker.strategy})
        frame = timeframe_of(timeframe)
        aligned = frame.floor(since)
        loaded = history.candle_units(
            exchange, symbol, timeframe, frame.shift(aligned, -warmup(strategies)), until
        )
        charted = sum(1 for candle in loaded if candle[0] >= aligned)
        closes = [candle_decimals(candle)[4] for candle in loaded]
        yield MarketChart(
            exchange,
            symbol,
            timeframe,
            tuple(loaded[len(loaded) - charted :]),
            tuple(markers),
            tuple(indicators(strategies, closes, charted)),
        )


def _window(first: int, last: int, filters: ReportFilters) -> tuple[int, int]:
    """The trades' span with a margin on both sides, so the first and last fills show the
    market around them; kept inside the report's period."""
    margin = max((last - first) // 10, HOUR_MS)
    since, until = first - margin, last + margin + 1
    if filters.since is not None:
        since = max(since, filters.since)
    if filters.until is not None:
        until = min(until, filters.until)
    return since, until


def choose_timeframe(counts: dict[str, int], limit: int = MAX_CANDLES) -> str | None:
    """The finest timeframe with at most `limit` candles in the window, else the
    coarsest one stored; None when nothing is stored."""
    stored = [timeframe for timeframe in TIMEFRAME_NAMES if counts.get(timeframe)]
    for timeframe in stored:
        if counts[timeframe] <= limit:
            return timeframe
    return stored[-1] if stored else None


def candle_decimals(candle: CandleUnits) -> tuple[int, Decimal, Decimal, Decimal, Decimal]:
    """A candle's time and its open, high, low and close as exact amounts."""
    timestamp, *prices, _volume = candle
    opened, high, low, close = (from_units(units, AMOUNT.scale) for units in prices)
    return timestamp, opened, high, low, close


def _next_day(iso: str) -> str:
    return (date.fromisoformat(iso) + timedelta(days=1)).isoformat()
