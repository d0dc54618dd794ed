"""How exact amounts are stored: scaled 64-bit integers on SQLite, NUMERIC on PostgreSQL.

SQLite gives DECIMAL(20,8) columns NUMERIC affinity and keeps them as 8-byte floats, which
loses digits past the 15th and turns 0.1 + 0.2 into 0.30000000000000004. Storing integer
units of 1e-scale keeps every value exact and makes SUM, ORDER BY, range filters and the
generated wallets.total_balance exact too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from tradedb.errors import AmountOutOfRange, ValidationError
from tradedb.models.values import AMOUNT, EXACT, PERCENT, DecimalSpec, to_decimal

INT64_MAX = 2**63 - 1


class ScaledDecimal(TypeDecorator[Decimal]):
    """A DECIMAL(precision, scale) column; integer units of 10**-scale on SQLite."""

    impl = BigInteger
    cache_ok = True

    def __init__(self, spec: DecimalSpec) -> None:
        super().__init__()
        self.spec = spec

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.spec.precision, self.spec.scale))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return to_units(value, self.spec, "value")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name != "sqlite":
            return Decimal(value)
        return from_units(value, self.spec.scale)


def money(spec: DecimalSpec = AMOUNT) -> ScaledDecimal:
    return ScaledDecimal(spec)


def percent() -> ScaledDecimal:
    return ScaledDecimal(PERCENT)


def cap(scale: int) -> Decimal:
    """Largest magnitude a column of this scale holds on SQLite."""
    return from_units(INT64_MAX, scale)


def encode(value: Decimal, scale: int, column: str) -> int:
    """A validated Decimal as integer units of 10**-scale; refuse what int64 cannot hold."""
    units = value.scaleb(scale, context=EXACT)
    whole = int(units)
    if whole != units:
        raise ValidationError(column, value, f"has more than {scale} decimal places")
    if not -INT64_MAX <= whole <= INT64_MAX:
        raise AmountOutOfRange(
            column,
            value,
            f"exceeds ±{cap(scale)}, the most SQLite can store exactly (64-bit units of "
            f"1e-{scale}); PostgreSQL holds the full DECIMAL range",
        )
    return whole


def from_units(value: int, scale: int) -> Decimal:
    """Integer units of 10**-scale as the Decimal they stand for."""
    return Decimal(value).scaleb(-scale)


_POWERS_OF_TEN = tuple(10**exponent for exponent in range(19))


def to_units(value: object, spec: DecimalSpec, column: str) -> int:
    """Fast path from raw input to stored units, for bulk writes.

    Plain integers and plain decimal strings (and floats through their shortest repr) are
    converted with integer arithmetic only; anything else, and anything out of range,
    takes the general path through `to_decimal`, so the accepted set and the error
    messages are the same as for records.
    """
    kind = type(value)
    if isinstance(value, int) and kind is int:
        units: int = value * _POWERS_OF_TEN[spec.scale]
    else:
        if kind is str:
            text: str = value  # type: ignore[assignment]
        elif kind is float:
            text = repr(value)
        else:
            return _units_the_general_way(value, spec, column)
        whole, _, fraction = text.partition(".")
        shortfall = spec.scale - len(fraction)
        if shortfall < 0 or not text.isascii() or (fraction and not fraction.isdigit()):
            return _units_the_general_way(value, spec, column)
        try:
            units = int(whole + fraction) * _POWERS_OF_TEN[shortfall]
        except ValueError:
            return _units_the_general_way(value, spec, column)
    if not -_UNITS_LIMIT[spec] < units < _UNITS_LIMIT[spec]:
        return _units_the_general_way(value, spec, column)
    return units


def _units_the_general_way(value: object, spec: DecimalSpec, column: str) -> int:
    """Every input the fast path does not handle: same rules and messages as records."""
    return encode(to_decimal(value, column, spec), spec.scale, column)


# Units below both the DECIMAL precision and int64 are stored as they are.
_UNITS_LIMIT = {spec: min(10**spec.precision, INT64_MAX + 1) for spec in (AMOUNT, PERCENT)}
