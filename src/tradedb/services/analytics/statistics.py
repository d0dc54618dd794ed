"""Return statistics of a daily equity curve: Sharpe ratio and maximum drawdown.

Returns come in exact (Fraction or Decimal). The Sharpe ratio is a float statistic: each
return is converted to float64 explicitly (correctly rounded) and the mean and sample
standard deviation are accumulated with Welford's method, so that a curve's every prefix
costs one step. The drawdown follows a return index kept in 50 significant digits, far
beyond what the 4 stored decimals need. docs/metrics.md gives the formulas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction

from tradedb.models.values import PERCENT

DAYS_PER_YEAR = 365
# DECIMAL(10,4): the stored percentages and ratios hold at most 6 integer digits.
PERCENT_UNIT = Decimal(1).scaleb(-PERCENT.scale)
_INDEX_CONTEXT = Context(prec=50)


class ReturnStatistics:
    """Sharpe ratio and maximum drawdown of the daily returns added so far."""

    def __init__(self, risk_free_rate: float = 0.0) -> None:
        """`risk_free_rate` is annual; each day's share, (1 + rate)^(1/365) - 1, is
        taken off every return (as quantstats does)."""
        self.risk_free_daily: float = (1.0 + risk_free_rate) ** (1.0 / DAYS_PER_YEAR) - 1.0
        self.count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._first: Fraction | None = None
        self._all_equal = True
        self._index = Decimal(1)
        self._peak = Decimal(1)
        self._deepest = Decimal(0)

    def add(self, daily_return: Fraction | Decimal) -> None:
        exact = Fraction(daily_return)
        if self._first is None:
            self._first = exact
        elif exact != self._first:
            self._all_equal = False
        self.count += 1
        value = float(exact)  # Fraction -> float64 is correctly rounded
        delta = value - self._mean
        self._mean += delta / self.count
        self._m2 += delta * (value - self._mean)
        growth = _INDEX_CONTEXT.add(Decimal(1), _decimal(exact))
        self._index = _INDEX_CONTEXT.multiply(self._index, growth)
        self._peak = max(self._peak, self._index)
        depth = _INDEX_CONTEXT.divide(self._peak - self._index, self._peak)
        self._deepest = max(self._deepest, depth)

    def sharpe_ratio(self) -> float | None:
        """mean(r - rf) / std(r, ddof=1) x sqrt(365); None with fewer than 2 returns or
        when all returns are equal (no dispersion: the ratio is undefined)."""
        if self.count < 2 or self._all_equal:
            return None
        deviation = math.sqrt(self._m2 / (self.count - 1))
        return (self._mean - self.risk_free_daily) / deviation * math.sqrt(DAYS_PER_YEAR)

    def max_drawdown(self) -> Decimal | None:
        """The deepest fall of the return index from its running peak, as a positive
        percent (not quantized); None with fewer than 2 returns."""
        if self.count < 2:
            return None
        return self._deepest * 100


def sharpe_ratio(
    returns: Iterable[Fraction | Decimal], risk_free_rate: float = 0.0
) -> float | None:
    stats = ReturnStatistics(risk_free_rate)
    for daily_return in returns:
        stats.add(daily_return)
    return stats.sharpe_ratio()


def max_drawdown(returns: Iterable[Fraction | Decimal]) -> Decimal | None:
    stats = ReturnStatistics()
    for daily_return in returns:
        stats.add(daily_return)
    return stats.max_drawdown()


def percent_column(value: Decimal | float | Fraction | None) -> Decimal | None:
    """A value for a DECIMAL(10,4) column: quantized half-even to 4 decimals, or None
    when it is undefined or too large for the column (a Sharpe ratio of a million says
    nothing a NULL does not)."""
    if value is None:
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = Decimal(value)  # the float's exact binary value, rounded once below
    elif isinstance(value, Fraction):
        # round() on a Fraction is exact and half-even.
        value = Decimal(round(value * 10**PERCENT.scale)).scaleb(-PERCENT.scale)
    quantized = value.quantize(PERCENT_UNIT, rounding=ROUND_HALF_EVEN, context=Context(prec=60))
    return quantized if abs(quantized) < PERCENT.limit else None


def _decimal(value: Fraction) -> Decimal:
    return _INDEX_CONTEXT.divide(Decimal(value.numerator), Decimal(value.denominator))
