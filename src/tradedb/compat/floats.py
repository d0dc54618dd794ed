"""The float boundary with tools whose amounts are floats, crossed on purpose and in one place.

Out of tradedb, `float(Decimal)` gives the double nearest the exact amount: the one lossy
step, taken only where the other tool's shape demands a float.

Into tradedb a float is read as its shortest repr (0.1 means 0.1, not
0.1000000000000000055511151231257827), then one of two rules applies, because two kinds of
value arrive:
- data (a candle's prices and volume) is input, and tradedb never rounds input: the value
  must fit DECIMAL(20,8) as it is, or it is refused;
- results the other tool computed (position sizes, stop levels) are derived values, which
  tradedb quantizes ROUND_HALF_EVEN at the column's scale, as it does its own.
NaN and infinity are refused by both.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from tradedb.errors import AmountOutOfRange, ValidationError
from tradedb.models.values import AMOUNT, EXACT, DecimalSpec, format_decimal

Sign = Literal["positive", "non-negative", "any"]


def to_float(amount: Decimal) -> float:
    """The double nearest `amount` (Python's float(Decimal) rounds correctly)."""
    return float(amount)


def float_round_trips(amount: Decimal) -> bool:
    """Whether `amount` survives the trip to a float and back through its shortest repr.

    True for every amount with at most 15 significant digits (a double keeps 15 decimal
    digits, so the nearest double's shortest repr is that amount); with 16 or 17 digits it
    depends on the value (12345678.12345678 survives, 1234567890.12345678 does not); with
    18 or more never, since no shortest repr has more than 17.
    """
    return Decimal(repr(float(amount))) == amount


def exact_decimal(
    value: float, field: str, *, column: str, spec: DecimalSpec = AMOUNT, sign: Sign = "any"
) -> Decimal:
    """`value`'s shortest repr as a Decimal that fits `column` exactly, or a refusal."""
    number = _shortest_repr(value, field)
    quantum = Decimal(1).scaleb(-spec.scale)
    if number != number.quantize(quantum, context=EXACT):
        raise ValidationError(
            field,
            value,
            f"needs more than {spec.scale} decimals ({format_decimal(number)}); {column} is "
            f"{spec.sql} and tradedb never rounds input",
        )
    return _checked(number, value, field, column=column, spec=spec, sign=sign)


def quantized_decimal(
    value: float, field: str, *, column: str, spec: DecimalSpec = AMOUNT, sign: Sign = "any"
) -> Decimal:
    """A derived `value` as a Decimal at `spec`'s scale, rounded ROUND_HALF_EVEN."""
    number = _shortest_repr(value, field)
    quantum = Decimal(1).scaleb(-spec.scale)
    rounded = number.quantize(quantum, rounding=ROUND_HALF_EVEN, context=EXACT)
    return _checked(rounded, value, field, column=column, spec=spec, sign=sign)


def _shortest_repr(value: float, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, value, f"must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(field, value, "NaN and infinity are not amounts")
    number = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    # -0.0 is zero: keep no sign that the database would not keep either.
    return number.copy_abs() if number == 0 else number


def _checked(
    number: Decimal, value: float, field: str, *, column: str, spec: DecimalSpec, sign: Sign
) -> Decimal:
    if sign == "positive" and number <= 0:
        raise ValidationError(field, value, f"must be greater than zero ({column})")
    if sign == "non-negative" and number < 0:
        raise ValidationError(field, value, f"must not be negative ({column})")
    limit = spec.largest
    if abs(number) > limit:
        raise AmountOutOfRange(
            field,
            value,
            f"exceeds ±{format_decimal(limit)}, the most {column} ({spec.sql}) holds exactly",
        )
    return number
