"""The order state machine and what an order reserves.

    pending --> open --> filled
       |          |----> canceled
       |          '----> expired
       '--> filled, canceled, expired (an order can fill or end before it is acknowledged)

A partial fill keeps the order open (a pending order becomes open). filled, canceled and
expired are final.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradedb.errors import InvalidTransition, ValidationError
from tradedb.models import Order
from tradedb.models.fields import OrderStatus, Side, Submission
from tradedb.models.values import to_decimal
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


@dataclass(frozen=True)
class OrderTerms:
    """The side, type, amount and limit price of an order a caller places (a paper order,
    a live one), checked before anything is stored."""

    side: str
    order_type: str
    amount: Decimal
    price: Decimal | None

    @classmethod
    def parse(
        cls, side: str, order_type: str, amount: object, price: object, type_rule: str
    ) -> OrderTerms:
        """`type_rule` says why a type other than market and limit is refused here."""
        if side not in ("buy", "sell"):
            raise ValidationError("side", side, "must be buy or sell")
        if order_type not in ("market", "limit"):
            raise ValidationError("order_type", order_type, type_rule)
        quantity = positive(amount, "amount")
        limit = None if price is None else positive(price, "price")
        if (order_type == "limit") != (limit is not None):
            rule = "a limit order needs a price" if limit is None else "a market order has none"
            raise ValidationError("price", price, rule)
        return cls(side, order_type, quantity, limit)


def positive(value: object, field: str) -> Decimal:
    """An amount or price given by a caller, which must be above zero."""
    number = to_decimal(value, field)
    if number <= 0:
        raise ValidationError(field, value, "must be greater than zero")
    return number


def check_new_submission(
    submission: str | None, status: str, order_id: str, client_order_id: str | None
) -> None:
    """An order tradedb is about to send is pending under its own client order id (the
    exchange's id comes with the answer); an adopted one is already at the exchange."""
    if submission not in (None, "unknown", "adopted"):
        raise InvalidTransition(
            "submission",
            submission,
            "a new order's submission is unknown (tradedb is sending it), adopted (a sync "
            "found it at the exchange) or None (the bot records its own)",
        )
    if submission == "unknown" and (status != "pending" or order_id != client_order_id):
        raise InvalidTransition(
            "submission",
            submission,
            "an order being submitted is pending, with its client order id as its order_id "
            "until the exchange answers",
        )


def check_submission(order: Order, wanted: Submission) -> None:
    """Only an order whose submission is unknown can be acknowledged or rejected."""
    if order.submission != "unknown":
        raise InvalidTransition(
            "submission",
            order.submission,
            f"order {order.order_id} cannot become {wanted}: only an order whose "
            "submission is unknown is settled by the exchange's answer or a sync",
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
