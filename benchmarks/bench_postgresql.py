"""PostgreSQL: tradedb's candle ingest, candle read, one fill and several writers on a
PostgreSQL server, each against a baseline measured in the same run.

Run:  .venv/bin/python benchmarks/bench_postgresql.py [--rows N] [--read-rows R] [--fills F]
          [--repeat K] [--writers 4,8] [--writer-fills W] [--quick] [--dir FOLDER]
          [--write PATH]

The run starts its own PostgreSQL server, as the tests start theirs (tests/pg_server.py:
initdb in a temporary folder, loopback, the `postgres` user), here with fsync on; it never
uses a server that was already running. Every database is a copy of one made by
`tradedb.open` (tradedb's whole schema: tables, indexes, the candle-cache triggers), taken
with CREATE DATABASE ... TEMPLATE, not timed. The parts, in this order:

1. Ingest. N 1m candles of one market (candle_data.make_candles), each run into a fresh
   database, the variants taking turns (the order rotates from run to run); a CHECKPOINT
   before each run, so that none pays for the WAL of the one before. Median of K runs,
   after one untimed write of 10,000 candles per variant (imports, first calls) and one
   untimed COPY of all N (the server's first large write creates its WAL files).
   - `db.market.write_candles` (the public API) with ccxt-shaped rows of str, and of
     Decimal (ccxt with number=Decimal); the handle's connection is opened untimed.
   - baseline: psycopg `COPY market_data (...) FROM STDIN` of the same rows as COPY text
     made in memory before timing (the candles' own decimal strings), in one transaction
     at the server's default settings: the fastest form, only the server's and the
     socket's work is timed.
   - for information, the COPY a psycopg user writes straight from the str rows:
     `Copy.write_row` per row (psycopg's per-row adaptation timed too).
   After every run the market's row count and exact sums of the timestamp and of every
   NUMERIC amount column must equal the source's, and no other row may exist.
2. Read. R 1m candles of one market (a year is 525,600) and two neighbouring markets of
   up to 100,000 candles, written through `db.market.write_candles` a week at a time in
   turns (as a collector writes) into a PostgreSQL database and a SQLite file. The
   PostgreSQL database is kept as the write left it (autovacuum off on its candle tables,
   so that it cannot analyze them in the middle of the runs): what a reader meets in the
   first minute or so after a large write. A copy of it gets VACUUM ANALYZE, what
   autovacuum does after that. SQLite has no such difference: one file serves both.
   `db.market.candles(...)` (pandas, float64), the variants taking turns; median of K+4
   runs:
   - first read after the write: a new handle on the database as written (its
     connection opened untimed), its first call timed. tradedb's read cache
     (candle_blocks, in the database) was filled by the write itself, so this reads the
     cache too;
   - handle kept open, as a bot keeps it, on the database as written, and on the copy
     after VACUUM ANALYZE;
   - no cached blocks: the market's candle_blocks rows deleted (untimed, on the analyzed
     copy) before the read, which then reads the rows and builds the blocks again: what
     a first read costs when the candles were written by another tool.
   An untimed first round checks every frame equal to one built from the source
   strings (bench_read.freqtrade_frame).
3. One fill. The fill sequence of bench_fills.py (make_plan: two symbols, two strategies,
   orders filled in ten parts, fees in the quote, the base and a third currency), F timed
   fills after warm-up fills. Three copies of one database holding the deposits and
   orders: on A, tradedb records the whole sequence (untimed) while every statement and
   its parameters that tradedb hands psycopg is captured, per fill (psycopg's
   Cursor.execute and executemany wrapped); then, fill by fill in turns (rotating who
   goes first), C records the fill through `db.ledger.record_fill` (timed) and B replays
   the statements A captured for it on one raw psycopg connection (timed): the same
   BEGIN (with tradedb's ledger lock), the same statements with the same parameters
   (row-returning ones fetched), the same COMMIT. B is in the state A was in, so the
   statements apply alike and sequences hand out the same ids. At the end A, B and C
   must hold the same ledger rows (created_at/updated_at aside) and pass the audit.
   p50/p99 and the calling thread's CPU time per run; medians of K runs.
4. Writers. 1 writer, then each count of --writers, as processes at once on one
   database: each its own strategy and orders (make_plan with its own tag), all the same
   wallets; the warm-up fills first from one process; then each records W fills back to
   back. Total fills/s is all fills ÷ the wall clock from the first start to the last
   end; each writer's p50 and p99; errors that reached a caller (must be 0: tradedb
   retries what the server aborts); afterwards the audit must pass and the trade count
   must be exact. Median of K runs.

--quick runs every part at small sizes, for a smoke test (its figures mean little).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd
import psycopg
from pandas.testing import assert_frame_equal

import tradedb
from bench_fills import CLOCK_COLUMNS, COMPARED, FUNDS, TS, Plan, make_plan, p99
from bench_read import NEIGHBOURS, WEEK, freqtrade_frame
from candle_data import EXCHANGE, SYMBOL, TIMEFRAME, Candles, make_candles
from results_file import preamble, replace_section

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
import pg_server

SECTION = "## PostgreSQL (benchmarks/bench_postgresql.py)"
AMOUNT_COLUMNS = ("open_price", "high_price", "low_price", "close_price", "volume")
# The order of candle_data's unit tuples.
CANDLE_COLUMNS = ("symbol", "timestamp", *AMOUNT_COLUMNS, "timeframe", "exchange")
COPY_CANDLES = f"COPY market_data ({', '.join(CANDLE_COLUMNS)}) FROM STDIN"
COPY_CHUNK_ROWS = 10_000
WARMUP_CANDLES = 10_000
NEIGHBOUR_ROWS = 100_000

INGEST_STR = "tradedb write_candles, str rows"
INGEST_DECIMAL = "tradedb write_candles, Decimal rows"
COPY_PREPARED = "baseline: psycopg COPY of text made before timing"
COPY_WRITE_ROW = "psycopg COPY, write_row of the str rows (for information)"
INGEST_GOAL = 0.7

FIRST_READ = "first read after the write, new handle"
KEPT_WRITTEN = "handle kept open, database as the write left it"
KEPT_SETTLED = "handle kept open, after VACUUM ANALYZE"
UNCACHED = "no cached blocks, after VACUUM ANALYZE (rows read, blocks rebuilt)"
READ_KINDS = (FIRST_READ, KEPT_WRITTEN, KEPT_SETTLED, UNCACHED)
FRESH_TABLES = ("market_data", "candle_blocks")
READ_GOAL = 2.0

TRADEDB_FILL = "tradedb db.ledger.record_fill"
RAW_FILL = "raw psycopg transaction of the same statements"

QUICK = {
    "rows": 30_000,
    "read_rows": 20_000,
    "fills": 100,
    "warmup": 20,
    "repeat": 2,
    "writer_fills": 30,
}


def fail(message: str) -> NoReturn:
    """A wrong result fails the run, whatever Python's -O does to assert."""
    raise AssertionError(message)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


@contextmanager
def phase(name: str) -> Iterator[None]:
    print(name, file=sys.stderr, flush=True)
    start = time.perf_counter()
    yield
    print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)


def rotated(names: list[Any], turn: int) -> list[Any]:
    shift = turn % len(names)
    return names[shift:] + names[:shift]


# --- the server --------------------------------------------------------------------------------


class Cluster:
    """The run's own server, and a template database holding tradedb's schema."""

    def __init__(self) -> None:
        self.server = pg_server.start_server(fsync=True)
        try:
            self.schema = self.server.create_database()
            tradedb.open(self.url(self.schema)).close()
        except BaseException:
            pg_server.remove(self.server)
            raise

    def url(self, name: str) -> str:
        return self.server.url(name)

    def fresh(self, template: str | None = None) -> str:
        """A new database: a copy of `template`, or of the empty schema."""
        return self.server.create_database(template or self.schema)

    def drop(self, name: str) -> None:
        self.server.drop_database(name)

    def checkpoint(self) -> None:
        with self.server.admin() as conn:
            conn.execute("CHECKPOINT")

    @property
    def version(self) -> str:
        number = self.server.version
        return f"{number // 10000}.{number % 10000}"

    def close(self) -> None:
        pg_server.remove(self.server)


# --- 1. ingest ---------------------------------------------------------------------------------


class ExpectedCandles:
    """What market_data must hold after a variant wrote the candles: the row count and
    exact sums of the timestamp and of every amount column."""

    def __init__(self, units: list[tuple[Any, ...]]) -> None:
        self.count = len(units)
        columns = list(zip(*units, strict=True))
        self.timestamps = sum(columns[1])
        self.amounts = tuple(Decimal(sum(column)).scaleb(-8) for column in columns[2:7])

    def check(self, url: str, variant: str) -> None:
        sums = ", ".join(f"sum({column})" for column in AMOUNT_COLUMNS)
        with psycopg.connect(url) as conn:
            found = conn.execute(
                f"SELECT count(*), sum(timestamp), {sums}, "
                "(SELECT count(*) FROM market_data) FROM market_data "
                "WHERE symbol = %s AND timeframe = %s AND exchange = %s",
                (SYMBOL, TIMEFRAME, EXCHANGE),
            ).fetchone()
        if found is None:
            fail(f"{variant}: no answer from market_data")
        count, timestamps, *amounts, everything = found
        wanted = (self.count, self.timestamps, *self.amounts, self.count)
        # Decimal equality ignores trailing zeros: 1.5 == 1.50000000.
        if (count, timestamps, *amounts, everything) != wanted:
            fail(f"{variant} wrote other candles: found {found}, expected {wanted}")


def copy_text(strings: list[list[object]]) -> list[bytes]:
    """The candles as COPY text in chunks, their amounts the source's own decimal strings."""
    lines = [
        f"{SYMBOL}\t{ms}\t{open_}\t{high}\t{low}\t{close}\t{volume}\t{TIMEFRAME}\t{EXCHANGE}\n"
        for ms, open_, high, low, close, volume in strings
    ]
    return [
        "".join(lines[at : at + COPY_CHUNK_ROWS]).encode()
        for at in range(0, len(lines), COPY_CHUNK_ROWS)
    ]


def tradedb_ingest(url: str, rows: list[list[object]]) -> float:
    with tradedb.open(url) as db:
        db.schema()  # opens the handle's connection: connecting is not what is measured
        results: list[tradedb.BulkResult] = []
        elapsed = timed(
            lambda: results.append(
                db.market.write_candles(rows, exchange=EXCHANGE, symbol=SYMBOL, timeframe=TIMEFRAME)
            )
        )
    if (results[0].inserted, results[0].updated) != (len(rows), 0):
        fail(f"write_candles reported {results[0]}")
    return elapsed


def copy_prepared(url: str, chunks: list[bytes]) -> float:
    with psycopg.connect(url, autocommit=True) as conn:

        def write() -> None:
            with conn.transaction(), conn.cursor().copy(COPY_CANDLES) as copy:
                for chunk in chunks:
                    copy.write(chunk)

        return timed(write)


def copy_write_row(url: str, strings: list[list[object]]) -> float:
    with psycopg.connect(url, autocommit=True) as conn:

        def write() -> None:
            with conn.transaction(), conn.cursor().copy(COPY_CANDLES) as copy:
                for ms, open_, high, low, close, volume in strings:
                    copy.write_row(
                        (SYMBOL, ms, open_, high, low, close, volume, TIMEFRAME, EXCHANGE)
                    )

        return timed(write)


@dataclass(frozen=True)
class Writes:
    variants: dict[str, Callable[[str], float]]
    expected: ExpectedCandles

    def run(self, cluster: Cluster, name: str) -> float:
        """One variant into a fresh database, checked."""
        database = cluster.fresh()
        try:
            cluster.checkpoint()
            seconds = self.variants[name](cluster.url(database))
            self.expected.check(cluster.url(database), name)
        finally:
            cluster.drop(database)
        return seconds


def ingest_writes(units: list[tuple[Any, ...]], strings: list[list[object]]) -> Writes:
    """The variants, each a function of a database URL giving the seconds it took, and
    what the table must hold after any of them."""
    decimals: list[list[object]] = [
        [ms, *(Decimal(text) for text in values)]  # type: ignore[arg-type]
        for ms, *values in strings
    ]
    chunks = copy_text(strings)
    writes: dict[str, Callable[[str], float]] = {
        INGEST_STR: lambda url: tradedb_ingest(url, strings),
        INGEST_DECIMAL: lambda url: tradedb_ingest(url, decimals),
        COPY_PREPARED: lambda url: copy_prepared(url, chunks),
        COPY_WRITE_ROW: lambda url: copy_write_row(url, strings),
    }
    return Writes(writes, ExpectedCandles(units))


def ingest(cluster: Cluster, candles: Candles, repeat: int) -> dict[str, list[float]]:
    # Each variant first writes a few candles, untimed, so that no timed run pays for
    # imports and first calls.
    few = min(WARMUP_CANDLES, len(candles.units))
    warmup = ingest_writes(candles.units[:few], candles.strings[:few])
    for name in warmup.variants:
        warmup.run(cluster, name)
    writes = ingest_writes(candles.units, candles.strings)
    # The first large write of a new cluster creates its WAL segment files (zero-filled
    # and synced); later writes recycle them. Whichever variant came first would pay.
    writes.run(cluster, COPY_PREPARED)
    seconds: dict[str, list[float]] = {name: [] for name in writes.variants}
    # The fixtures stay alive for the whole run; frozen, they are not walked by every
    # collection a variant triggers.
    gc.collect()
    gc.freeze()
    try:
        for run in range(repeat):
            for name in rotated(list(writes.variants), run):
                seconds[name].append(writes.run(cluster, name))
                print(
                    f"  ingest run {run + 1}/{repeat}: {name}: {seconds[name][-1]:.3f} s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        gc.unfreeze()
    return seconds


# --- 2. read -----------------------------------------------------------------------------------


def write_read_data(target: str, markets: dict[str, list[list[object]]]) -> None:
    with tradedb.open(target) as db:
        longest = max(map(len, markets.values()))
        for at in range(0, longest, WEEK):
            for symbol, rows in markets.items():
                if at < len(rows):
                    db.market.write_candles(
                        rows[at : at + WEEK], exchange=EXCHANGE, symbol=symbol, timeframe=TIMEFRAME
                    )


def read_candles(db: tradedb.TradeDB) -> pd.DataFrame:
    return db.market.candles(EXCHANGE, SYMBOL, TIMEFRAME)


def timed_read(db: tradedb.TradeDB) -> tuple[float, pd.DataFrame]:
    # Whatever an earlier variant left for the collector is not this one's cost.
    gc.collect()
    start = time.perf_counter()
    frame = read_candles(db)
    return time.perf_counter() - start, frame


def first_read(target: str) -> tuple[float, pd.DataFrame]:
    with tradedb.open(target) as db:
        db.schema()  # the connection, opened before the read
        return timed_read(db)


def drop_blocks(target: str) -> None:
    """Delete the market's cached blocks, as a write of its candles by any other tool
    would (tradedb's triggers delete the blocks of the spans a write touches)."""
    delete = "DELETE FROM candle_blocks WHERE symbol = {0} AND timeframe = {0} AND exchange = {0}"
    params = (SYMBOL, TIMEFRAME, EXCHANGE)
    if target.startswith("postgresql://"):
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(delete.format("%s"), params)
        return
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute(delete.format("?"), params)
    finally:
        conn.close()


def read_databases(
    cluster: Cluster, folder: Path, markets: dict[str, list[list[object]]]
) -> dict[str, str]:
    """The same candles in a PostgreSQL database as the write left it, in a copy of it
    after VACUUM ANALYZE, and in a SQLite file."""
    written_name = cluster.fresh()
    written = cluster.url(written_name)
    # Autovacuum would analyze the new rows within about a minute, in the middle of the
    # runs; kept off, the database stays as the write left it for all of them.
    with psycopg.connect(written, autocommit=True) as conn:
        for table in FRESH_TABLES:
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    print("  writing the read data into PostgreSQL", file=sys.stderr, flush=True)
    write_read_data(written, markets)
    settled = cluster.url(cluster.fresh(written_name))
    with psycopg.connect(settled, autocommit=True) as conn:
        for table in FRESH_TABLES:
            conn.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")
        conn.execute("VACUUM (ANALYZE)")
    sqlite_file = str(folder / "read.sqlite")
    print("  writing the read data into SQLite", file=sys.stderr, flush=True)
    write_read_data(sqlite_file, markets)
    return {"written": written, "settled": settled, "sqlite": sqlite_file}


def read(
    cluster: Cluster, folder: Path, rows: int, other_rows: int, repeat: int
) -> dict[tuple[str, str], list[float]]:
    markets = {SYMBOL: make_candles(rows).strings}
    for seed, symbol in enumerate(NEIGHBOURS):
        markets[symbol] = make_candles(other_rows, seed=seed).strings
    targets = read_databases(cluster, folder, markets)
    source = freqtrade_frame(markets[SYMBOL])
    del markets
    cluster.checkpoint()
    handles = {name: tradedb.open(target) for name, target in targets.items()}
    try:

        def kept_open(name: str) -> Callable[[], tuple[float, pd.DataFrame]]:
            return lambda: timed_read(handles[name])

        def new_handle(name: str) -> Callable[[], tuple[float, pd.DataFrame]]:
            return lambda: first_read(targets[name])

        def uncached(name: str) -> Callable[[], tuple[float, pd.DataFrame]]:
            def drop_then_read() -> tuple[float, pd.DataFrame]:
                drop_blocks(targets[name])
                return timed_read(handles[name])

            return drop_then_read

        reads: dict[tuple[str, str], Callable[[], tuple[float, pd.DataFrame]]] = {
            (FIRST_READ, "postgresql"): new_handle("written"),
            (FIRST_READ, "sqlite"): new_handle("sqlite"),
            (KEPT_WRITTEN, "postgresql"): kept_open("written"),
            (KEPT_WRITTEN, "sqlite"): kept_open("sqlite"),
            (KEPT_SETTLED, "postgresql"): kept_open("settled"),
            (KEPT_SETTLED, "sqlite"): kept_open("sqlite"),
            (UNCACHED, "postgresql"): uncached("settled"),
            (UNCACHED, "sqlite"): uncached("sqlite"),
        }
        # The first round also pays for imports and cold caches; it is the one checked.
        for (kind, engine), variant in reads.items():
            assert_frame_equal(variant()[1], source, obj=f"{kind}, {engine}")
        print("  read results checked: every frame equals the source", file=sys.stderr)
        seconds: dict[tuple[str, str], list[float]] = {name: [] for name in reads}
        for run in range(repeat):
            for name in rotated(list(reads), run):
                elapsed, frame = reads[name]()
                seconds[name].append(elapsed)
                del frame  # freeing a result is not part of reading it
            print(
                f"  read run {run + 1}/{repeat}: "
                + ", ".join(f"{values[-1]:.3f}" for values in seconds.values()),
                file=sys.stderr,
                flush=True,
            )
    finally:
        for handle in handles.values():
            handle.close()
    return seconds


# --- 3. one fill -------------------------------------------------------------------------------

# (method, statement, parameters) as tradedb handed them to psycopg.
Statement = tuple[str, Any, Any]


@contextmanager
def capturing() -> Iterator[list[Statement]]:
    """Every statement this thread sends through psycopg cursors while inside; other
    threads (the connection pool's) are left out."""
    log: list[Statement] = []
    thread = threading.get_ident()
    execute, executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany

    def logged_execute(self: Any, query: Any, params: Any = None, **options: Any) -> Any:
        if threading.get_ident() == thread:
            # A list could change after the call; the replay must send what was sent.
            log.append(("execute", query, list(params) if isinstance(params, list) else params))
        return execute(self, query, params, **options)

    def logged_executemany(self: Any, query: Any, params_seq: Any, **options: Any) -> Any:
        rows = [tuple(params) for params in params_seq]  # tradedb passes a generator
        if threading.get_ident() == thread:
            log.append(("executemany", query, rows))
        return executemany(self, query, rows, **options)

    psycopg.Cursor.execute = logged_execute  # type: ignore[method-assign]
    psycopg.Cursor.executemany = logged_executemany  # type: ignore[method-assign]
    try:
        yield log
    finally:
        psycopg.Cursor.execute = execute  # type: ignore[method-assign]
        psycopg.Cursor.executemany = executemany  # type: ignore[method-assign]


def captured_fills(url: str, plan: Plan) -> list[list[Statement]]:
    """tradedb records the sequence on `url`; the statements of each fill."""
    per_fill = []
    with tradedb.open(url) as db:
        db.schema()
        with capturing() as log:
            for fill in plan.fills:
                start = len(log)
                db.ledger.record_fill(**fill)
                statements = log[start:]
                if not (statements[0][1].startswith("BEGIN") and statements[-1][1] == "COMMIT"):
                    fail(f"a fill was not one transaction: {statements[0][1]!r} ...")
                per_fill.append(statements)
    return per_fill


def replay(conn: psycopg.Connection[Any], statements: list[Statement]) -> None:
    for method, query, params in statements:
        if method == "executemany":
            conn.cursor().executemany(query, params)
            continue
        cursor = conn.execute(query, params)
        if cursor.description is not None:
            cursor.fetchall()  # a program reads what it selected


def prepare_ledger(url: str, plans: list[Plan]) -> None:
    """The deposits and every order of `plans`, through tradedb (not timed)."""
    with tradedb.open(url) as db:
        for asset, amount in FUNDS.items():
            db.ledger.deposit(exchange=EXCHANGE, asset=asset, amount=amount, timestamp=TS)
        with db.transaction():
            for plan in plans:
                for order in plan.orders:
                    db.ledger.place_order(**order)


def ledger_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The ledger tables' rows in id order, without the columns the server's clock fills."""
    contents = {}
    with psycopg.connect(url) as conn:
        for table in COMPARED:
            cursor = conn.execute(f"SELECT * FROM {table} ORDER BY id")
            keep = [
                index
                for index, column in enumerate(cursor.description or ())
                if column.name not in CLOCK_COLUMNS
            ]
            contents[table] = [tuple(row[index] for index in keep) for row in cursor]
    return contents


def check_same_ledgers(urls: dict[str, str]) -> None:
    contents = {name: ledger_rows(url) for name, url in urls.items()}
    (first, reference), *others = contents.items()
    for name, rows in others:
        for table in COMPARED:
            if rows[table] != reference[table]:
                pairs = zip(reference[table], rows[table], strict=False)
                difference = next(((a, b) for a, b in pairs if a != b), None)
                fail(
                    f"{name} and {first} hold other {table} rows ({len(rows[table])} vs "
                    f"{len(reference[table])}); first difference: {difference}"
                )
    for name, url in urls.items():
        with tradedb.open(url) as db:
            problems = db.ledger.audit()
        if problems:
            fail(f"database {name} fails the audit: {problems[:5]}")


@dataclass
class FillRun:
    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]


def one_fill_run(cluster: Cluster, plan: Plan, warmup: int, run: int) -> FillRun:
    template = cluster.fresh()
    prepare_ledger(cluster.url(template), [plan])
    names = {label: cluster.fresh(template) for label in ("A", "B", "C")}
    urls = {label: cluster.url(name) for label, name in names.items()}
    wall: dict[str, list[float]] = {TRADEDB_FILL: [], RAW_FILL: []}
    cpu: dict[str, list[float]] = {TRADEDB_FILL: [], RAW_FILL: []}
    try:
        statements = captured_fills(urls["A"], plan)
        cluster.checkpoint()
        with (
            tradedb.open(urls["C"]) as db,
            psycopg.connect(urls["B"], autocommit=True) as raw,
        ):
            db.schema()
            calls: dict[str, Callable[[int], object]] = {
                TRADEDB_FILL: lambda index: db.ledger.record_fill(**plan.fills[index]),
                RAW_FILL: lambda index: replay(raw, statements[index]),
            }
            for index in range(len(plan.fills)):
                for name in rotated(list(calls), index + run):
                    start_cpu = time.thread_time()
                    start = time.perf_counter()
                    calls[name](index)
                    elapsed = time.perf_counter() - start
                    elapsed_cpu = time.thread_time() - start_cpu
                    if index >= warmup:
                        wall[name].append(elapsed)
                        cpu[name].append(elapsed_cpu)
        check_same_ledgers({"C (tradedb)": urls["C"], "A (captured)": urls["A"], "B": urls["B"]})
    finally:
        for name in (template, *names.values()):
            cluster.drop(name)
    return FillRun(wall, cpu)


def one_fill(cluster: Cluster, fills: int, warmup: int, repeat: int, seed: int) -> list[FillRun]:
    plan = make_plan(warmup + fills, seed)
    runs = []
    for run in range(repeat):
        runs.append(one_fill_run(cluster, plan, warmup, run))
        medians = ", ".join(
            f"{name}: p50 {statistics.median(values) * 1e3:.2f} ms"
            for name, values in runs[-1].wall.items()
        )
        print(f"  fill run {run + 1}/{repeat}: {medians}", file=sys.stderr, flush=True)
    return runs


# --- 4. several writers ------------------------------------------------------------------------


@dataclass
class WriterResult:
    index: int
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    # Errors that reached the caller of record_fill; the fill was then tried again.
    caller_errors: list[str] = field(default_factory=list)
    failure: str = ""


def writer_process(
    url: str, index: int, fills: list[dict[str, Any]], start: Any, results: Any
) -> None:
    """One writer process with its own handle; records its fills back to back once all
    writers are ready."""
    result = WriterResult(index)
    try:
        with tradedb.open(url) as db:
            db.schema()
            start.wait(timeout=300)
            result.started = time.time()
            for fill in fills:
                while True:
                    begun = time.perf_counter()
                    try:
                        db.ledger.record_fill(**fill)
                    except (psycopg.Error, tradedb.DatabaseUnavailable) as exc:
                        # A fill is keyed by its trade id, so trying it again is safe.
                        result.caller_errors.append(f"{type(exc).__name__}: {exc}")
                        if len(result.caller_errors) > 100:
                            raise
                        continue
                    result.latencies.append(time.perf_counter() - begun)
                    break
            result.ended = time.time()
    except Exception:
        result.failure = traceback.format_exc()
    # A plain dict: this module is __main__ here and __mp_main__ in the writer.
    results.put(asdict(result))


def writer_context() -> Any:
    """Processes forked from a server that imported tradedb once: a fresh interpreter
    per writer takes seconds to import it, eight of them most of a run on two cores."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tradedb", "psycopg", "pandas", "bench_fills", "bench_read"])
    return context


@dataclass(frozen=True)
class WritersRun:
    writers: int
    fills_per_second: float
    p50_by_writer: list[float]
    p99_by_writer: list[float]
    caller_errors: int


def writers_run(
    cluster: Cluster, writers: int, per_writer: int, warmup: int, seed: int
) -> WritersRun:
    plans = [
        make_plan(
            warmup + per_writer,
            seed + 1000 * (index + 1),
            tag=f"w{index}-",
            strategies=(f"writer-{index}",),
        )
        for index in range(writers)
    ]
    database = cluster.fresh()
    url = cluster.url(database)
    try:
        prepare_ledger(url, plans)
        with tradedb.open(url) as db:
            for plan in plans:
                for fill in plan.fills[:warmup]:
                    db.ledger.record_fill(**fill)
        cluster.checkpoint()
        context = writer_context()
        start = context.Barrier(writers)
        queue = context.Queue()
        processes = [
            context.Process(
                target=writer_process, args=(url, index, plan.fills[warmup:], start, queue)
            )
            for index, plan in enumerate(plans)
        ]
        for process in processes:
            process.start()
        results = sorted(
            (WriterResult(**queue.get(timeout=900)) for _ in processes), key=lambda r: r.index
        )
        for process in processes:
            process.join()
        failures = [result.failure for result in results if result.failure]
        if failures:
            fail("a writer failed:\n" + "\n".join(failures))
        with tradedb.open(url) as db:
            problems = db.ledger.audit()
            trades = db.tables["trades"].count()
    finally:
        cluster.drop(database)
    if problems:
        fail(f"{writers} writers: the audit fails: {problems[:5]}")
    if trades != writers * (warmup + per_writer):
        fail(f"{writers} writers: {trades} trades, {writers * (warmup + per_writer)} expected")
    elapsed = max(r.ended for r in results) - min(r.started for r in results)
    return WritersRun(
        writers=writers,
        fills_per_second=sum(len(r.latencies) for r in results) / elapsed,
        p50_by_writer=[statistics.median(r.latencies) for r in results],
        p99_by_writer=[p99(r.latencies) for r in results],
        caller_errors=sum(len(r.caller_errors) for r in results),
    )


def several_writers(
    cluster: Cluster, counts: list[int], *, per_writer: int, warmup: int, repeat: int, seed: int
) -> dict[int, list[WritersRun]]:
    runs: dict[int, list[WritersRun]] = {count: [] for count in counts}
    for run in range(repeat):
        for count in counts:
            result = writers_run(cluster, count, per_writer, warmup, seed + run)
            runs[count].append(result)
            print(
                f"  writers run {run + 1}/{repeat}: {count} writers: "
                f"{result.fills_per_second:,.0f} fills/s, errors {result.caller_errors}",
                file=sys.stderr,
                flush=True,
            )
    return runs


# --- report ------------------------------------------------------------------------------------


@dataclass
class Figures:
    rows: int
    read_rows: int
    neighbour_rows: int
    fills: int
    warmup: int
    writer_fills: int
    repeat: int
    read_repeat: int
    ingest: dict[str, list[float]]
    read: dict[tuple[str, str], list[float]]
    fill_runs: list[FillRun]
    writers: dict[int, list[WritersRun]]


def yes(met: bool) -> str:
    return "yes" if met else "no"


def ingest_table(figures: Figures) -> tuple[list[str], list[tuple[str, str, str]]]:
    rate = {
        name: figures.rows / statistics.median(seconds) for name, seconds in figures.ingest.items()
    }
    lines = [
        f"Ingest: {figures.rows:,} 1m candles of one market into a fresh database per run, "
        f"median of {figures.repeat} runs, the variants taking turns.",
        "",
        "| variant | median s | rows/s | rows/s ÷ COPY |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds in figures.ingest.items():
        lines.append(
            f"| {name} | {statistics.median(seconds):.3f} | {rate[name]:,.0f} | "
            f"{rate[name] / rate[COPY_PREPARED]:.2f}x |"
        )
    goals = []
    for name, label in ((INGEST_STR, "str"), (INGEST_DECIMAL, "Decimal")):
        ratio = rate[name] / rate[COPY_PREPARED]
        goals.append(
            (
                f"ingest, {label} rows: >= {INGEST_GOAL}x a raw psycopg COPY",
                f"{ratio:.2f}x",
                yes(ratio >= INGEST_GOAL),
            )
        )
    return lines, goals


def read_table(figures: Figures) -> tuple[list[str], list[tuple[str, str, str]]]:
    def median(kind: str, engine: str) -> float:
        return statistics.median(figures.read[kind, engine])

    lines = [
        f"Read: {figures.read_rows:,} 1m candles of one market into pandas (float64) with "
        f"`db.market.candles`, in a database that also holds {len(NEIGHBOURS)} neighbouring "
        f"markets of {figures.neighbour_rows:,} candles; median of {figures.read_repeat} runs, the "
        "variants taking turns.",
        "",
        "| read | PostgreSQL median s | PostgreSQL max s | SQLite median s | SQLite max s "
        "| PostgreSQL ÷ SQLite |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in READ_KINDS:
        pg, lite = median(kind, "postgresql"), median(kind, "sqlite")
        lines.append(
            f"| {kind} | {pg:.3f} | {max(figures.read[kind, 'postgresql']):.3f} | "
            f"{lite:.3f} | {max(figures.read[kind, 'sqlite']):.3f} | {pg / lite:.2f}x |"
        )
    goals = []
    for kind in READ_KINDS:
        note = " (for information)" if kind == UNCACHED else ""
        ratio = median(kind, "postgresql") / median(kind, "sqlite")
        goals.append(
            (f"read, {kind}: <= {READ_GOAL:g}x SQLite{note}", f"{ratio:.2f}x", yes(ratio <= 2))
        )
    return lines, goals


def fill_table(figures: Figures) -> tuple[list[str], list[tuple[str, str, str]]]:
    def median_of(metric: Callable[[list[float]], float], name: str, cpu: bool = False) -> float:
        return statistics.median(
            metric((run.cpu if cpu else run.wall)[name]) for run in figures.fill_runs
        )

    lines = [
        f"One fill: {figures.fills:,} fills after {figures.warmup} warm-up fills, each "
        "implementation on its own copy of one database, fill by fill in turns; median of "
        f"{len(figures.fill_runs)} runs.",
        "",
        "| record a fill | p50 ms | p99 ms | CPU p50 ms | p50 ÷ raw | p99 ÷ raw |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    ratios = {}
    for name in (TRADEDB_FILL, RAW_FILL):
        p50 = median_of(statistics.median, name)
        high = median_of(p99, name)
        ratios[name] = (
            p50 / median_of(statistics.median, RAW_FILL),
            high / median_of(p99, RAW_FILL),
        )
        lines.append(
            f"| {name} | {p50 * 1e3:.2f} | {high * 1e3:.2f} | "
            f"{median_of(statistics.median, name, cpu=True) * 1e3:.2f} | "
            f"{ratios[name][0]:.2f}x | {ratios[name][1]:.2f}x |"
        )
    p50_ratio, p99_ratio = ratios[TRADEDB_FILL]
    goals = [
        (
            "one fill: p50 / p99 against a raw psycopg transaction of the same statements "
            "(no limit set; reported)",
            f"{p50_ratio:.2f}x / {p99_ratio:.2f}x",
            "reported",
        )
    ]
    return lines, goals


def writers_table(figures: Figures) -> tuple[list[str], list[tuple[str, str, str]]]:
    single = statistics.median(run.fills_per_second for run in figures.writers[1])
    lines = [
        f"Writers: processes at once on one database, each {figures.writer_fills:,} fills of "
        f"its own orders on the same wallets; median of {figures.repeat} runs (p99: the worst "
        "writer of a run).",
        "",
        "| writers | fills/s | ÷ 1 writer | writer p50 ms | worst writer p99 ms "
        "| errors that reached a caller | audit and trade count |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    goals = []
    for count, runs in figures.writers.items():
        rate = statistics.median(run.fills_per_second for run in runs)
        p50 = statistics.median(statistics.median(run.p50_by_writer) for run in runs)
        worst = statistics.median(max(run.p99_by_writer) for run in runs)
        errors = sum(run.caller_errors for run in runs)
        lines.append(
            f"| {count} | {rate:,.0f} | {rate / single:.2f}x | {p50 * 1e3:.2f} | "
            f"{worst * 1e3:.2f} | {errors} | exact, clean |"
        )
        if count != 1:
            goals.append(
                (
                    f"{count} writers: fills/s reported, no error reaches a caller",
                    f"{rate:,.0f} fills/s, {errors} errors",
                    yes(errors == 0),
                )
            )
    return lines, goals


def report(figures: Figures) -> str:
    lines: list[str] = []
    goals: list[tuple[str, str, str]] = []
    for part in (ingest_table, read_table, fill_table, writers_table):
        table, met = part(figures)
        lines += [*table, ""]
        goals += met
    lines += ["| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {goal} | {value} | {met} |" for goal, value, met in goals]
    return "\n".join(lines)


def results_markdown(command: str, table: str, server_version: str) -> str:
    return "\n".join(
        [
            *preamble(
                command,
                versions=f"PostgreSQL {server_version}, psycopg {psycopg.__version__}, "
                f"pandas {pd.__version__}",
                setup="PostgreSQL started for the run on loopback (fsync on, shared_buffers "
                "128MB, otherwise its defaults); SQLite files in a temporary folder on local "
                "disk.",
                compared="runs made in the same process on the same data, taking turns",
                caveat=f"The load average (1 min) was {os.getloadavg()[0]:.1f} as the runs ended.",
            ),
            table,
            "",
            "How to read it: every ratio compares variants that took turns in this run, on",
            "the same server and the same data. Ingest: 'rows/s ÷ COPY' is a variant's rate",
            "over psycopg's COPY of text made before timing (only the server's and the",
            "socket's work is timed); tradedb's rows are ccxt-shaped str or Decimal rows, which",
            "it checks and converts (to int64 units, sent as binary COPY) and from which it",
            "also builds its read cache (candle_blocks) in the same transaction. Every run's",
            "table was checked: row count and exact sums of the timestamp and every amount.",
            "Read: PostgreSQL's median over SQLite's, on the same candles read through the same",
            "call. 'As the write left it' is a database whose candle tables PostgreSQL has not",
            "vacuumed or analyzed yet (autovacuum is kept off on it so that it stays so for",
            "every run; a real server analyzes them within about a minute); 'after VACUUM",
            "ANALYZE' is a copy in the state autovacuum leaves. The first read opens a new",
            "handle (connection not timed); the others use one handle per database kept open.",
            "tradedb's write fills the read cache, so only the 'no cached blocks' row reads",
            "the rows (and rebuilds the cache). Every frame equals the source candles. One",
            "fill: the raw transaction sends exactly what tradedb sent for the same fill",
            "(captured from a third copy of the database), so the gap is tradedb's own work in",
            "Python: checks, arithmetic, records; 'CPU' is the calling thread's. All three",
            "copies hold the same ledger rows afterwards and pass the audit. Writers: tradedb",
            "serializes ledger writes on PostgreSQL with one transaction-scoped advisory lock",
            "(its LEDGER_LOCK), so fills/s do not grow with writers; a writer's latency",
            "includes its wait for that lock.",
            "",
        ]
    )


# --- main --------------------------------------------------------------------------------------


def writer_counts(text: str) -> list[int]:
    counts = sorted({int(part) for part in text.split(",") if part.strip()})
    if any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError("writer counts are whole numbers of at least 1")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="candles per ingest run")
    parser.add_argument("--read-rows", type=int, default=525_600, help="candles of the market read")
    parser.add_argument("--fills", type=int, default=2000, help="timed fills per run")
    parser.add_argument("--warmup", type=int, default=200, help="untimed fills first")
    parser.add_argument("--repeat", type=int, default=3, help="runs; medians are reported")
    parser.add_argument(
        "--writers", type=writer_counts, default=[4, 8], help="writer counts besides 1"
    )
    parser.add_argument("--writer-fills", type=int, default=400, help="timed fills per writer")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the SQLite file")
    parser.add_argument("--write", type=Path, default=None, help="write the results here (.md)")
    args = parser.parse_args()
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    read_repeat = args.repeat + 4  # reads are short: more runs for the same noise
    neighbour_rows = min(NEIGHBOUR_ROWS, args.read_rows)

    with phase(f"making {args.rows:,} candles and starting PostgreSQL"):
        candles = make_candles(args.rows)
        cluster = Cluster()
    try:
        with tempfile.TemporaryDirectory(prefix="tradedb-bench-", dir=args.dir) as folder:
            with phase("ingest"):
                ingest_seconds = ingest(cluster, candles, args.repeat)
            del candles
            with phase("read"):
                read_seconds = read(
                    cluster, Path(folder), args.read_rows, neighbour_rows, read_repeat
                )
        with phase("one fill"):
            fill_runs = one_fill(cluster, args.fills, args.warmup, args.repeat, args.seed)
        with phase("writers"):
            writers = several_writers(
                cluster,
                sorted({1, *args.writers}),
                per_writer=args.writer_fills,
                warmup=args.warmup // 4,
                repeat=args.repeat,
                seed=args.seed,
            )
        server_version = cluster.version
    finally:
        cluster.close()
    figures = Figures(
        rows=args.rows,
        read_rows=args.read_rows,
        neighbour_rows=neighbour_rows,
        fills=args.fills,
        warmup=args.warmup,
        writer_fills=args.writer_fills,
        repeat=args.repeat,
        read_repeat=read_repeat,
        ingest=ingest_seconds,
        read=read_seconds,
        fill_runs=fill_runs,
        writers=writers,
    )
    table = report(figures)
    print(table)
    if args.write:
        command = " ".join([".venv/bin/python", "benchmarks/bench_postgresql.py", *sys.argv[1:]])
        replace_section(args.write, SECTION, results_markdown(command, table, server_version))
        print(f"\nwritten to {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
