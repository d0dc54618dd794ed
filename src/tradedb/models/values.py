"""Value rules shared by every record: exact decimals, epoch-millisecond times, names.

These functions are the single definition of what input tradedb accepts. The Pydantic
records and the bulk paths both call them, so a value refused in one place is refused
everywhere with the same message.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    InvalidOperation,
)

from tradedb.errors import AmountOutOfRange, ValidationError
from tradedb.models import timeframes


@dataclass(frozen=True, slots=True)
class DecimalSpec:
    """A SQL DECIMAL(precision, scale) column type."""

    precision: int
    scale: int

    @property
    def sql(self) -> str:
        return f"DECIMAL({self.precision},{self.scale})"

    @property
    def limit(self) -> Decimal:
        """Smallest magnitude that no longer fits (10 ** integer digits)."""
        return Decimal(10) ** (self.precision - self.scale)

    @property
    def largest(self) -> Decimal:
        """Largest magnitude that fits, e.g. 999999999999.99999999 for DECIMAL(20,8)."""
        # Spelt out: arithmetic in the default context keeps only 28 digits.
        return Decimal(f"{'9' * (self.precision - self.scale)}.{'9' * self.scale}")


# Arithmetic on validated amounts never rounds in this context.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)

AMOUNT = DecimalSpec(20, 8)
PERCENT = DecimalSpec(10, 4)
# Traded volumes: the spec's DECIMAL(20,8) stops below 10^12, and a meme coin's 24h volume
# (SHIB, PEPE) runs to trillions of coins. 30 integer digits hold any token supply there is.
VOLUME = DecimalSpec(38, 8)


def to_decimal(value: object, field: str, spec: DecimalSpec = AMOUNT) -> Decimal:
    """Return `value` as an exact Decimal that fits `spec`, or refuse it.

    Accepts Decimal, int, str and float. A float is accepted only when its shortest
    repr has at most `spec.scale` decimals, because only then does the caller's
    intent survive (0.1 means 0.1; 0.1 + 0.2 = 0.30000000000000004 means nothing exact).
    Input is never rounded: more decimals than the column holds is an error.
    """
    if isinstance(value, bool):
        raise ValidationError(field, value, "must be a number, not a boolean")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValidationError(field, value, "is not a decimal number") from None
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(field, value, "NaN and infinity are not amounts")
        number = Decimal(repr(value))
        if not _fits_scale(number, spec.scale):
            raise ValidationError(
                field,
                value,
                f"float is not exact at {spec.scale} decimals; pass a Decimal or a str",
            )
    else:
        raise ValidationError(
            field, value, f"must be a Decimal, int, str or float, not {type(value).__name__}"
        )
    if not number.is_finite():
        raise ValidationError(field, value, "NaN and infinity are not amounts")
    if not _fits_scale(number, spec.scale):
        raise ValidationError(
            field,
            value,
            f"has more than {spec.scale} decimal places; {spec.sql} holds {spec.scale} "
            "and tradedb never rounds input",
        )
    # By the leading digit's place, not abs(): abs() of 1E+1000000 overflows the context.
    if number != 0 and number.adjusted() >= spec.precision - spec.scale:
        raise AmountOutOfRange(
            field,
            value,
            f"does not fit {spec.sql}: at most {spec.precision - spec.scale} digits "
            "before the decimal point",
        )
    return number


def _fits_scale(number: Decimal, scale: int) -> bool:
    exponent = number.as_tuple().exponent
    if isinstance(exponent, str):  # 'n', 'N' or 'F': not finite
        return False
    if exponent >= -scale:
        return True
    # Trailing zeros beyond the scale (e.g. '1.000000000') lose nothing. The exact context
    # keeps quantize from failing on values longer than the default 28 digits.
    return number == number.quantize(Decimal(1).scaleb(-scale), context=EXACT)


def format_decimal(value: Decimal) -> str:
    """Fixed-point text, never scientific notation ('0.00000001', not '1E-8')."""
    return format(value, "f")


def format_fixed(value: Decimal, spec: DecimalSpec = AMOUNT) -> str:
    """An amount as JSON gives it: fixed-point at its column's scale ('0.00000000',
    '1.50000000'; '12.5000' for a percentage), so that every amount of a column has one
    form, computed ones (Decimal(0)) included. Only zeros are added: a value finer than
    the scale, which no column stores, keeps all its digits."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -spec.scale:
        value = value.quantize(Decimal(1).scaleb(-spec.scale), context=EXACT)
    # A computed -0 is zero, not a loss.
    return format(value if value else abs(value), "f")


_CENT = Decimal("0.01")


def to_cents(value: Decimal) -> Decimal:
    """A USD amount rounded half-even to cents, for people to read; programs get the
    exact amount (format_fixed)."""
    cents = value.quantize(_CENT, rounding=ROUND_HALF_EVEN, context=EXACT)
    # -0.004 rounds to -0.00, which would read as a loss.
    return cents if cents else abs(cents)


def format_plain(value: Decimal) -> str:
    """An amount as people write it: exact, fixed-point, no trailing zeros ('0.5', '30000')."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- time -------------------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Millisecond timestamps of real market events are >= 1e11 (1973-03-03). An int below that
# is almost certainly epoch seconds, and one at or above 1e14 (year 5138) is microseconds.
MIN_EPOCH_MS = 100_000_000_000
MAX_EPOCH_MS = 100_000_000_000_000 - 1
_ONE_MS = timedelta(milliseconds=1)


def to_epoch_ms(value: object, field: str) -> int:
    """Return an event time as Unix epoch milliseconds (UTC), or refuse it.

    Accepts an int in milliseconds or a timezone-aware datetime (or an ISO 8601 string
    with an offset). Sub-millisecond parts of a datetime are dropped toward the past,
    matching the millisecond resolution exchanges report.
    """
    if isinstance(value, bool):
        raise ValidationError(field, value, "must be epoch milliseconds, not a boolean")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                field, value, "is not an ISO 8601 time or epoch milliseconds"
            ) from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError(
                field,
                value,
                "naive datetime has no timezone; pass an aware datetime "
                "(e.g. tzinfo=timezone.utc) or epoch milliseconds",
            )
        millis = (value - EPOCH) // _ONE_MS
    elif isinstance(value, int):
        millis = value
    elif isinstance(value, float) and value.is_integer():
        millis = int(value)
    else:
        raise ValidationError(
            field, value, "must be epoch milliseconds (int) or a timezone-aware datetime"
        )
    if millis < MIN_EPOCH_MS:
        if 1_000_000_000 <= millis < MIN_EPOCH_MS:
            raise ValidationError(
                field,
                value,
                "looks like epoch seconds; tradedb stores epoch milliseconds (multiply by 1000)",
            )
        raise ValidationError(field, value, "is before 1973-03-03, not a market event time")
    if millis > MAX_EPOCH_MS:
        raise ValidationError(
            field,
            value,
            "looks like epoch microseconds or nanoseconds; tradedb stores epoch milliseconds",
        )
    return millis


def parse_time_bound(value: object, field: str) -> int:
    """A time-range bound typed by a person: a UTC date ('2024-01-31' means its midnight,
    UTC, as calendar dates do everywhere in tradedb) or anything `to_epoch_ms` accepts."""
    if isinstance(value, str) and _DATE_ONLY.fullmatch(value.strip()):
        try:
            day = date.fromisoformat(value.strip())
        except ValueError as exc:
            raise ValidationError(field, value, f"is not a calendar date: {exc}") from None
        return to_epoch_ms(datetime(day.year, day.month, day.day, tzinfo=UTC), field)
    if isinstance(value, str) and value.strip().isdigit():
        return to_epoch_ms(int(value.strip()), field)
    return to_epoch_ms(value, field)


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def to_iso_date(value: object, field: str) -> str:
    """A UTC calendar date as 'YYYY-MM-DD' (from a date or that text), or refuse it."""
    if isinstance(value, datetime):
        raise ValidationError(field, value, "must be a date (YYYY-MM-DD), not a datetime")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise ValidationError(field, value, "must be a UTC calendar date written YYYY-MM-DD")


_DAY_MS = 86_400_000


def day_range(since: object = None, until: object = None) -> tuple[str | None, str | None]:
    """The UTC days a time range holds, for what is kept per day (snapshots, daily
    performance, reports): those whose midnight is at or after `since` and before `until`,
    as the first and the last date, 'YYYY-MM-DD'. An open end stays None. `since` and
    `until` take what `parse_time_bound` takes, so '2024-01-01' to '2024-02-01' is
    January."""
    first = last = None
    if since is not None:
        start = parse_time_bound(since, "since")
        first = ms_to_datetime(-(-start // _DAY_MS) * _DAY_MS).date().isoformat()
    if until is not None:
        end = parse_time_bound(until, "until")
        last = ms_to_datetime((end - 1) // _DAY_MS * _DAY_MS).date().isoformat()
    if first is not None and last is not None and first > last:
        raise ValidationError(
            "until", until, f"leaves no UTC midnight after since={since!r}, so no whole day"
        )
    return first, last


def now_epoch_ms() -> int:
    return time.time_ns() // 1_000_000


def ms_to_datetime(millis: int) -> datetime:
    return EPOCH + millis * _ONE_MS


# --- names ------------------------------------------------------------------------------

_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9._-]*/[A-Z0-9][A-Z0-9._-]*(?::[A-Z0-9][A-Z0-9._-]*)?")
_EXCHANGE = re.compile(r"[a-z][a-z0-9]*")
_ASSET = re.compile(r"[A-Z0-9][A-Z0-9._-]*")
_STRATEGY = re.compile(r"[^\s\x00-\x1f](?:[^\x00-\x1f]*[^\s\x00-\x1f])?")
MAX_NAME_LENGTH = 64


def check_symbol(value: str, field: str = "symbol") -> str:
    # Ids and symbols name files and folders (retention's archives): a long one would
    # fail there with "File name too long" instead of here with a reason.
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH or not _SYMBOL.fullmatch(value):
        raise ValidationError(
            field,
            value,
            "must be a ccxt market symbol BASE/QUOTE in capitals, such as 'BTC/USDT' "
            f"(derivatives: 'BTC/USDT:USDT'), of at most {MAX_NAME_LENGTH} characters",
        )
    return value


def market_assets(symbol: str) -> tuple[str, str]:
    """The base and quote currencies of a ccxt symbol ('BTC/USDT:USDT' -> BTC, USDT)."""
    base, _, rest = symbol.partition("/")
    return base, rest.partition(":")[0]


def check_exchange(value: str, field: str = "exchange") -> str:
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH or not _EXCHANGE.fullmatch(value):
        raise ValidationError(
            field,
            value,
            "must be a lowercase ccxt exchange id such as 'kraken' or 'binance', of at most "
            f"{MAX_NAME_LENGTH} characters",
        )
    return value


def check_asset(value: str, field: str = "asset") -> str:
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH or not _ASSET.fullmatch(value):
        raise ValidationError(
            field,
            value,
            f"must be a currency code in capitals, such as 'BTC', of at most {MAX_NAME_LENGTH} "
            "characters",
        )
    return value


def check_name(value: str, field: str) -> str:
    """Strategy names and similar labels: no surrounding blanks, no control characters."""
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH or not _STRATEGY.fullmatch(value):
        raise ValidationError(
            field,
            value,
            f"must be 1 to {MAX_NAME_LENGTH} characters without surrounding blanks "
            "or control characters",
        )
    return value


# How far ahead of this machine's clock a candle may start: the exchange's clock and ours
# disagree by a little, and the candle that is still open starts at or before its now.
CLOCK_SKEW_MS = 60_000


def check_not_future(timestamp_ms: int, field: str = "timestamp", now: int | None = None) -> int:
    """Refuse a market-data time later than now (give or take the clocks' skew)."""
    limit = (now_epoch_ms() if now is None else now) + CLOCK_SKEW_MS
    if timestamp_ms > limit:
        raise ValidationError(
            field,
            timestamp_ms,
            f"is in the future ({ms_to_datetime(timestamp_ms):%Y-%m-%d %H:%M} UTC)",
        )
    return timestamp_ms


def check_aligned(timestamp_ms: int, timeframe: str, field: str = "timestamp") -> int:
    if not timeframes.timeframe_of(timeframe).aligned(timestamp_ms):
        raise ValidationError(
            field, timestamp_ms, f"is not aligned to the {timeframe} timeframe ({ALIGNMENT})"
        )
    return timestamp_ms


ALIGNMENT = (
    "candles start at whole multiples of their length since the epoch, UTC; weeks on Monday "
    "00:00 UTC, months on the 1st"
)


# --- intervals ---------------------------------------------------------------------------

EVERY_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000}
_EVERY = re.compile(r"(\d+)(ms|s|m|h)")
# What repeats (ticker polls, maintenance checks) runs at least daily: a longer interval
# is almost certainly a typo, and a huge one would overflow time.sleep.
MAX_EVERY_MS = 24 * 3_600_000


def parse_every(text: str) -> int:
    """An interval such as 500ms, 10s, 1m or 1h, in milliseconds."""
    match = _EVERY.fullmatch(text.strip())
    millis = int(match[1]) * EVERY_UNITS_MS[match[2]] if match else 0
    if not 0 < millis <= MAX_EVERY_MS:
        raise ValidationError(
            "every", text, "must be a whole number of ms, s, m or h, from 1ms to 24h (e.g. 10s)"
        )
    return millis
