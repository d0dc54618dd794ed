"""Create and upgrade databases; report schema versions.

A new database is built from the table definitions and stamped with the newest revision.
An existing one is upgraded through the Alembic revisions, one transaction for all of it,
after which the derived views and triggers are rebuilt. The same revisions serve SQLite
and PostgreSQL; PostgreSQL databases begin at FIRST_POSTGRESQL_REVISION (the revisions
before it transformed SQLite files that existed before tradedb ran on PostgreSQL).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from tradedb.errors import SchemaVersionError
from tradedb.schema import derived
from tradedb.schema.tables import metadata

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
FIRST_POSTGRESQL_REVISION = "0003"
# Concurrent `tradedb init` runs on one PostgreSQL database take turns on this lock.
_PG_MIGRATION_LOCK = 0x7472_6164_6564_62  # "tradedb"


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


def not_ours(name: str | Path, tables: list[str]) -> SchemaVersionError:
    shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
    return SchemaVersionError(
        f"{name} is not a tradedb database: it holds other tables ({shown}) and no tradedb "
        "schema version, so tradedb will not touch it"
    )


def describe_mismatch(name: str, state: SchemaStatus) -> str:
    if state.current is None:
        return f"{name} has no tradedb schema; run `tradedb init --db {name}`"
    if state.current in revisions():
        return (
            f"{name} is at schema {state.current}, this tradedb needs {state.head}; "
            f"back it up, then run `tradedb init --db {name}` to upgrade"
        )
    return (
        f"{name} is at schema {state.current}, which is newer than this tradedb knows "
        f"({state.head}); upgrade tradedb"
    )


def upgrade(path: Path, target: str = "head") -> SchemaStatus:
    """Bring the database file at `path` to `target`, creating it when it is empty."""
    # URL.create takes the path as it is; in a URL string a `?`, `#` or `%` in the file
    # name would be read as a query, a fragment or an escape.
    engine = create_engine(URL.create("sqlite", database=str(path)), poolclass=NullPool)

    # pysqlite's own transaction handling skips BEGIN before DDL; take it over so that the
    # whole create or upgrade is one IMMEDIATE transaction.
    @event.listens_for(engine, "connect")
    def _autocommit(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout = 10000")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    after = _upgrade(engine, str(path), target)
    # Only now that the file is known to be ours: WAL is a persistent property of the file.
    _use_wal(path)
    return after


def _use_wal(path: Path, patience_s: float = 10.0) -> None:
    """Switch the file to WAL. Two processes opening a new database at once can meet
    here: SQLite refuses the switch at once (no busy wait) while the other holds a lock
    it would have to wait for, so a refusal for a lock is tried again."""
    deadline = time.monotonic() + patience_s
    wal = sqlite3.connect(path, timeout=patience_s)
    try:
        while True:
            try:
                wal.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.01)
    finally:
        wal.close()


def upgrade_url(url: URL, name: str, target: str = "head") -> SchemaStatus:
    """Bring a server database (PostgreSQL) to `target`, creating the schema when the
    database holds no tables. `name` is how messages show it (the password masked)."""
    engine = create_engine(url, poolclass=NullPool)
    return _upgrade(engine, name, target)


def _upgrade(engine: Engine, name: str, target: str) -> SchemaStatus:
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            before = MigrationContext.configure(connection).get_current_revision()
            if before is not None and before not in revisions():
                # Alembic would fail with "Can't locate revision": a newer tradedb made it.
                raise SchemaVersionError(
                    describe_mismatch(name, SchemaStatus(before, head_revision()))
                )
            if before is None:
                _refuse_foreign(connection, name)
                _create_at(connection, target)
            else:
                _refuse_pre_postgresql(connection, name, before)
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
    return SchemaStatus(current=after, head=head_revision())


def _refuse_pre_postgresql(connection: Connection, name: str, current: str) -> None:
    known = revisions()
    first = known.index(FIRST_POSTGRESQL_REVISION)
    if connection.dialect.name != "sqlite" and current in known[:first]:
        raise SchemaVersionError(
            f"{name} claims schema {current}, older than any PostgreSQL database tradedb "
            f"made ({FIRST_POSTGRESQL_REVISION}); it was not made by tradedb"
        )


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


def _refuse_foreign(connection: Connection, name: str) -> None:
    tables = sorted(
        table for table in inspect(connection).get_table_names() if table != VERSION_TABLE
    )
    if tables:
        raise not_ours(name, tables)


def _drop_derived(connection: Connection) -> None:
    dialect = connection.dialect.name
    existing = connection.execute(text(derived.existing_objects_sql(dialect))).all()
    for statement in derived.drop_statements(dialect, [(row[0], row[1]) for row in existing]):
        connection.exec_driver_sql(statement)


def _rebuild_derived(connection: Connection) -> None:
    _drop_derived(connection)
    tables = set(inspect(connection).get_table_names())
    for statement in derived.create_statements(connection.dialect.name, tables):
        connection.exec_driver_sql(statement)


_CREATE_TABLE = re.compile(r"\s*CREATE TABLE (\w+) \(")


def relax_table_definition(
    connection: Connection, table: str, edits: Sequence[tuple[str, str]]
) -> None:
    """Replace each `old` by its `new` in a table's CREATE statement, with no copy of its
    rows. Each `old` must stand exactly once, not as the end of a longer name.

    Only for a change that no stored row can break and that leaves the stored format as
    it is, such as a CHECK that allows more values: SQLite documents editing the schema
    text for those (https://www.sqlite.org/lang_altertable.html, "making other kinds of
    table schema changes"). A rebuild would copy every candle; this takes milliseconds.
    """
    definition = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar()
    if not isinstance(definition, str):
        raise RuntimeError(f"no table {table}")
    for old, new in edits:
        pattern = re.compile(r"(?<!\w)" + re.escape(old))
        definition, found = pattern.subn(new.replace("\\", "\\\\"), definition)
        if found != 1:
            raise RuntimeError(f"{table}'s definition holds {old!r} {found} times, not once")
    version = connection.exec_driver_sql("PRAGMA schema_version").scalar_one()
    connection.exec_driver_sql("PRAGMA writable_schema = ON")
    connection.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
        (definition, table),
    )
    # A new schema version makes every connection read the edited definition.
    connection.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    connection.exec_driver_sql("PRAGMA writable_schema = OFF")


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
