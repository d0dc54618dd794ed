"""The Database: one SQLite file, its connections, pragmas and transactions.

Threads: one Database object may be shared; each thread gets its own sqlite3 connection
(SQLite connections must not be used by two threads at once). Processes: each opens its
own Database; WAL lets readers run beside the one writer, every write transaction begins
IMMEDIATE so that writers queue on busy_timeout instead of failing, and a bounded retry
covers the rare wait that outlasts it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import ClassVar

from tradedb.errors import DatabaseLocationError, SchemaVersionError, TradeDBError
from tradedb.schema import migrate

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

PAGE_CACHE_KIB = 64 * 1024
BUSY_TIMEOUT_MS = 10_000
BEGIN_ATTEMPTS = 5
OWNER_ONLY = 0o600
# The first bytes of `<database>-writer.lock`: byte 0 is 1 while a writer is inside a
# transaction, bytes 8..16 count the writers that died inside one (unsigned, little-endian).
_GATE_HEADER = struct.Struct("<B7xQ")
# Rows written between background checkpoints. A ledger fill writes about 15 rows on as
# many pages, so this keeps the WAL near SQLite's default of 1000 pages; a bulk write of
# candles (about 50 rows a page) is checkpointed after each batch of 1000 rows or more.
CHECKPOINT_EVERY_ROWS = 1000


class Database:
    """A tradedb database file. Use `Database.open(path)`; close it or use `with`."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._checkpointer: _Checkpointer | None = None
        self._gate = _WriterGate.of(path)
        self._pid = os.getpid()

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, readonly: bool = False) -> Database:
        """Open a database, creating it (owner-only, at the newest schema) if it is new.

        A database at an older schema version is refused until `tradedb init` upgrades it,
        so that an upgrade is always a deliberate step the user can back up before.
        """
        location = Path(path).expanduser()
        check_location(location, must_exist=readonly)
        if not readonly and create_owner_only(location):
            migrate.upgrade(location)
        # Read the version without writing: a file that is not ours must stay untouched.
        state = read_schema_status(location)
        if state.current is None and not readonly:
            state = migrate.upgrade(location)  # an empty file; foreign tables are refused
        if not state.up_to_date:
            raise SchemaVersionError(describe_mismatch(location, state))
        return cls(location, readonly=readonly)

    # --- connections ---------------------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        if self._pid != os.getpid():
            self._forget_parent()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise DatabaseLocationError(f"database {self.path} is closed")
            conn = self._connect()
            self._local.conn = conn
            self._local.depth = 0
            self._local.synchronous = None
            self._local.rows_counted = 0
            with self._lock:
                self._connections.append(conn)
        return conn

    def _forget_parent(self) -> None:
        """In a forked child: SQLite connections must not cross a fork (their locks stay
        with the parent), so the child opens its own and leaves the parent's alone, as it
        does the parent's checkpoint thread, which did not come along."""
        self._pid = os.getpid()
        self._local = threading.local()
        self._connections = []
        self._checkpointer = None

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            uri = f"file:{self.path}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
        else:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            # Checkpoints run in a background thread (see _Checkpointer), not inside a
            # commit, where they would add milliseconds to one fill in every ~70.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
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
        self._local = threading.local()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions --------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it commits, or none of it.

        durable=True commits with synchronous=FULL (ledger writes survive power loss);
        durable=False uses NORMAL, for bulk market data and logs, which a power loss may
        cut short by its last moments but never corrupts. A transaction opened inside
        another joins it, so services can compose repository calls into one operation.
        """
        if self.readonly:
            # Refused here, before the writer gate creates `<database>-writer.lock` beside
            # a file this process was only meant to read.
            raise ReadOnlyDatabaseError(
                f"attempt to write a readonly database: {self.path} was opened read-only"
            )
        conn = self.connection
        if self._local.depth:
            if durable and self._local.synchronous != "FULL":
                # SQLite cannot raise the safety level inside a transaction, and a ledger
                # write must not be committed with less than FULL.
                raise TradeDBError(
                    "a durable (ledger) write cannot join a transaction opened with "
                    "durable=False; open the outer transaction with durable=True"
                )
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        wanted = "FULL" if durable else "NORMAL"
        if self._local.synchronous != wanted:
            conn.execute(f"PRAGMA synchronous = {wanted}")
            self._local.synchronous = wanted
        self._gate.enter()
        try:
            _begin_immediate(conn)
            self._local.depth = 1
            try:
                yield conn
            except BaseException:
                self._local.depth = 0
                conn.execute("ROLLBACK")
                raise
            self._local.depth = 0
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
                    self._checkpointer = _Checkpointer(self.path)
                checkpointer = self._checkpointer
        rows = conn.total_changes - self._local.rows_counted
        self._local.rows_counted = conn.total_changes
        checkpointer.committed(rows)

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed state."""
        conn = self.connection
        if self._local.depth:
            yield conn
            return
        conn.execute("BEGIN DEFERRED")
        self._local.depth = 1
        try:
            yield conn
        finally:
            self._local.depth = 0
            conn.execute("ROLLBACK")

    def size_bytes(self) -> int:
        """Bytes on disk, the write-ahead log included."""
        total = 0
        for suffix in ("", "-wal"):
            candidate = Path(f"{self.path}{suffix}")
            if candidate.exists():
                total += candidate.stat().st_size
        return total


class ReadOnlyDatabaseError(TradeDBError, sqlite3.OperationalError):
    """A write transaction on a Database opened read-only. It is also an OperationalError,
    the class of SQLite's own refusal, so that callers handling that one handle this."""


def writer_crashes(path: Path) -> int | None:
    """How many tradedb writers of the database at `path` have died inside a write
    transaction (None where there is no fcntl, on Windows: no evidence is kept there).

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
    wait, without polling, on a POSIX lock on `<database>-writer.lock`; the kernel wakes
    the waiter the moment the holder lets go, while the holder is still busy returning to
    its caller, so the turn passes. POSIX locks belong to a process, so threads of one
    process take turns on a re-entrant lock first. A process that dies holding the lock
    loses it with the process. Where fcntl does not exist (Windows), SQLite's own
    waiting is all there is.

    Crash evidence: the holder marks the lock file "in a transaction" for its turn and
    clears the mark as it leaves (a pread and two pwrites, no fsync: the mark needs to
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
            if self._depth == 0 and fcntl is not None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, OWNER_ONLY)
                try:
                    fcntl.lockf(self._fd, fcntl.LOCK_EX)
                    _settle_gate_header(self._fd, in_transaction=True)
                except BaseException:
                    os.close(self._fd)
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
                    os.pwrite(fd, b"\0", 0)
                finally:
                    os.close(fd)  # closing releases the lock
        finally:
            self._threads.release()

    def crashes(self) -> int | None:
        if fcntl is None:
            return None
        # Closing any descriptor of the file drops every POSIX lock this process holds on
        # it, so a check must not run while another thread of this process has its turn.
        with self._threads:
            if self._fd is not None:  # this thread is inside a transaction: the mark is ours
                return _read_gate_header(self._fd)[1]
            try:
                fd = os.open(self._path, os.O_RDWR)
            except FileNotFoundError:
                return 0  # no tradedb writer has written yet
            try:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno not in (errno.EACCES, errno.EAGAIN):
                        raise
                    return _read_gate_header(fd)[1]  # a live writer's mark is its own
                return _settle_gate_header(fd, in_transaction=False)
            finally:
                os.close(fd)


def _settle_gate_header(fd: int, *, in_transaction: bool) -> int:
    """With the gate's lock held: count the death a mark left by the last holder shows,
    then set the mark to `in_transaction`; the crash count. Writes only what changes."""
    marked, crashes = _read_gate_header(fd)
    if marked:
        crashes += 1
    if marked or in_transaction:
        os.pwrite(fd, _GATE_HEADER.pack(int(in_transaction), crashes), 0)
    return crashes


def _read_gate_header(fd: int) -> tuple[bool, int]:
    # A lock file made before the header existed, or just created, is empty: no evidence.
    header = os.pread(fd, _GATE_HEADER.size, 0).ljust(_GATE_HEADER.size, b"\0")
    in_transaction, crashes = _GATE_HEADER.unpack(header)
    return bool(in_transaction), int(crashes)


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


def read_schema_status(path: Path) -> migrate.SchemaStatus:
    """The schema version of a database file, read without changing it."""
    check_location(path, must_exist=True)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        foreign = migrate.foreign_tables(conn)
        if foreign:
            raise migrate.not_ours(path, foreign)
        return migrate.status(conn)
    except sqlite3.DatabaseError as exc:
        raise DatabaseLocationError(f"{path} is not a SQLite database: {exc}") from None
    finally:
        conn.close()


def initialize(path: Path) -> tuple[str | None, migrate.SchemaStatus]:
    """Create the database at `path`, or upgrade it; return the revision before and after."""
    check_location(path)
    before = None if create_owner_only(path) else read_schema_status(path).current
    try:
        after = migrate.upgrade(path)
    except sqlite3.DatabaseError as exc:
        raise DatabaseLocationError(f"{path} is not a SQLite database: {exc}") from None
    return before, after


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
            f"folder {folder} does not exist; create it or choose another --db"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseLocationError(f"folder {folder} cannot be written; choose another --db")


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
    os.chmod(path, OWNER_ONLY)
    return True


def describe_mismatch(path: Path, state: migrate.SchemaStatus) -> str:
    if state.current is None:
        return f"{path} has no tradedb schema; run `tradedb init --db {path}`"
    if state.current in migrate.revisions():
        return (
            f"{path} is at schema {state.current}, this tradedb needs {state.head}; "
            f"back it up, then run `tradedb init --db {path}` to upgrade"
        )
    return (
        f"{path} is at schema {state.current}, which is newer than this tradedb knows "
        f"({state.head}); upgrade tradedb"
    )
