"""Create and upgrade databases; report schema versions.

A new database is built from the table definitions and stamped with the newest revision.
An existing one is upgraded through the Alembic revisions, one transaction for all of it,
after which the derived views and triggers are rebuilt.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.pool import NullPool

from tradedb.errors import SchemaVersionError
from tradedb.schema import derived
from tradedb.schema.tables import metadata

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


@cache
def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "the migrations folder holds no revision"
    return head


def revisions() -> list[str]:
    """All revisions, oldest first."""
    script = ScriptDirectory.from_config(_alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def current_revision(conn: sqlite3.Connection) -> str | None:
    """The revision a database is at (None for an empty database)."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
    ).fetchone()
    if not has_table:
        return None
    row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    return None if row is None else str(row[0])


def status(conn: sqlite3.Connection) -> SchemaStatus:
    return SchemaStatus(current=current_revision(conn), head=head_revision())


def foreign_tables(conn: sqlite3.Connection) -> list[str]:
    """Tables of a database that has no tradedb version: a sign that it is not ours."""
    if current_revision(conn) is not None:
        return []
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def not_ours(path: Path, tables: list[str]) -> SchemaVersionError:
    shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
    return SchemaVersionError(
        f"{path} is not a tradedb database: it holds other tables ({shown}) and no tradedb "
        "schema version, so tradedb will not touch it"
    )


def upgrade(path: Path, target: str = "head") -> SchemaStatus:
    """Bring the database file at `path` to `target`, creating it when it is empty."""
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)

    # pysqlite's own transaction handling skips BEGIN before DDL; take it over so that the
    # whole create or upgrade is one IMMEDIATE transaction.
    @event.listens_for(engine, "connect")
    def _autocommit(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout = 10000")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with engine.begin() as connection:
            before = MigrationContext.configure(connection).get_current_revision()
            if before is None:
                _refuse_foreign(connection, path)
                _create_at(connection, target)
            else:
                # Views and triggers name the tables a revision may rebuild; they are
                # recreated from the definitions below anyway.
                _drop_derived(connection)
                config = _alembic_config()
                config.attributes["connection"] = connection
                try:
                    command.upgrade(config, target)
                finally:
                    config.attributes.pop("connection", None)
            _rebuild_derived(connection)
            after = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    # Only now that the file is known to be ours: WAL is a persistent property of the file.
    wal = sqlite3.connect(path)
    try:
        wal.execute("PRAGMA journal_mode = WAL")
    finally:
        wal.close()
    return SchemaStatus(current=after, head=head_revision())


def _create_at(connection: Connection, target: str) -> None:
    if target not in ("head", head_revision()):
        # Old revisions exist only as the starting points of upgrades (tests build them
        # from the fixtures that each revision leaves behind).
        raise SchemaVersionError(f"a new database can only be created at {head_revision()}")
    metadata.create_all(connection)
    config = _alembic_config()
    config.attributes["connection"] = connection
    try:
        command.stamp(config, "head")
    finally:
        config.attributes.pop("connection", None)


def _refuse_foreign(connection: Connection, path: Path) -> None:
    raw = connection.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection), "upgrade() opens SQLite files only"
    tables = foreign_tables(raw)
    if tables:
        raise not_ours(path, tables)


def _drop_derived(connection: Connection) -> None:
    existing = connection.execute(
        text("SELECT type, name FROM sqlite_master WHERE type IN ('view', 'trigger')")
    ).all()
    for statement in derived.drop_statements([(row[0], row[1]) for row in existing]):
        connection.exec_driver_sql(statement)


def _rebuild_derived(connection: Connection) -> None:
    _drop_derived(connection)
    tables = set(
        connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars()
    )
    for statement in derived.create_statements(tables):
        connection.exec_driver_sql(statement)


_CREATE_TABLE = re.compile(r"\s*CREATE TABLE (\w+) \(")


def rebuild_table(connection: Connection, create_sql: str) -> None:
    """Replace a table by the one `create_sql` defines, keeping its rows, ids and counter.

    SQLite's way to change a table beyond ADD COLUMN: create the new table under another
    name, copy the columns both have, drop the old one and rename the new one into place.
    Its indexes go with the old table; the migration creates the new ones.
    """
    match = _CREATE_TABLE.match(create_sql)
    assert match is not None, "rebuild_table needs a CREATE TABLE statement"
    name = match.group(1)
    staging = f"_tradedb_rebuild_{name}"
    connection.exec_driver_sql(
        create_sql.replace(f"CREATE TABLE {name} (", f"CREATE TABLE {staging} (", 1)
    )
    old = {row[1] for row in connection.exec_driver_sql(f"PRAGMA table_xinfo({name})")}
    new = [row[1] for row in connection.exec_driver_sql(f"PRAGMA table_xinfo({staging})")]
    shared = ", ".join(column for column in new if column in old)
    connection.exec_driver_sql(f"INSERT INTO {staging} ({shared}) SELECT {shared} FROM {name}")
    counter = connection.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = ?", (name,)
    ).scalar()
    connection.exec_driver_sql(f"DROP TABLE {name}")
    connection.exec_driver_sql(f"ALTER TABLE {staging} RENAME TO {name}")
    if counter is not None:
        connection.exec_driver_sql(
            "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (counter, name)
        )
