"""Indicators the shipped strategies use, updated one candle at a time.

Each takes the newest close and answers from the closes it has been given so far, so a
strategy using them cannot look ahead. They compute in Decimal: the same inputs give the
same signals on every machine, which keeps paper sessions reproducible to the last digit.
"""

from __future__ import annotations

from collections import deque
from decimal import Context, Decimal, localcontext

ZERO = Decimal(0)
HUNDRED = Decimal(100)
# Indicator values are ratios, never stored amounts: 28 significant digits decide any
# comparison a strategy makes, the same way on every machine.
INDICATOR = Context(prec=28)


class RollingSum:
    """The sum of the last `size` values, kept exactly (sums of 8-decimal prices never
    round)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.total = ZERO
        self._window: deque[Decimal] = deque()

    def push(self, value: Decimal) -> None:
        self._window.append(value)
        self.total += value
        if len(self._window) > self.size:
            self.total -= self._window.popleft()

    @property
    def full(self) -> bool:
        return len(self._window) == self.size


def above(fast: RollingSum, slow: RollingSum) -> bool:
    """Whether fast's mean is above slow's, compared exactly (fast.total / fast.size >
    slow.total / slow.size, multiplied out so that nothing is divided)."""
    return fast.total * slow.size > slow.total * fast.size


class WilderRsi:
    """Relative strength index with Wilder's smoothing, as J. Welles Wilder defined it:
    the first average gain and loss are the simple means of the first `period` changes,
    then each average is (previous x (period - 1) + newest) / period. RSI = 100 - 100 /
    (1 + average gain / average loss); 100 when there were gains and no loss, 50 when
    the price did not move."""

    def __init__(self, period: int = 14) -> None:
        self.period = period
        self.value: Decimal | None = None
        self._previous: Decimal | None = None
        self._changes = 0
        self._gain = ZERO
        self._loss = ZERO

    def push(self, close: Decimal) -> Decimal | None:
        previous, self._previous = self._previous, close
        if previous is None:
            return None
        change = close - previous
        gain = change if change > 0 else ZERO
        loss = -change if change < 0 else ZERO
        self._changes += 1
        with localcontext(INDICATOR):
            if self._changes <= self.period:
                self._gain += gain
                self._loss += loss
                if self._changes < self.period:
                    return None
                self._gain /= self.period
                self._loss /= self.period
            else:
                self._gain = (self._gain * (self.period - 1) + gain) / self.period
                self._loss = (self._loss * (self.period - 1) + loss) / self.period
            if not self._loss:
                # Only gains: as strong as it gets. Neither (a flat market): neutral.
                self.value = HUNDRED if self._gain else HUNDRED / 2
            else:
                self.value = HUNDRED - HUNDRED / (1 + self._gain / self._loss)
        return self.value
