"""The Database: pragmas, file permissions, transactions, concurrency and bad locations."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from faults import FaultFigures
from records import TS, candle, trade
from tradedb.errors import DatabaseLocationError, TradeDBError
from tradedb.store import Database, Store
from tradedb.store.engines.sqlite import CHECKPOINT_EVERY_ROWS

SYNCHRONOUS_NORMAL = 1
SYNCHRONOUS_FULL = 2


def insert_log(conn: Any, message: str) -> None:
    conn.execute(
        "INSERT INTO bot_logs (timestamp, level, message) VALUES (?, 'INFO', ?)", (TS, message)
    )


def pragma(conn: Any, name: str) -> Any:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


# --- pragmas -------------------------------------------------------------------------------


def test_connection_pragmas(db_path: Path) -> None:
    with Database.open(db_path) as db:
        conn = db.connection
        assert pragma(conn, "journal_mode") == "wal"
        assert pragma(conn, "foreign_keys") == 1
        assert pragma(conn, "busy_timeout") >= 5000


def test_synchronous_is_full_for_durable_and_normal_otherwise(db_path: Path) -> None:
    with Database.open(db_path) as db:
        with db.transaction() as conn:
            assert pragma(conn, "synchronous") == SYNCHRONOUS_FULL
        with db.transaction(durable=False) as conn:
            assert pragma(conn, "synchronous") == SYNCHRONOUS_NORMAL
        with db.transaction(durable=True) as conn:
            assert pragma(conn, "synchronous") == SYNCHRONOUS_FULL


@pytest.mark.sqlite_only
def test_ledger_writes_commit_full_and_market_data_normal(store: Store) -> None:
    # The setting a write used stays on the connection after it commits.
    store.candles.insert(candle())
    assert pragma(store.db.connection, "synchronous") == SYNCHRONOUS_NORMAL
    store.trades.insert(trade())
    assert pragma(store.db.connection, "synchronous") == SYNCHRONOUS_FULL


# --- permissions ---------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_database_files_are_owner_only(tmp_path: Path, mask: int) -> None:
    path = tmp_path / "owner-only.sqlite"
    with umask(mask), Store.open(path) as store:
        store.trades.insert(trade())
        # The write-ahead log and its index hold data too; SQLite gives them the same mode.
        for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
            mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
            assert mode == 0o600, f"{name}: {oct(mode)}"


# --- transactions --------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_transaction_is_all_or_nothing(store: Store) -> None:
    def write_then_fail() -> None:
        with store.db.transaction() as conn:
            store.trades.insert(trade())
            insert_log(conn, "first")
            insert_log(conn, "second")
            raise Boom

    with pytest.raises(Boom):
        write_then_fail()

    assert store.trades.count() == 0
    assert store.logs.count() == 0
    assert not store.db.in_transaction

    # The connection is usable afterwards and a clean transaction commits.
    with store.db.transaction() as conn:
        insert_log(conn, "after")
    assert store.logs.count() == 1


def test_nested_transaction_joins_the_outer_one(db_target: str, store: Store) -> None:
    with Database.open(db_target) as other:
        with store.db.transaction():
            store.trades.insert(trade())  # opens its own transaction, which joins
            with store.db.transaction() as inner:
                insert_log(inner, "inner")
            # Both inner blocks have ended, yet nothing is visible outside: not committed.
            assert other.connection.execute("SELECT count(*) FROM trades").fetchone() == (0,)
            assert other.connection.execute("SELECT count(*) FROM bot_logs").fetchone() == (0,)
        assert other.connection.execute("SELECT count(*) FROM trades").fetchone() == (1,)
        assert other.connection.execute("SELECT count(*) FROM bot_logs").fetchone() == (1,)


def test_exception_in_nested_transaction_rolls_back_everything(store: Store) -> None:
    def fail_inside_the_inner_one() -> None:
        with store.db.transaction() as outer:
            store.trades.insert(trade())
            insert_log(outer, "outer")
            with store.db.transaction() as inner:
                insert_log(inner, "inner")
                raise Boom

    with pytest.raises(Boom):
        fail_inside_the_inner_one()

    assert store.trades.count() == 0
    assert store.logs.count() == 0
    assert not store.db.in_transaction


# --- concurrency ---------------------------------------------------------------------------


@pytest.mark.fault("load")
def test_second_writer_waits_for_the_first_instead_of_failing(db_path: Path) -> None:
    Store.open(db_path).close()
    errors: list[BaseException] = []
    holding = threading.Event()
    hold_seconds = 0.3

    with Database.open(db_path) as first, Database.open(db_path) as second:

        def hold_the_write_lock() -> None:
            try:
                with first.transaction() as conn:
                    insert_log(conn, "first")
                    holding.set()
                    time.sleep(hold_seconds)
            except BaseException as exc:
                errors.append(exc)
                holding.set()

        holder = threading.Thread(target=hold_the_write_lock)
        holder.start()
        try:
            assert holding.wait(5)
            started = time.monotonic()
            # Read, then write: with a deferred BEGIN the upgrade to a write lock would fail
            # at once with "database is locked"; IMMEDIATE waits for the lock up front.
            with second.transaction() as conn:
                waited = time.monotonic() - started
                seen = conn.execute("SELECT count(*) FROM bot_logs").fetchone()[0]
                insert_log(conn, "second")
        finally:
            holder.join()

        assert errors == []
        assert waited >= hold_seconds * 0.7
        assert seen == 1  # the lock came only after the first writer committed
        rows = second.connection.execute("SELECT message FROM bot_logs ORDER BY id").fetchall()
        assert rows == [("first",), ("second",)]


PROCESSES = 4
TRADES_PER_PROCESS = 200


def insert_trades_in_process(
    path: str, worker: int, start: Any, results: Any
) -> None:  # pragma: no cover - runs in a child process
    try:
        with Store.open(path) as store:
            start.wait(timeout=60)
            for number in range(TRADES_PER_PROCESS):
                store.trades.insert(
                    trade(strategy=f"worker-{worker}", exchange_trade_id=f"{worker}-{number}")
                )
        results.put((worker, None))
    except BaseException:
        results.put((worker, traceback.format_exc()))


@pytest.mark.fault("load")
def test_processes_writing_at_once_lose_nothing(
    db_target: str, fault_figures: FaultFigures
) -> None:
    Store.open(db_target).close()
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(target=insert_trades_in_process, args=(db_target, worker, start, results))
        for worker in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    try:
        outcomes = dict(results.get(timeout=60) for _ in workers)
    finally:
        for process in workers:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()

    assert outcomes == dict.fromkeys(range(PROCESSES)), outcomes
    assert all(process.exitcode == 0 for process in workers)
    with Store.open(db_target) as store:
        assert store.trades.count() == PROCESSES * TRADES_PER_PROCESS
        for worker in range(PROCESSES):
            assert store.trades.count({"strategy": f"worker-{worker}"}) == TRADES_PER_PROCESS
    fault_figures.writers(at_once=PROCESSES)


@pytest.mark.sqlite_only
@pytest.mark.fault("load")
def test_threads_sharing_one_store_each_use_their_own_connection(store: Store) -> None:
    threads_count, per_thread = 4, 50
    start = threading.Barrier(threads_count)
    connections: dict[int, Any] = {}
    errors: list[BaseException] = []

    def work(number: int) -> None:
        try:
            start.wait(timeout=10)
            for _ in range(per_thread):
                store.trades.insert(trade(strategy=f"thread-{number}"))
            connections[number] = store.db.connection
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert store.trades.count() == threads_count * per_thread
    for number in range(threads_count):
        assert store.trades.count({"strategy": f"thread-{number}"}) == per_thread
    used = list(connections.values())
    assert len(used) == threads_count
    assert len({id(conn) for conn in used}) == threads_count
    assert all(conn is not store.db.connection for conn in used)


# --- locations -----------------------------------------------------------------------------


@pytest.mark.fault("bad input")
def test_missing_folder_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "tradedb.sqlite"
    with pytest.raises(DatabaseLocationError, match="does not exist"):
        Store.open(path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root bypasses folder permissions")
@pytest.mark.fault("bad input")
def test_folder_without_write_permission_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(DatabaseLocationError, match="cannot be written"):
            Store.open(folder / "tradedb.sqlite")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


@pytest.mark.skipif(os.geteuid() != 0, reason="the permission test covers non-root users")
@pytest.mark.parametrize(
    "path", ["/proc/self/tradedb.sqlite", "/proc/tradedb.sqlite"], ids=["proc-self", "proc"]
)
@pytest.mark.fault("bad input")
def test_unwritable_location_is_refused_even_for_root(path: str) -> None:
    with pytest.raises(DatabaseLocationError, match="cannot"):
        Store.open(path)
    assert not Path(path).exists()


@pytest.mark.fault("bad input")
def test_directory_as_database_path_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.sqlite"
    folder.mkdir()
    with pytest.raises(DatabaseLocationError, match="folder"):
        Store.open(folder)
    assert list(folder.iterdir()) == []
    assert list(tmp_path.iterdir()) == [folder]


@pytest.mark.fault("bad input")
def test_readonly_open_of_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.sqlite"
    with pytest.raises(DatabaseLocationError, match="does not exist"):
        Store.open(path, readonly=True)
    assert list(tmp_path.iterdir()) == []


# --- durability ----------------------------------------------------------------------------

READ_IN_ANOTHER_PROCESS = """
import json, sys
from tradedb.store import Store
with Store.open(sys.argv[1], readonly=True) as store:
    row = store.trades.get(int(sys.argv[2]))
    print(json.dumps([format(row.amount, "f"), row.exchange_trade_id]))
"""


def test_insert_is_committed_when_it_returns(db_target: str, store: Store) -> None:
    row = store.trades.insert(trade(amount="0.00000001", exchange_trade_id="T-1"))
    assert not store.db.in_transaction

    # The store stays open: another process sees the row only if it was committed.
    result = subprocess.run(
        [sys.executable, "-c", READ_IN_ANOTHER_PROCESS, db_target, str(row.id)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert json.loads(result.stdout) == ["0.00000001", "T-1"]


@pytest.mark.fault("bad input")
def test_ledger_write_refuses_to_join_a_non_durable_transaction(store: Store) -> None:
    # SQLite cannot raise synchronous inside a transaction, so joining would commit a
    # ledger write with less than FULL durability.
    with pytest.raises(TradeDBError, match="durable"), store.db.transaction(durable=False):
        store.trades.insert(trade())
    assert store.trades.count() == 0


def write_trades(store: Store, count: int, prefix: str, per_commit: int = 100) -> None:
    for first in range(0, count, per_commit):
        store.trades.insert_many(
            trade(exchange_trade_id=f"{prefix}-{number}")
            for number in range(first, min(first + per_commit, count))
        )


def test_commits_leave_checkpoints_to_a_background_thread(db_path: Path) -> None:
    store = Store.open(db_path)
    conn = store.db.connection
    # A commit never stops to copy the WAL back: that is what made one fill in ~70 slow.
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    size_before = db_path.stat().st_size
    write_trades(store, 2 * CHECKPOINT_EVERY_ROWS, "T")

    # ...but the WAL is still copied into the database file, by the background thread.
    deadline = time.monotonic() + 10
    while db_path.stat().st_size <= size_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert db_path.stat().st_size > size_before
    store.close()
    # Closing the last connection folds everything into the file.
    copy = sqlite3.connect(db_path)
    try:
        assert copy.execute("SELECT count(*) FROM trades").fetchone() == (
            2 * CHECKPOINT_EVERY_ROWS,
        )
    finally:
        copy.close()


# The store a forked child inherits from the test (fork copies module state).
_INHERITED: dict[str, Store] = {}


def _write_through_the_inherited_store(path: Path) -> bool:
    """In a forked child: write through the parent's Store object; True once a checkpoint
    copied the WAL into the file."""
    store = _INHERITED["store"]
    size_before = path.stat().st_size
    write_trades(store, 2 * CHECKPOINT_EVERY_ROWS, "child")
    deadline = time.monotonic() + 10
    while path.stat().st_size <= size_before and time.monotonic() < deadline:
        time.sleep(0.01)
    return path.stat().st_size > size_before


def test_a_store_used_in_a_forked_process_opens_its_own_connection_and_checkpoints(
    db_path: Path,
) -> None:
    store = _INHERITED["store"] = Store.open(db_path)
    store.trades.insert(trade(exchange_trade_id="parent"))  # connection and thread made
    try:
        with multiprocessing.get_context("fork").Pool(1) as pool:
            assert pool.apply(_write_through_the_inherited_store, (db_path,))
        # The parent's own connection still works and sees the child's rows.
        assert store.trades.count() == 1 + 2 * CHECKPOINT_EVERY_ROWS
        store.trades.insert(trade(exchange_trade_id="parent-again"))
    finally:
        _INHERITED.clear()
        store.close()
