"""bot_config reads and the delete the generic repository does not have."""

from __future__ import annotations

from tradedb.models import Config
from tradedb.store.database import Database
from tradedb.store.repository import Repository
from tradedb.store.store import CONFIG


class ConfigRecords:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.repo = Repository(db, CONFIG)

    def by_key(self, key: str) -> Config | None:
        return self.repo.select_one("config_key = ?", (key,))

    def matching(
        self, *, prefix: str | None, strategy: str | None, include_inactive: bool
    ) -> list[Config]:
        """Rows by key: those whose key starts with `prefix`, of one strategy, active ones
        unless `include_inactive`."""
        clauses = ["1 = 1"]
        params: list[object] = []
        if prefix:
            clauses.append("substr(config_key, 1, length(?)) = ?")
            params += [prefix, prefix]
        if strategy is not None:
            clauses.append("strategy = ?")
            params.append(strategy)
        if not include_inactive:
            clauses.append("coalesce(is_active, true)")
        rows = self.repo.select_all(" AND ".join(clauses), params)
        return sorted(rows, key=lambda row: row.config_key)

    def delete(self, key: str) -> bool:
        with self.db.transaction() as conn:
            deleted = conn.execute("DELETE FROM bot_config WHERE config_key = ?", (key,))
        return int(deleted.rowcount) > 0
