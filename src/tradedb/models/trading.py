"""Records of the trading tables: trades, crypto_orders and positions."""

from __future__ import annotations

from decimal import Decimal

from pydantic import model_validator

from tradedb.errors import ValidationError
from tradedb.models.base import Record, UpdatedRecord
from tradedb.models.fields import (
    Amount,
    Asset,
    EpochMs,
    Exchange,
    Name,
    OrderStatus,
    OrderType,
    PositionSide,
    PositionStatus,
    PositiveAmount,
    Side,
    SignedAmount,
    Submission,
    Symbol,
    TradeStatus,
)


class TradeCreate(Record):
    symbol: Symbol
    side: Side
    amount: PositiveAmount
    price: PositiveAmount
    total_value: Amount
    fee: Amount | None = Decimal(0)
    fee_currency: Asset | None = None
    timestamp: EpochMs
    exchange: Exchange
    order_id: Name | None = None
    strategy: Name | None = None
    status: TradeStatus = "filled"
    profit_loss: SignedAmount | None = None
    # Extra column: the exchange's own id of the fill, so a re-delivered fill is recognised.
    exchange_trade_id: Name | None = None
    # Extra column: the position this fill opened, grew or realised P&L into.
    position_id: int | None = None


class Trade(TradeCreate, UpdatedRecord):
    pass


class OrderCreate(Record):
    order_id: Name
    symbol: Symbol
    side: Side
    order_type: OrderType
    amount: PositiveAmount
    price: PositiveAmount | None = None
    filled_amount: Amount = Decimal(0)
    remaining_amount: Amount | None = None
    status: OrderStatus = "pending"
    exchange: Exchange
    strategy: Name | None = None
    timestamp: EpochMs
    filled_at: EpochMs | None = None
    canceled_at: EpochMs | None = None
    # Extra columns: what the order still holds locked, and in which asset's wallet.
    locked_amount: Amount = Decimal(0)
    locked_asset: Asset | None = None
    # Extra columns: the client order id tradedb sent, and how the order reached the
    # exchange (None: the bot recorded it itself).
    client_order_id: Name | None = None
    submission: Submission | None = None

    @model_validator(mode="after")
    def _consistent(self) -> OrderCreate:
        if self.order_type != "market" and self.price is None:
            raise ValidationError("price", None, f"a {self.order_type} order needs a price")
        if self.filled_amount > self.amount:
            raise ValidationError(
                "filled_amount", self.filled_amount, f"exceeds the order amount {self.amount}"
            )
        if (
            self.remaining_amount is not None
            and self.remaining_amount != self.amount - self.filled_amount
        ):
            raise ValidationError(
                "remaining_amount",
                self.remaining_amount,
                "must equal amount - filled_amount",
            )
        return self


class Order(OrderCreate, UpdatedRecord):
    pass


class PositionCreate(Record):
    symbol: Symbol
    side: PositionSide
    amount: Amount
    entry_price: Amount
    current_price: Amount | None = None
    unrealized_pnl: SignedAmount | None = Decimal(0)
    realized_pnl: SignedAmount | None = Decimal(0)
    status: PositionStatus = "open"
    exchange: Exchange
    strategy: Name | None = None
    opened_at: EpochMs
    closed_at: EpochMs | None = None
    # Extra column: quote-currency fees paid to open the part still held.
    open_fees: Amount = Decimal(0)
    # Extra column: the quote value of the amount still held (its cost basis, which P&L
    # is measured against; services.ledger.positions).
    cost_basis: Amount = Decimal(0)

    @model_validator(mode="after")
    def _closed_after_opened(self) -> PositionCreate:
        if self.closed_at is not None and self.closed_at < self.opened_at:
            raise ValidationError("closed_at", self.closed_at, "is before opened_at")
        return self


class Position(PositionCreate, UpdatedRecord):
    pass
