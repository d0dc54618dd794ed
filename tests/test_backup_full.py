"""The full backup: snapshot, Parquet archives, config and manifests in one file, restored
with one call; and rotation: 7 daily / 4 weekly / 12 monthly, the newest always kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_backup import fill_ledger, rows
from tradedb.services.ops import backup_catalog, backup_full, backup_rotation, backup_snapshot
from tradedb.services.ops.backup_full import FullRestore
from tradedb.services.ops.backup_manifest import BackupError, Manifest
from tradedb.store import Store


def test_full_backup_restores_database_archives_and_config(db_path: Path, tmp_path: Path) -> None:
    with Store.open(db_path) as store:
        fill_ledger(store, 5)
    archives = tmp_path / "archives" / "exchange=binance" / "symbol=ETH_BTC"
    archives.mkdir(parents=True)
    (archives / "2018.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    config = tmp_path / "config.toml"
    config.write_text("[backup]\nkeep_daily = 3\n", encoding="utf-8")
    folder = tmp_path / "backups"
    folder.mkdir()
    snap = backup_snapshot.take_snapshot(db_path, folder)

    full = backup_full.take_full(db_path, folder, archives=tmp_path / "archives", config=config)

    assert full.kind == "full"
    assert [v.ok for v in backup_catalog.verify(folder)] == [True, True]
    out = tmp_path / "restored"
    manifest, restored = backup_catalog.restore(folder, full.id, out)
    assert manifest.id == full.id
    assert isinstance(restored, FullRestore)
    assert rows(restored.database, "SELECT count(*) FROM trades") == [(5,)]
    assert (out / "archives/exchange=binance/symbol=ETH_BTC/2018.parquet").read_bytes() == (
        archives / "2018.parquet"
    ).read_bytes()
    assert restored.config is not None
    assert restored.config.read_text() == config.read_text()
    assert json.loads((out / "manifests" / f"{snap.id}.manifest.json").read_text())["id"] == snap.id

    with pytest.raises(BackupError, match="`force=True`"):
        backup_catalog.restore(folder, full.id, out)
    backup_catalog.restore(folder, full.id, out, force=True)


def test_archive_dir_comes_from_config_or_beside_the_database(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite"
    config = tmp_path / "config.toml"
    env = {"TRADEDB_CONFIG": str(config)}
    assert backup_full.archive_dir(None, database, env) is None
    (tmp_path / "bot-archives").mkdir()
    assert backup_full.archive_dir(None, database, env) == tmp_path / "bot-archives"
    config.write_text('[retention]\narchive_dir = "/srv/archives"\n', encoding="utf-8")
    assert backup_full.archive_dir(None, database, env) == Path("/srv/archives")
    assert backup_full.archive_dir("/opt/a", database, env) == Path("/opt/a")


@pytest.mark.fault("damage")
def test_damaged_full_backup_is_refused(db_path: Path, tmp_path: Path) -> None:
    with Store.open(db_path) as store:
        fill_ledger(store, 2)
    folder = tmp_path / "backups"
    folder.mkdir()
    full = backup_full.take_full(db_path, folder, archives=None, config=None)
    data = bytearray((folder / full.file).read_bytes())
    data[700] ^= 0x40
    (folder / full.file).write_bytes(bytes(data))

    assert not backup_catalog.verify(folder, full.id)[0].ok
    with pytest.raises(BackupError, match="nothing was restored"):
        backup_catalog.restore(folder, full.id, tmp_path / "out")
    assert not (tmp_path / "out" / "tradedb.sqlite").exists()


# --- rotation ------------------------------------------------------------------------------

START = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)


def manifest_at(moment: datetime, kind: str = "snapshot", n: int = 0) -> Manifest:
    backup_id = f"{kind}-{moment:%Y%m%dT%H%M%SZ}" + (f"-{n}" if n else "")
    return Manifest(
        id=backup_id,
        kind=kind,  # type: ignore[arg-type]
        created_at_ms=int(moment.timestamp() * 1000),
        file=f"{backup_id}.sqlite.zst",
        size_bytes=1,
        sha256="0" * 64,
        compression="zstd",
        database_bytes=1,
        database_sha256="0" * 64,
        schema="0003",
        source="x",
    )


def test_a_year_of_daily_snapshots_keeps_7_daily_4_weekly_12_monthly() -> None:
    manifests = [manifest_at(START + timedelta(days=d)) for d in range(400)]

    kept = backup_rotation.keep_reasons(manifests, backup_rotation.Policy())

    newest = START + timedelta(days=399)
    dailies = {m for m, why in kept.items() if "daily" in why}
    assert dailies == {manifest_at(newest - timedelta(days=d)).id for d in range(7)}
    assert sum("weekly" in why for why in kept.values()) == 4
    assert sum("monthly" in why for why in kept.values()) == 12
    # The newest of each month is the one kept for it.
    january = [m for m in manifests if m.created_at.strftime("%Y-%m") == "2026-01"]
    assert "monthly" in kept[january[-1].id]
    assert len(kept) < 7 + 4 + 12


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 3 * 365 * 24), min_size=1, max_size=40, unique=True),
    daily=st.integers(0, 8),
    weekly=st.integers(0, 5),
    monthly=st.integers(0, 13),
)
def test_prune_never_deletes_the_newest_and_keeps_at_most_the_policy(
    offsets: list[int], daily: int, weekly: int, monthly: int
) -> None:
    manifests = [manifest_at(START + timedelta(hours=h)) for h in offsets]
    manifests += [manifest_at(START + timedelta(hours=h + 1), "full") for h in offsets[:3]]

    kept = backup_rotation.keep_reasons(manifests, backup_rotation.Policy(daily, weekly, monthly))

    for kind in ("snapshot", "full"):
        mine = [m for m in manifests if m.kind == kind]
        assert max(mine, key=lambda m: m.created_at_ms).id in kept
        assert sum(m.id in kept for m in mine) <= 1 + daily + weekly + monthly


def test_prune_deletes_what_the_plan_says_and_dry_run_deletes_nothing(
    db_path: Path, tmp_path: Path
) -> None:
    with Store.open(db_path) as store:
        fill_ledger(store, 1)
    folder = tmp_path / "backups"
    folder.mkdir()
    days = [
        backup_snapshot.take_snapshot(db_path, folder, now=START + timedelta(days=d))
        for d in range(3)
    ]
    leftover = folder / ".tmp-snapshot-20240101T000000Z.sqlite"
    leftover.write_bytes(b"half")
    import os

    os.utime(leftover, (0, 0))

    plan = backup_rotation.plan_prune(folder, backup_rotation.Policy(daily=1, weekly=0, monthly=0))
    assert [m.id for m in plan.delete] == [days[0].id, days[1].id]
    assert plan.stale_temp_files == [leftover]
    assert len(list(folder.iterdir())) == 7  # the dry run touched nothing

    deleted = backup_rotation.prune(folder, plan)

    assert leftover in deleted
    assert [m.id for m in backup_catalog.list_backups(folder)] == [days[2].id]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{days[2].id}.manifest.json", days[2].file]
    )


def test_policy_comes_from_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[backup]\nkeep_daily = 3\nkeep_monthly = 0\n", encoding="utf-8")
    env = {"TRADEDB_CONFIG": str(config)}

    assert backup_rotation.Policy.from_config(env) == backup_rotation.Policy(3, 4, 0)
    config.write_text("[backup]\nkeep_weekly = -1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="keep_weekly"):
        backup_rotation.Policy.from_config(env)
