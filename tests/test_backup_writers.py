"""A snapshot taken while four processes record fills is consistent: restored, it passes
integrity_check and the ledger audit, and every fill acknowledged before the snapshot began
is in it. Run as a script (`--child DB TAG`) this file is one of those writers.

The slow variant takes several snapshots under the writers and restores each."""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from faults import FaultFigures
from tradedb.services.ledger import Ledger
from tradedb.services.ledger.audit import audit
from tradedb.services.ops import backup_catalog, backup_snapshot
from tradedb.store import Store
from tradedb.store.engines.sqlite_backup import integrity_problems

pytestmark = pytest.mark.fault("load")

WRITERS = 4


def child(db: Path, tag: str) -> None:
    """Place a limit buy and fill it in two parts, again and again, printing each fill's id
    after the ledger acknowledged it."""
    ledger = Ledger(Store.open(db))
    now = time.time_ns() // 1_000_000
    ledger.deposit(
        exchange="binance", asset="USDT", amount="100000000", timestamp=now, reference=tag
    )
    print("READY", flush=True)
    n = 0
    while True:
        n += 1
        now = time.time_ns() // 1_000_000
        order_id = f"{tag}-o{n}"
        ledger.place_order(
            exchange="binance",
            order_id=order_id,
            symbol="BTC/USDT",
            side="buy",
            order_type="limit",
            amount=Decimal("0.3"),
            price=Decimal("100.01"),
            strategy=tag,
            status="open",
            timestamp=now,
        )
        for part, amount in enumerate((Decimal("0.1"), Decimal("0.2"))):
            trade_id = f"{tag}-f{n}-{part}"
            ledger.record_fill(
                exchange="binance",
                order_id=order_id,
                exchange_trade_id=trade_id,
                amount=amount,
                price=Decimal("100.00"),
                fee=Decimal("0.0001"),
                fee_currency="USDT",
                timestamp=now,
            )
            print(trade_id, flush=True)


def start_writers(db: Path) -> list[subprocess.Popen[str]]:
    writers = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", str(db), f"w{i}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(WRITERS)
    ]
    for writer in writers:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "READY\n"
    return writers


def stop(writers: list[subprocess.Popen[str]]) -> list[str]:
    """Stop the writers; every fill id each of them acknowledged."""
    acknowledged = []
    for writer in writers:
        writer.terminate()
        out, _ = writer.communicate(timeout=30)
        acknowledged += [line for line in out.splitlines() if line.startswith("w")]
    return acknowledged


def snapshot_under_writers(
    fault_figures: FaultFigures, db: Path, folder: Path, tmp_path: Path, snapshots: int
) -> None:
    with Store.open(db):
        pass  # created and migrated once, before the writers race to open it
    writers = start_writers(db)
    restored = []
    try:
        for n in range(snapshots):
            time.sleep(0.5)  # let the writers get going
            with Store.open(db, readonly=True) as store:
                before = store.trades.count()
            manifest = backup_snapshot.take_snapshot(db, folder)
            target = tmp_path / f"restored-{n}.sqlite"
            backup_catalog.restore(folder, manifest.id, target)
            restored.append((target, before))
    finally:
        acknowledged = stop(writers)
    assert len(acknowledged) > 0
    with Store.open(db) as store:
        final = store.trades.count()
        assert audit(store) == []
    # The writers went on committing while and after the snapshots were taken.
    assert final > restored[-1][1]
    for target, before in restored:
        assert integrity_problems(target) == []
        with Store.open(target) as copy:
            assert audit(copy) == []
            count = copy.trades.count()
            # Everything committed before the snapshot began, and no more than exists.
            assert before <= count <= final
            assert count > 0
    fault_figures.writers(at_once=WRITERS, rounds=snapshots)
    fault_figures.backups_verified(len(restored))


def test_snapshot_under_four_writers_restores_consistent(
    db_path: Path, tmp_path: Path, fault_figures: FaultFigures
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()

    snapshot_under_writers(fault_figures, db_path, folder, tmp_path, snapshots=1)

    assert [v.ok for v in backup_catalog.verify(folder)] == [True]


@pytest.mark.slow
def test_many_snapshots_under_four_writers(
    db_path: Path, tmp_path: Path, fault_figures: FaultFigures
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()

    snapshot_under_writers(fault_figures, db_path, folder, tmp_path, snapshots=20)

    assert all(v.ok for v in backup_catalog.verify(folder))


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    child(Path(sys.argv[2]), sys.argv[3])
