"""The PostgreSQL engine: psycopg 3 connections from a pool, ledger writers in turns.

- Amounts are NUMERIC(20,8) and NUMERIC(10,4) under the spec's names: exact in, exact out,
  over the whole DECIMAL range.
- A thread takes a connection from the pool for one transaction and gives it back at
  its end, so threads never share one and none is kept while idle. Statements outside a
  transaction take one for the statement.
- Ledger writes (durable=True) take turns on one transaction-scoped advisory lock
  (LEDGER_LOCK) at READ COMMITTED: the ledger reads balances and orders and writes what
  follows from them, and no other ledger writer, in whatever process on whatever host,
  can change what it read before it commits, so no update is lost. `retrying` still runs
  an operation again after a serialization failure or a deadlock (a caller's composed
  transaction could meet one); callers never see either.
- Bulk writes (durable=False) are upserts keyed by their UNIQUE keys and run at READ
  COMMITTED with synchronous_commit off: like SQLite's NORMAL, a power loss may drop
  their last moments, never corrupt.
- Read snapshots are REPEATABLE READ READ ONLY transactions: one consistent view, and the
  server itself refuses a write inside one. A database opened read-only sets
  default_transaction_read_only for its sessions, so the server refuses every write.
- A broken connection (the server restarted, the network failed) is replaced. An
  operation that lost its connection before COMMIT was sent recorded nothing and is run
  again once the server answers; one that lost it while committing may or may not have
  been recorded, and raises DatabaseUnavailable saying so.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import psycopg
import psycopg.errors
from psycopg import sql as pg_sql
from psycopg_pool import ConnectionPool, PoolTimeout
from sqlalchemy import Table
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateTable

from tradedb.errors import (
    AmountOutOfRange,
    DatabaseDamaged,
    DatabaseLocationError,
    SchemaVersionError,
    TradeDBError,
    ValidationError,
)
from tradedb.models.values import AMOUNT, EXACT, DecimalSpec
from tradedb.schema import migrate
from tradedb.schema.money import INT64_MAX
from tradedb.schema.tables import PG_EPOCH_SECONDS_NOW, metadata
from tradedb.store.batch import Batch, OnConflict
from tradedb.store.database import (
    Database,
    DatabaseUnavailable,
    Dialect,
    Violation,
)
from tradedb.store.engines import PostgresTarget, companion_base, postgresql_bulk

T = TypeVar("T")

# PostgreSQL 13 is the oldest release tradedb is tested against the features of.
MIN_SERVER_VERSION = 130000
POOL_MAX = int(os.environ.get("TRADEDB_PG_POOL_MAX", "10"))
# How long an operation waits for a server that went away (a restart, a failover).
RECONNECT_SECONDS = float(os.environ.get("TRADEDB_PG_RECONNECT_SECONDS", "30"))
# How long a transaction waits for a free connection of the pool.
POOL_TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10
_RETRY_CAP_SECONDS = 0.2
# Durable (ledger) writers of a database take turns on this transaction-scoped advisory
# lock, whichever process and host they run in, as SQLite's writers take turns on its
# write lock: each reads balances and orders that no other ledger writer can change
# before it commits. (SERIALIZABLE would give the same guarantee by aborting and
# retrying the losers, which with every fill touching the same wallets is most of them.)
LEDGER_LOCK = 0x7464625F6C6564  # "tdb_led"


class PostgresDialect(Dialect):
    """Amounts as NUMERIC: the Decimal goes in and comes out as it is."""

    name = "postgresql"
    epoch_seconds_now = PG_EPOCH_SECONDS_NOW
    greatest = "greatest"
    least = "least"
    find_text = "strpos"
    table_exists = (
        "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?"
    )

    def amount_in(
        self, value: Decimal, scale: int, column: str, precision: int = AMOUNT.precision
    ) -> Decimal:
        if not value.is_finite():
            raise ValidationError(column, value, "NaN and infinity are not amounts")
        quantum = Decimal(1).scaleb(-scale)
        if value != value.quantize(quantum, context=EXACT):
            raise ValidationError(column, value, f"has more than {scale} decimal places")
        if value and value.adjusted() >= precision - scale:
            raise AmountOutOfRange(
                column, value, f"exceeds ±{DecimalSpec(precision, scale).largest}"
            )
        return value

    def amount_out(self, value: Any, scale: int) -> Decimal:
        return value if type(value) is Decimal else Decimal(value)

    def units_of(self, column: str, scale: int) -> str:
        # NUMERIC, not BIGINT: a volume's units pass int64.
        return f"CAST({column} * {10**scale} AS NUMERIC(38, 0))"

    def clamped_units_of(self, column: str, scale: int) -> str:
        # Both signs to INT64_MAX, the one value the fast reads look for.
        units = f"{column} * {10**scale}"
        return (
            f"CAST(CASE WHEN abs({units}) > {INT64_MAX} THEN {INT64_MAX} ELSE {units} END "
            "AS BIGINT)"
        )

    def exact_sum(self, column: str, *, exact: bool = False) -> tuple[str, ...]:
        return (f"coalesce(sum({column}), 0)",)

    def exact_sum_value(self, parts: Sequence[Any], scale: int) -> Decimal:
        (total,) = parts
        value = total if type(total) is Decimal else Decimal(total)
        return value.quantize(Decimal(1).scaleb(-scale), context=EXACT)

    def create_table_ddl(self, table: Table) -> str:
        dialect = make_url("postgresql+psycopg://").get_dialect()()
        return str(CreateTable(table).compile(dialect=dialect)).strip()


_PLACEHOLDER = re.compile(r"\?(\d*)|%")


@cache
def translate(statement: str) -> tuple[str, tuple[int, ...] | None]:
    """SQLite-style SQL (`?` and `?N` placeholders) as psycopg's `%s`, and the order in
    which the given parameters fill them (None when it is the given order)."""
    order: list[int] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "%":
            return "%%"
        number = match.group(1)
        order.append(int(number) - 1 if number else (order[-1] + 1 if order else 0))
        return "%s"

    text = _PLACEHOLDER.sub(replace, statement)
    return text, None if order == list(range(len(order))) else tuple(order)


def _arranged(order: tuple[int, ...] | None, params: Sequence[Any]) -> Sequence[Any]:
    return params if order is None else [params[index] for index in order]


class PgConnection:
    """One pooled connection inside a transaction, speaking the store's `?` SQL."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, statement: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        text, order = translate(statement)
        return self.raw.execute(text, _arranged(order, params))

    def executemany(
        self, statement: str, rows: Iterator[Sequence[Any]] | Sequence[Sequence[Any]]
    ) -> psycopg.Cursor[Any]:
        text, order = translate(statement)
        cursor = self.raw.cursor()
        cursor.executemany(text, (_arranged(order, row) for row in rows))
        return cursor


class _Rows:
    """The rows of a statement run on its own, read before its connection went back."""

    __slots__ = ("_rows", "description", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int, description: Any) -> None:
        self._rows = iter(rows)
        self.rowcount = rowcount
        self.description = description

    def fetchone(self) -> Any:
        return next(self._rows, None)

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return self._rows


class _Autocommit:
    """Statements outside any transaction: each takes a connection for itself."""

    __slots__ = ("_db",)

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    def execute(self, statement: str, params: Sequence[Any] = ()) -> _Rows:
        text, order = translate(statement)
        values = _arranged(order, params)

        def run(raw: psycopg.Connection[Any]) -> _Rows:
            cursor = raw.execute(text, values)
            rows = cursor.fetchall() if cursor.description is not None else []
            return _Rows(rows, cursor.rowcount, cursor.description)

        return self._db._on_connection(run)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> _Rows:
        raise DatabaseUnavailable(
            "executemany outside a transaction: open one with db.transaction()"
        )


class PostgresDatabase(Database):
    """A tradedb database on a PostgreSQL server."""

    engine = "postgresql"
    dialect = PostgresDialect()
    IntegrityError: ClassVar[Any] = (
        psycopg.errors.IntegrityError,
        psycopg.errors.NumericValueOutOfRange,
    )
    Error = psycopg.Error

    def __init__(self, target: PostgresTarget, *, readonly: bool = False) -> None:
        super().__init__(readonly=readonly)
        self.target = target
        self._pool: ConnectionPool[Any] | None = None
        self._pool_lock = threading.Lock()
        self._forsaken: list[object] = []
        self._closed = False
        self._autocommit = _Autocommit(self)

    @classmethod
    def open_url(cls, target: PostgresTarget, *, readonly: bool = False) -> PostgresDatabase:
        """Open a database on a server, creating tradedb's schema in it if it holds no
        tables. A database at an older schema is refused until `tradedb init` upgrades it;
        one holding other tables and no tradedb schema is refused and left untouched."""
        check_server(target)
        state = read_schema_status(target)
        if state.current is None and not readonly:
            state = upgrade(target)
        if not state.up_to_date:
            raise SchemaVersionError(migrate.describe_mismatch(str(target), state))
        return cls(target, readonly=readonly)

    @property
    def display_name(self) -> str:
        return str(self.target)

    @property
    def companion_base(self) -> Path:
        return companion_base(self.target)

    # --- connections ---------------------------------------------------------------------

    @property
    def pool(self) -> ConnectionPool[Any]:
        if self._pid != os.getpid():
            self._after_fork()
        pool = self._pool
        if pool is not None:
            return pool
        with self._pool_lock:
            if self._pool is None:
                if self._closed:
                    raise DatabaseLocationError(f"database {self.display_name} is closed")
                options = "-c default_transaction_read_only=on" if self.readonly else None
                self._pool = ConnectionPool(
                    conninfo(self.target, options=options),
                    min_size=1,
                    max_size=POOL_MAX,
                    kwargs={"autocommit": True},
                    timeout=POOL_TIMEOUT_SECONDS,
                    open=True,
                    name=f"tradedb {self.display_name}",
                )
            return self._pool

    def _after_fork(self) -> None:
        # The parent's connections and pool threads must stay the parent's: closing them
        # here would end the parent's sessions. The child starts a pool of its own.
        super()._after_fork()
        if self._pool is not None:
            self._forsaken.append(self._pool)
        self._pool = None
        self._pool_lock = threading.Lock()

    def _outside_transaction(self) -> _Autocommit:
        return self._autocommit

    def _on_connection(self, run: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run one autocommit statement on a pooled connection, on a new one if the
        pooled one turns out to be broken."""
        deadline = time.monotonic() + RECONNECT_SECONDS
        while True:
            raw = self._checkout()
            try:
                return run(raw)
            except psycopg.OperationalError as exc:
                if not raw.broken or time.monotonic() > deadline:
                    raise self._unavailable(exc, committing=False) from None
            finally:
                self._checkin(raw)
            self._wait_for_server(deadline)

    def _checkout(self) -> psycopg.Connection[Any]:
        try:
            connection: psycopg.Connection[Any] = self.pool.getconn()
            return connection
        except PoolTimeout as exc:
            raise DatabaseUnavailable(
                f"{self.display_name}: no database connection became free within "
                f"{POOL_TIMEOUT_SECONDS:.0f} s ({POOL_MAX} in use, TRADEDB_PG_POOL_MAX); "
                f"nothing was recorded and the operation can be retried ({exc})"
            ) from None

    def _checkin(self, raw: psycopg.Connection[Any]) -> None:
        pool = self._pool
        if pool is None or self._pid != os.getpid():
            return  # a connection of a pool this process no longer uses
        if raw.broken:
            raw.close()
        pool.putconn(raw)

    def _wait_for_server(self, deadline: float) -> None:
        """Drop the pool's broken connections and wait until the server answers again. A
        server that answers with a refusal that waiting cannot change (the database is
        gone, the password no longer works) is reported at once."""
        self.pool.check()
        delay = 0.05
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(
                    conninfo(self.target), connect_timeout=CONNECT_TIMEOUT_SECONDS
                ):
                    return
            except psycopg.OperationalError as exc:
                if any(refusal in str(exc) for refusal in _LASTING_REFUSALS):
                    raise DatabaseUnavailable(str(connect_error(self.target, exc))) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.close()

    # --- transactions --------------------------------------------------------------------

    def _begin_write(self, durable: bool) -> PgConnection:
        begin = (
            f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({LEDGER_LOCK})"
            if durable
            else "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit = off"
        )
        return PgConnection(self._begin(begin))

    def _begin_read(self) -> PgConnection:
        return PgConnection(self._begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))

    def _begin(self, statement: str) -> psycopg.Connection[Any]:
        """A pooled connection inside a new transaction. A connection the server dropped
        since it was pooled is replaced: nothing has happened on it yet."""
        deadline = time.monotonic() + RECONNECT_SECONDS
        while True:
            raw = self._checkout()
            try:
                raw.execute(statement)
                return raw
            except psycopg.OperationalError as exc:
                broken = raw.broken
                self._checkin(raw)
                if not broken or time.monotonic() > deadline:
                    raise self._unavailable(exc, committing=False) from None
            except BaseException:
                self._checkin(raw)
                raise
            self._wait_for_server(deadline)

    def _end_write(self, conn: PgConnection, *, commit: bool) -> None:
        self._end(conn.raw, "COMMIT" if commit else "ROLLBACK")

    def _end_read(self, conn: PgConnection) -> None:
        self._end(conn.raw, "ROLLBACK")

    def _end(self, raw: psycopg.Connection[Any], statement: str) -> None:
        try:
            if raw.broken:
                # The transaction died with the connection: the server recorded nothing.
                raise _LostBeforeCommit(self.display_name)
            try:
                raw.execute(statement)
            except psycopg.OperationalError as exc:
                if raw.broken:
                    raise self._unavailable(exc, committing=statement == "COMMIT") from None
                if statement == "ROLLBACK":
                    # A connection that cannot even roll back is left mid-protocol (a
                    # batch cut off by a restart leaves libpq in an aborted pipeline, not
                    # yet marked broken): nothing was committed, and it is not reused.
                    raw.close()
                    raise _LostBeforeCommit(self.display_name, _first_line(exc)) from None
                raise
        finally:
            self._checkin(raw)

    def retrying(self, operation: Callable[[], T]) -> T:
        if self._state.depth:
            return operation()
        delay = 0.002
        deadline = time.monotonic() + RECONNECT_SECONDS
        while True:
            try:
                return operation()
            except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
                # Another writer changed what this one read; run it again on the new state.
                time.sleep(random.uniform(0, delay))
                delay = min(delay * 2, _RETRY_CAP_SECONDS)
            except _LostBeforeCommit:
                if time.monotonic() > deadline:
                    raise
                self._wait_for_server(deadline)

    def lost_in(self, exc: BaseException) -> TradeDBError | None:
        # libpq's own failures carry no SQLSTATE: the server never answered. A batch cut
        # off by a restart raises one before the connection is marked broken.
        if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
            return _LostBeforeCommit(self.display_name, _first_line(exc))
        return None

    def damage_in(self, exc: BaseException) -> TradeDBError | None:
        # The server's own words for a page that fails its checks (SQLSTATE XX001, XX002).
        if isinstance(exc, (psycopg.errors.DataCorrupted, psycopg.errors.IndexCorrupted)):
            return DatabaseDamaged(self.display_name, _first_line(exc))
        return None

    def _unavailable(self, exc: Exception, *, committing: bool) -> DatabaseUnavailable:
        reason = _first_line(exc)
        if committing:
            return DatabaseUnavailable(
                f"{self.display_name}: the connection broke while committing ({reason}); "
                "the operation may or may not have been recorded: look it up, or run it "
                "again if it has an idempotency key (a fill's exchange_trade_id, an order "
                "id, a transfer's reference)"
            )
        return _LostBeforeCommit(self.display_name, reason)

    # --- what it holds -------------------------------------------------------------------

    def size_bytes(self) -> int:
        row = self.connection.execute("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0])

    def schema_status(self) -> migrate.SchemaStatus:
        row = self.connection.execute(
            "SELECT to_regclass(?) IS NOT NULL", (migrate.VERSION_TABLE,)
        ).fetchone()
        current = None
        if row[0]:
            version = self.connection.execute(
                f"SELECT version_num FROM {migrate.VERSION_TABLE}"
            ).fetchone()
            current = None if version is None else str(version[0])
        return migrate.SchemaStatus(current=current, head=migrate.head_revision())

    def int64_columns(self, conn: Any, sql: str, params: Sequence[Any], width: int) -> Any:
        """A binary COPY of the query's rows, read as fixed-width records by NumPy."""
        return postgresql_bulk.copy_out_int64(conn, sql, params, width)

    def rows_with_blobs(self, conn: Any, sql: str, params: Sequence[Any]) -> Any:
        # In text format a bytea travels as hex, twice its size, and psycopg decodes it:
        # a year of 1m candles' cache blocks took 57 ms that way and 16 ms in binary.
        text, order = translate(sql)
        values = _arranged(order, params)
        if isinstance(conn, PgConnection):
            return conn.raw.cursor(binary=True).execute(text, values)

        def run(raw: psycopg.Connection[Any]) -> _Rows:
            cursor = raw.cursor(binary=True).execute(text, values)
            return _Rows(cursor.fetchall(), cursor.rowcount, cursor.description)

        return self._on_connection(run)

    def bytes_per_row(self, table: str) -> float | None:
        row = self.connection.execute(
            f"SELECT pg_total_relation_size(?), (SELECT count(*) FROM {table})", (table,)
        ).fetchone()
        used, rows = int(row[0]), int(row[1])
        return None if not rows or not used else used / rows

    def reclaim_space(self, how: str) -> str:
        """PostgreSQL's autovacuum makes deleted rows' space reusable by itself; after a
        retention run `auto`, `incremental` and `full` run a plain VACUUM (ANALYZE) of
        the tables retention shortens, which never blocks readers or writers. (VACUUM
        FULL, which gives the space back to the file system, takes an exclusive lock on
        the table: run it yourself in a quiet moment.)"""
        if how == "none":
            return "none"

        def vacuum(raw: psycopg.Connection[Any]) -> None:
            for table in ("market_data", "tickers", "bot_logs", "balance_history"):
                raw.execute(f"VACUUM (ANALYZE) {table}")

        self._on_connection(vacuum)
        return "vacuum"

    def integrity_problems(self) -> list[str]:
        """Rows whose foreign key points at no row. PostgreSQL enforces foreign keys on
        every write, but a session with session_replication_role = replica (a restore
        tool, a logical replica) skips them; and it checks every page it reads where the
        cluster has data checksums."""
        problems = []
        for table in metadata.sorted_tables:
            for key in table.foreign_keys:
                child, parent = key.parent, key.column
                rows = self.connection.execute(
                    f"SELECT c.id FROM {table.name} c WHERE c.{child.name} IS NOT NULL AND "
                    f"NOT EXISTS (SELECT 1 FROM {parent.table.name} p "
                    f"WHERE p.{parent.name} = c.{child.name}) ORDER BY c.id"
                ).fetchall()
                problems += [
                    f"foreign key: {table.name} row {row_id} points at a missing "
                    f"{parent.table.name} row"
                    for (row_id,) in rows
                ]
        return problems

    def damage_problems(self, *, thorough: bool) -> list[str]:
        """The foreign-key check of `integrity_problems`, quick or not: the server checks
        every page it reads against its checksum (where the cluster has data checksums),
        so damaged pages surface as errors of the reads themselves."""
        return self.integrity_problems()

    def append_rows(
        self, conn: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        with conn.raw.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def upsert_batch(self, conn: Any, batch: Batch, *, on_conflict: OnConflict) -> tuple[int, int]:
        return postgresql_bulk.upsert_batch(conn, batch, on_conflict=on_conflict)

    def prepare_copied(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        units: Mapping[str, int],
    ) -> postgresql_bulk.CopyText:
        return postgresql_bulk.copy_text(table, columns, rows, units=units)

    def insert_copied(self, conn: Any, prepared: postgresql_bulk.CopyText) -> None:
        postgresql_bulk.copy_in(conn, prepared)

    def id_counter(self, conn: Any, table: str) -> int:
        _, handed_out = _sequence(conn, table)
        top = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
        return max(handed_out, int(top))

    def advance_id_counter(self, conn: Any, table: str, at_least: int) -> None:
        # Rows inserted with their ids leave the sequence where it was: set it past them,
        # and past any row the table held before.
        self.require_write("advance_id_counter")
        sequence, handed_out = _sequence(conn, table)
        top = int(conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0])
        wanted = max(at_least, top)
        if wanted > handed_out:
            conn.execute("SELECT setval(?, ?, true)", (sequence, wanted))

    def violation(self, exc: Exception) -> Violation:
        message = _first_line(exc)
        diag = getattr(exc, "diag", None)
        name = getattr(diag, "constraint_name", None)
        if isinstance(exc, psycopg.errors.UniqueViolation):
            return Violation("unique", name, message=message)
        if isinstance(exc, psycopg.errors.CheckViolation):
            return Violation("check", name, message=message)
        if isinstance(exc, psycopg.errors.NotNullViolation):
            column = getattr(diag, "column_name", None)
            return Violation("not null", None, (column,) if column else (), message)
        if isinstance(exc, psycopg.errors.ForeignKeyViolation):
            return Violation("foreign key", name, message=message)
        if isinstance(exc, psycopg.errors.NumericValueOutOfRange):
            return Violation("range", None, message=message)
        return Violation("other", name, message=message)


def _sequence(conn: Any, table: str) -> tuple[str, int]:
    """The sequence behind a table's id, and the highest id it has handed out (0 if none)."""
    (sequence,) = conn.execute("SELECT pg_get_serial_sequence(?, 'id')", (table,)).fetchone()
    last_value, is_called = conn.execute(f"SELECT last_value, is_called FROM {sequence}").fetchone()
    return str(sequence), int(last_value) if is_called else 0


class _LostBeforeCommit(DatabaseUnavailable):
    """The connection broke before COMMIT was sent: the server rolled the transaction back,
    so nothing was recorded, and the operation can be run again."""

    def __init__(self, name: str, reason: str = "the server closed the connection") -> None:
        super().__init__(
            f"{name}: the database connection broke ({reason}); nothing was recorded, "
            "and the operation can be retried"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- connecting --------------------------------------------------------------------------


def conninfo(target: PostgresTarget, *, options: str | None = None) -> str:
    """libpq's connection string for a target (it holds the password: never print it)."""
    url = target.url
    params: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "dbname": url.database,
        "user": url.username,
        "password": url.password,
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "application_name": "tradedb",
    }
    for key, value in url.query.items():
        params[key] = value if isinstance(value, str) else value[-1]
    if options:
        params["options"] = f"{params.get('options', '')} {options}".strip()
    return psycopg.conninfo.make_conninfo(
        **{key: value for key, value in params.items() if value is not None}
    )


# What a server says when it is up but will not let this connection in, whatever the wait.
_LASTING_REFUSALS = (
    "does not exist",
    "password authentication failed",
    "no pg_hba.conf entry",
    "permission denied",
)
_SERVER_PREFIX = r'^connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed: '


def connect_error(target: PostgresTarget, exc: Exception) -> DatabaseLocationError:
    """A failed connection as one line that names the URL (password masked) and the
    server's reason, which never holds the password."""
    reason = _first_line(exc)
    password = target.url.password
    if password:
        reason = reason.replace(str(password), "***")
    reason = re.sub(r"^connection failed: ", "", reason)
    reason = re.sub(
        r'^connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed: ', "", reason
    )
    return DatabaseLocationError(f"{target}: cannot connect: {reason}")


def check_server(target: PostgresTarget) -> None:
    """Connect once: the server is there, the credentials work, the database exists and
    the server is new enough."""
    try:
        with psycopg.connect(conninfo(target), autocommit=True) as conn:
            version = conn.info.server_version
    except psycopg.Error as exc:
        raise connect_error(target, exc) from None
    if version < MIN_SERVER_VERSION:
        raise DatabaseLocationError(
            f"{target}: the server runs PostgreSQL {_version_text(version)}; tradedb needs "
            f"{_version_text(MIN_SERVER_VERSION)} or newer"
        )


def server_identity(target: PostgresTarget) -> tuple[str, int]:
    """What tells one database of one running server from every other, however its host
    is spelt: the server's start time and the database's oid."""
    try:
        with psycopg.connect(conninfo(target), autocommit=True) as conn:
            row = conn.execute(
                "SELECT CAST(pg_postmaster_start_time() AS text), CAST(oid AS bigint) "
                "FROM pg_database WHERE datname = current_database()"
            ).fetchone()
    except psycopg.Error as exc:
        raise connect_error(target, exc) from None
    assert row is not None, "the connected database is in pg_database"
    return str(row[0]), int(row[1])


def _version_text(number: int) -> str:
    return f"{number // 10000}.{number % 10000}"


def read_schema_status(target: PostgresTarget) -> migrate.SchemaStatus:
    """The schema version of a database, read without changing it; one holding other
    tables and no tradedb version is refused."""
    try:
        with psycopg.connect(conninfo(target), autocommit=True) as conn:
            tables = [
                str(name)
                for (name,) in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "ORDER BY tablename"
                )
            ]
            current = None
            if migrate.VERSION_TABLE in tables:
                row = conn.execute(
                    pg_sql.SQL("SELECT version_num FROM {}").format(
                        pg_sql.Identifier(migrate.VERSION_TABLE)
                    )
                ).fetchone()
                current = None if row is None else str(row[0])
    except psycopg.Error as exc:
        raise connect_error(target, exc) from None
    if current is None and tables:
        raise migrate.not_ours(str(target), tables)
    return migrate.SchemaStatus(current=current, head=migrate.head_revision())


def upgrade(target: PostgresTarget) -> migrate.SchemaStatus:
    """Create tradedb's schema in the database, or upgrade it (one transaction)."""
    try:
        return migrate.upgrade_url(target.url.set(drivername="postgresql+psycopg"), str(target))
    except psycopg.Error as exc:
        raise connect_error(target, exc) from None


def initialize(target: PostgresTarget) -> tuple[str | None, migrate.SchemaStatus]:
    """Create the schema or upgrade it; the revision before and after."""
    check_server(target)
    before = read_schema_status(target).current
    return before, upgrade(target)
