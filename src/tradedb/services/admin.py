"""Database administration: create or upgrade, schema status, and what a database holds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tradedb.schema.migrate import SchemaStatus
from tradedb.services.location import DatabaseLocation, ensure_default_folder
from tradedb.store import Store
from tradedb.store.database import initialize, read_schema_status


@dataclass(frozen=True)
class InitResult:
    path: Path
    before: str | None
    after: str | None

    @property
    def action(self) -> str:
        if self.before is None:
            return "created"
        return "already up to date" if self.before == self.after else "upgraded"


@dataclass(frozen=True)
class DatabaseInfo:
    path: Path
    size_bytes: int
    schema: SchemaStatus
    row_counts: dict[str, int]


def init_database(location: DatabaseLocation) -> InitResult:
    ensure_default_folder(location)
    before, after = initialize(location.path)
    return InitResult(location.path, before, after.current)


def schema_status(location: DatabaseLocation) -> SchemaStatus:
    return read_schema_status(location.path)


def database_info(location: DatabaseLocation) -> DatabaseInfo:
    with open_store(location, readonly=True) as store:
        return DatabaseInfo(
            path=location.path,
            size_bytes=store.db.size_bytes(),
            schema=store.schema_status(),
            row_counts=store.row_counts(),
        )


@contextmanager
def open_store(location: DatabaseLocation, *, readonly: bool = False) -> Iterator[Store]:
    """The store of a resolved location; a new database is created (owner-only) on write."""
    if not readonly:
        ensure_default_folder(location)
    store = Store.open(location.path, readonly=readonly)
    try:
        yield store
    finally:
        store.close()
