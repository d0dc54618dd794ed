"""What strategies ask the paper exchange for, and what the exchange keeps and reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from tradedb.errors import ValidationError
from tradedb.models.fields import OrderType, Side


@dataclass(frozen=True)
class OrderRequest:
    """An order a strategy wants placed.

    Give `amount` (base currency), or for a buy `spend`: the quote currency to pay, fee
    included; the exchange then buys as much as that pays for at the fill price (a market
    buy) or at the limit price (any other buy). `price` is the limit price of a limit
    order and the trigger price of a stop_loss or take_profit order.
    """

    symbol: str
    side: Side
    order_type: OrderType = "market"
    amount: Decimal | None = None
    spend: Decimal | None = None
    price: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.amount is None) == (self.spend is None):
            raise ValidationError("amount", self.amount, "give either amount or spend")
        if self.spend is not None and self.side != "buy":
            raise ValidationError("spend", self.spend, "only a buy can be sized by spend")
        if (self.order_type == "market") != (self.price is None):
            rule = "a market order has no price" if self.price else "needs a price"
            raise ValidationError("price", self.price, f"{self.order_type} order: {rule}")


@dataclass(frozen=True)
class CancelRequest:
    """Cancel one of the strategy's live orders."""

    order_id: str


Action = OrderRequest | CancelRequest


@dataclass
class PaperOrder:
    """An order the paper exchange accepted: live until it fills or is canceled."""

    order_id: str
    strategy: str
    symbol: str
    side: Side
    order_type: OrderType
    # None for a market buy sized by spend: its amount is known only at the fill.
    amount: Decimal | None
    price: Decimal | None
    placed_at: int
    # What the order holds of its strategy's funds: quote for a buy, base for a sell.
    reserved: Decimal = Decimal(0)
    spend: Decimal | None = None
    fills: list[Fill] = field(default_factory=list)


@dataclass(frozen=True)
class Fill:
    """One execution of a paper order, in the ledger's terms."""

    order_id: str
    exchange_trade_id: str
    strategy: str
    symbol: str
    side: Side
    amount: Decimal
    price: Decimal
    value: Decimal  # amount x price, half-even at 1e-8
    fee: Decimal  # in the quote currency
    timestamp: int
    profit_loss: Decimal | None = None  # what the fill realised, as the ledger computes it
