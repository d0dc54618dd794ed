"""Per-strategy comparison: the rows and series a report shows, exact, from the store.

A report row is one (strategy, exchange) scope of `performance_metrics` (strategy None is
the portfolio-wide scope, exchange None all exchanges), joined with the trades of the same
scope. Equity, P&L, return, Sharpe and drawdown come from the daily performance rows of
the period; trades, wins, losses, fees and realized P&L come from the trades themselves,
so a strategy that analytics has not yet summed up still shows what it traded.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction

from tradedb.errors import UnknownRecord, ValidationError
from tradedb.models import Performance
from tradedb.models.timeframes import TIMEFRAME_NAMES, timeframe_of
from tradedb.models.values import (
    AMOUNT,
    PERCENT,
    check_exchange,
    check_name,
    market_assets,
    parse_time_bound,
    to_iso_date,
)
from tradedb.schema.money import from_units
from tradedb.services.marketdata.history import MarketHistory
from tradedb.store import Store
from tradedb.store.bulk import CandleUnits
from tradedb.store.reports import Key, Marker, ReportRecords, TradeTotals
from tradedb.store.repository import MAX_LIMIT

# Crypto trades every day of the year, so daily Sharpe ratios annualise over 365 days, as
# quantstats and empyrical do with periods=365.
TRADING_DAYS = 365
# The candle charts: at most this many markets (the most traded first), each in the finest
# stored timeframe that shows its trades in at most this many candles.
MAX_MARKETS = 3
MAX_CANDLES = 2000
HOUR_MS = 3_600_000
# Enough digits that the square root behind a Sharpe ratio rounds like the exact value.
_SQRT_CONTEXT = Context(prec=50)


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
class StrategyRow:
    """One (strategy, exchange) scope over the period. None means "not known": no daily
    performance rows (equity figures) or no closing trades (win rate)."""

    strategy: str | None
    exchange: str | None
    days: tuple[Day, ...]
    final_equity: Decimal | None
    total_return: Decimal | None
    total_pnl: Decimal | None
    sharpe: Decimal | None
    max_drawdown: Decimal | None
    trades: int
    wins: int
    losses: int
    win_rate: Decimal | None
    fees: dict[str, Decimal] = field(default_factory=dict)
    realized_pnl: dict[str, Decimal] = field(default_factory=dict)

    @property
    def label(self) -> str:
        name = self.strategy if self.strategy is not None else "all strategies"
        return f"{name} @ {self.exchange}" if self.exchange is not None else name

    @property
    def has_trades(self) -> bool:
        return self.trades > 0


@dataclass(frozen=True)
class MarketChart:
    """A traded market's candles around its fills, and the fills."""

    exchange: str
    symbol: str
    timeframe: str | None  # None: no candles stored for the window
    candles: tuple[CandleUnits, ...]
    markers: tuple[Marker, ...]


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
        rows = tuple(
            _row(key, _performance(store, key, filters), _within(totals, key)) for key in scopes
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


def _within(totals: list[TradeTotals], key: Key) -> list[TradeTotals]:
    strategy, exchange = key
    return [
        total
        for total in totals
        if (strategy is None or total.strategy == strategy)
        and (exchange is None or total.exchange == exchange)
    ]


def _performance(store: Store, key: Key, filters: ReportFilters) -> list[Performance]:
    strategy, exchange = key
    until = None if filters.last_date is None else _next_day(filters.last_date)
    rows: list[Performance] = []
    after = None
    while True:
        page = store.performance.list(
            {"strategy": strategy, "exchange": exchange},
            since=filters.first_date,
            until=until,
            after=after,
            limit=MAX_LIMIT,
        )
        rows += page.items
        if page.next_after is None:
            return rows
        after = page.next_after


# --- one row -----------------------------------------------------------------------------


def _row(
    key: Key, performance: Sequence[Performance], totals: Sequence[TradeTotals]
) -> StrategyRow:
    strategy, exchange = key
    trades = sum(total.trades for total in totals)
    wins = sum(total.winning for total in totals)
    losses = sum(total.losing for total in totals)
    fees: defaultdict[str, Decimal] = defaultdict(Decimal)
    realized: defaultdict[str, Decimal] = defaultdict(Decimal)
    for total in totals:
        quote = market_assets(total.symbol)[1]
        # The ledger charges a fee without a currency in the market's quote currency.
        fees[total.fee_currency or quote] += total.fees
        if total.realized_pnl is not None:
            realized[quote] += total.realized_pnl
    equity = [row.total_portfolio_value for row in performance]
    pnl = [row.daily_pnl or Decimal(0) for row in performance]
    drawdowns = drawdown_series(equity, pnl)
    return StrategyRow(
        strategy=strategy,
        exchange=exchange,
        days=tuple(
            Day(row.date, value, gain, down)
            for row, value, gain, down in zip(performance, equity, pnl, drawdowns, strict=True)
        ),
        final_equity=equity[-1] if equity else None,
        total_return=total_return(equity, pnl),
        total_pnl=sum(pnl, Decimal(0)) if performance else None,
        sharpe=sharpe_ratio(equity, pnl),
        max_drawdown=max(drawdowns) if drawdowns else None,
        trades=trades,
        wins=wins,
        losses=losses,
        win_rate=percent(Fraction(wins, wins + losses)) if wins + losses else None,
        fees={currency: amount for currency, amount in sorted(fees.items()) if amount},
        realized_pnl=dict(sorted(realized.items())),
    )


# --- the figures, from daily equity and P&L ------------------------------------------------


def percent(ratio: Fraction) -> Decimal:
    """A ratio as a percent at DECIMAL(10,4)'s 4 decimals, rounded half-even once from the
    exact value."""
    units = round(ratio * 100 * 10**PERCENT.scale)
    return Decimal(units).scaleb(-PERCENT.scale)


def daily_returns(equity: Sequence[Decimal], pnl: Sequence[Decimal]) -> list[Fraction]:
    """Each day's P&L over the equity it began with (its end minus its P&L), exactly. A
    day that began with nothing has no return and is left out."""
    returns = []
    for value, gain in zip(equity, pnl, strict=True):
        opening = value - gain
        if opening > 0:
            returns.append(Fraction(gain) / Fraction(opening))
    return returns


def total_return(equity: Sequence[Decimal], pnl: Sequence[Decimal]) -> Decimal | None:
    """The daily returns compounded, in percent: the period's time-weighted return, equal
    to final / opening equity - 1 when no money came in or went out."""
    returns = daily_returns(equity, pnl)
    if not returns:
        return None
    growth = Fraction(1)
    for daily in returns:
        growth *= 1 + daily
    return percent(growth - 1)


def sharpe_ratio(equity: Sequence[Decimal], pnl: Sequence[Decimal]) -> Decimal | None:
    """Mean daily return over its sample standard deviation, times sqrt(365), risk-free
    rate zero, at 4 decimals; None with fewer than two returns or returns that never
    vary (the ratio is undefined there, not zero)."""
    returns = daily_returns(equity, pnl)
    if len(returns) < 2:
        return None
    mean = sum(returns, Fraction(0)) / len(returns)
    variance = sum(((daily - mean) ** 2 for daily in returns), Fraction(0)) / (len(returns) - 1)
    if variance == 0:
        return None
    squared = mean * mean * TRADING_DAYS / variance
    root = _SQRT_CONTEXT.sqrt(
        _SQRT_CONTEXT.divide(Decimal(squared.numerator), Decimal(squared.denominator))
    )
    scaled = root.quantize(Decimal(1).scaleb(-PERCENT.scale), rounding=ROUND_HALF_EVEN)
    return -scaled if mean < 0 else scaled


def drawdown_series(equity: Sequence[Decimal], pnl: Sequence[Decimal]) -> list[Decimal]:
    """Per day, how far equity stands below the highest it has been since the period
    began (the first day's opening equity counts), as a positive percent."""
    if not equity:
        return []
    peak = equity[0] - pnl[0]
    series = []
    for value in equity:
        peak = max(peak, value)
        series.append(percent(Fraction(peak - value) / Fraction(peak)) if peak > 0 else Decimal(0))
    return series


# --- the candle charts --------------------------------------------------------------------


def _markets(
    store: Store, records: ReportRecords, totals: list[TradeTotals], filters: ReportFilters
) -> Iterable[MarketChart]:
    traded: Counter[tuple[str, str]] = Counter()
    for total in totals:
        traded[(total.exchange, total.symbol)] += total.trades
    ranked = sorted(traded.items(), key=lambda item: (-item[1], item[0]))
    history = MarketHistory(store)  # archived candles are charted too
    for (exchange, symbol), _ in ranked[:MAX_MARKETS]:
        markers = records.markers(
            exchange=exchange,
            symbol=symbol,
            strategies=filters.strategies,
            since=filters.since,
            until=filters.until,
        )
        since, until = _window(markers[0].timestamp, markers[-1].timestamp, filters)
        counts = history.candle_counts(exchange, symbol, since, until)
        timeframe = choose_timeframe(counts)
        candles: tuple[CandleUnits, ...] = ()
        if timeframe is not None:
            aligned = timeframe_of(timeframe).floor(since)
            candles = tuple(history.candle_units(exchange, symbol, timeframe, aligned, until))
        yield MarketChart(exchange, symbol, timeframe, candles, tuple(markers))


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


def choose_timeframe(counts: dict[str, int]) -> str | None:
    """The finest timeframe with at most MAX_CANDLES candles in the window, else the
    coarsest one stored; None when nothing is stored."""
    stored = [timeframe for timeframe in TIMEFRAME_NAMES if counts.get(timeframe)]
    for timeframe in stored:
        if counts[timeframe] <= MAX_CANDLES:
            return timeframe
    return stored[-1] if stored else None


def candle_decimals(candle: CandleUnits) -> tuple[int, Decimal, Decimal, Decimal, Decimal]:
    """A candle's time and its open, high, low and close as exact amounts."""
    timestamp, *prices, _volume = candle
    opened, high, low, close = (from_units(units, AMOUNT.scale) for units in prices)
    return timestamp, opened, high, low, close


def _next_day(iso: str) -> str:
    return (date.fromisoformat(iso) + timedelta(days=1)).isoformat()
