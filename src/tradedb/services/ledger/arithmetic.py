"""Quantizing derived amounts: the one place that decides how a product or share rounds."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from functools import wraps
from typing import ParamSpec, TypeVar

from tradedb.models.values import EXACT

SCALE = 8
UNIT = Decimal(1).scaleb(-SCALE)
_UNITS_PER_ONE = 10**SCALE


def quantize(value: Decimal) -> Decimal:
    """A derived amount (total value, average price, P&L) at 8 decimals, half-even."""
    return value.quantize(UNIT, rounding=ROUND_HALF_EVEN, context=EXACT)


def quantize_up(value: Decimal) -> Decimal:
    """A reservation at 8 decimals, rounded up so that it never falls short."""
    return value.quantize(UNIT, rounding=ROUND_CEILING, context=EXACT)


def quantized_ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    """numerator / denominator at 8 decimals, half-even, rounded once from the exact value.

    A quotient such as 32 / 3 never ends, so it cannot be computed exactly in decimal;
    as a fraction it can, and `round` on a Fraction rounds half to even.
    """
    exact = Fraction(numerator) / Fraction(denominator)
    return Decimal(round(exact * _UNITS_PER_ONE)).scaleb(-SCALE)


def share(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """`total` * part / whole, quantized; the whole of `total` when part is all of it.

    Used wherever an amount is split pro rata (a reservation released by a partial fill,
    fees charged to a partial close), so that the last piece takes exactly what is left
    and the pieces always add up to the total.
    """
    if part >= whole:
        return total
    return quantized_ratio(EXACT.multiply(total, part), whole)


P = ParamSpec("P")
R = TypeVar("R")


def exact(operation: Callable[P, R]) -> Callable[P, R]:
    """Run money arithmetic in the exact decimal context, whatever the caller's is: an
    application that lowered its own precision must not get rounded totals or balances."""

    @wraps(operation)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with localcontext(EXACT):
            return operation(*args, **kwargs)

    return run
