"""bot_config of one database: typed settings, per strategy or global. Secrets are
refused: credentials belong in environment variables, never in the database."""

from __future__ import annotations

from typing import Any

from tradedb.services.ops import config
from tradedb.services.ops.config import ConfigEntry
from tradedb.store import Store


class BotConfig:
    """Settings as typed values: strings, exact numbers (Decimal), booleans and JSON."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def set(
        self,
        key: str,
        value: object = None,
        *,
        config_type: str | None = None,
        description: str | None = None,
        strategy: str | None = None,
        active: bool | None = None,
    ) -> ConfigEntry:
        """Store a setting (its type inferred from the value unless given)."""
        return config.set_value(
            self._store,
            key,
            value,
            config_type=config_type,
            description=description,
            strategy=strategy,
            active=active,
        )

    def get(self, key: str, *, strategy: str | None = None) -> ConfigEntry:
        """The stored entry; UnknownRecord when there is none."""
        return config.get(self._store, key, strategy=strategy)

    def value(self, key: str, default: Any = None, *, strategy: str | None = None) -> Any:
        """The typed value of an active setting, else `default`."""
        return config.value(self._store, key, default, strategy=strategy)

    def entries(
        self,
        *,
        prefix: str | None = None,
        strategy: str | None = None,
        include_inactive: bool = False,
    ) -> list[ConfigEntry]:
        return config.entries(
            self._store, prefix=prefix, strategy=strategy, include_inactive=include_inactive
        )

    def unset(self, key: str, *, strategy: str | None = None) -> str:
        """Delete a setting; the key that was deleted."""
        return config.unset(self._store, key, strategy=strategy)
