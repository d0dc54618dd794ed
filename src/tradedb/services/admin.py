"""Database administration: create or upgrade, and the schema status (read without
opening the database for its records, so that an older schema is no obstacle)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tradedb.schema.migrate import SchemaStatus
from tradedb.services.location import DatabaseLocation, prepare_for_writing
from tradedb.store.engines import PostgresTarget, initialize, read_schema_status


@dataclass(frozen=True)
class InitResult:
    path: Path | PostgresTarget
    before: str | None
    after: str | None

    @property
    def action(self) -> str:
        if self.before is None:
            return "created"
        return "already up to date" if self.before == self.after else "upgraded"


def init_database(location: DatabaseLocation, *, allow_network_share: bool = False) -> InitResult:
    prepare_for_writing(location, allow_network_share=allow_network_share)
    before, after = initialize(location.target)
    return InitResult(location.target, before, after.current)


def schema_status(location: DatabaseLocation) -> SchemaStatus:
    return read_schema_status(location.target)
