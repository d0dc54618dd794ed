"""Records of the market data tables: market_data (candles) and tickers."""

from __future__ import annotations

from pydantic import model_validator

from tradedb.errors import ValidationError
from tradedb.models.base import CreatedRecord, Record
from tradedb.models.fields import (
    Amount,
    EpochMs,
    Exchange,
    PositiveAmount,
    SignedAmount,
    SignedPercent,
    Symbol,
    TimeframeName,
    Volume,
)
from tradedb.models.values import check_aligned, check_not_future


class CandleCreate(Record):
    symbol: Symbol
    timestamp: EpochMs
    open_price: PositiveAmount
    high_price: PositiveAmount
    low_price: PositiveAmount
    close_price: PositiveAmount
    volume: Volume
    timeframe: TimeframeName
    exchange: Exchange

    @model_validator(mode="after")
    def _consistent(self) -> CandleCreate:
        check_aligned(self.timestamp, self.timeframe)
        check_not_future(self.timestamp)
        body_high = max(self.open_price, self.close_price)
        body_low = min(self.open_price, self.close_price)
        if self.high_price < body_high:
            raise ValidationError(
                "high_price", self.high_price, f"is below max(open, close) = {body_high}"
            )
        if self.low_price > body_low:
            raise ValidationError(
                "low_price", self.low_price, f"is above min(open, close) = {body_low}"
            )
        return self


class Candle(CandleCreate, CreatedRecord):
    pass


class TickerCreate(Record):
    symbol: Symbol
    bid_price: Amount | None = None
    ask_price: Amount | None = None
    last_price: Amount
    volume_24h: Volume | None = None
    price_change_24h: SignedAmount | None = None
    price_change_percent_24h: SignedPercent | None = None
    timestamp: EpochMs
    exchange: Exchange
    # Extra columns: the rest of ccxt's unified ticker (docs/schema.md).
    open_price: Amount | None = None
    high_price: Amount | None = None
    low_price: Amount | None = None
    vwap: Amount | None = None
    quote_volume_24h: Volume | None = None
    bid_volume: Volume | None = None
    ask_volume: Volume | None = None
    previous_close: Amount | None = None


class Ticker(TickerCreate, CreatedRecord):
    pass
