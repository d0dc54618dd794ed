"""Annotated field types for the records: each one applies a rule from `values`."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Annotated, Literal

from pydantic import BeforeValidator, PlainSerializer, ValidationInfo

from tradedb.errors import ValidationError
from tradedb.models.values import (
    AMOUNT,
    PERCENT,
    VOLUME,
    DecimalSpec,
    check_asset,
    check_exchange,
    check_name,
    check_symbol,
    format_fixed,
    to_decimal,
    to_epoch_ms,
)

Side = Literal["buy", "sell"]
TradeStatus = Literal["filled", "partial", "canceled"]
OrderType = Literal["market", "limit", "stop_loss", "take_profit"]
OrderStatus = Literal["pending", "open", "filled", "canceled", "expired"]
PositionSide = Literal["long", "short"]
PositionStatus = Literal["open", "closed"]
# ccxt's standard timeframes, a superset of the specification's six (docs/schema.md).
TimeframeName = Literal[
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"
]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
ConfigType = Literal["string", "number", "boolean", "json"]
BalanceType = Literal["available", "locked", "total"]
MovementKind = Literal["opening", "deposit", "withdrawal", "lock", "unlock", "trade", "fee", "sync"]
SyncStream = Literal["trades", "orders", "deposits", "withdrawals"]
Submission = Literal["unknown", "acknowledged", "rejected", "adopted"]


def _field_name(info: ValidationInfo) -> str:
    return info.field_name or "value"


def _decimal(spec: DecimalSpec, *, signed: bool, positive: bool = False) -> Callable[..., Decimal]:
    def parse(value: object, info: ValidationInfo) -> Decimal:
        field = _field_name(info)
        number = to_decimal(value, field, spec)
        if positive and number <= 0:
            raise ValidationError(field, value, "must be greater than zero")
        if not signed and number < 0:
            raise ValidationError(field, value, "must not be negative")
        return number

    return parse


def _rule(check: Callable[[str, str], str]) -> Callable[[object, ValidationInfo], object]:
    def apply(value: object, info: ValidationInfo) -> object:
        return check(value, _field_name(info))  # type: ignore[arg-type]

    return apply


def _epoch_ms(value: object, info: ValidationInfo) -> int:
    return to_epoch_ms(value, _field_name(info))


def _as_fixed_point(spec: DecimalSpec) -> PlainSerializer:
    """JSON writes the amount at its column's scale: '0.00000000', never '0' or '1E-8'."""
    return PlainSerializer(partial(format_fixed, spec=spec), return_type=str, when_used="json")


Amount = Annotated[
    Decimal, BeforeValidator(_decimal(AMOUNT, signed=False)), _as_fixed_point(AMOUNT)
]
PositiveAmount = Annotated[
    Decimal, BeforeValidator(_decimal(AMOUNT, signed=False, positive=True)), _as_fixed_point(AMOUNT)
]
SignedAmount = Annotated[
    Decimal, BeforeValidator(_decimal(AMOUNT, signed=True)), _as_fixed_point(AMOUNT)
]
Volume = Annotated[
    Decimal, BeforeValidator(_decimal(VOLUME, signed=False)), _as_fixed_point(VOLUME)
]
Percent = Annotated[
    Decimal, BeforeValidator(_decimal(PERCENT, signed=False)), _as_fixed_point(PERCENT)
]
SignedPercent = Annotated[
    Decimal, BeforeValidator(_decimal(PERCENT, signed=True)), _as_fixed_point(PERCENT)
]
EpochMs = Annotated[int, BeforeValidator(_epoch_ms)]
Symbol = Annotated[str, BeforeValidator(_rule(check_symbol))]
Exchange = Annotated[str, BeforeValidator(_rule(check_exchange))]
Asset = Annotated[str, BeforeValidator(_rule(check_asset))]
Name = Annotated[str, BeforeValidator(_rule(check_name))]
