"""Records of the system tables: bot_config and bot_logs."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator

from tradedb.errors import ValidationError
from tradedb.models.base import CreatedRecord, Record, UpdatedRecord
from tradedb.models.fields import ConfigType, EpochMs, Exchange, LogLevel, Name, Symbol
from tradedb.models.values import to_decimal

_BOOLEAN_TEXT = ("true", "false")


def _json_text(value: object, info: ValidationInfo) -> str:
    """Metadata is stored as JSON text; a dict or list is serialised, text must parse."""
    field = info.field_name or "metadata"
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            raise ValidationError(field, value, "is not valid JSON") from None
        return value
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_no_default)
    except (TypeError, ValueError) as exc:
        raise ValidationError(field, value, f"cannot be written as JSON: {exc}") from None


def _no_default(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON data")


JsonText = Annotated[str, BeforeValidator(_json_text)]
NonEmptyText = Annotated[str, Field(min_length=1)]


class ConfigCreate(Record):
    config_key: Name
    config_value: str
    config_type: ConfigType = "string"
    description: str | None = None
    strategy: Name | None = None
    is_active: bool = True

    @model_validator(mode="after")
    def _value_matches_type(self) -> ConfigCreate:
        value = self.config_value
        if self.config_type == "number":
            to_decimal(value, "config_value")
        elif self.config_type == "boolean" and value not in _BOOLEAN_TEXT:
            raise ValidationError("config_value", value, "a boolean is 'true' or 'false'")
        elif self.config_type == "json":
            try:
                json.loads(value)
            except ValueError:
                raise ValidationError("config_value", value, "is not valid JSON") from None
        return self


class Config(ConfigCreate, UpdatedRecord):
    pass


class LogCreate(Record):
    timestamp: EpochMs
    level: LogLevel
    message: NonEmptyText
    module: str | None = None
    strategy: Name | None = None
    exchange: Exchange | None = None
    symbol: Symbol | None = None
    metadata: JsonText | None = None


class Log(LogCreate, CreatedRecord):
    pass
