"""Position arithmetic: what one fill does to the open position of its key.

Pure functions over Decimals, so that the rules can be read and property-tested apart
from storage. The rules (docs/ledger.md explains them to users):

- The average entry price is the amount-weighted average of the fills that opened or grew
  the position, quantized half-even.
- Fees are counted in quote-currency terms. Fees paid while opening or growing a position
  wait in `open_fees`; a fill that reduces the position is charged its own fee plus the
  reduced fraction of `open_fees`. Its `profit_loss` is therefore the round trip's result
  net of both fees, and the position's `realized_pnl` is the sum of those results.
- A fill larger than the position closes it and opens the opposite side with the
  remainder, at the fill's price; the fill's fee is split between the two pro rata.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from tradedb.models.values import EXACT
from tradedb.services.ledger.arithmetic import exact, quantize, quantized_ratio, share

PositionSide = Literal["long", "short"]
ZERO = Decimal(0)


@dataclass(frozen=True)
class Holding:
    """The open part of a position."""

    side: PositionSide
    amount: Decimal
    entry_price: Decimal
    open_fees: Decimal = ZERO
    realized_pnl: Decimal = ZERO


@dataclass(frozen=True)
class PositionChange:
    """What one fill did: the position before it after the fill, and any new position."""

    # The existing position after the fill; None if there was none. Its amount is zero
    # when the fill closed it.
    existing: Holding | None
    # The position the fill opened: a fresh one, or the opposite side after a flip.
    opened: Holding | None
    # Amount of the existing position the fill closed, and the result of closing it.
    closed_amount: Decimal = ZERO
    profit_loss: Decimal | None = None


def side_of(direction: int) -> PositionSide:
    return "long" if direction > 0 else "short"


@exact
def apply_fill(
    holding: Holding | None, direction: int, quantity: Decimal, price: Decimal, fee: Decimal
) -> PositionChange:
    """Apply a fill moving `quantity` of the base asset (direction +1 buy, -1 sell).

    `fee` is the fill's fee in quote terms (zero when it was paid in a third currency).
    """
    if holding is None:
        return PositionChange(None, Holding(side_of(direction), quantity, price, fee))
    if holding.side == side_of(direction):
        amount = holding.amount + quantity
        entry = quantized_ratio(
            EXACT.multiply(holding.amount, holding.entry_price) + EXACT.multiply(quantity, price),
            amount,
        )
        grown = replace(
            holding, amount=amount, entry_price=entry, open_fees=holding.open_fees + fee
        )
        return PositionChange(grown, None)
    closed = min(quantity, holding.amount)
    closing_fee = share(fee, closed, quantity)
    released_open_fees = share(holding.open_fees, closed, holding.amount)
    sign = 1 if holding.side == "long" else -1
    gross = quantize(sign * (price - holding.entry_price) * closed)
    result = gross - closing_fee - released_open_fees
    existing = replace(
        holding,
        amount=holding.amount - closed,
        open_fees=holding.open_fees - released_open_fees,
        realized_pnl=holding.realized_pnl + result,
    )
    opened = None
    if quantity > closed:
        opened = Holding(side_of(direction), quantity - closed, price, fee - closing_fee)
    return PositionChange(existing, opened, closed, result)


@exact
def unrealized_pnl(holding: Holding, mark: Decimal) -> Decimal:
    """What closing the holding at `mark` would add to realized P&L, before closing fees."""
    sign = 1 if holding.side == "long" else -1
    return quantize(sign * (mark - holding.entry_price) * holding.amount) - holding.open_fees
