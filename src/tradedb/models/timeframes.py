"""Candle timeframes: ccxt's standard set and where each candle starts.

Minutes, hours, days and 3d are fixed lengths counted from the UTC epoch, as every
exchange aligns them (2018-01-01 00:00 UTC starts a 3d candle). A week starts on Monday
00:00 UTC, as Binance's and Kraken's weekly candles do, though the epoch was a Thursday.
A month starts on the 1st at 00:00 UTC and lasts 28 to 31 days, so its times come from
the calendar, never from a fixed step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tradedb.errors import ValidationError

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
# 1970-01-05, the first Monday after the epoch.
MONDAY_MS = 4 * DAY_MS
# ccxt's length of a month (parse_timeframe('1M')): what a month means where only a
# length will do, such as how many candles a page of a given span holds.
MONTH_MS = 30 * DAY_MS

# The specification's six; the schema's CHECK allows every timeframe in TIMEFRAMES.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)

SPEC_TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d")


@dataclass(frozen=True)
class Timeframe:
    """One timeframe: `length_ms` is exact for all but months, whose length varies."""

    name: str
    length_ms: int
    offset_ms: int = 0
    monthly: bool = False

    @property
    def longest_ms(self) -> int:
        """The longest a candle of this timeframe lasts: two stored candles further apart
        than this have a hole between them."""
        return 31 * DAY_MS if self.monthly else self.length_ms

    def floor(self, moment_ms: int) -> int:
        """The start of the candle that holds `moment_ms`."""
        if self.monthly:
            return _month_start(*_year_month(moment_ms))
        return moment_ms - (moment_ms - self.offset_ms) % self.length_ms

    def aligned(self, moment_ms: int) -> bool:
        return self.floor(moment_ms) == moment_ms

    def ceil(self, moment_ms: int) -> int:
        """The first candle start at or after `moment_ms`."""
        start = self.floor(moment_ms)
        return start if start == moment_ms else self.shift(start, 1)

    def shift(self, start_ms: int, candles: int) -> int:
        """The start `candles` candles after (or before) the aligned `start_ms`."""
        if self.monthly:
            year, month = _year_month(start_ms)
            months = year * 12 + month - 1 + candles
            return _month_start(months // 12, months % 12 + 1)
        return start_ms + candles * self.length_ms

    def end(self, start_ms: int) -> int:
        """Where the candle starting at `start_ms` ends (the next one's start)."""
        return self.shift(start_ms, 1)

    def starts_closed_between(self, not_before_ms: int, at_ms: int) -> tuple[int, int]:
        """The first and last start of the candles that closed in [not_before_ms, at_ms]:
        a candle still open at at_ms has its close in the future."""
        return self.shift(self.ceil(not_before_ms), -1), self.shift(self.floor(at_ms), -1)

    def count(self, first_ms: int, last_ms: int) -> int:
        """Candles from the aligned `first_ms` to the aligned `last_ms`, both included."""
        if self.monthly:
            (first_year, first_month), (last_year, last_month) = map(
                _year_month, (first_ms, last_ms)
            )
            return (last_year - first_year) * 12 + last_month - first_month + 1
        return (last_ms - first_ms) // self.length_ms + 1

    def starts(self, since_ms: int, until_ms: int) -> Iterator[int]:
        """Every candle start in [since_ms, until_ms)."""
        start = self.ceil(since_ms)
        while start < until_ms:
            yield start
            start = self.shift(start, 1)

    def divides(self, longer: Timeframe) -> bool:
        """Whether every candle of `longer` is made of whole candles of this one."""
        if longer.length_ms <= self.length_ms and not longer.monthly:
            return False
        if longer.monthly:
            # Months start at midnight: days and anything dividing a day fit in them.
            return not self.monthly and DAY_MS % self.length_ms == 0
        return (
            not self.monthly
            and longer.length_ms % self.length_ms == 0
            and (longer.offset_ms - self.offset_ms) % self.length_ms == 0
        )


_DEFINED = (
    Timeframe("1m", MINUTE_MS),
    Timeframe("3m", 3 * MINUTE_MS),
    Timeframe("5m", 5 * MINUTE_MS),
    Timeframe("15m", 15 * MINUTE_MS),
    Timeframe("30m", 30 * MINUTE_MS),
    Timeframe("1h", HOUR_MS),
    Timeframe("2h", 2 * HOUR_MS),
    Timeframe("4h", 4 * HOUR_MS),
    Timeframe("6h", 6 * HOUR_MS),
    Timeframe("8h", 8 * HOUR_MS),
    Timeframe("12h", 12 * HOUR_MS),
    Timeframe("1d", DAY_MS),
    Timeframe("3d", 3 * DAY_MS),
    Timeframe("1w", WEEK_MS, offset_ms=MONDAY_MS),
    Timeframe("1M", MONTH_MS, monthly=True),
)
TIMEFRAMES: dict[str, Timeframe] = {timeframe.name: timeframe for timeframe in _DEFINED}
# Shortest first, as readers that prefer the finest stored timeframe walk them.
TIMEFRAME_NAMES = tuple(TIMEFRAMES)


def timeframe_of(name: str, field: str = "timeframe") -> Timeframe:
    """The timeframe called `name`, or a ValidationError listing the ones there are."""
    found = TIMEFRAMES.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValidationError(field, name, f"must be one of {', '.join(TIMEFRAMES)}")
    return found


def check_timeframe(name: str, field: str = "timeframe") -> str:
    return timeframe_of(name, field).name


def _year_month(moment_ms: int) -> tuple[int, int]:
    moment = _EPOCH + timedelta(milliseconds=moment_ms)
    return moment.year, moment.month


def _month_start(year: int, month: int) -> int:
    return (datetime(year, month, 1, tzinfo=UTC) - _EPOCH) // _ONE_MS
