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
- P&L is measured against the position's **cost basis**: the quote value its opening
  fills moved (each fill's quantized value), less the pro-rata share a close releases. A
  close realises its own value minus the cost it releases, and an open holding is worth
  its amount at the mark minus the cost still held. Every quote unit the wallet paid or
  received is therefore in exactly one of realised P&L, unrealised P&L, fees and cost,
  so a strategy's equity (cash plus coins at the mark) is exactly its capital plus its
  realised and unrealised P&L: no rounding of the average entry price gets in between.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from tradedb.errors import ValidationError
from tradedb.models.values import EXACT, market_assets
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
    # The quote value of the amount held (see the module). None: not tracked (a holding
    # built from an average price alone), taken as amount x entry_price.
    cost: Decimal | None = None

    @property
    def basis(self) -> Decimal:
        return quantize(self.amount * self.entry_price) if self.cost is None else self.cost


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


@dataclass(frozen=True)
class FillTerms:
    """What a fill does to its position, in the position's terms."""

    direction: int  # +1 buy, -1 sell
    moved: Decimal  # base the position gains or gives up
    value: Decimal  # the quote value of `moved`
    fee: Decimal  # the fee in quote terms, counted against P&L (0 for a third currency)
    third_currency_fee: bool  # the fee is in neither the base nor the quote


def fill_terms(
    symbol: str, side: str, amount: Decimal, price: Decimal, *, fee: Decimal, currency: str | None
) -> FillTerms:
    """A quote fee counts as it is. A base fee is valued at the fill's price, and it also
    changes how much base the position gains or gives up (a buy receives amount - fee, a
    sell gives up amount + fee), so that the position tracks what the wallet holds; the
    quote value of what moved is then the fill's value less (buy) or plus (sell) that fee.
    A fee in a third currency (BNB, say) is debited from its wallet but not counted in
    P&L: there is no price for it at the fill (docs/ledger.md)."""
    base, quote = market_assets(symbol)
    direction = 1 if side == "buy" else -1
    value = quantize(amount * price)
    currency = currency or quote
    if not fee or currency == quote:
        return FillTerms(direction, amount, value, fee, False)
    if currency == base:
        moved = amount - fee if direction > 0 else amount + fee
        if moved <= 0:
            raise ValidationError(
                "fee", fee, f"a fee in {base} must be less than the {amount} {base} bought"
            )
        fee_value = quantize(fee * price)
        return FillTerms(direction, moved, value - direction * fee_value, fee_value, False)
    return FillTerms(direction, amount, value, ZERO, True)


@exact
def apply_fill(
    holding: Holding | None,
    direction: int,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal,
    *,
    value: Decimal | None = None,
) -> PositionChange:
    """Apply a fill moving `quantity` of the base asset (direction +1 buy, -1 sell).

    `fee` is the fill's fee in quote terms (zero when it was paid in a third currency);
    `value` the quote value of `quantity` (by default quantity x price, quantized).
    """
    if value is None:
        value = quantize(quantity * price)
    if holding is None:
        return PositionChange(None, Holding(side_of(direction), quantity, price, fee, cost=value))
    if holding.side == side_of(direction):
        amount = holding.amount + quantity
        entry = quantized_ratio(
            EXACT.multiply(holding.amount, holding.entry_price) + EXACT.multiply(quantity, price),
            amount,
        )
        grown = replace(
            holding,
            amount=amount,
            entry_price=entry,
            open_fees=holding.open_fees + fee,
            cost=holding.basis + value,
        )
        return PositionChange(grown, None)
    closed = min(quantity, holding.amount)
    closing_fee = share(fee, closed, quantity)
    closing_value = share(value, closed, quantity)
    released_cost = share(holding.basis, closed, holding.amount)
    released_open_fees = share(holding.open_fees, closed, holding.amount)
    sign = 1 if holding.side == "long" else -1
    gross = sign * (closing_value - released_cost)
    result = gross - closing_fee - released_open_fees
    existing = replace(
        holding,
        amount=holding.amount - closed,
        open_fees=holding.open_fees - released_open_fees,
        realized_pnl=holding.realized_pnl + result,
        cost=holding.basis - released_cost,
    )
    opened = None
    if quantity > closed:
        opened = Holding(
            side_of(direction),
            quantity - closed,
            price,
            fee - closing_fee,
            cost=value - closing_value,
        )
    return PositionChange(existing, opened, closed, result)


@exact
def unrealized_pnl(holding: Holding, mark: Decimal) -> Decimal:
    """What closing the holding at `mark` would add to realized P&L, before closing fees:
    its value at the mark less its cost basis, less the fees paid to open it."""
    sign = 1 if holding.side == "long" else -1
    return sign * (quantize(holding.amount * mark) - holding.basis) - holding.open_fees
