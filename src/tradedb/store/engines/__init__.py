"""The engines tradedb runs on, and how a path or URL picks one.

- A path, or `sqlite:///relative` / `sqlite:////absolute`: a SQLite file (`sqlite`).
- `postgresql://user:password@host:port/name` (also `postgres://` and
  `postgresql+psycopg://`): a PostgreSQL database (`postgresql`, the `postgresql` extra).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tradedb.errors import DatabaseLocationError
from tradedb.schema.migrate import SchemaStatus
from tradedb.store.database import Database, Dialect

POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
SQLITE_SCHEMES = ("sqlite", "sqlite+pysqlite")


@dataclass(frozen=True)
class PostgresTarget:
    """A PostgreSQL database named by a URL. Its `str` masks the password, so that it can
    be printed, logged and written into manifests."""

    url: URL

    def __str__(self) -> str:
        return masked(self.url)

    def __repr__(self) -> str:
        return f"PostgresTarget({masked(self.url)!r})"

    @property
    def database(self) -> str:
        return self.url.database or ""

    def with_database(self, name: str) -> PostgresTarget:
        return PostgresTarget(self.url.set(database=name))


Target = Path | PostgresTarget


def masked(url: URL) -> str:
    """A URL as text, as users write it (postgresql://), with its password as ***."""
    return url.set(drivername="postgresql").render_as_string(hide_password=True)


def parse_target(value: str | os.PathLike[str] | PostgresTarget) -> Target:
    """A plain path, a sqlite:/// URL or a PostgreSQL URL, checked for its form only."""
    if isinstance(value, PostgresTarget):
        return value
    if not isinstance(value, str):
        return Path(value).expanduser()
    if "://" not in value:
        return Path(value).expanduser()
    scheme, _, rest = value.partition("://")
    if scheme in SQLITE_SCHEMES:
        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            raise DatabaseLocationError(
                f"{value}: give a file, e.g. sqlite:///bot.sqlite or sqlite:////abs/bot.sqlite"
            )
        return Path(rest[1:].split("?", 1)[0]).expanduser()
    if scheme in POSTGRES_SCHEMES:
        try:
            url = make_url(f"postgresql+psycopg://{rest}")
        except (ArgumentError, ValueError) as exc:
            raise DatabaseLocationError(f"{_mask_text(value)}: not a valid URL: {exc}") from None
        if not url.database:
            raise DatabaseLocationError(
                f"{masked(url)}: name the database, e.g. postgresql://user@host:5432/tradedb"
            )
        return PostgresTarget(url)
    raise DatabaseLocationError(
        f"{scheme}: unsupported database URL; use a path, sqlite:/// or postgresql://"
    )


def _mask_text(value: str) -> str:
    """A URL that did not parse, with anything between ':' and '@' after the scheme hidden."""
    scheme, _, rest = value.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return value
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def open_database(
    target: str | os.PathLike[str] | PostgresTarget, *, readonly: bool = False
) -> Database:
    parsed = parse_target(target)
    if isinstance(parsed, PostgresTarget):
        database: Database = postgresql_engine().PostgresDatabase.open_url(
            parsed, readonly=readonly
        )
        return database
    from tradedb.store.engines.sqlite import SQLiteDatabase

    return SQLiteDatabase.open_file(parsed, readonly=readonly)


def dialect_of(target: Path | PostgresTarget) -> Dialect:
    """The dialect of the engine a location names, without opening it."""
    if isinstance(target, PostgresTarget):
        dialect: Dialect = postgresql_engine().PostgresDatabase.dialect
        return dialect
    from tradedb.store.engines.sqlite import SQLiteDatabase

    return SQLiteDatabase.dialect


def postgresql_engine() -> ModuleType:
    """The PostgreSQL engine module; a clear error when its extra is not installed."""
    try:
        from tradedb.store.engines import postgresql
    except ImportError as exc:
        raise DatabaseLocationError(
            f"PostgreSQL needs psycopg ({exc.name} is missing): pip install 'tradedb[postgresql]'"
        ) from None
    return postgresql


def driver_errors() -> tuple[type[Exception], ...]:
    """The database drivers' own error classes, for front ends that report them as one
    line: sqlite3's, and psycopg's where it is installed."""
    import sqlite3

    errors: list[type[Exception]] = [sqlite3.Error]
    try:
        import psycopg
    except ImportError:
        pass
    else:
        errors.append(psycopg.Error)
    return tuple(errors)


def companion_base(target: Path | PostgresTarget) -> Path:
    """What the database's own files (Parquet archives, maintain's schedule) are named
    after, as `<stem>-archives/` beside it: the SQLite file itself, or for a PostgreSQL
    database a name in the user data folder made of its host, port and name."""
    if isinstance(target, PostgresTarget):
        import platformdirs

        url = target.url
        name = f"{url.host or 'localhost'}-{url.port or 5432}-{url.database}"
        return Path(platformdirs.user_data_dir("tradedb")) / "postgresql" / f"{name}.pg"
    return target


def without_password(target: Path | PostgresTarget) -> str:
    """The path, or the URL without its password (not masked: left out), for a command line
    that another program runs, such as a cron line; libpq then finds the password in
    ~/.pgpass or PGPASSWORD."""
    if isinstance(target, PostgresTarget):
        url = target.url
        bare = URL.create(
            "postgresql",
            username=url.username,
            host=url.host,
            port=url.port,
            database=url.database,
            query=url.query,
        )
        return bare.render_as_string(hide_password=False)
    return str(target)


def initialize(target: Path | PostgresTarget) -> tuple[str | None, SchemaStatus]:
    """Create the database (or its schema) at `target`, or upgrade it; the revision
    before and after."""
    if isinstance(target, PostgresTarget):
        before, after = postgresql_engine().initialize(target)
        return before, after
    from tradedb.store.engines import sqlite

    return sqlite.initialize(target)


def probe_schema_status(target: Path | PostgresTarget) -> SchemaStatus | None:
    """The schema of a database about to be written, read without creating or changing
    anything; None where nothing is there yet (no file, or a database without tables),
    once it is clear that one can be created there. A database holding other tables and
    no tradedb schema is refused."""
    if isinstance(target, PostgresTarget):
        status: SchemaStatus = postgresql_engine().read_schema_status(target)
    else:
        from tradedb.store.engines import sqlite

        sqlite.check_location(target)
        if not target.exists():
            return None
        status = sqlite.read_schema_status(target)
    return None if status.current is None else status


_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")
_DEFAULT_PORT = 5432


def location_key(target: Path | PostgresTarget) -> str:
    """A database's name without any password, the same however the location is spelt:
    the resolved file, or postgresql://host:port/name with the loopback addresses as
    localhost and the default port written out."""
    if isinstance(target, PostgresTarget):
        url = target.url
        host = (url.host or "localhost").lower()
        host = "localhost" if host in _LOOPBACK else host
        return f"postgresql://{host}:{url.port or _DEFAULT_PORT}/{url.database}"
    return str(target.expanduser().resolve())


def same_database(first: Path | PostgresTarget, second: Path | PostgresTarget) -> bool:
    """Whether two locations name one database: the same file (links followed), or the same
    database of the same PostgreSQL server, asked of the server when the names differ."""
    if isinstance(first, PostgresTarget) and isinstance(second, PostgresTarget):
        if location_key(first) == location_key(second):
            return True
        engine = postgresql_engine()
        return bool(engine.server_identity(first) == engine.server_identity(second))
    if isinstance(first, Path) and isinstance(second, Path):
        if first.exists() and second.exists():
            return os.path.samefile(first, second)
        return location_key(first) == location_key(second)
    return False


def read_schema_status(target: Path | PostgresTarget) -> SchemaStatus:
    """The schema version at `target`, read without changing anything."""
    if isinstance(target, PostgresTarget):
        status: SchemaStatus = postgresql_engine().read_schema_status(target)
        return status
    from tradedb.store.engines import sqlite

    return sqlite.read_schema_status(target)
