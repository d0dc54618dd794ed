"""Quantizing derived amounts: the one place that decides how a product or share rounds."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from tradedb.models.values import EXACT

UNIT = Decimal("0.00000001")


def quantize(value: Decimal) -> Decimal:
    """A derived amount (total value, average price, P&L) at 8 decimals, half-even."""
    return value.quantize(UNIT, rounding=ROUND_HALF_EVEN, context=EXACT)


def quantize_up(value: Decimal) -> Decimal:
    """A reservation at 8 decimals, rounded up so that it never falls short."""
    return value.quantize(UNIT, rounding=ROUND_CEILING, context=EXACT)


def share(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """`total` * part / whole, quantized; the whole of `total` when part is all of it.

    Used wherever an amount is split pro rata (a reservation released by a partial fill,
    fees charged to a partial close), so that the last piece takes exactly what is left
    and the pieces always add up to the total.
    """
    if part >= whole:
        return total
    return quantize(EXACT.divide(EXACT.multiply(total, part), whole))
