"""What the tools return: tradedb's records as JSON, amounts as fixed-point strings.

Each shape lists its record's fields with the JSON types an agent receives, so a tool's
output schema says exactly what comes back. Amounts are strings such as '0.00000001',
never floats and never '1E-8': a record's JSON dump already writes them so
(tradedb.models.fields), and the pattern below refuses anything else on the way out.
Times are epoch milliseconds UTC (`created_at` and `updated_at`: epoch seconds).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from tradedb import Page
from tradedb.compat.mcp_trader_models import CandleData
from tradedb.models import Log
from tradedb.models.base import Record

FixedPoint = Annotated[
    str,
    Field(
        pattern=r"^-?\d+(\.\d+)?$",
        description="An exact decimal as fixed-point text, e.g. '0.00000001'.",
    ),
]


class Shape(BaseModel):
    # A record field missing here is an error, not a silent omission.
    model_config = ConfigDict(extra="forbid")


ShapeT = TypeVar("ShapeT", bound=Shape)


class Listing(BaseModel, Generic[ShapeT]):
    """One page of rows. `truncated`: more rows match; pass `next_after` as `after` to get
    the next page (when the listing pages that way)."""

    items: list[ShapeT]
    truncated: bool
    next_after: str | None = None


def shaped(shape: type[ShapeT], record: Record) -> ShapeT:
    return shape.model_validate(record.model_dump(mode="json"))


def listing(shape: type[ShapeT], page: Page[Any]) -> Listing[ShapeT]:
    return Listing[shape](  # type: ignore[valid-type]
        items=[shaped(shape, item) for item in page.items],
        truncated=page.next_after is not None,
        next_after=page.next_after,
    )


class RowTimes(Shape):
    id: int
    created_at: int


class UpdatedRowTimes(RowTimes):
    updated_at: int


# --- the ledger ------------------------------------------------------------------------------


class OrderShape(UpdatedRowTimes):
    order_id: str
    symbol: str
    side: str
    order_type: str
    amount: FixedPoint
    price: FixedPoint | None
    filled_amount: FixedPoint
    remaining_amount: FixedPoint | None
    status: str
    exchange: str
    strategy: str | None
    timestamp: int
    filled_at: int | None
    canceled_at: int | None
    locked_amount: FixedPoint
    locked_asset: str | None
    client_order_id: str | None = Field(
        default=None, description="The id tradedb sent with an order it submitted."
    )
    submission: str | None = Field(
        default=None,
        description="How the order reached the exchange: unknown (sent, outcome not known "
        "yet), acknowledged, rejected, adopted (placed outside tradedb); null for an order "
        "the bot recorded itself.",
    )


class TradeShape(UpdatedRowTimes):
    symbol: str
    side: str
    amount: FixedPoint
    price: FixedPoint
    total_value: FixedPoint
    fee: FixedPoint | None
    fee_currency: str | None
    timestamp: int
    exchange: str
    order_id: str | None
    strategy: str | None
    status: str
    profit_loss: FixedPoint | None
    exchange_trade_id: str | None
    position_id: int | None


class PositionShape(UpdatedRowTimes):
    symbol: str
    side: str
    amount: FixedPoint
    entry_price: FixedPoint
    current_price: FixedPoint | None
    unrealized_pnl: FixedPoint | None
    realized_pnl: FixedPoint | None
    status: str
    exchange: str
    strategy: str | None
    opened_at: int
    closed_at: int | None
    open_fees: FixedPoint
    cost_basis: FixedPoint = Field(description="What the amount held cost, in the quote currency.")


class WalletShape(UpdatedRowTimes):
    exchange: str
    asset: str
    available_balance: FixedPoint
    locked_balance: FixedPoint
    total_balance: FixedPoint
    usd_value: FixedPoint | None
    last_updated: int


class SyncCursorShape(RowTimes):
    exchange: str
    stream: str = Field(description="trades, orders, deposits or withdrawals.")
    scope: str = Field(description="The market of trades and orders; 'account' otherwise.")
    next_since: int = Field(description="Epoch ms the next sync of this stream starts from.")
    last_id: str | None = Field(description="The exchange's id of the newest item recorded.")
    synced_at: int = Field(description="Epoch ms of the sync that last moved this cursor.")


class SyncStatus(BaseModel):
    cursors: list[SyncCursorShape] = Field(
        description="Where each stream of the account's sync goes on from."
    )
    last_report: dict[str, Any] | None = Field(
        description="The newest sync's report: new fills per market, deposits, withdrawals, "
        "adopted orders (placed outside tradedb), orders the exchange closed, and the "
        "balances that differed from the ledger's (ledger available and locked, exchange "
        "free and used, difference; amounts as exact text); null before the first sync."
    )
    unknown_submissions: list[OrderShape] = Field(
        description="Orders tradedb sent whose outcome is not known yet: the next sync finds "
        "them at the exchange by their client order id, or rejects them."
    )
    adopted_orders: list[OrderShape] = Field(
        description="Orders a sync found at the exchange that were placed outside tradedb."
    )


# --- market data -------------------------------------------------------------------------------


class TickerShape(Shape):
    # A ticker retention archived has left its row: it has no id or row time any more.
    id: int | None = Field(description="The row's id; null for an archived ticker.")
    created_at: int | None = Field(description="Epoch s the row was written; null if archived.")
    symbol: str
    bid_price: FixedPoint | None
    ask_price: FixedPoint | None
    last_price: FixedPoint
    volume_24h: FixedPoint | None
    price_change_24h: FixedPoint | None
    price_change_percent_24h: FixedPoint | None
    timestamp: int
    exchange: str
    # The rest of ccxt's unified ticker; null where the exchange gave none, and in
    # tickers recorded before tradedb kept them.
    open_price: FixedPoint | None = Field(description="The price 24 h before (ccxt's open).")
    high_price: FixedPoint | None = Field(description="The 24 h high.")
    low_price: FixedPoint | None = Field(description="The 24 h low.")
    vwap: FixedPoint | None = Field(description="The 24 h volume-weighted average price.")
    quote_volume_24h: FixedPoint | None = Field(description="24 h volume in the quote.")
    bid_volume: FixedPoint | None = Field(description="The volume at the best bid (base).")
    ask_volume: FixedPoint | None = Field(description="The volume at the best ask (base).")
    previous_close: FixedPoint | None = Field(description="The previous day's close.")


class ExactCandle(CandleData):
    """mcp-trader's CandleData (floats, as theirs are) plus the stored candle exactly:
    its start in epoch ms and each amount as a fixed-point string."""

    timestamp: int
    open_exact: FixedPoint
    high_exact: FixedPoint
    low_exact: FixedPoint
    close_exact: FixedPoint
    volume_exact: FixedPoint


class CandlesResult(BaseModel):
    exchange: str
    symbol: str
    timeframe: str
    candles: list[ExactCandle]
    truncated: bool = Field(
        description="More candles lie in the range: after these when `since` was given, "
        "else before them."
    )


class StoredMarket(Shape):
    exchange: str
    symbol: str
    timeframe: str
    first: int = Field(description="Start of the first stored candle, epoch ms UTC.")
    last: int = Field(description="Start of the last stored candle, epoch ms UTC.")
    candles: int
    missing: int = Field(description="Candles missing between the first and the last.")
    gaps: int = Field(description="Runs of missing candles.")


# --- analytics ---------------------------------------------------------------------------------


class PerformanceShape(RowTimes):
    date: str
    total_portfolio_value: FixedPoint
    daily_pnl: FixedPoint | None
    daily_pnl_percent: FixedPoint | None
    total_trades: int | None
    winning_trades: int | None
    losing_trades: int | None
    win_rate: FixedPoint | None
    sharpe_ratio: FixedPoint | None
    max_drawdown: FixedPoint | None
    strategy: str | None = Field(description="None: every strategy (a portfolio-wide row).")
    exchange: str | None = Field(description="None: every exchange.")


class SnapshotRowShape(RowTimes):
    timestamp: int
    asset: str
    amount: FixedPoint
    usd_value: FixedPoint
    price_per_unit: FixedPoint
    exchange: str


class Portfolio(BaseModel):
    timestamp: int = Field(
        description="The newest of the exchanges' snapshot times, epoch ms UTC; each row "
        "has its own exchange's."
    )
    total_usd: FixedPoint
    rows: list[SnapshotRowShape]
    truncated: bool


class MonthShape(Shape):
    month: str = Field(description="YYYY-MM (UTC).")
    percent: FixedPoint | None = Field(description="The month's compounded daily returns.")


class PnlRow(Shape):
    """One (strategy, exchange) scope over its period, as `tradedb report --json` gives it;
    the `tradedb://metrics` resource defines every figure."""

    strategy: str | None
    exchange: str | None
    days: int
    first_date: str | None = Field(description="The row's first day (UTC).")
    last_date: str | None = Field(description="The row's last day: its figures cover no other.")
    daily_returns: int = Field(description="Daily returns the curve figures rest on.")
    final_equity: FixedPoint | None
    total_pnl: FixedPoint | None = Field(description="USD: the sum of the daily P&L.")
    realized_pnl: dict[str, FixedPoint] = Field(description="By quote currency.")
    fills: int = Field(description="Fills in the period, opening and closing.")
    round_trips: int = Field(description="Positions closed back to flat in the period.")
    wins: int = Field(description="Round trips with P&L above zero.")
    losses: int = Field(description="Round trips with P&L below zero.")
    note: str | None
    total_return_percent: FixedPoint | None
    cagr_percent: FixedPoint | None
    volatility_percent: FixedPoint | None
    sharpe_ratio: FixedPoint | None
    sortino_ratio: FixedPoint | None
    calmar_ratio: FixedPoint | None
    max_drawdown_percent: FixedPoint | None
    longest_drawdown_days: int | None
    best_day_percent: FixedPoint | None
    worst_day_percent: FixedPoint | None
    win_rate_percent: FixedPoint | None
    profit_factor: FixedPoint | None
    expectancy: FixedPoint | None = Field(description="Per round trip, round_trip_currency.")
    average_win: FixedPoint | None
    average_loss: FixedPoint | None
    exposure_percent: FixedPoint | None
    round_trip_currency: str | None = Field(
        description="The quote currency of expectancy and the averages; null if several."
    )
    average_round_trip_ms: int | None
    fees: dict[str, FixedPoint] = Field(description="By fee currency.")
    monthly_returns: list[MonthShape]
    undefined: dict[str, str] = Field(
        description="Why each figure given as null is unknown (e.g. too few days)."
    )


class PnlSummary(BaseModel):
    strategy: list[str] | None = Field(description="The strategies asked for; null: every one.")
    exchange: str | None
    first_date: str | None = Field(description="The first UTC day in the period; null: open.")
    last_date: str | None = Field(description="The last UTC day in the period; null: open.")
    rows: list[PnlRow]
    truncated: bool


# --- what the write tools return --------------------------------------------------------------


class ConfigShape(Shape):
    key: str
    value: Any = Field(description="Typed: a number as fixed-point text, JSON as itself.")
    type: str
    text: str = Field(description="The exact stored text.")
    description: str | None
    strategy: str | None
    is_active: bool
    created_at: int
    updated_at: int


class PriceUsed(BaseModel):
    symbol: str
    exchange: str
    price: FixedPoint
    timestamp: int = Field(description="When the price was known, epoch ms UTC.")
    source: str = Field(description="'ticker', or the candle timeframe it closed ('candle 5m').")


class PaperOrderShape(BaseModel):
    order: OrderShape
    trade: TradeShape | None = Field(description="The fill, when the order filled at once.")
    position: PositionShape | None
    price_used: PriceUsed


# --- logs ------------------------------------------------------------------------------------


class LogShape(RowTimes):
    timestamp: int
    level: str
    message: str
    module: str | None
    strategy: str | None
    exchange: str | None
    symbol: str | None
    metadata: Any = Field(description="The record's JSON metadata, parsed; null if none.")

    @classmethod
    def of(cls, row: Log) -> LogShape:
        values = row.model_dump(mode="json")
        values["metadata"] = None if row.metadata is None else json.loads(row.metadata)
        return cls.model_validate(values)


class LogsResult(BaseModel):
    items: list[LogShape] = Field(description="Newest first.")
    truncated: bool
    next_after: str | None = Field(description="Pass as `after` to continue with older records.")
