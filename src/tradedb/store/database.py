"""The Database: one engine's connections and transactions, in explicit modes.

Every engine (SQLite in `engines.sqlite`, PostgreSQL in `engines.postgresql`) gives the
store the same things: a connection per thread whose `execute(sql, params)` takes SQL
with `?` placeholders, write transactions and read snapshots, and a `Dialect` that says
how amounts are stored and spells the few functions the engines name differently.

Modes. A thread is outside any transaction, inside a write transaction, or inside a read
snapshot. A snapshot may be opened inside a write transaction (reads see the writer's own
changes), never the reverse: a write inside a snapshot would report success and then be
rolled back with the snapshot, so it is refused with TransactionModeError. The store's
write helpers that run in their caller's transaction (`require_write`) refuse to run
outside one for the same reason: autocommitted piece by piece, an operation would no
longer be all or nothing.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from tradedb.errors import TradeDBError
from tradedb.models.values import AMOUNT

if TYPE_CHECKING:
    from sqlalchemy import Table

    from tradedb.schema.migrate import SchemaStatus
    from tradedb.store.batch import Batch, OnConflict
    from tradedb.store.engines import PostgresTarget

EngineName = Literal["sqlite", "postgresql"]
Mode = Literal["read", "write"]
T = TypeVar("T")


class TransactionModeError(TradeDBError):
    """A write where only reads may run: inside a read snapshot, or a write helper called
    outside a write transaction. Nothing was written."""


class DatabaseUnavailable(TradeDBError):
    """The database server could not be reached, or the connection broke. The message says
    whether the operation may have been recorded; re-running it is safe for operations
    with an idempotency key (fills, orders, referenced transfers, candles, tickers)."""


class ReadOnlyDatabaseError(TradeDBError):
    """A write transaction on a database opened read-only."""

    def __init__(self, name: str) -> None:
        super().__init__(f"attempt to write a readonly database: {name} was opened read-only")


@dataclass(frozen=True)
class Violation:
    """What a database constraint refused: its kind and the constraint or the columns."""

    kind: Literal["unique", "check", "foreign key", "not null", "range", "other"]
    # The constraint or index name where the engine reports one.
    name: str | None
    # Columns, where the engine reports them instead of a name (SQLite's UNIQUE).
    columns: tuple[str, ...] = ()
    message: str = ""


class Dialect(ABC):
    """How one engine stores amounts and spells what the engines spell differently."""

    name: ClassVar[EngineName]
    # SQL for the current time in epoch seconds (the spec's `strftime('%s', 'now')`).
    epoch_seconds_now: ClassVar[str]
    # The two-argument scalar max() and min().
    greatest: ClassVar[str]
    least: ClassVar[str]
    # Position of a substring (1-based, 0 when absent).
    find_text: ClassVar[str]
    # A count (0 or 1) of the tables of the database's own schema named `?`.
    table_exists: ClassVar[str]

    @abstractmethod
    def amount_in(
        self, value: Decimal, scale: int, column: str, precision: int = AMOUNT.precision
    ) -> Any:
        """A checked Decimal as the engine stores it; refuses what the column cannot hold."""

    @staticmethod
    def amount_number(value: Any) -> Any:
        """A stored amount as a number Python adds exactly: SQLite's units as an int,
        PostgreSQL's Decimal as it is."""
        return value

    @staticmethod
    def amount_stored(number: Any) -> Any:
        """An `amount_number` back in the stored form."""
        return number

    @abstractmethod
    def amount_out(self, value: Any, scale: int) -> Decimal:
        """A stored amount (never NULL) as the Decimal it stands for."""

    @abstractmethod
    def units_of(self, column: str, scale: int) -> str:
        """SQL giving an amount column as its exact integer units of 10**-scale (past
        int64: SQLite's overflow text, PostgreSQL's NUMERIC)."""

    @abstractmethod
    def clamped_units_of(self, column: str, scale: int) -> str:
        """SQL giving an amount column as int64 units, a value past int64 as INT64_MAX:
        the fast reads' form, which reads such rows again exactly."""

    def sum_of(self, *columns: str, exact: bool = False) -> str:
        """SQL summing amount columns (each row's values added together) over a group.
        Exact on PostgreSQL; on SQLite `exact` asks for it (see Database.summed_rows)."""
        return f"sum({' + '.join(columns)})"

    def add_of(self, *columns: str, exact: bool = False) -> str:
        """SQL adding amount columns within a row, as `sum_of` does."""
        return f"({' + '.join(columns)})"

    @abstractmethod
    def exact_sum(self, column: str, *, exact: bool = False) -> tuple[str, ...]:
        """Aggregates over an amount column whose results `exact_sum_value` turns into the
        column's exact sum, however large it grows (0 when no row is selected); read them
        with Database.summed_rows."""

    @abstractmethod
    def exact_sum_value(self, parts: Sequence[Any], scale: int) -> Decimal:
        """The exact sum from the results of the `exact_sum` aggregates."""

    @abstractmethod
    def create_table_ddl(self, table: Table) -> str:
        """CREATE TABLE for a table defined in tradedb.schema.tables, as this engine spells it."""


class _ThreadState(threading.local):
    depth = 0
    mode: Mode | None = None
    durable = False
    conn: Any = None


class Database(ABC):
    """A tradedb database. Open one with `Database.open(target)`; close it or use `with`.

    One Database may be shared by threads; each thread has its own connection and its own
    transaction. Each process opens its own.
    """

    engine: ClassVar[EngineName]
    dialect: ClassVar[Dialect]
    # The driver's integrity error class: what the store catches to name the broken rule.
    IntegrityError: ClassVar[type[Exception]]
    # The driver's base error class.
    Error: ClassVar[type[Exception]]
    ReadOnly: ClassVar[type[ReadOnlyDatabaseError]] = ReadOnlyDatabaseError

    def __init__(self, *, readonly: bool) -> None:
        self.readonly = readonly
        self._state = _ThreadState()
        self._pid = os.getpid()

    @staticmethod
    def open(
        target: str | os.PathLike[str] | PostgresTarget, *, readonly: bool = False
    ) -> Database:
        """The database at a path or URL: a SQLite file (a path or sqlite:///...) or a
        PostgreSQL database (postgresql://user:password@host:port/name)."""
        from tradedb.store.engines import open_database

        return open_database(target, readonly=readonly)

    # --- what it is ------------------------------------------------------------------------

    @property
    @abstractmethod
    def display_name(self) -> str:
        """The path, or the URL with its password masked: safe to print and to log."""

    @property
    def path(self) -> Path:
        """The database file (SQLite only; a server database has none)."""
        raise TradeDBError(f"{self.display_name} is a {self.engine} database, not a file")

    @property
    @abstractmethod
    def companion_base(self) -> Path:
        """What the database's own files (Parquet archives, maintain's state) are named
        after, as `<stem>-archives/` beside it: the SQLite file itself, or for a server
        database a name in the user data folder."""

    @abstractmethod
    def size_bytes(self) -> int:
        """Bytes the database takes on disk."""

    @abstractmethod
    def int64_columns(self, conn: Any, sql: str, params: Sequence[Any], width: int) -> Any:
        """The rows of a query of `width` integer columns as a NumPy int64 array of shape
        (width, rows), without a Python object per value where the engine allows."""

    def rows_with_blobs(self, conn: Any, sql: str, params: Sequence[Any]) -> Any:
        """The rows of a query that returns binary columns, as bytes; an engine whose
        default transfer encodes them as text reads them in its binary format instead."""
        return conn.execute(sql, params)

    @abstractmethod
    def bytes_per_row(self, table: str) -> float | None:
        """Average bytes a row of `table` and its indexes take on disk; None where the
        engine cannot tell or the table is empty."""

    @abstractmethod
    def reclaim_space(self, how: str) -> str:
        """Give the space of deleted rows back after a large delete. `how` is 'auto',
        'incremental', 'full' or 'none'; returns what was done ('none' for nothing)."""

    @abstractmethod
    def schema_status(self) -> SchemaStatus:
        """The schema revision the database is at and the newest this tradedb knows."""

    @abstractmethod
    def integrity_problems(self) -> list[str]:
        """What the engine's own consistency checks find wrong; empty when all is well."""

    @abstractmethod
    def damage_problems(self, *, thorough: bool) -> list[str]:
        """Damage to the stored data the engine can find: a quick check, or with
        `thorough` the engine's full one (`integrity_problems`). Empty when none."""

    @abstractmethod
    def append_rows(
        self, conn: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert rows of plain values (no amounts) in the open transaction `conn`, by the
        engine's bulk path: executemany on SQLite, COPY on PostgreSQL."""

    @abstractmethod
    def upsert_batch(self, conn: Any, batch: Batch, *, on_conflict: OnConflict) -> tuple[int, int]:
        """Write checked rows in the open transaction `conn`, resolving conflicts on
        `batch.key` ('replace' changes what differs, 'keep' leaves stored rows alone); the
        rows inserted and the rows inserted or changed."""

    @abstractmethod
    def violation(self, exc: Exception) -> Violation:
        """What an IntegrityError (or the engine's range error) refused."""

    # --- copies between databases (tradedb migrate-db) -------------------------------------

    @abstractmethod
    def prepare_copied(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        units: Mapping[str, int],
    ) -> Any:
        """Rows copied from another tradedb database, made ready for `insert_copied` (the
        engine's bulk form). It needs no connection, so a thread can prepare the next page
        while the last one is written. Values are as this engine stores them, except the
        amount columns named in `units` (name -> scale): those hold integer units, the
        form amounts take between two engines."""

    @abstractmethod
    def insert_copied(self, conn: Any, prepared: Any) -> None:
        """Insert rows made ready by `prepare_copied`, ids included, in the open write
        transaction `conn`."""

    @abstractmethod
    def id_counter(self, conn: Any, table: str) -> int:
        """The highest id a table has handed out or holds: its AUTOINCREMENT counter or
        sequence, or its largest id where that is higher (0 for a table never used)."""

    @abstractmethod
    def advance_id_counter(self, conn: Any, table: str, at_least: int) -> None:
        """Make the next id the table hands out larger than `at_least` and than every id
        it holds, in the open write transaction `conn`; a counter already past them stays
        where it is."""

    # --- connections -------------------------------------------------------------------------

    def summed_rows(self, build: Callable[[bool], str], params: Sequence[Any] = ()) -> list[Any]:
        """The rows of a query whose amounts are sums or additions (`Dialect.sum_of`,
        `add_of`), built by `build(exact)`; an engine whose fast arithmetic can fail to be
        exact runs it again with `exact`."""
        return list(self.connection.execute(build(False), params).fetchall())

    @property
    def connection(self) -> Any:
        """The connection for this thread: inside a transaction, the transaction's own;
        outside one, each statement runs (and commits, if it writes) on its own."""
        if self._pid != os.getpid():
            self._after_fork()
        state = self._state
        if state.conn is not None and state.depth:
            return state.conn
        return self._outside_transaction()

    @abstractmethod
    def _outside_transaction(self) -> Any:
        """The connection-like object for statements outside any transaction."""

    def _after_fork(self) -> None:
        """In a forked child: a connection must not cross a fork, so the child opens its own
        and leaves the parent's alone."""
        self._pid = os.getpid()
        self._state = _ThreadState()

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions --------------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        """Whether this thread is inside a write transaction or a read snapshot."""
        return self._state.depth > 0

    @property
    def in_write_transaction(self) -> bool:
        return self._state.depth > 0 and self._state.mode == "write"

    def require_write(self, what: str) -> None:
        """Refuse a write helper outside a write transaction (see the module docstring)."""
        if self._state.mode != "write" or not self._state.depth:
            inside = "a read snapshot" if self._state.mode == "read" else "no transaction"
            raise TransactionModeError(
                f"{what} writes in its caller's transaction, and it was called in {inside}; "
                "open a write transaction with db.transaction() first"
            )

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Any]:
        """One write transaction: all of it commits, or none of it.

        durable=True commits so that a power loss cannot undo it (ledger writes);
        durable=False may lose its last moments to a power loss, never corrupt (bulk
        market data, logs). A transaction opened inside another joins it, so services can
        compose several writes into one operation.
        """
        if self._pid != os.getpid():
            self._after_fork()
        state = self._state
        if state.depth:
            if state.mode == "read":
                raise TransactionModeError(
                    "a write was started inside a read snapshot, which would roll it back "
                    "at its end; open the write transaction outside the snapshot"
                )
            if durable and not state.durable:
                # The outer transaction commits with less safety than a ledger write needs
                # (and on PostgreSQL with weaker isolation); it cannot be raised midway.
                raise TransactionModeError(
                    "a durable (ledger) write cannot join a transaction opened with "
                    "durable=False; open the outer transaction with durable=True"
                )
            state.depth += 1
            try:
                yield state.conn
            finally:
                state.depth -= 1
            return
        if self.readonly:
            # Refused before the engine takes any lock or creates any file for a writer.
            raise self.ReadOnly(self.display_name)
        try:
            conn = self._begin_write(durable)
            state.conn, state.depth, state.mode, state.durable = conn, 1, "write", durable
            try:
                yield conn
            except BaseException as exc:
                state.depth, state.mode = 0, None
                self._end_write(conn, commit=False)
                lost = self.lost_in(exc)
                if lost is not None:
                    raise lost from None
                raise
            state.depth, state.mode = 0, None
            self._end_write(conn, commit=True)
        except self.Error as exc:
            damage = self.damage_in(exc)
            if damage is None:
                raise
            raise damage from exc

    @contextmanager
    def snapshot(self) -> Iterator[Any]:
        """A read transaction: every query inside sees the same committed state. Inside a
        write transaction it is that transaction (its reads see its own writes)."""
        if self._pid != os.getpid():
            self._after_fork()
        state = self._state
        if state.depth:
            state.depth += 1
            try:
                yield state.conn
            finally:
                state.depth -= 1
            return
        try:
            conn = self._begin_read()
            state.conn, state.depth, state.mode = conn, 1, "read"
            try:
                yield conn
            finally:
                state.depth, state.mode = 0, None
                self._end_read(conn)
        except self.Error as exc:
            damage = self.damage_in(exc)
            if damage is None:
                raise
            raise damage from exc

    def lost_in(self, exc: BaseException) -> TradeDBError | None:
        """The error to raise in place of a driver error that a write transaction's
        statement met because the connection was lost (nothing was committed), if it is
        one; None for every other error."""
        return None

    def damage_in(self, exc: BaseException) -> TradeDBError | None:
        """The DatabaseDamaged a driver error reports, if it reports damage to the stored
        data; transactions and snapshots raise that instead of the driver's error."""
        return None

    def retrying(self, operation: Callable[[], T]) -> T:
        """Run a write operation (which opens its own transaction); on an engine that
        reports conflicts between concurrent writers instead of queueing them, run it again
        from the start until it commits. Inside a transaction it runs once: the outermost
        transaction is the one that can be run again."""
        return operation()

    @abstractmethod
    def _begin_write(self, durable: bool) -> Any:
        """Begin a write transaction; its connection."""

    @abstractmethod
    def _end_write(self, conn: Any, *, commit: bool) -> None:
        """Commit (or roll back) the write transaction on `conn` and release it."""

    @abstractmethod
    def _begin_read(self) -> Any: ...

    @abstractmethod
    def _end_read(self, conn: Any) -> None: ...
