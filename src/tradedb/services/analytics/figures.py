"""The figures of a daily equity curve, each computed by one implementation that the
stored performance rows, `tradedb report` (table, JSON, HTML) and MCP all use.

A curve is a sequence of daily returns r(d) = daily_pnl(d) / V(d-1), V being the equity at
the end of a day (`daily_return`). Returns come in exact; the statistical figures
(Sharpe, Sortino, volatility) are float statistics, each return converted to float64
explicitly (correctly rounded) and accumulated with Welford's method, so that every prefix
of a curve costs one step; the compounding figures (total return, CAGR, drawdowns, months)
follow a return index kept in 50 significant digits. docs/metrics.md gives every formula
and the tests compare them with empyrical.

A figure that needs more days than the curve has is `Undefined`, with the reason: an
annualised ratio from a few days says nothing (a 2-day Sharpe ratio of 13.5 is noise), so
Sharpe, Sortino, volatility, CAGR and Calmar need `MIN_RETURNS` daily returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction

from tradedb.models.values import PERCENT

DAYS_PER_YEAR = 365
# A month of daily returns. The standard error of an annualised Sharpe ratio estimated
# from n daily returns is about sqrt(365 / n): +-3.5 at 30 days, +-13.5 at 2.
MIN_RETURNS = 30
PERCENT_UNIT = Decimal(1).scaleb(-PERCENT.scale)
_INDEX = Context(prec=50)
_ONE = Decimal(1)


@dataclass(frozen=True)
class Undefined:
    """A figure that cannot be given, and why (shown as "—" with the reason)."""

    reason: str


Figure = Decimal | Undefined


def daily_return(previous_equity: Decimal, pnl: Decimal) -> Fraction | None:
    """The day's P&L over the equity it began with, exactly; None when that equity is not
    positive (a return on nothing, or on a debt, is no return)."""
    if previous_equity <= 0:
        return None
    return Fraction(pnl) / Fraction(previous_equity)


def percent(value: Fraction | Decimal | float) -> Decimal | None:
    """A ratio as a percent at DECIMAL(10,4)'s 4 decimals, rounded half-even once from the
    value as given; None when it is too large for the column or not finite."""
    return ratio(value * 100)


def ratio(value: Fraction | Decimal | float) -> Decimal | None:
    """A value at 4 decimals, rounded half-even once; None when it does not fit DECIMAL(10,4)
    or is not finite (a Sharpe ratio of a million says nothing a NULL does not)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = Decimal(value)  # the float's exact binary value, rounded once below
    elif isinstance(value, Fraction):
        value = Decimal(round(value * 10**PERCENT.scale)).scaleb(-PERCENT.scale)
    if abs(value) >= PERCENT.limit:
        return None
    quantized = value.quantize(PERCENT_UNIT, rounding=ROUND_HALF_EVEN, context=Context(prec=60))
    return quantized if abs(quantized) < PERCENT.limit else None


@dataclass(frozen=True)
class MonthlyReturn:
    """A calendar month's compounded daily returns, in percent (None: no return that month)."""

    month: str  # "2018-01"
    percent: Decimal | None


class ReturnSeries:
    """The figures of the daily returns added so far, in date order."""

    def __init__(self, risk_free_rate: float = 0.0, *, min_returns: int = MIN_RETURNS) -> None:
        """`risk_free_rate` is annual; each day's share, (1 + rate)^(1/365) - 1, is taken
        off every return in the Sharpe and Sortino ratios (as empyrical and quantstats do).
        The annualised figures need `min_returns` daily returns (at least 2)."""
        self.min_returns = max(min_returns, 2)
        self.risk_free_daily: float = (1.0 + risk_free_rate) ** (1.0 / DAYS_PER_YEAR) - 1.0
        self.count = 0
        self.first_date: str | None = None
        self.last_date: str | None = None
        self._mean = 0.0
        self._m2 = 0.0
        self._downside = 0.0  # sum of squared shortfalls below the risk-free return
        self._first: Fraction | None = None
        self._all_equal = True
        self._best: Fraction | None = None
        self._worst: Fraction | None = None
        self._index = _ONE
        self._peak = _ONE
        self._deepest = Decimal(0)
        self._underwater = 0  # days in the current drawdown
        self._longest_underwater = 0
        self._months: dict[str, Decimal] = {}

    def add(self, date: str, daily_return: Fraction | Decimal) -> None:
        """Add day `date`'s return (dates in order; a day without a return is skipped)."""
        exact = Fraction(daily_return)
        if self._first is None:
            self._first = exact
            self.first_date = date
        elif exact != self._first:
            self._all_equal = False
        self.last_date = date
        self.count += 1
        value = float(exact)  # Fraction -> float64 is correctly rounded
        delta = value - self._mean
        self._mean += delta / self.count
        self._m2 += delta * (value - self._mean)
        shortfall = min(value - self.risk_free_daily, 0.0)
        self._downside += shortfall * shortfall
        self._best = exact if self._best is None else max(self._best, exact)
        self._worst = exact if self._worst is None else min(self._worst, exact)
        growth = _INDEX.add(_ONE, _decimal(exact))
        self._index = _INDEX.multiply(self._index, growth)
        month = date[:7]
        self._months[month] = _INDEX.multiply(self._months.get(month, _ONE), growth)
        if self._index >= self._peak:
            self._peak = self._index
            self._underwater = 0
        else:
            self._underwater += 1
            self._longest_underwater = max(self._longest_underwater, self._underwater)
            depth = _INDEX.divide(self._peak - self._index, self._peak)
            self._deepest = max(self._deepest, depth)

    # --- what the curve did ------------------------------------------------------------

    def total_return(self) -> Figure:
        """The returns compounded, in percent: the time-weighted return."""
        if not self.count:
            return _no_returns()
        return percent_figure(self._index - 1)

    def max_drawdown(self) -> Figure:
        """The deepest fall of the return index below its running peak (the start counts
        as a peak), as a positive percent."""
        if not self.count:
            return _no_returns()
        return percent_figure(self._deepest)

    def drawdown(self) -> Decimal:
        """How far the return index stands below its running peak now, in percent."""
        return percent(_INDEX.divide(self._peak - self._index, self._peak)) or Decimal(0)

    def longest_drawdown_days(self) -> int | Undefined:
        """The most consecutive days the return index stayed below its running peak."""
        return self._longest_underwater if self.count else _no_returns()

    def best_day(self) -> Figure:
        return _no_returns() if self._best is None else percent_figure(self._best)

    def worst_day(self) -> Figure:
        return _no_returns() if self._worst is None else percent_figure(self._worst)

    def monthly_returns(self) -> tuple[MonthlyReturn, ...]:
        return tuple(
            MonthlyReturn(month, percent(growth - 1)) for month, growth in self._months.items()
        )

    # --- the annualised ratios: from MIN_RETURNS daily returns on -----------------------

    def too_few(self) -> Undefined | None:
        if self.count < self.min_returns:
            return Undefined(f"needs {self.min_returns} daily returns, the period has {self.count}")
        return None

    def sharpe_ratio(self) -> Figure:
        """mean(r - rf) / stdev(r) x sqrt(365), sample stdev (ddof 1)."""
        short = self.too_few() or self._flat()
        if short is not None:
            return short
        deviation = math.sqrt(self._m2 / (self.count - 1))
        return ratio_figure((self._mean - self.risk_free_daily) / deviation, annualise=True)

    def sortino_ratio(self) -> Figure:
        """mean(r - rf) / sqrt(mean(min(r - rf, 0)^2)) x sqrt(365): only the days below
        the risk-free return count as risk."""
        short = self.too_few()
        if short is not None:
            return short
        if not self._downside:
            return Undefined("no day returned less than the risk-free rate")
        downside = math.sqrt(self._downside / self.count)
        return ratio_figure((self._mean - self.risk_free_daily) / downside, annualise=True)

    def volatility(self) -> Figure:
        """stdev(r) x sqrt(365), in percent."""
        short = self.too_few()
        if short is not None:
            return short
        deviation = math.sqrt(self._m2 / (self.count - 1))
        return ratio_figure(deviation * 100, annualise=True)

    def cagr(self) -> Figure:
        """The compound annual growth rate, in percent: I^(365 / n) - 1 for n daily returns
        compounding to the index I."""
        growth = self._annual_growth()
        return growth if isinstance(growth, Undefined) else percent_figure(growth)

    def calmar_ratio(self) -> Figure:
        """CAGR over the maximum drawdown."""
        growth = self._annual_growth()
        if isinstance(growth, Undefined):
            return growth
        if not self._deepest:
            return Undefined("no drawdown")
        return ratio_figure(_INDEX.divide(growth, self._deepest))

    def _annual_growth(self) -> Decimal | Undefined:
        short = self.too_few()
        if short is not None:
            return short
        if self._index <= 0:
            return Decimal(-1)
        years = _INDEX.divide(Decimal(self.count), Decimal(DAYS_PER_YEAR))
        return _INDEX.power(self._index, _INDEX.divide(_ONE, years)) - 1

    def _flat(self) -> Undefined | None:
        return Undefined("the daily returns never vary") if self._all_equal else None


def _no_returns() -> Undefined:
    return Undefined("no daily return in the period")


def percent_figure(value: Fraction | Decimal) -> Figure:
    """A ratio as a percent figure: `percent`, or Undefined where it cannot be shown."""
    shown = percent(value)
    return Undefined("too large to show") if shown is None else shown


def ratio_figure(value: Fraction | Decimal | float, *, annualise: bool = False) -> Figure:
    """A ratio figure at 4 decimals (times sqrt(365) with `annualise`), or Undefined where
    it cannot be shown."""
    if annualise:
        value = float(value) * math.sqrt(DAYS_PER_YEAR)
    shown = ratio(value)
    return Undefined("too large to show") if shown is None else shown


def _decimal(value: Fraction) -> Decimal:
    return _INDEX.divide(Decimal(value.numerator), Decimal(value.denominator))
