"""PostgreSQL's side of backups: pg_dump's custom format, read back into new databases.

- The copy is `pg_dump --format=custom`, compressed by pg_dump itself (a second zstd pass
  gained about 6% on a tradedb dump; see docs/operations.md), so the data file is a
  plain pg_dump archive that `pg_restore` reads without tradedb. pg_dump runs in a
  snapshot exported by a REPEATABLE READ READ ONLY transaction, in which the schema
  revision is read too: the manifest describes exactly the dumped state, and writers
  go on meanwhile.
- The tools are the newest pg_dump and pg_restore found (TRADEDB_PG_BINDIR, else the
  usual install folders and PATH). pg_dump cannot dump a server newer than itself; that
  is refused before anything is written, in one line naming both versions.
- The password never goes on a command line (where `ps` shows it to every user of the
  machine): the tools get it in PGPASSWORD, in their own environment only, and every
  message they print is searched for it before it is shown.
- Reading a dump back always goes into a new database, created on the server with a
  unique name (through its maintenance database, `postgres`, else `template1`), restored
  by `pg_restore --single-transaction --exit-on-error --no-owner --no-privileges`, so
  the objects belong to the role restoring them. `verify` drops it afterwards, even
  after a failure; `restore` renames it to the destination once it is complete, after
  dropping the destination only when that holds no tables or `--force` was given.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tradedb import owner_only
from tradedb.errors import BackupError
from tradedb.schema import migrate
from tradedb.store.engines import PostgresTarget, Target
from tradedb.store.engines.backups import (
    TEMP_PREFIX,
    BackupSource,
    CopyFailed,
    DamagedCopy,
    Progress,
    RestoreMethod,
    StagedCopy,
    StoredCopy,
    WrittenCopy,
    copy_checked,
    create_empty_owner_only,
    file_sha256,
)
from tradedb.store.engines.postgresql import connect_error, conninfo

BINDIR_ENV = "TRADEDB_PG_BINDIR"
# Where PostgreSQL's client programs are installed, besides PATH: Debian/Ubuntu, the
# PGDG packages for RHEL, Homebrew, Postgres.app, the EDB installer for Windows.
TOOL_FOLDERS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
    "/Applications/Postgres.app/Contents/Versions/*/bin",
    "C:/Program Files/PostgreSQL/*/bin",
)
SNAPSHOT_SUFFIX = ".pgdump"
FULL_MEMBER = "database.pgdump"
COMPRESSION = "pg_dump custom format"
MAINTENANCE_DATABASES = ("postgres", "template1")
# How long a session that is ending may still be listed on the server.
SESSIONS_GONE_SECONDS = 1.0
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


# --- the tools ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    """One of PostgreSQL's client programs, and its version."""

    name: str
    path: Path
    version: tuple[int, int]

    @property
    def major(self) -> int:
        return self.version[0]

    def __str__(self) -> str:
        return f"{self.name} {self.version[0]}.{self.version[1]}"


def find_tool(name: str, env: Mapping[str, str] | None = None) -> Tool:
    """The newest `name` (pg_dump, pg_restore) installed: in TRADEDB_PG_BINDIR when that is
    set, else in the usual install folders and on PATH."""
    env = os.environ if env is None else env
    program = f"{name}.exe" if os.name == "nt" else name
    folder = env.get(BINDIR_ENV)
    if folder:
        candidates = [Path(folder).expanduser() / program]
    else:
        candidates = [
            Path(path) for pattern in TOOL_FOLDERS for path in glob.glob(f"{pattern}/{program}")
        ]
        on_path = shutil.which(program, path=env.get("PATH"))
        if on_path:
            candidates.append(Path(on_path))
    tools = [tool for path in dict.fromkeys(candidates) if (tool := _probe(name, path))]
    if not tools:
        where = f"in {BINDIR_ENV}={folder}" if folder else "in the usual folders or on PATH"
        raise BackupError(
            f"{name} was not found {where}: backups of PostgreSQL databases need PostgreSQL's "
            f"client programs (Debian: apt-get install postgresql-client), or set {BINDIR_ENV} "
            "to their folder"
        )
    return max(tools, key=lambda tool: tool.version)


@cache
def _probe(name: str, path: Path) -> Tool | None:
    """The tool at `path` and its version (from `--version`); None if it does not run."""
    if not path.is_file():
        return None
    try:
        done = subprocess.run(
            [str(path), "--version"],
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _VERSION.search(done.stdout)
    if done.returncode != 0 or found is None:
        return None
    return Tool(name, path, (int(found.group(1)), int(found.group(2) or 0)))


def server_version_text(number: int) -> str:
    """libpq's server_version (150005) as people write it (15.5)."""
    return f"{number // 10000}.{number % 10000}"


def _client(target: PostgresTarget) -> tuple[str, dict[str, str], str | None]:
    """What a client program needs to reach `target`: a connection string for --dbname
    without the password, and an environment carrying the password (PGPASSWORD), which
    is also returned so that the program's messages can be searched for it."""
    params = {key: str(value) for key, value in conninfo_to_dict(conninfo(target)).items()}
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = password
    return make_conninfo("", **params), env, password


def _run(tool: Tool, target: PostgresTarget, *args: str) -> str | None:
    """Run a client program against `target`; None when it succeeded, else the line of
    its messages that says why (with the password masked)."""
    dbname, env, password = _client(target)
    done = subprocess.run(
        [str(tool.path), "--no-password", *args, f"--dbname={dbname}"],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        env=env,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    reason = next((line for line in lines if "error:" in line), lines[0] if lines else "")
    reason = re.sub(rf"^{tool.name}: (?:error: )?", "", reason)
    reason = reason or f"exit status {done.returncode}"
    return reason.replace(password, "***") if password else reason


# --- connections ------------------------------------------------------------------------


def _connect(target: PostgresTarget) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(conninfo(target), autocommit=True)
    except psycopg.Error as exc:
        raise connect_error(target, exc) from None


@contextmanager
def maintenance(server: PostgresTarget) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the server's maintenance database, for creating, dropping and
    renaming databases; an error names `server` (password masked)."""
    missing: psycopg.Error | None = None
    for name in MAINTENANCE_DATABASES:
        try:
            conn = psycopg.connect(conninfo(server.with_database(name)), autocommit=True)
        except psycopg.Error as exc:
            if "does not exist" in str(exc):
                missing = missing or exc
                continue
            raise connect_error(server, exc) from None
        with conn:
            yield conn
        return
    assert missing is not None
    raise connect_error(server, missing)


def _require_createdb(admin: psycopg.Connection[Any], server: PostgresTarget) -> None:
    row = admin.execute(
        "SELECT current_user, rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if row is None or not row[1]:
        role = row[0] if row else server.url.username
        raise BackupError(
            f"{server}: role {role} may not create databases, and reading a backup back "
            "creates one; grant it CREATEDB (ALTER ROLE ... CREATEDB) or use a role that has it"
        )


def _exists(admin: psycopg.Connection[Any], name: str) -> bool:
    return (
        admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        is not None
    )


def _table_count(target: PostgresTarget) -> int:
    with _connect(target) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchone()
    return 0 if row is None else int(row[0])


def _refuse_unless_replaceable(
    admin: psycopg.Connection[Any], to: PostgresTarget, *, force: bool
) -> None:
    """An existing destination is replaced only if it holds no tables or with `force`, and
    only while nobody uses it (DROP DATABASE would wait, then fail)."""
    tables = _table_count(to)
    if tables and not force:
        raise BackupError(
            f"database {to} exists and holds {tables} tables; restore into a new database, "
            "or give `force=True` to replace it (stop what uses it first)"
        )
    sessions = _sessions(admin, to.database)
    if sessions:
        raise BackupError(
            f"database {to} is in use ({sessions} session{'s' if sessions > 1 else ''}); "
            "stop what uses it, then restore again"
        )


def _sessions(admin: psycopg.Connection[Any], name: str) -> int:
    """The sessions on a database, after giving those that are closing (the connection a
    client has just closed, this module's own included) a moment to end."""
    deadline = time.monotonic() + SESSIONS_GONE_SECONDS
    while True:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()
        sessions = 0 if row is None else int(row[0])
        if not sessions or time.monotonic() > deadline:
            return sessions
        time.sleep(0.05)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- taking a backup ---------------------------------------------------------------------


@dataclass(frozen=True)
class Dump:
    schema: str | None
    server_version: str
    tool: Tool


def _check_versions(tool: Tool, conn: psycopg.Connection[Any], target: PostgresTarget) -> str:
    server = conn.info.server_version
    if tool.major < server // 10000:
        raise BackupError(
            f"{tool} ({tool.path}) is older than the server of {target} (PostgreSQL "
            f"{server_version_text(server)}) and cannot dump it: install pg_dump "
            f"{server // 10000} or newer, or set {BINDIR_ENV} to its folder"
        )
    return server_version_text(server)


def dump(target: PostgresTarget, out: Path) -> Dump:
    """pg_dump's custom format of `target` into the existing (empty, owner-only) file `out`."""
    tool = find_tool("pg_dump")
    with _connect(target) as conn:
        server = _check_versions(tool, conn, target)
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = conn.execute("SELECT pg_export_snapshot()").fetchone()
            assert row is not None
            schema = _schema_revision(conn)
        except psycopg.Error as exc:
            raise CopyFailed(f"{target}: {_first_line(exc)}") from None
        failure = _run(tool, target, "--format=custom", f"--snapshot={row[0]}", f"--file={out}")
        conn.execute("ROLLBACK")
    if failure is not None:
        if "No space left on device" in failure:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        raise CopyFailed(f"pg_dump: {failure}")
    return Dump(schema, server, tool)


def _schema_revision(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (migrate.VERSION_TABLE,)).fetchone()
    if row is None or not row[0]:
        return None
    version = conn.execute(
        sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(migrate.VERSION_TABLE))
    ).fetchone()
    return None if version is None else str(version[0])


class PostgresSource(BackupSource):
    """A PostgreSQL database, copied by pg_dump in its custom format."""

    engine = "postgresql"
    suffix = SNAPSHOT_SUFFIX
    full_member = FULL_MEMBER

    def __init__(self, target: PostgresTarget) -> None:
        self.target = target

    @property
    def display_name(self) -> str:
        return str(self.target)

    def check(self) -> None:
        tool = find_tool("pg_dump")
        with _connect(self.target) as conn:
            _check_versions(tool, conn, self.target)

    def write(self, target: Path, workspace: Path, progress: Progress | None) -> WrittenCopy:
        if progress:
            progress("dumping the database (pg_dump)")
        # Created first so that the dump is owner-only from its first byte.
        create_empty_owner_only(target)
        made = dump(self.target, target)
        owner_only.restrict(target, folder=False)
        sha256, size = file_sha256(target)
        return WrittenCopy(
            size_bytes=size,
            sha256=sha256,
            database_bytes=size,
            database_sha256=sha256,
            schema=made.schema,
            compression=COMPRESSION,
            engine_version=made.server_version,
            tool=str(made.tool),
        )


# --- reading a backup back ---------------------------------------------------------------


@dataclass
class _Scratch:
    target: PostgresTarget
    keep: bool = False


@contextmanager
def _new_database(server: PostgresTarget, purpose: str) -> Iterator[_Scratch]:
    """A new empty database on `server` with a unique name, dropped at the end (even after
    a failure) unless it was renamed or is to be kept."""
    name = f"tradedb_{purpose}_{secrets.token_hex(6)}"
    with maintenance(server) as admin:
        try:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
        except psycopg.Error as exc:
            raise BackupError(f"{server}: cannot create a database: {_first_line(exc)}") from None
    scratch = _Scratch(server.with_database(name))
    finished = False
    try:
        yield scratch
        finished = True
    finally:
        if not scratch.keep:
            try:
                with maintenance(server) as admin:
                    admin.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
            except (psycopg.Error, BackupError, OSError) as exc:
                # After a failure, that failure is the news; after a success, this is.
                if finished:
                    raise BackupError(
                        f"the scratch database {name} could not be dropped "
                        f"({_first_line(exc)}); drop it yourself"
                    ) from None


@contextmanager
def _dump_file(data: StoredCopy) -> Iterator[Path]:
    """The dump as a file pg_restore can seek in, checked against the manifest: the stored
    file itself, or a temp copy of a full backup's member."""
    if data.path is not None:
        if file_sha256(data.path) != (data.sha256, data.size_bytes):
            raise DamagedCopy
        yield data.path
        return
    temp = data.workspace / f"{TEMP_PREFIX}{data.backup_id}.read{SNAPSHOT_SUFFIX}"
    temp.unlink(missing_ok=True)
    try:
        with data.open() as reader:
            copy_checked(reader, temp, data)
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def restore_dump(dump_file: Path, into: PostgresTarget) -> None:
    """pg_restore a custom-format dump into the empty database `into`: all of it or, on
    the first error, none of it."""
    tool = find_tool("pg_restore")
    failure = _run(
        tool,
        into,
        "--single-transaction",
        "--exit-on-error",
        "--no-owner",
        "--no-privileges",
        str(dump_file),
    )
    if failure is not None:
        raise BackupError(f"pg_restore: {failure}")


class _PostgresCopy(StagedCopy):
    def __init__(self, scratch: _Scratch) -> None:
        self._scratch = scratch
        self.target = scratch.target

    def problems(self) -> list[str]:
        # pg_restore stopped at the first error, and it rebuilt every constraint and index
        # (foreign keys, CHECKs, UNIQUE keys) over the restored rows: a copy that got here
        # satisfies all of them.
        return []

    def install(self, to: Target, *, force: bool) -> None:
        assert isinstance(to, PostgresTarget)  # check_destination refused anything else
        scratch = self._scratch.target.database
        dropped = False
        with maintenance(to) as admin:
            if _exists(admin, to.database):
                _refuse_unless_replaceable(admin, to, force=force)  # it may have changed
                try:
                    admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(to.database)))
                except psycopg.errors.ObjectInUse:
                    raise BackupError(
                        f"database {to} is in use by other sessions; stop what uses it, "
                        "then restore again"
                    ) from None
                except psycopg.Error as exc:
                    raise BackupError(f"cannot replace {to}: {_first_line(exc)}") from None
                dropped = True
            try:
                admin.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(scratch), sql.Identifier(to.database)
                    )
                )
            except psycopg.Error as exc:
                if dropped:
                    self._scratch.keep = True
                    raise BackupError(
                        f"{to} was dropped, but renaming the restored copy to it failed "
                        f"({_first_line(exc)}); the restored data is in database {scratch}: "
                        "rename it yourself"
                    ) from None
                raise BackupError(f"cannot create {to}: {_first_line(exc)}") from None


class PostgresRestore(RestoreMethod):
    """A dump restored into a new database on the destination's server, then renamed."""

    engine = "postgresql"
    checks = "checksum and pg_restore"
    full_member = FULL_MEMBER

    def check_destination(self, backup_id: str, to: Target, *, force: bool) -> None:
        if not isinstance(to, PostgresTarget):
            raise BackupError(
                f"backup {backup_id} is a PostgreSQL dump: restore it into a PostgreSQL "
                f"database (`to=postgresql://user@host/newname`), not into the file {to}"
            )
        find_tool("pg_restore")
        with maintenance(to) as admin:
            _require_createdb(admin, to)
            if _exists(admin, to.database):
                _refuse_unless_replaceable(admin, to, force=force)

    def default_destination(self, folder: Path) -> Target | None:
        return None

    def check_scratch_server(self, server: Target | None) -> None:
        if not isinstance(server, PostgresTarget):
            raise BackupError(
                "verifying a PostgreSQL backup restores it into a scratch database: name the "
                "server with `database=postgresql://user@host/database` (or TRADEDB_DB)"
            )
        find_tool("pg_restore")
        with maintenance(server) as admin:
            _require_createdb(admin, server)

    @contextmanager
    def scratch(self, data: StoredCopy, *, server: Target | None) -> Iterator[StagedCopy]:
        assert isinstance(server, PostgresTarget)  # check_scratch_server refused the rest
        with _dump_file(data) as dump_file, _new_database(server, "verify") as scratch:
            restore_dump(dump_file, scratch.target)
            yield _PostgresCopy(scratch)

    @contextmanager
    def staged(self, data: StoredCopy, to: Target) -> Iterator[StagedCopy]:
        assert isinstance(to, PostgresTarget)  # check_destination refused anything else
        with _dump_file(data) as dump_file, _new_database(to, "restore") as scratch:
            restore_dump(dump_file, scratch.target)
            yield _PostgresCopy(scratch)
