"""The writer gate's crash evidence: a tradedb writer that dies inside a write transaction
is counted once (by the next writer, or by `writer_crashes` if nobody has come since), and
writers that finish their transactions, however they exit, are never counted. Replication
relies on this to start a fresh replica generation after a crash.

Also: a read-only Database refuses a write transaction before it touches the gate.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tradedb import file_locks
from tradedb.errors import TradeDBError
from tradedb.services.ledger import Ledger
from tradedb.store import Store
from tradedb.store.engines.sqlite import ReadOnlySQLiteError as ReadOnlyDatabaseError
from tradedb.store.engines.sqlite import writer_crashes

pytestmark = pytest.mark.fault("kill")

posix_only = pytest.mark.skipif(os.name == "nt", reason="no crash evidence without fcntl")

# The child records a deposit, then either sleeps inside a second write transaction (to
# be killed there), sleeps after it (killed outside any transaction), or exits.
CHILD = textwrap.dedent(
    """
    import sys, time
    from tradedb.store import Store
    from tradedb.services.ledger import Ledger

    path, how = sys.argv[1], sys.argv[2]
    store = Store.open(path)
    Ledger(store).deposit(exchange="kraken", asset="USD", amount="10", reference=f"d-{how}")
    if how == "inside":
        with store.db.transaction():
            print("ready", flush=True)
            time.sleep(60)
    elif how == "raises":
        try:
            with store.db.transaction():
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        print("ready", flush=True)
    else:
        print("ready", flush=True)
        if how == "outside":
            time.sleep(60)
    store.close()
    """
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "live.sqlite"
    Store.open(path).close()
    return path


def run_child(db: Path, how: str, *, kill: bool) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), how], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    if kill:
        child.send_signal(signal.SIGKILL)
    assert child.wait(30) == (-signal.SIGKILL if kill else 0)


def lock_header(db: Path) -> tuple[int, int]:
    flag, crashes = struct.unpack("<B7xQ", Path(f"{db}-writer.lock").read_bytes()[:16])
    return flag, crashes


@posix_only
def test_a_writer_killed_inside_a_transaction_is_counted_by_the_next(db: Path) -> None:
    run_child(db, "inside", kill=True)
    assert lock_header(db) == (1, 0)  # the mark of the dead writer's transaction

    with Store.open(db) as store:
        Ledger(store).deposit(exchange="kraken", asset="USD", amount="5", reference="d-2")

    assert lock_header(db) == (0, 1)
    assert writer_crashes(db) == 1  # counted once, not again by the check


@posix_only
def test_a_death_nobody_followed_is_counted_by_the_check_once(db: Path) -> None:
    run_child(db, "inside", kill=True)

    assert writer_crashes(db) == 1
    assert lock_header(db) == (0, 1)
    assert writer_crashes(db) == 1
    with Store.open(db) as store:
        Ledger(store).deposit(exchange="kraken", asset="USD", amount="5", reference="d-2")
    assert writer_crashes(db) == 1
    run_child(db, "inside", kill=True)
    assert writer_crashes(db) == 2


@posix_only
def test_writers_that_finish_their_transactions_are_never_counted(db: Path) -> None:
    run_child(db, "exit", kill=False)
    run_child(db, "raises", kill=False)  # a rolled-back transaction is finished too
    run_child(db, "outside", kill=True)  # killed, but between transactions

    with Store.open(db) as store:
        Ledger(store).deposit(exchange="kraken", asset="USD", amount="5", reference="d-2")
        balance = store.ledger.balances("kraken")["USD"].total
    assert balance == 5 + 10 * 3
    assert writer_crashes(db) == 0
    assert lock_header(db) == (0, 0)


@posix_only
def test_the_check_does_not_count_a_live_writer(db: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), "inside"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        assert writer_crashes(db) == 0
        assert lock_header(db) == (1, 0)  # its mark is left alone
    finally:
        child.kill()
        child.wait(30)


@posix_only
def test_the_check_inside_this_threads_own_transaction_keeps_its_lock(db: Path) -> None:
    with Store.open(db) as store, store.db.transaction():
        assert writer_crashes(db) == 0
        # Still this process's turn: the check must not have closed the lock away.
        assert lock_header(db) == (1, 0)
    assert lock_header(db) == (0, 0)


def test_without_fcntl_writes_work_and_there_is_no_evidence(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_locks, "SUPPORTED", False)

    with Store.open(db) as store:
        Ledger(store).deposit(exchange="kraken", asset="USD", amount="5", reference="d-1")
        assert store.ledger.balances("kraken")["USD"].total == 5
    assert writer_crashes(db) is None


def test_a_read_only_database_refuses_a_write_before_touching_the_gate(db: Path) -> None:
    with Store.open(db, readonly=True) as store:
        with (
            pytest.raises(ReadOnlyDatabaseError, match="opened read-only") as raised,
            store.db.transaction(),
        ):
            pass  # pragma: no cover - never entered
        with pytest.raises(ReadOnlyDatabaseError, match="opened read-only"):
            Ledger(store).deposit(exchange="kraken", asset="USD", amount="5")

    assert isinstance(raised.value, TradeDBError)
    assert not Path(f"{db}-writer.lock").exists()
