"""How exact amounts are stored: integer units on SQLite, NUMERIC on PostgreSQL.

SQLite gives DECIMAL(20,8) columns NUMERIC affinity and keeps them as 8-byte floats, which
loses digits past the 15th and turns 0.1 + 0.2 into 0.30000000000000004. Storing integer
units of 1e-scale keeps every value exact and makes SUM, ORDER BY, range filters and the
generated wallets.total_balance exact too.

SQLite's integers stop at 2**63 - 1 units: 92,233,720,368.54775807 at 8 decimals, less
than a large SHIB balance and far less than a meme coin's daily volume. A value past that
is stored as text, in the overflow form: a minus sign when negative, then its units'
digits zero-padded to OVERFLOW_DIGITS. The columns have no declared type (BLOB affinity),
so SQLite keeps that text as it is instead of turning it into a float, and the storage
guards accept exactly integers and this form. docs/schema.md says what SUM and ORDER BY
give on such a column.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType

from tradedb.errors import ValidationError
from tradedb.models.values import AMOUNT, EXACT, PERCENT, VOLUME, DecimalSpec, to_decimal

INT64_MAX = 2**63 - 1
# Every column's precision fits: DECIMAL(38,8) volumes are the widest.
OVERFLOW_DIGITS = 38
# The smallest magnitude stored in the overflow form, as its zero-padded digits: text
# compares them the way numbers would.
OVERFLOW_FLOOR = str(INT64_MAX + 1).zfill(OVERFLOW_DIGITS)


class Untyped(UserDefinedType[Any]):
    """No declared type, so BLOB affinity: SQLite stores integers and text as given,
    where any declared numeric type would turn the overflow form's digits into a float."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return ""


class ScaledDecimal(TypeDecorator[Decimal]):
    """A DECIMAL(precision, scale) column; integer units of 10**-scale on SQLite."""

    impl = BigInteger
    cache_ok = True

    def __init__(self, spec: DecimalSpec) -> None:
        super().__init__()
        self.spec = spec

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Untyped())
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


def encode(value: Decimal, scale: int, column: str, precision: int = AMOUNT.precision) -> int | str:
    """A validated Decimal as SQLite stores its units of 10**-scale (see `stored`); the
    column's storage guard holds it to the column's precision."""
    return stored(exact_units(value, scale, column))


def exact_units(value: Decimal, scale: int, column: str) -> int:
    """A validated Decimal as integer units of 10**-scale; refuse a finer value."""
    units = value.scaleb(scale, context=EXACT)
    whole = int(units)
    if whole != units:
        raise ValidationError(column, value, f"has more than {scale} decimal places")
    return whole


def stored(units: int) -> int | str:
    """Units as SQLite stores them: an integer, or past int64 the overflow form."""
    if -INT64_MAX <= units <= INT64_MAX:
        return units
    digits = str(abs(units)).zfill(OVERFLOW_DIGITS)
    return f"-{digits}" if units < 0 else digits


def units_of(value: int | str) -> int:
    """Stored units (an integer or the overflow form) as the integer they stand for."""
    return value if type(value) is int else int(value)


def from_units(value: int | str, scale: int) -> Decimal:
    """Stored units of 10**-scale (an integer or the overflow form) as their Decimal."""
    # The exact context: the default one keeps 28 digits, and a volume has up to 38.
    return Decimal(value).scaleb(-scale, context=EXACT)


_POWERS_OF_TEN = tuple(10**exponent for exponent in range(19))


def to_units(value: object, spec: DecimalSpec, column: str) -> int:
    """Fast path from raw input to stored units, for bulk writes.

    Plain integers and plain decimal strings (and floats through their shortest repr) are
    converted with integer arithmetic only; anything else, and anything out of range,
    takes the general path through `to_decimal`, so the accepted set and the error
    messages are the same as for records. Units past int64 come back as they are; the
    SQLite engine writes them in the overflow form (`stored`).
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
    return exact_units(to_decimal(value, column, spec), spec.scale, column)


# Units below both the DECIMAL precision and int64 are stored as they are.
_UNITS_LIMIT = {spec: min(10**spec.precision, INT64_MAX + 1) for spec in (AMOUNT, PERCENT, VOLUME)}
