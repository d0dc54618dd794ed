"""Conversions between tradedb's records and the mcp-trader server's models.

tradedb keeps amounts as exact Decimals; mcp-trader's models carry floats. Going out,
`float(Decimal)` gives the double nearest each amount: the one lossy step, and the reason
`exact_candle` sends the exact amounts along as fixed-point strings. Coming in, a float is
read as its shortest repr (see `tradedb.compat.floats`): candle data must fit
DECIMAL(20,8) exactly or is refused, while computed results (position sizes, stop levels)
are quantized ROUND_HALF_EVEN at 8 decimals. Refusals are tradedb ValidationErrors that name
the field, the value and the rule.

Which candles survive the trip out and back (`from_candle_data(to_candle_data(c)) == c`)?
Exactly those whose every amount passes `float_round_trips`, which includes every candle
whose amounts have at most 15 significant digits. Any other amount comes back as the
shortest repr of the double that was sent: the same double, with fewer digits than the
original (12345678901.12345678 comes back as 12345678901.123457). The trip never needs more
than 8 decimals, so it refuses nothing, except within 0.00001 of the SQLite cap
(92,233,720,368.54775807), where the nearest double can lie above the cap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, model_validator

from tradedb.compat.floats import exact_decimal, float_round_trips, quantized_decimal, to_float
from tradedb.compat.mcp_trader_models import (
    NON_CCXT_PROVIDERS,
    OPTIONAL_STOP_FIELDS,
    STOP_FIELDS,
    CandleData,
    ChartPattern,
    MarketDataResponse,
    PatternDetectionResult,
    PositionSizeResult,
    RMultiples,
    StopLevelSuggestions,
    TechnicalAnalysisResult,
    TechnicalIndicators,
    TrendStatus,
    check_provider,
)
from tradedb.errors import ValidationError
from tradedb.models.base import Record, as_tradedb_error, validate_record
from tradedb.models.fields import Amount, Percent
from tradedb.models.market import Candle, CandleCreate
from tradedb.models.values import (
    AMOUNT,
    PERCENT,
    VOLUME,
    format_decimal,
    format_fixed,
    market_assets,
    ms_to_datetime,
    to_epoch_ms,
)

__all__ = [
    "NON_CCXT_PROVIDERS",
    "CandleData",
    "ChartPattern",
    "MarketDataResponse",
    "PatternDetectionResult",
    "PositionSize",
    "PositionSizeResult",
    "RMultiples",
    "StopLevelSuggestions",
    "StopLevels",
    "TechnicalAnalysisResult",
    "TechnicalIndicators",
    "TrendStatus",
    "candle_data_with_exact",
    "check_provider",
    "exact_candle",
    "float_round_trips",
    "from_candle_data",
    "market_data_response",
    "position_size_from",
    "position_size_result",
    "stop_level_suggestions",
    "stop_levels_from",
    "to_candle_data",
    "validate_trader",
]

ModelT = TypeVar("ModelT", bound=BaseModel)

# Our candle columns under mcp-trader's field names.
CANDLE_COLUMNS = {
    "open": "open_price",
    "high": "high_price",
    "low": "low_price",
    "close": "close_price",
    "volume": "volume",
}

THEIR_FIELDS = {column: field for field, column in CANDLE_COLUMNS.items()} | {"timestamp": "date"}


def validate_trader(model: type[ModelT], data: ModelT | Mapping[str, Any]) -> ModelT:
    """`data` as one of the mcp-trader models, or one tradedb ValidationError (the first
    problem, naming its field, e.g. 'trend_status.rsi')."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        error = as_tradedb_error(exc, data)
        if exc.errors()[0]["type"] == "extra_forbidden":
            error = ValidationError(error.field, error.value, f"is not a field of {model.__name__}")
        raise error from None


# --- candles -------------------------------------------------------------------------------


def to_candle_data(candle: Candle | CandleCreate) -> CandleData:
    """A stored candle in mcp-trader's shape: the start time as a timezone-aware UTC
    datetime, each amount as the double nearest it (float(Decimal), the lossy step)."""
    return CandleData(
        date=ms_to_datetime(candle.timestamp),
        open=to_float(candle.open_price),
        high=to_float(candle.high_price),
        low=to_float(candle.low_price),
        close=to_float(candle.close_price),
        volume=to_float(candle.volume),
        symbol=candle.symbol,
    )


def from_candle_data(
    data: CandleData | Mapping[str, Any],
    *,
    exchange: str,
    timeframe: str,
    symbol: str | None = None,
) -> CandleCreate:
    """An mcp-trader candle as a record tradedb can store, or a refusal.

    Each float is taken as its shortest repr and must fit its column as it is (at most
    8 decimals, not negative, prices above zero, within the column's range); nothing is
    rounded. `date` must be timezone-aware, a whole millisecond and aligned to `timeframe`.
    `symbol` replaces the candle's own when that is not a ccxt symbol ('BTC/USDT').
    """
    data = validate_trader(CandleData, data)
    amounts = {
        column: exact_decimal(
            getattr(data, field),
            field,
            column=f"market_data.{column}",
            spec=VOLUME if field == "volume" else AMOUNT,
            sign="non-negative" if field == "volume" else "positive",
        )
        for field, column in CANDLE_COLUMNS.items()
    }
    record = {
        "symbol": data.symbol if symbol is None else symbol,
        "timestamp": _candle_time(data.date),
        "timeframe": timeframe,
        "exchange": exchange,
        **amounts,
    }
    try:
        return validate_record(CandleCreate, record)
    except ValidationError as error:
        # Name the field the caller sent ('date', 'high'), not our column it became.
        theirs = THEIR_FIELDS.get(error.field)
        if theirs is None:
            raise
        raise type(error)(theirs, getattr(data, theirs), error.rule) from None


def _candle_time(date: datetime) -> int:
    # to_epoch_ms drops sub-millisecond parts; a candle's start has none, so refuse them
    # rather than move the candle.
    if date.microsecond % 1000:
        raise ValidationError(
            "date", date, "has a sub-millisecond part; candle times are whole milliseconds"
        )
    return to_epoch_ms(date, "date")


def exact_candle(candle: Candle | CandleCreate) -> dict[str, str | int]:
    """The candle's exact values to send beside its CandleData: `timestamp` in epoch ms
    UTC and each amount as a fixed-point string under `<field>_exact` ('0.00000001',
    never '1E-8'). The keys differ from CandleData's, so the two merge into one object."""
    exact: dict[str, str | int] = {"timestamp": candle.timestamp}
    for field, column in CANDLE_COLUMNS.items():
        exact[f"{field}_exact"] = format_fixed(getattr(candle, column))
    return exact


def candle_data_with_exact(candle: Candle | CandleCreate) -> dict[str, Any]:
    """CandleData as JSON-ready values (date as ISO 8601 UTC) merged with `exact_candle`."""
    return {**to_candle_data(candle).model_dump(mode="json"), **exact_candle(candle)}


def market_data_response(
    candles: Sequence[Candle | CandleCreate],
    *,
    exchange: str,
    symbol: str,
    lookback_days: int,
    quote_currency: str | None = None,
) -> MarketDataResponse:
    """Candles of one market as mcp-trader's MarketDataResponse, `exchange` as provider.

    Every candle must belong to `exchange` and `symbol`. `quote_currency` defaults to the
    symbol's quote ('ETH' for 'XRP/ETH').
    """
    for candle in candles:
        if (candle.exchange, candle.symbol) != (exchange, symbol):
            raise ValidationError(
                "candles",
                f"{candle.exchange} {candle.symbol} at {candle.timestamp}",
                f"every candle must be of {exchange} {symbol}",
            )
    if quote_currency is None and "/" in symbol:
        quote_currency = market_assets(symbol)[1]
    return validate_trader(
        MarketDataResponse,
        {
            "symbol": symbol,
            "data": [to_candle_data(candle) for candle in candles],
            "provider": exchange,
            "lookback_days": lookback_days,
            "quote_currency": quote_currency,
        },
    )


# --- position size and stop levels ---------------------------------------------------------


class PositionSize(Record):
    """mcp-trader's PositionSizeResult with exact amounts: each float quantized
    ROUND_HALF_EVEN at 8 decimals (the percentage at 4), as tradedb quantizes derived
    values. `amount` is their `recommended_shares`; `r1`..`r3` their `r_multiples`."""

    symbol: str
    entry_price: Amount
    stop_price: Amount
    amount: Amount
    dollar_risk: Amount
    risk_per_share: Amount
    position_cost: Amount
    account_percent_risked: Percent
    r1: Amount
    r2: Amount
    r3: Amount


_POSITION_AMOUNTS = ("entry_price", "stop_price", "dollar_risk", "risk_per_share", "position_cost")


def position_size_from(result: PositionSizeResult | Mapping[str, Any]) -> PositionSize:
    """mcp-trader's position size with every float quantized ROUND_HALF_EVEN (8 decimals,
    the account percentage 4); NaN, infinity and out-of-range values are refused."""
    result = validate_trader(PositionSizeResult, result)
    amounts: dict[str, Decimal] = {
        name: _derived(getattr(result, name), name) for name in _POSITION_AMOUNTS
    }
    for name in ("r1", "r2", "r3"):
        amounts[name] = _derived(getattr(result.r_multiples, name), f"r_multiples.{name}")
    amounts["account_percent_risked"] = quantized_decimal(
        result.account_percent_risked,
        "account_percent_risked",
        column="a percentage",
        spec=PERCENT,
        sign="non-negative",
    )
    amounts["amount"] = Decimal(result.recommended_shares)
    return validate_record(PositionSize, {"symbol": result.symbol, **amounts})


def position_size_result(size: PositionSize) -> PositionSizeResult:
    """Back to mcp-trader's floats. Their `recommended_shares` is a whole number, so a
    fractional `amount` is refused rather than rounded."""
    if size.amount != size.amount.to_integral_value():
        raise ValidationError(
            "amount",
            size.amount,
            "mcp-trader's recommended_shares is a whole number; this amount is fractional",
        )
    return validate_trader(
        PositionSizeResult,
        {
            "symbol": size.symbol,
            **{name: to_float(getattr(size, name)) for name in _POSITION_AMOUNTS},
            "recommended_shares": int(size.amount),
            "account_percent_risked": to_float(size.account_percent_risked),
            "r_multiples": {name: to_float(getattr(size, name)) for name in ("r1", "r2", "r3")},
        },
    )


class StopLevels(Record):
    """mcp-trader's StopLevelSuggestions with exact prices, quantized ROUND_HALF_EVEN at
    8 decimals. Every stop stays below the current price after quantizing, or is refused."""

    symbol: str
    current_price: Amount
    atr_1x: Amount
    atr_2x: Amount
    atr_3x: Amount
    percent_2: Amount
    percent_5: Amount
    percent_8: Amount
    sma_20: Amount | None = None
    sma_50: Amount | None = None
    sma_200: Amount | None = None
    recent_swing: Amount | None = None

    @model_validator(mode="after")
    def _stops_below_price(self) -> StopLevels:
        for name in STOP_FIELDS:
            level = getattr(self, name)
            if level >= self.current_price:
                raise ValidationError(
                    name,
                    level,
                    f"must be below current_price {format_decimal(self.current_price)} "
                    "at 8 decimals (a long position's stop)",
                )
        return self


def stop_levels_from(suggestions: StopLevelSuggestions | Mapping[str, Any]) -> StopLevels:
    """mcp-trader's stop levels with every float quantized ROUND_HALF_EVEN at 8 decimals."""
    suggestions = validate_trader(StopLevelSuggestions, suggestions)
    prices: dict[str, Decimal | None] = {
        name: _derived(getattr(suggestions, name), name) for name in ("current_price", *STOP_FIELDS)
    }
    for name in OPTIONAL_STOP_FIELDS:
        level = getattr(suggestions, name)
        prices[name] = None if level is None else _derived(level, name)
    return validate_record(StopLevels, {"symbol": suggestions.symbol, **prices})


def stop_level_suggestions(levels: StopLevels) -> StopLevelSuggestions:
    """Back to mcp-trader's floats (each the double nearest the exact price)."""
    prices: dict[str, float | None] = {
        name: to_float(getattr(levels, name)) for name in ("current_price", *STOP_FIELDS)
    }
    for name in OPTIONAL_STOP_FIELDS:
        level = getattr(levels, name)
        prices[name] = None if level is None else to_float(level)
    return validate_trader(StopLevelSuggestions, {"symbol": levels.symbol, **prices})


def _derived(value: float, field: str) -> Decimal:
    return quantized_decimal(value, field, column="an amount", sign="non-negative")
