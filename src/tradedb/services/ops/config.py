"""bot_config: typed settings of the bot, per strategy where they belong to one.

A value is stored as text and read back as its `config_type` says:

- string: the text itself;
- number: an exact Decimal (it must fit DECIMAL(20,8), like every amount in tradedb);
  stored as fixed-point text ('0.00000001', never '1E-8');
- boolean: True or False; 'true', 'false', 'yes', 'no', 'on', 'off', '1' and '0' are
  accepted, 'true' or 'false' is stored;
- json: any JSON text, read back with exact Decimal numbers.

Keys: a strategy's own settings live under `strategy.<name>.<key>`, and the row's
`strategy` column names the strategy, so listing by strategy finds them (and the
`capital.<strategy>.<exchange>` rows the paper sessions write). Other keys already in
use: `capital.<strategy>.<exchange>` (USD) and `demo.database`. Reference prices are not
settings: they have a validity period and their own table (services.analytics.references),
and a `reference_price.<ASSET>` key is refused with a pointer there.

An inactive entry (`is_active` false) stays stored but is not in force: `value()` and the
other readers of bot_config pass it over.

Secrets are refused. The database is copied by backups, replicas and cloud uploads, so an
API key, secret, password or private key stored here would travel with every copy. A key
whose name says it holds one, or a value that looks like one (services.ops.secrets says
what does), is rejected with a pointer to environment variables, at any depth of a JSON
value, and the refusal never shows the value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, get_args

from tradedb.errors import UnknownRecord, ValidationError
from tradedb.models import Config
from tradedb.models.fields import ConfigType
from tradedb.models.values import format_decimal, to_decimal
from tradedb.services.ops import secrets
from tradedb.store import Store
from tradedb.store.config import ConfigRecords

CONFIG_TYPES: tuple[str, ...] = get_args(ConfigType)
STRATEGY_PREFIX = "strategy."
CAPITAL_PREFIX = "capital."
# Where reference prices lived before schema 0008 moved them into reference_prices.
OLD_REFERENCE_PREFIX = "reference_price."
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})

SECRET_ADVICE = (
    "secrets do not belong in bot_config, which every backup, replica and cloud copy "
    "carries: keep API keys, secrets, passwords and private keys in environment variables "
    "(e.g. KRAKEN_API_KEY, KRAKEN_SECRET) and read them with os.environ"
)


@dataclass(frozen=True)
class ConfigEntry:
    """One bot_config row with its value typed."""

    key: str
    value: Any
    config_type: str
    text: str
    description: str | None
    strategy: str | None
    is_active: bool
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, row: Config) -> ConfigEntry:
        return cls(
            key=row.config_key,
            value=typed_value(row.config_value, row.config_type),
            config_type=row.config_type,
            text=row.config_value,
            description=row.description,
            strategy=row.strategy,
            is_active=bool(row.is_active),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def as_json(self) -> dict[str, Any]:
        """For programs: numbers as fixed-point text, booleans as JSON booleans, json as
        the JSON itself; `text` is always the exact stored text."""
        value: Any = self.value
        if self.config_type == "number":
            value = self.text
        elif self.config_type == "json":
            value = json.loads(self.text)
        return {
            "key": self.key,
            "value": value,
            "type": self.config_type,
            "text": self.text,
            "description": self.description,
            "strategy": self.strategy,
            "is_active": self.is_active,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def strategy_key(strategy: str, key: str) -> str:
    """The key of a strategy's own setting: strategy.<name>.<key>."""
    return f"{STRATEGY_PREFIX}{strategy}.{key}"


def strategy_of(key: str) -> str | None:
    """The strategy a key belongs to by its scheme: strategy.<name>.<key> and
    capital.<strategy>.<exchange>; None for other keys."""
    if key.startswith(STRATEGY_PREFIX) and key.count(".") >= 2:
        return key.split(".")[1]
    if key.startswith(CAPITAL_PREFIX):
        # As the metrics read it: strategy names may hold dots, exchange ids never do.
        strategy, dot, _ = key.removeprefix(CAPITAL_PREFIX).rpartition(".")
        return strategy if dot and strategy else None
    return None


def typed_value(text: str, config_type: str) -> Any:
    if config_type == "number":
        return Decimal(text)
    if config_type == "boolean":
        return text == "true"
    if config_type == "json":
        return json.loads(text, parse_float=Decimal)
    return text


# --- the rules ---------------------------------------------------------------------------


def check_not_secret_key(key: str) -> None:
    if secrets.names_a_secret(key):
        raise ValidationError(
            "config_key", key, f"names an API key, secret, password or private key; {SECRET_ADVICE}"
        )


def check_not_secret_text(text: str, field: str = "config_value") -> None:
    found = secrets.credential_in(text)
    if found is not None:
        raise ValidationError(field, Withheld(text), f"looks like {found}; {SECRET_ADVICE}")


def check_not_secret_json(value: Any, field: str = "config_value") -> None:
    """Refuse a JSON value that holds a secret at any depth: under a key that names one, or
    as a string that looks like one."""
    for path, key, text in _json_parts(value, ""):
        if key is not None and secrets.names_a_secret(key):
            raise ValidationError(
                field,
                Withheld(text),
                f"holds the key {path!r}, which names an API key, secret, password or "
                f"private key; {SECRET_ADVICE}",
            )
        found = None if text is None else secrets.credential_in(text)
        if found is not None:
            raise ValidationError(
                field, Withheld(text), f"holds at {path!r} what looks like {found}; {SECRET_ADVICE}"
            )


class Withheld:
    """A refused value as an error shows it: its length, never the text itself (not even
    its first characters), which would otherwise reach terminals, logs and agents."""

    def __init__(self, text: str | None) -> None:
        self.length = None if text is None else len(text)

    def __repr__(self) -> str:
        return "<not shown>" if self.length is None else f"<{self.length} characters, not shown>"


def _json_parts(value: Any, path: str) -> Iterator[tuple[str, str | None, str | None]]:
    """Each key and string of a JSON value, with where it is ('exchange.key', 'pairs[2]'):
    (path, the key or None, the string or None). Iterative: a value nested thousands of
    levels deep must not exhaust Python's recursion limit."""
    pending: list[tuple[str, Any]] = [(path, value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, str):
            yield where or "(the value)", None, item
        elif isinstance(item, dict):
            for key, inner in item.items():
                inside = f"{where}.{key}" if where else str(key)
                yield inside, str(key), inner if isinstance(inner, str) else None
                pending.append((inside, inner))
        elif isinstance(item, list):
            pending.extend((f"{where}[{index}]", inner) for index, inner in enumerate(item))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def stored_text(value: object, config_type: str) -> str:
    """The text `value` is stored as under `config_type`, or a ValidationError."""
    if config_type not in CONFIG_TYPES:
        raise ValidationError("config_type", config_type, f"must be one of {CONFIG_TYPES}")
    if config_type == "number":
        return format_decimal(to_decimal(value, "config_value"))
    if config_type == "boolean":
        if isinstance(value, bool):
            return "true" if value else "false"
        word = value.strip().lower() if isinstance(value, str) else None
        if word in _TRUE:
            return "true"
        if word in _FALSE:
            return "false"
        raise ValidationError(
            "config_value", value, "a boolean is true or false (yes/no, on/off, 1/0)"
        )
    if config_type == "json":
        return _json_text(value)
    if not isinstance(value, str):
        raise ValidationError(
            "config_value", value, f"a string setting takes text, not {type(value).__name__}"
        )
    return value


def _json_text(value: object) -> str:
    if isinstance(value, str):
        try:
            json.loads(value, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise ValidationError("config_value", value, f"is not valid JSON: {exc}") from None
        except RecursionError:
            raise ValidationError("config_value", value, TOO_DEEP) from None
        return value.strip()
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            "config_value", value, f"cannot be written as JSON ({exc}); give JSON text"
        ) from None
    except RecursionError:
        # Not the value itself: its repr would recurse as deeply.
        raise ValidationError("config_value", type(value).__name__, TOO_DEEP) from None


# Python's JSON reader and writer recurse once per level of nesting.
TOO_DEEP = "is nested too deeply for JSON (Python reads about a thousand levels)"


def _type_of(value: object) -> str:
    """The type a Python value asks for when neither the caller nor a stored row says."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, (dict, list)):
        return "json"
    return "string"


# --- operations --------------------------------------------------------------------------


def set_value(
    store: Store,
    key: str,
    value: object = None,
    *,
    config_type: str | None = None,
    description: str | None = None,
    strategy: str | None = None,
    active: bool | None = None,
) -> ConfigEntry:
    """Create or change a setting, in one transaction, and return it as stored.

    With `strategy`, `key` is that strategy's setting (stored as strategy.<name>.<key>).
    What is not given stays as it was: the type (a new key takes the type its Python value
    suggests, text being a string), the description, the strategy and whether it is active.
    With `value` None the key must exist; only the other fields change.
    """
    if strategy is not None:
        key = strategy_key(strategy, key)
    else:
        strategy = strategy_of(key)
    check_not_secret_key(key)
    if key.startswith(OLD_REFERENCE_PREFIX):
        raise ValidationError(
            "config_key",
            key,
            "reference prices hold for a period and live in their own table: use `tradedb "
            "reference-price set ASSET PRICE --since ... --until ... --source ...` "
            "(db.analytics.set_reference_price)",
        )
    if description is not None:
        check_not_secret_text(description, "description")
    records = ConfigRecords(store.db)
    with store.db.transaction():
        current = records.by_key(key)
        if value is None and current is None:
            raise UnknownRecord("config_key", key, "is not set; give a value to create it")
        kind = config_type or (current.config_type if current else _type_of(value))
        if value is None:
            assert current is not None
            value = current.config_value
        text = stored_text(value, kind)
        if kind == "json":
            check_not_secret_json(json.loads(text))
        elif kind == "string":
            check_not_secret_text(text)
        row = records.repo.upsert(
            {
                "config_key": key,
                "config_value": text,
                "config_type": kind,
                "description": description if description is not None else _kept(current),
                "strategy": strategy if strategy is not None else _kept_strategy(current),
                "is_active": active
                if active is not None
                else (current is None or current.is_active),
            }
        )
    return ConfigEntry.of(row)


def _kept(current: Config | None) -> str | None:
    return None if current is None else current.description


def _kept_strategy(current: Config | None) -> str | None:
    return None if current is None else current.strategy


def get(store: Store, key: str, *, strategy: str | None = None) -> ConfigEntry:
    """The setting stored under `key`, active or not."""
    if strategy is not None:
        key = strategy_key(strategy, key)
    row = ConfigRecords(store.db).by_key(key)
    if row is None:
        raise UnknownRecord("config_key", key, "is not set (`tradedb config list` shows what is)")
    return ConfigEntry.of(row)


def value(store: Store, key: str, default: Any = None, *, strategy: str | None = None) -> Any:
    """The typed value in force under `key`: `default` when it is unset or inactive."""
    if strategy is not None:
        key = strategy_key(strategy, key)
    row = ConfigRecords(store.db).by_key(key)
    if row is None or not row.is_active:
        return default
    return typed_value(row.config_value, row.config_type)


def entries(
    store: Store,
    *,
    prefix: str | None = None,
    strategy: str | None = None,
    include_inactive: bool = False,
) -> list[ConfigEntry]:
    """Settings by key: all, those under a prefix, or one strategy's; active ones unless
    `include_inactive`."""
    rows = ConfigRecords(store.db).matching(
        prefix=prefix, strategy=strategy, include_inactive=include_inactive
    )
    return [ConfigEntry.of(row) for row in rows]


def unset(store: Store, key: str, *, strategy: str | None = None) -> str:
    """Delete a setting; return its key. (To keep it but take it out of force, set it
    inactive instead.)"""
    if strategy is not None:
        key = strategy_key(strategy, key)
    if not ConfigRecords(store.db).delete(key):
        raise UnknownRecord("config_key", key, "is not set (`tradedb config list` shows what is)")
    return key
