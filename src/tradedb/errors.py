"""The one exception hierarchy of tradedb.

Every error a user can cause carries the field, the offending value and the rule it broke,
so that the CLI can print a single line and a program can react to the parts.
"""

from __future__ import annotations

from decimal import Decimal


class TradeDBError(Exception):
    """Base of every error tradedb raises on purpose."""


class ValidationError(TradeDBError, ValueError):
    """Input broke a rule; nothing was written."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field}={_show(value)}: {rule}")


class AmountOutOfRange(ValidationError):
    """An amount is beyond what the column can hold exactly."""


class DuplicateRecord(ValidationError):
    """A UNIQUE key already holds a record."""


class UnknownName(ValidationError):
    """A table or column name that the schema does not have."""


class UnknownRecord(ValidationError):
    """No record has the given key (an order id the ledger has never seen, for example)."""


class InsufficientFunds(ValidationError):
    """An operation would make an available balance negative."""


class InvalidTransition(ValidationError):
    """An order or position was asked to move to a state its state machine forbids."""


class Unvaluable(ValidationError):
    """No stored quote, route or reference price gives an asset a USD price at a time.

    `tried` lists what was looked for, so that the user can see which market data or
    reference price (`--reference-price ASSET=PRICE`) would make the valuation possible.
    """

    def __init__(self, asset: str, at_ms: int, tried: list[str], rule: str) -> None:
        self.asset = asset
        self.at_ms = at_ms
        self.tried = tried
        super().__init__("asset", asset, rule)


class DatabaseLocationError(TradeDBError):
    """The database path cannot be used (missing folder, not writable, unsupported URL)."""


class SchemaVersionError(TradeDBError):
    """The database is not at the schema version this tradedb expects."""


class BackupError(TradeDBError):
    """A backup cannot be taken, found, verified or restored; the message says why."""


def _show(value: object) -> str:
    # Amounts read best as the fixed-point numbers users typed, not Decimal('1E-8').
    text = format(value, "f") if isinstance(value, Decimal) and value.is_finite() else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
