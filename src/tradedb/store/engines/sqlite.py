"""The SQLite engine: one database file, a connection per thread, WAL, writers in turn.

Threads: one Database object may be shared; each thread gets its own sqlite3 connection
(SQLite connections must not be used by two threads at once). Processes: each opens its
own Database; WAL lets readers run beside the one writer, every write transaction begins
IMMEDIATE so that writers queue on busy_timeout instead of failing, and a bounded retry
covers the rare wait that outlasts it. Amounts are integer units (tradedb.schema.money).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import sqlite3
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Table
from sqlalchemy.dialects import sqlite as sqlalchemy_sqlite
from sqlalchemy.schema import CreateTable

from tradedb import file_locks, owner_only
from tradedb.errors import (
    DatabaseDamaged,
    DatabaseLocationError,
    SchemaVersionError,
    TradeDBError,
)
from tradedb.schema import migrate
from tradedb.schema.money import INT64_MAX, encode, from_units, stored, units_of
from tradedb.schema.tables import EPOCH_SECONDS_NOW
from tradedb.store.batch import Batch, OnConflict
from tradedb.store.database import (
    Database,
    Dialect,
    ReadOnlyDatabaseError,
    Violation,
)
from tradedb.store.engines.sqlite_damage import (
    ReportingConnection,
    check_tables_readable,
    damage_in,
)

PAGE_CACHE_KIB = 64 * 1024
BUSY_TIMEOUT_MS = 10_000
BEGIN_ATTEMPTS = 5
OWNER_ONLY = 0o600
# The first bytes of `<database>-writer.lock`: byte 0 is 1 while a writer is inside a
# transaction, bytes 8..16 count the writers that died inside one (unsigned, little-endian).
_GATE_HEADER = struct.Struct("<B7xQ")
# Binary on Windows, where a descriptor opened without it rewrites newline bytes.
_GATE_FLAGS = os.O_RDWR | getattr(os, "O_BINARY", 0)
# Rows written between background checkpoints. A ledger fill writes about 15 rows on as
# many pages, so this keeps the WAL near SQLite's default of 1000 pages; a bulk write of
# candles (about 50 rows a page) is checkpointed after each batch of 1000 rows or more.
CHECKPOINT_EVERY_ROWS = 1000
# Exact sums add the parts of each amount above and below 1e9 units apart (see exact_sum).
_SUM_SPLIT = 10**9
# Parameters one statement may take: SQLite's default since 3.32 (999 before it).
_MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


class SQLiteDialect(Dialect):
    """Amounts as scaled 64-bit integers (see tradedb.schema.money)."""

    name = "sqlite"
    epoch_seconds_now = EPOCH_SECONDS_NOW
    greatest = "max"
    least = "min"
    find_text = "instr"
    table_exists = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"

    # The conversions themselves, not methods calling them: a fill converts about forty
    # amounts, and a call frame more for each was a measurable part of the engine split.
    amount_in = staticmethod(encode)
    amount_out = staticmethod(from_units)
    amount_number = staticmethod(units_of)
    amount_stored = staticmethod(stored)  # type: ignore[assignment]  # takes int units

    def units_of(self, column: str, scale: int) -> str:
        return column

    def clamped_units_of(self, column: str, scale: int) -> str:
        return f"CASE WHEN typeof({column}) = 'integer' THEN {column} ELSE {INT64_MAX} END"

    def sum_of(self, *columns: str, exact: bool = False) -> str:
        if exact:
            return f"units_sum({', '.join(columns)})"
        return super().sum_of(*columns)

    def add_of(self, *columns: str, exact: bool = False) -> str:
        if exact:
            return f"units_add({', '.join(columns)})"
        return super().add_of(*columns)

    def exact_sum(self, column: str, *, exact: bool = False) -> tuple[str, ...]:
        if exact:
            return (f"coalesce(units_sum({column}), 0)",)
        # sum() of integers stops with "integer overflow" past int64, which the volumes of
        # a million candles in units of 1e-8 can pass. The parts of each value above and
        # below 1e9 units are summed apart; each of those sums stays within int64 up to a
        # billion rows. (total() would not overflow, but it adds floats.)
        return (
            f"coalesce(sum({column} / {_SUM_SPLIT}), 0)",
            f"coalesce(sum({column} % {_SUM_SPLIT}), 0)",
        )

    def exact_sum_value(self, parts: Sequence[Any], scale: int) -> Decimal:
        if len(parts) == 1:
            return from_units(parts[0], scale)
        high, low = parts
        return from_units(int(high) * _SUM_SPLIT + int(low), scale)

    def create_table_ddl(self, table: Table) -> str:
        return str(CreateTable(table).compile(dialect=sqlalchemy_sqlite.dialect())).strip()


class ReadOnlySQLiteError(ReadOnlyDatabaseError, sqlite3.OperationalError):
    """A write transaction on a SQLite database opened read-only. It is also an
    OperationalError, the class of SQLite's own refusal, so that callers handling that one
    handle this."""


class _SQLiteState(threading.local):
    conn: sqlite3.Connection | None = None
    synchronous: str | None = None
    rows_counted = 0


class SQLiteDatabase(Database):
    """A tradedb database file."""

    engine = "sqlite"
    dialect = SQLiteDialect()
    IntegrityError = sqlite3.IntegrityError
    Error = sqlite3.Error
    ReadOnly = ReadOnlySQLiteError

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        super().__init__(readonly=readonly)
        self._path = path
        self._local = _SQLiteState()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._checkpointer: _Checkpointer | None = None
        self._gate = _WriterGate.of(path)

    @classmethod
    def open_file(cls, path: str | os.PathLike[str], *, readonly: bool = False) -> SQLiteDatabase:
        """Open a database file, creating it (owner-only, at the newest schema) if it is new.

        A database at an older schema version is refused until `tradedb init` upgrades it,
        so that an upgrade is always a deliberate step the user can back up before.
        """
        location = Path(path).expanduser()
        check_location(location, must_exist=readonly)
        if not readonly and create_owner_only(location):
            migrate.upgrade(location)
        # Read the version without writing: a file that is not ours must stay untouched.
        state = read_schema_status(location, check_damage=True)
        if state.current is None and not readonly:
            state = migrate.upgrade(location)  # an empty file; foreign tables are refused
        if not state.up_to_date:
            raise SchemaVersionError(migrate.describe_mismatch(str(location), state))
        return cls(location, readonly=readonly)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def display_name(self) -> str:
        return str(self._path)

    @property
    def companion_base(self) -> Path:
        return self._path

    # --- connections ---------------------------------------------------------------------

    def _outside_transaction(self) -> ReportingConnection:
        return ReportingConnection(self._thread_connection(), self._path)

    def damage_in(self, exc: BaseException) -> TradeDBError | None:
        return damage_in(exc, self._path)

    def _thread_connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            self._after_fork()
        conn = self._local.conn
        if conn is None:
            if self._closed:
                raise DatabaseLocationError(f"database {self._path} is closed")
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _after_fork(self) -> None:
        """SQLite connections must not cross a fork (their locks stay with the parent), nor
        does the parent's checkpoint thread come along."""
        super()._after_fork()
        self._local = _SQLiteState()
        self._connections = []
        self._checkpointer = None

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            conn = sqlite3.connect(
                read_only_uri(self._path), uri=True, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA query_only = ON")
        else:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            # Checkpoints run in a background thread (see _Checkpointer), not inside a
            # commit, where they would add milliseconds to one fill in every ~70.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        add_exact_functions(conn)
        # SQLite's default page cache is 2 MB. Candle blocks are read as blobs whose pages
        # chain one to the next; from SQLite's cache a year of 1m candles reads about 4x
        # faster than through the OS. Memory is only taken as pages are read.
        conn.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        return conn

    def close(self) -> None:
        checkpointer = self._checkpointer
        if checkpointer is not None:
            checkpointer.stop()
        with self._lock:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = _SQLiteState()

    # --- transactions --------------------------------------------------------------------

    def _begin_write(self, durable: bool) -> sqlite3.Connection:
        if self.readonly:
            # Refused before the writer gate creates `<database>-writer.lock` beside a
            # file this process was only meant to read.
            raise self.ReadOnly(self.display_name)
        conn = self._thread_connection()
        wanted = "FULL" if durable else "NORMAL"
        if self._local.synchronous != wanted:
            conn.execute(f"PRAGMA synchronous = {wanted}")
            self._local.synchronous = wanted
        self._gate.enter()
        try:
            _begin_immediate(conn)
        except BaseException:
            self._gate.leave()
            raise
        return conn

    def _end_write(self, conn: sqlite3.Connection, *, commit: bool) -> None:
        try:
            if not commit:
                conn.execute("ROLLBACK")
                return
            try:
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            self._gate.leave()
        self._committed(conn)

    def _committed(self, conn: sqlite3.Connection) -> None:
        checkpointer = self._checkpointer
        if checkpointer is None:
            with self._lock:
                if self._checkpointer is None:
                    self._checkpointer = _Checkpointer(self._path)
                checkpointer = self._checkpointer
        rows = conn.total_changes - self._local.rows_counted
        self._local.rows_counted = conn.total_changes
        checkpointer.committed(rows)

    def _begin_read(self) -> sqlite3.Connection:
        conn = self._thread_connection()
        conn.execute("BEGIN DEFERRED")
        return conn

    def _end_read(self, conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")

    # --- what it holds -------------------------------------------------------------------

    def size_bytes(self) -> int:
        """Bytes on disk, the write-ahead log included."""
        total = 0
        for suffix in ("", "-wal"):
            candidate = Path(f"{self._path}{suffix}")
            if candidate.exists():
                total += candidate.stat().st_size
        return total

    def schema_status(self) -> migrate.SchemaStatus:
        return migrate.status(self.connection)

    def summed_rows(self, build: Callable[[bool], str], params: Sequence[Any] = ()) -> list[Any]:
        # SQLite adds integers at C speed, but a sum past int64 stops with "integer
        # overflow" and an amount in the overflow form turns it into a float: then the
        # query runs again with the exact units_sum and units_add.
        conn = self.connection
        try:
            rows = list(conn.execute(build(False), params).fetchall())
        except sqlite3.OperationalError as exc:
            if "integer overflow" not in str(exc):
                raise
        else:
            if not any(type(value) is float for row in rows for value in row):
                return rows
        return list(conn.execute(build(True), params).fetchall())

    def int64_columns(self, conn: Any, sql: str, params: Sequence[Any], width: int) -> Any:
        """The rows stream into one NumPy array with no list of row tuples in between."""
        import numpy as np

        flat = np.fromiter(itertools.chain.from_iterable(conn.execute(sql, params)), np.int64)
        return np.ascontiguousarray(flat.reshape(-1, width).T)

    def bytes_per_row(self, table: str) -> float | None:
        """From SQLite's dbstat, where it is compiled in."""
        try:
            with self.snapshot() as conn:
                used = conn.execute(
                    "SELECT sum(pgsize) FROM dbstat WHERE name = ? OR name IN "
                    "(SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?)",
                    (table, table),
                ).fetchone()[0]
                rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        except sqlite3.OperationalError:
            return None
        return None if not rows or not used else float(used) / rows

    def reclaim_space(self, how: str) -> str:
        """`auto` runs incremental_vacuum where the database has auto_vacuum=INCREMENTAL,
        else VACUUM when at least a tenth of the file is free pages and the disk has room
        for a copy of the database; VACUUM takes the write lock for as long as it runs."""
        conn = self.connection
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        if how == "auto":
            mode = int(conn.execute("PRAGMA auto_vacuum").fetchone()[0])
            if mode == 2:
                how = "incremental"
            else:
                size = self.size_bytes()
                room = shutil.disk_usage(self._path.parent).free
                worth = free * page * 10 >= size and free > 0
                how = "full" if worth and room > 2 * size else "none"
        if how == "none" or (how != "full" and free == 0):
            return "none"
        if how == "incremental":
            conn.execute("PRAGMA incremental_vacuum").fetchall()
        elif how == "full":
            conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return how

    def integrity_problems(self) -> list[str]:
        conn = self.connection
        problems = [
            f"integrity_check: {row[0]}"
            for row in conn.execute("PRAGMA integrity_check").fetchall()
            if row[0] != "ok"
        ]
        problems += [
            f"foreign key: {table} row {rowid} points at a missing {parent} row"
            for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check").fetchall()
        ]
        return problems

    def damage_problems(self, *, thorough: bool) -> list[str]:
        if thorough:
            check = "integrity_check"
            try:
                return self.integrity_problems()
            except sqlite3.DatabaseError as exc:
                return [f"{check}: {exc}"]
        check = "quick_check"
        try:
            rows = self.connection.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return [f"{check}: {exc}"]
        # SQLite puts several findings into one row, a line each.
        return [
            f"{check}: {line}" for (text,) in rows if text != "ok" for line in text.splitlines()
        ]

    def append_rows(
        self,
        conn: sqlite3.Connection,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> None:
        conn.executemany(_insert_sql(table, tuple(columns)), rows)

    def upsert_batch(
        self, conn: sqlite3.Connection, batch: Batch, *, on_conflict: OnConflict
    ) -> tuple[int, int]:
        """Many-row INSERT ... ON CONFLICT statements of ROWS_PER_STATEMENT rows."""
        table, width = batch.table, len(batch.columns)
        shared = [value for _, value in batch.constants]
        names = tuple(name for name, _ in batch.constants)
        chunk = ROWS_PER_STATEMENT * width

        def statement(rows: int) -> str:
            return _upsert_sql(
                table, batch.columns, names, batch.key, on_conflict=on_conflict, rows=rows
            )

        values = _stored_values(batch.values)
        whole = len(values) - len(values) % chunk
        # AUTOINCREMENT ids only grow, so rows above the old maximum are the new ones.
        highest_before = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
        # A cursor's rowcount counts the statement's own rows, not those its triggers change.
        changed = 0
        if whole:
            changed += conn.executemany(
                statement(ROWS_PER_STATEMENT),
                (shared + values[at : at + chunk] for at in range(0, whole, chunk)),
            ).rowcount
        if whole < len(values):
            rest = values[whole:]
            changed += conn.execute(statement(len(rest) // width), shared + rest).rowcount
        inserted = conn.execute(
            f"SELECT count(*) FROM {table} WHERE id > ?", (highest_before,)
        ).fetchone()[0]
        return int(inserted), changed

    def prepare_copied(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        units: Mapping[str, int],
    ) -> list[tuple[str, list[Sequence[Any]]]]:
        # Integer units are how SQLite stores amounts; from PostgreSQL they come as whole
        # Decimals, and past int64 they go in the overflow form.
        at_amounts = [index for index, name in enumerate(columns) if name in units]
        if at_amounts:
            rows = [_stored_row(row, at_amounts) for row in rows]
        # Many rows per INSERT (as upsert_batch does), each statement's values flattened.
        width = len(columns)
        chunk = max(1, min(ROWS_PER_STATEMENT, _MAX_VARIABLES // width))
        whole = len(rows) - len(rows) % chunk
        statements: list[tuple[str, list[Sequence[Any]]]] = []
        if whole:
            statements.append(
                (
                    _copied_insert_sql(table, tuple(columns), chunk),
                    [
                        [value for row in rows[at : at + chunk] for value in row]
                        for at in range(0, whole, chunk)
                    ],
                )
            )
        if whole < len(rows):
            statements.append((_copied_insert_sql(table, tuple(columns), 1), list(rows[whole:])))
        return statements

    def insert_copied(
        self, conn: sqlite3.Connection, prepared: list[tuple[str, list[Sequence[Any]]]]
    ) -> None:
        for statement, values in prepared:
            conn.executemany(statement, values)

    def id_counter(self, conn: sqlite3.Connection, table: str) -> int:
        row = conn.execute(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), "
            f"coalesce((SELECT max(id) FROM {table}), 0))",
            (table,),
        ).fetchone()
        return int(row[0])

    def advance_id_counter(self, conn: sqlite3.Connection, table: str, at_least: int) -> None:
        # AUTOINCREMENT hands out max(counter, largest id) + 1; rows inserted with their ids
        # have raised the counter already, but the source's counter may be higher still
        # (its newest rows deleted), and ids are never reused.
        self.require_write("advance_id_counter")
        changed = conn.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (at_least, table)
        ).rowcount
        if not changed and at_least > 0:
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, at_least))

    def violation(self, exc: Exception) -> Violation:
        message = str(exc)
        unique = re.match(r"UNIQUE constraint failed: (.+)", message)
        if unique:
            detail = unique.group(1)
            named_index = re.match(r"index '(.+)'", detail)
            if named_index:
                return Violation("unique", named_index.group(1), message=message)
            columns = tuple(part.split(".")[-1] for part in detail.split(", "))
            return Violation("unique", None, columns, message)
        check = re.match(r"CHECK constraint failed: (.+)", message)
        if check:
            return Violation("check", check.group(1), message=message)
        not_null = re.match(r"NOT NULL constraint failed: (.+)", message)
        if not_null:
            column = not_null.group(1).split(".")[-1]
            return Violation("not null", None, (column,), message)
        if message.startswith("FOREIGN KEY"):
            return Violation("foreign key", None, message=message)
        return Violation("other", None, message=message)


def writer_crashes(path: Path) -> int | None:
    """How many tradedb writers of the database at `path` have died inside a write
    transaction (None where there is no file lock, so no evidence is kept: see `file_locks`).

    A writer that comes next counts its predecessor's death when it takes its turn. If no
    writer has come since, this call sees the mark of a transaction in progress on a lock
    nobody holds, counts that death itself and clears the mark, so that a death is counted
    once, as soon as it can be known. Replication watches this number (a writer killed
    inside its commit can leave WAL frames that SQLite never made visible but Litestream
    copies).
    """
    return _WriterGate.of(path).crashes()


@contextmanager
def writer_turn(path: Path) -> Iterator[None]:
    """Hold the writer gate of the database at `path` for a while: tradedb writers (of
    every process) wait until it is left. For maintenance that must not interleave with
    their transactions, such as resetting the WAL between two replica generations."""
    gate = _WriterGate.of(path)
    gate.enter()
    try:
        yield
    finally:
        gate.leave()


class _WriterGate:
    """Makes writers of one database file take turns, across processes and threads.

    SQLite's busy handler polls with sleeps that grow to 100 ms, so a process committing
    back to back takes the lock again long before a waiting one looks: measured here, a
    fill waited 6.5 s behind another strategy's steady stream. Writers therefore first
    wait, without polling, on a lock on `<database>-writer.lock` (fcntl on POSIX,
    LockFileEx on Windows: see `file_locks`); the kernel wakes the waiter the moment the
    holder lets go, while the holder is still busy returning to its caller, so the turn
    passes. POSIX locks belong to a process, so threads of one process take turns on a
    re-entrant lock first. A process that dies holding the lock loses it with the
    process. Where there is no such lock (Windows without pywin32), SQLite's own waiting
    is all there is.

    Crash evidence: the holder marks the lock file "in a transaction" for its turn and
    clears the mark as it leaves (a read and two writes, no fsync: the mark needs to
    outlive a process, not the machine, and a reboot leaves no half-seen WAL frames). A
    mark found set by the next holder means the last one died inside its transaction;
    it adds one to the file's crash counter (see `writer_crashes`).
    """

    _gates: ClassVar[dict[Path, _WriterGate]] = {}
    _gates_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path) -> None:
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._path = Path(f"{path}-writer.lock")
        # The file is opened for each turn and closed after it, so that a process that
        # touches many databases does not keep a descriptor open for each.

    @classmethod
    def of(cls, path: Path) -> _WriterGate:
        key = path.resolve()
        with cls._gates_lock:
            gate = cls._gates.get(key)
            if gate is None:
                gate = cls._gates[key] = cls(key)
            return gate

    def enter(self) -> None:
        self._threads.acquire()
        try:
            if self._depth == 0 and file_locks.SUPPORTED:
                self._fd = os.open(self._path, _GATE_FLAGS | os.O_CREAT, OWNER_ONLY)
                try:
                    file_locks.lock(self._fd)
                    _settle_gate_header(self._fd, in_transaction=True)
                except BaseException:
                    file_locks.close(self._fd)
                    self._fd = None
                    raise
        except BaseException:
            self._threads.release()
            raise
        self._depth += 1

    def leave(self) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fd, self._fd = self._fd, None
                try:
                    _write_at(fd, b"\0")
                finally:
                    file_locks.close(fd)
        finally:
            self._threads.release()

    def crashes(self) -> int | None:
        if not file_locks.SUPPORTED:
            return None
        # Closing any descriptor of the file drops every POSIX lock this process holds on
        # it, so a check must not run while another thread of this process has its turn.
        with self._threads:
            if self._fd is not None:  # this thread is inside a transaction: the mark is ours
                return _read_gate_header(self._fd)[1]
            try:
                fd = os.open(self._path, _GATE_FLAGS)
            except FileNotFoundError:
                return 0  # no tradedb writer has written yet
            try:
                if not file_locks.try_lock(fd):
                    return _read_gate_header(fd)[1]  # a live writer's mark is its own
                return _settle_gate_header(fd, in_transaction=False)
            finally:
                file_locks.close(fd)


def _settle_gate_header(fd: int, *, in_transaction: bool) -> int:
    """With the gate's lock held: count the death a mark left by the last holder shows,
    then set the mark to `in_transaction`; the crash count. Writes only what changes."""
    marked, crashes = _read_gate_header(fd)
    if marked:
        crashes += 1
    if marked or in_transaction:
        _write_at(fd, _GATE_HEADER.pack(int(in_transaction), crashes))
    return crashes


def _read_gate_header(fd: int) -> tuple[bool, int]:
    # A lock file made before the header existed, or just created, is empty: no evidence.
    os.lseek(fd, 0, os.SEEK_SET)
    header = os.read(fd, _GATE_HEADER.size).ljust(_GATE_HEADER.size, b"\0")
    in_transaction, crashes = _GATE_HEADER.unpack(header)
    return bool(in_transaction), int(crashes)


def _write_at(fd: int, data: bytes) -> None:
    """Write at the start of the gate file (Windows has no os.pwrite)."""
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)


class _Checkpointer:
    """Copies the WAL back into the database file from a thread of its own.

    SQLite's automatic checkpoint runs inside whichever commit crosses the threshold and
    makes that commit wait for the copy and its fsyncs. Here commits only count the rows
    they wrote; every CHECKPOINT_EVERY_ROWS a daemon thread runs a PASSIVE checkpoint on
    its own connection, which never blocks readers or the writer. If the process dies, the WAL
    stays on disk and the next connection carries on from it; nothing is lost.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pid = os.getpid()
        self._rows = 0
        self._due = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tradedb-checkpoint", daemon=True)
        self._thread.start()

    def committed(self, rows: int) -> None:
        # Unlocked on purpose: a lost increment only delays one checkpoint a little.
        self._rows += rows
        if self._rows >= CHECKPOINT_EVERY_ROWS:
            self._rows = 0
            self._due.set()

    def stop(self) -> None:
        if self._pid != os.getpid():
            return  # the thread lives in the parent process
        self._stopping = True
        self._due.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            while True:
                self._due.wait()
                self._due.clear()
                if self._stopping:
                    break
                # PASSIVE copies what no reader still needs and returns at once if another
                # process is checkpointing; the next round picks up the rest.
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            pass  # a checkpoint is housekeeping; the next connection's will do the work
        finally:
            conn.close()


@cache
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


# One statement inserts this many rows. SQLite inserts several rows per statement about
# 1.8 times as fast as one (benchmarks/RESULTS.md): the per-statement work (cursors on the
# table and its two indexes, seeking from the root) is paid once per chunk, not per row.
ROWS_PER_STATEMENT = 500


@cache
def _upsert_sql(
    table: str,
    columns: tuple[str, ...],
    constants: tuple[str, ...],
    key: tuple[str, ...],
    *,
    on_conflict: OnConflict,
    rows: int,
) -> str:
    # Constants are ?1..?n; each plain ? after them takes the next number.
    selected = [f"column{index}" for index in range(1, len(columns) + 1)]
    selected += [f"?{index}" for index in range(1, len(constants) + 1)]
    placeholders = "(" + ", ".join("?" for _ in columns) + ")"
    insert = (
        f"INSERT INTO {table} ({', '.join((*columns, *constants))}) "
        f"SELECT {', '.join(selected)} FROM (VALUES {', '.join([placeholders] * rows)}) "
        # WHERE true: without it SQLite would read ON CONFLICT as part of a join.
        f"WHERE true ON CONFLICT ({', '.join(key)}) "
    )
    if on_conflict == "keep":
        return insert + "DO NOTHING"
    values = [name for name in (*columns, *constants) if name not in key]
    assignments = ", ".join(f"{name} = excluded.{name}" for name in values)
    # Rewriting a row with identical values would cost a write and count as a change.
    differs = " OR ".join(f"{name} IS NOT excluded.{name}" for name in values)
    return insert + f"DO UPDATE SET {assignments} WHERE {differs}"


@cache
def _copied_insert_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    one = "(" + ", ".join("?" for _ in columns) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * rows)}"


def read_only_uri(path: Path) -> str:
    """The `file:` URI that opens `path` read-only. The path is percent-encoded: unescaped,
    a `#`, `?` or `%` in a file name would end or change the URI (`my#db.sqlite` opened,
    and created, a file named `my`)."""
    return f"{path.absolute().as_uri()}?mode=ro"


def read_schema_status(path: Path, *, check_damage: bool = False) -> migrate.SchemaStatus:
    """The schema version of a database file, read without changing it; with
    `check_damage`, DatabaseDamaged if the cheap check at open (the first and last row of
    each table, see sqlite_damage) meets a damaged page."""
    check_location(path, must_exist=True)
    conn = sqlite3.connect(read_only_uri(path), uri=True)
    try:
        foreign = migrate.foreign_tables(conn)
        if foreign:
            raise migrate.not_ours(path, foreign)
        if check_damage:
            check_tables_readable(conn, path)
        return migrate.status(conn)
    except sqlite3.DatabaseError as exc:
        raise _unusable(exc, path) from None
    finally:
        conn.close()


def initialize(path: Path) -> tuple[str | None, migrate.SchemaStatus]:
    """Create the database at `path`, or upgrade it; return the revision before and after."""
    check_location(path)
    created = create_owner_only(path)
    before = None if created else read_schema_status(path, check_damage=True).current
    try:
        after = migrate.upgrade(path)
    except sqlite3.DatabaseError as exc:
        raise _unusable(exc, path) from None
    return before, after


def _unusable(exc: sqlite3.DatabaseError, path: Path) -> TradeDBError:
    """Why SQLite could not read the file at `path`: damaged, or never a database."""
    if isinstance(exc, DatabaseDamaged):
        return exc
    damage = damage_in(exc, path)
    if damage is not None:
        return damage
    return DatabaseLocationError(f"{path} is not a SQLite database: {exc}")


def _begin_immediate(conn: sqlite3.Connection) -> None:
    # busy_timeout already waits for the lock; the retry covers a wait that outlasts it
    # under heavy contention, so that "database is locked" never reaches the caller early.
    for attempt in range(BEGIN_ATTEMPTS):
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if attempt == BEGIN_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)


def check_location(path: Path, *, must_exist: bool = False) -> None:
    """Refuse a path that cannot hold a database, with a message that says why."""
    if path.is_dir():
        raise DatabaseLocationError(f"database path {path} is a folder, not a file")
    if path.exists() and not path.is_file():
        # SQLite would open a FIFO and wait forever for a writer to appear at its other end.
        raise DatabaseLocationError(
            f"database path {path} is {_kind_of_file(path)}, not a regular file"
        )
    if path.exists():
        if must_exist and not os.access(path, os.R_OK):
            raise DatabaseLocationError(f"database {path} cannot be read")
        if not must_exist and not os.access(path, os.W_OK):
            raise DatabaseLocationError(f"database {path} cannot be written")
        return
    if must_exist:
        raise DatabaseLocationError(f"database {path} does not exist")
    folder = path.parent
    if not folder.is_dir():
        raise DatabaseLocationError(
            f"folder {folder} does not exist; create it or put the database elsewhere"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseLocationError(
            f"folder {folder} cannot be written; put the database elsewhere"
        )


def _kind_of_file(path: Path) -> str:
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "something other than a file"


def create_owner_only(path: Path) -> bool:
    """Create an empty database file readable by its owner only; False if it existed."""
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, OWNER_ONLY)
    except FileExistsError:
        return False
    except OSError as exc:
        raise DatabaseLocationError(f"cannot create database {path}: {exc.strerror}") from None
    os.close(descriptor)
    # The umask may have narrowed the mode further, never widened it; set it exactly.
    owner_only.restrict(path, folder=False)
    return True


def _stored_values(values: list[Any]) -> list[Any]:
    """Batch values as SQLite stores them: units past int64 in the overflow form. Such
    units are rare (a meme coin's volume), so the common batch is returned as it is."""
    for value in values:
        if type(value) is int and not -INT64_MAX <= value <= INT64_MAX:
            return [stored(v) if type(v) is int else v for v in values]
    return values


def _stored_row(row: Sequence[Any], at_amounts: Sequence[int]) -> list[Any]:
    out = list(row)
    for index in at_amounts:
        value = out[index]
        if value is not None:
            out[index] = stored(int(value))
    return out


def add_exact_functions(conn: sqlite3.Connection) -> None:
    """Give a connection the exact aggregates over amounts past int64 (docs/schema.md)."""
    conn.create_aggregate("units_sum", -1, _UnitsSum)  # type: ignore[arg-type]
    conn.create_function("units_add", -1, _units_add, deterministic=True)


class _UnitsSum:
    """SQL aggregate units_sum(a, b, ...): the exact sum of every argument over the
    group, as SQLite stores units (an integer, or past int64 the overflow form); NULL
    when no value is, as sum() gives."""

    def __init__(self) -> None:
        self.total: int | None = None

    def step(self, *values: int | str | None) -> None:
        for value in values:
            if value is not None:
                self.total = units_of(value) + (self.total or 0)

    def finalize(self) -> int | str | None:
        return None if self.total is None else stored(self.total)


def _units_add(*values: int | str | None) -> int | str | None:
    """SQL function units_add(a, b, ...): the exact sum of a row's amounts, NULL if any
    is NULL, as SQL's + gives."""
    if any(value is None for value in values):
        return None
    return stored(sum(units_of(value) for value in values if value is not None))
