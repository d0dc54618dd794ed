"""The one exception hierarchy of tradedb.

Every error a user can cause carries the field, the offending value and the rule it broke,
so that the CLI can print a single line and a program can react to the parts.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from decimal import Decimal

# A message that tells its caller which argument would make the call succeed names that
# argument as the library spells it, in backquotes: `force=True`, `quote_usd=PRICE`. A
# front end respells each one as its own option (`respell_arguments`): the CLI as
# `--force` or `--quote-usd PRICE`, so that nobody is told of an option they do not have.
ARGUMENT_IN_MESSAGE = re.compile(r"`([a-z][a-z0-9_]*)=([^`]*)`")


def respell_arguments(message: str, spell: Callable[[str, str], str | None]) -> str:
    """`message` with each `name=value` the library named respelt by `spell(name, value)`;
    a name for which `spell` returns None stays as the library wrote it."""

    def respelt(match: re.Match[str]) -> str:
        spelt = spell(match[1], match[2])
        return match[0] if spelt is None else f"`{spelt}`"

    return ARGUMENT_IN_MESSAGE.sub(respelt, message)


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
    reference price (`reference_prices`) would make the valuation possible.
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


class DatabaseDamaged(TradeDBError):
    """The database file is damaged: SQLite found a page it cannot read ("database disk
    image is malformed", or a file with SQLite's header that "is not a database").
    Nothing more is written to it; it has to be restored from a backup."""

    def __init__(self, name: str, detail: str) -> None:
        self.name = name
        self.detail = detail
        super().__init__(
            f"{name} is damaged ({detail}); stop what uses it and restore it from a backup: "
            "`tradedb backup list` shows the backups, `tradedb restore` brings one back"
        )


class ExchangeUnavailable(TradeDBError):
    """An exchange could not be reached, or refused a request, even after retries; nothing
    was written. Running the same operation again later is safe."""


class BackupError(TradeDBError):
    """A backup cannot be taken, found, verified or restored; the message says why."""


class TradeDBWarning(UserWarning):
    """Something a user should know that did not stop the operation; the CLI shows it as
    one line, and a program can filter the category (`warnings.filterwarnings`)."""


class OwnerOnlyWarning(TradeDBWarning):
    """A file or folder tradedb wrote could not be restricted to the current user (on
    Windows: pywin32 missing, a drive without access lists such as FAT32 or exFAT, or a
    share that refused); it was written all the same. Shown once per process; a program
    that accepts this can filter the category (`warnings.filterwarnings`)."""


class NetworkShareWarning(TradeDBWarning):
    """The database is on a network share, where SQLite's file locks are unreliable: it
    opens, but writers on two computers can corrupt it. Shown once per process."""


_said: set[str] = set()


def warn_once(key: str, warning: TradeDBWarning, *, stacklevel: int = 2) -> None:
    """Show `warning` the first time `key` comes up in this process, so that a CLI user
    sees one line, not one per file or per open. `key` is marked only once the warning was
    shown: a filter that turns it into an error raises each time."""
    if key in _said:
        return
    warnings.warn(warning, stacklevel=stacklevel + 1)
    _said.add(key)


def _show(value: object) -> str:
    # Amounts read best as the fixed-point numbers users typed, not Decimal('1E-8').
    text = format(value, "f") if isinstance(value, Decimal) and value.is_finite() else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
