"""The record base class and the boundary that turns Pydantic errors into tradedb errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict

from tradedb.errors import ValidationError


class Record(BaseModel):
    """An immutable, validated row shape. Unknown fields are refused, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False)


class CreatedRecord(Record):
    """Read shape of a row: what the database assigned on insert."""

    id: int
    created_at: int


class UpdatedRecord(CreatedRecord):
    updated_at: int


RecordT = TypeVar("RecordT", bound=Record)


def validate_record(model: type[RecordT], data: RecordT | Mapping[str, Any]) -> RecordT:
    """Validate `data` as `model`, raising one tradedb ValidationError for the first problem."""
    if isinstance(data, model):
        return data
    if isinstance(data, Record):
        data = data.model_dump()
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise as_tradedb_error(exc, data) from None


def as_tradedb_error(exc: pydantic.ValidationError, data: object) -> ValidationError:
    first = exc.errors(include_url=False)[0]
    original = (first.get("ctx") or {}).get("error")
    if isinstance(original, ValidationError):
        return original
    field = ".".join(str(part) for part in first["loc"]) or "record"
    value = first.get("input", data)
    rule = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        rule = "is not a column of this table"
    elif first["type"] == "missing":
        rule = "is required"
        value = None
    return ValidationError(field, value, rule)
