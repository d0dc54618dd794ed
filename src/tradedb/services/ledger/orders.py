"""The order state machine and what an order reserves.

    pending --> open --> filled
       |          |----> canceled
       |          '----> expired
       '--> filled, canceled, expired (an order can fill or end before it is acknowledged)

A partial fill keeps the order open (a pending order becomes open). filled, canceled and
expired are final.
"""

from __future__ import annotations

from decimal import Decimal

from tradedb.errors import InvalidTransition
from tradedb.models.fields import OrderStatus, Side
from tradedb.services.ledger.arithmetic import exact, quantize_up

LIVE: tuple[OrderStatus, ...] = ("pending", "open")
NEXT: dict[OrderStatus, tuple[OrderStatus, ...]] = {
    "pending": ("open", "filled", "canceled", "expired"),
    "open": ("filled", "canceled", "expired"),
    "filled": (),
    "canceled": (),
    "expired": (),
}

# Fee reserve locked with a buy, as a fraction of its value: the taker fee of the
# exchange's lowest tier, so that a limit buy can always pay its own fee.
FEE_RESERVE_RATES: dict[str, Decimal] = {"kraken": Decimal("0.0026"), "binance": Decimal("0.001")}
DEFAULT_FEE_RESERVE_RATE = Decimal("0.0026")


def check_transition(order_id: str, current: OrderStatus, wanted: OrderStatus) -> None:
    if wanted not in NEXT[current]:
        allowed = ", ".join(NEXT[current]) or "nothing (it is final)"
        raise InvalidTransition(
            "status",
            current,
            f"order {order_id} is {current} and cannot become {wanted}; "
            f"a {current} order can become {allowed}",
        )


def fee_reserve_rate(exchange: str) -> Decimal:
    return FEE_RESERVE_RATES.get(exchange, DEFAULT_FEE_RESERVE_RATE)


@exact
def reservation(side: Side, amount: Decimal, price: Decimal | None, fee_rate: Decimal) -> Decimal:
    """What placing the order locks: the base amount for a sell; for a buy with a price,
    its value plus the fee reserve, rounded up. A market buy has no price to reserve by,
    so it locks nothing and its fills are paid from available funds."""
    if side == "sell":
        return amount
    if price is None:
        return Decimal(0)
    return quantize_up(amount * price * (1 + fee_rate))
