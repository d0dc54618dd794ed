"""Snapshots: take, list, verify, restore; a damaged backup is refused; a full disk leaves
the database untouched and no half-written backup behind; the CLI's user errors."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from cli_harness import isolated_environ
from tradedb.services.ledger import Ledger
from tradedb.services.ops import backup_catalog, backup_snapshot
from tradedb.services.ops.backup_manifest import BackupError
from tradedb.store import Store
from tradedb.store.engines import sqlite_backup

TIMESTAMP = 1_700_000_000_000


def fill_ledger(store: Store, fills: int) -> None:
    ledger = Ledger(store)
    ledger.deposit(
        exchange="kraken", asset="EUR", amount="100000", timestamp=TIMESTAMP, reference="d1"
    )
    for n in range(fills):
        ledger.place_order(
            exchange="kraken",
            order_id=f"o{n}",
            symbol="BCH/EUR",
            side="buy",
            order_type="limit",
            amount=Decimal("0.5"),
            price=Decimal("200.10"),
            strategy="s",
            status="open",
            timestamp=TIMESTAMP + n,
        )
        ledger.record_fill(
            exchange="kraken",
            order_id=f"o{n}",
            exchange_trade_id=f"t{n}",
            amount=Decimal("0.5"),
            price=Decimal("200.10"),
            fee=Decimal("0.01"),
            fee_currency="EUR",
            timestamp=TIMESTAMP + n,
        )


@pytest.fixture
def live(db_path: Path) -> Path:
    with Store.open(db_path) as store:
        fill_ledger(store, 20)
    return db_path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "backups"
    path.mkdir(mode=0o700)
    return path


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def file_state(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def test_snapshot_restores_to_the_same_rows_and_files_are_owner_only(
    live: Path, folder: Path, tmp_path: Path
) -> None:
    manifest = backup_snapshot.take_snapshot(live, folder)

    assert [m.id for m in backup_catalog.list_backups(folder)] == [manifest.id]
    assert manifest.schema is not None
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not list(folder.glob(".tmp-*"))
    assert [v.ok for v in backup_catalog.verify(folder)] == [True]

    target = tmp_path / "restored.sqlite"
    backup_catalog.restore(folder, manifest.id, target)

    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    query = "SELECT exchange_trade_id, amount, price FROM trades ORDER BY id"
    assert rows(target, query) == rows(live, query)
    assert len(rows(target, query)) == 20
    with Store.open(target) as restored:
        from tradedb.services.ledger.audit import audit

        assert audit(restored) == []


def test_manifest_holds_checksums_of_both_files(live: Path, folder: Path) -> None:
    manifest = backup_snapshot.take_snapshot(live, folder)

    data = json.loads((folder / f"{manifest.id}.manifest.json").read_text())

    assert data["format"] == "tradedb-backup/1"
    assert data["file"] == f"{manifest.id}.sqlite.zst"
    assert data["size_bytes"] == (folder / manifest.file).stat().st_size
    assert len(data["sha256"]) == len(data["database_sha256"]) == 64
    assert data["database_bytes"] > data["size_bytes"]  # zstd did compress


@pytest.mark.fault("damage")
def test_one_flipped_byte_fails_verify_and_restore_refuses(
    live: Path, folder: Path, tmp_path: Path
) -> None:
    manifest = backup_snapshot.take_snapshot(live, folder)
    data = folder / manifest.file
    damaged = bytearray(data.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    data.write_bytes(bytes(damaged))

    [verdict] = backup_catalog.verify(folder, manifest.id)
    assert not verdict.ok
    assert "SHA-256" in verdict.problems[0]

    target = tmp_path / "restored.sqlite"
    with pytest.raises(BackupError, match="nothing was restored"):
        backup_catalog.restore(folder, manifest.id, target)
    assert not target.exists()
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.fault("damage")
def test_a_database_damaged_before_compression_fails_integrity_check(
    live: Path, folder: Path, tmp_path: Path
) -> None:
    """A manifest that matches damaged data (say, a bad disk under the copy) is still caught
    by integrity_check after decompression."""
    manifest = backup_snapshot.take_snapshot(live, folder)
    plain = tmp_path / "plain.sqlite"
    with (folder / manifest.file).open("rb") as reader:
        sqlite_backup.decompress(reader, plain)
    content = bytearray(plain.read_bytes())
    page = 4096
    content[2 * page : 3 * page] = b"\xff" * page  # wipe a b-tree page
    plain.write_bytes(bytes(content))
    packed = tmp_path / "packed.zst"
    database_sha, database_bytes, sha, size = sqlite_backup.compress(plain, packed)
    os.replace(packed, folder / manifest.file)
    manifest_file = folder / f"{manifest.id}.manifest.json"
    data = json.loads(manifest_file.read_text())
    data.update(
        sha256=sha, size_bytes=size, database_sha256=database_sha, database_bytes=database_bytes
    )
    manifest_file.write_text(json.dumps(data))

    [verdict] = backup_catalog.verify(folder, manifest.id)

    assert not verdict.ok
    assert verdict.problems[0].startswith("integrity_check")
    with pytest.raises(BackupError, match="integrity_check"):
        backup_catalog.restore(folder, manifest.id, tmp_path / "restored.sqlite")
    assert not (tmp_path / "restored.sqlite").exists()


@pytest.mark.fault("bad input")
def test_restore_refuses_to_overwrite_without_force(live: Path, folder: Path) -> None:
    manifest = backup_snapshot.take_snapshot(live, folder)
    with Store.open(live) as store:
        fill_ledger_more = Ledger(store)
        fill_ledger_more.deposit(
            exchange="kraken", asset="EUR", amount="1", timestamp=TIMESTAMP, reference="later"
        )
    before = file_state(live)

    with pytest.raises(BackupError, match="`force=True`"):
        backup_catalog.restore(folder, manifest.id, live)
    assert file_state(live) == before

    backup_catalog.restore(folder, manifest.id, live, force=True)
    references = rows(live, "SELECT reference FROM wallet_movements WHERE kind = 'deposit'")
    assert ("later",) not in references


@pytest.mark.fault("damage")
def test_data_file_without_a_manifest_is_not_a_backup(live: Path, folder: Path) -> None:
    manifest = backup_snapshot.take_snapshot(live, folder)
    (folder / f"{manifest.id}.manifest.json").unlink()

    assert backup_catalog.list_backups(folder) == []
    assert backup_catalog.verify(folder) == []
    with pytest.raises(BackupError, match="no backup"):
        backup_catalog.restore(folder, manifest.id, folder.parent / "r.sqlite")


DAMAGED_MANIFESTS = {
    "bad JSON": lambda data: "{not json",
    "a missing field": lambda data: json.dumps({k: v for k, v in data.items() if k != "sha256"}),
    "a checksum that is no SHA-256": lambda data: json.dumps({**data, "sha256": "abc"}),
    "a negative size": lambda data: json.dumps({**data, "size_bytes": -1}),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED_MANIFESTS))
@pytest.mark.fault("damage")
def test_a_damaged_manifest_is_reported_by_list_and_verify(
    live: Path, folder: Path, tmp_path: Path, damage: str
) -> None:
    kept = backup_snapshot.take_snapshot(live, folder)
    damaged = backup_snapshot.take_snapshot(live, folder)
    manifest_file = folder / f"{damaged.id}.manifest.json"
    manifest_file.write_text(DAMAGED_MANIFESTS[damage](json.loads(manifest_file.read_text())))
    env = isolated_environ(tmp_path)
    env["TRADEDB_BACKUP_DIR"] = str(folder)

    listed = tradedb("backup", "list", "--json", env=env)
    verified = tradedb("backup", "verify", "--json", env=env)
    restored = tradedb("restore", damaged.id, "--to", str(tmp_path / "r.sqlite"), env=env)

    assert listed.returncode == 1, listed.stderr
    assert [b["id"] for b in json.loads(listed.stdout)] == [kept.id]
    assert f"manifest {damaged.id}.manifest.json is damaged" in listed.stderr
    assert verified.returncode == 1
    by_id = {v["id"]: v for v in json.loads(verified.stdout)}
    assert by_id[kept.id]["ok"] is True
    assert by_id[damaged.id]["ok"] is False
    assert "is damaged" in by_id[damaged.id]["problems"][0]
    assert restored.returncode == 2
    assert "is damaged" in restored.stderr
    assert restored.stderr.count("\n") == 1


@pytest.mark.fault("disk full")
def test_a_failed_copy_leaves_no_journal_behind(
    live: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VACUUM INTO writes its copy through a rollback journal; a disk that fills while it
    runs leaves that journal beside the half-written copy."""
    real = sqlite_backup.vacuum_into

    def vacuum_until_full(source: Path, target: Path) -> None:
        real(source, target)
        Path(f"{target}-journal").write_bytes(b"\0" * 512)
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(sqlite_backup, "vacuum_into", vacuum_until_full)

    with pytest.raises(BackupError, match="full"):
        backup_snapshot.take_snapshot(live, folder)

    assert list(folder.iterdir()) == []


@pytest.mark.fault("disk full")
def test_full_disk_injected_leaves_database_untouched_and_no_backup(
    live: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = file_state(live)
    real = sqlite_backup.compress

    def compress_until_full(source: Path, target: Path) -> tuple[str, int, str, int]:
        real(source, target)  # the compressed file is half there when the disk fills
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(sqlite_backup, "compress", compress_until_full)

    with pytest.raises(BackupError, match="full") as caught:
        backup_snapshot.take_snapshot(live, folder)

    assert str(folder) in str(caught.value)
    assert "untouched" in str(caught.value)
    assert file_state(live) == before
    assert list(folder.iterdir()) == []
    assert backup_catalog.list_backups(folder) == []


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.fault("disk full")
def test_full_tmpfs_gives_a_clear_error_and_keeps_nothing(db_path: Path, tiny_tmpfs: Path) -> None:
    with Store.open(db_path) as store:
        fill_ledger(store, 5)
        # Random text does not compress: the copy alone is larger than the 1 MiB disk.
        with store.db.transaction() as conn:
            conn.execute("CREATE TABLE ballast (b BLOB)")
            conn.executemany(
                "INSERT INTO ballast VALUES (?)", [(os.urandom(4096),) for _ in range(600)]
            )
    before = file_state(db_path)

    with pytest.raises(BackupError, match="full"):
        backup_snapshot.take_snapshot(db_path, tiny_tmpfs)

    assert file_state(db_path) == before
    assert backup_catalog.list_backups(tiny_tmpfs) == []
    assert [p.name for p in tiny_tmpfs.iterdir()] == []
    assert rows(db_path, "PRAGMA integrity_check") == [("ok",)]


# --- CLI -----------------------------------------------------------------------------------


def tradedb(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradedb", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def test_cli_snapshot_list_verify_restore(live: Path, tmp_path: Path) -> None:
    env = isolated_environ(tmp_path)
    env["TRADEDB_BACKUP_DIR"] = str(tmp_path / "bk")

    taken = tradedb("backup", "snapshot", "--db", str(live), "--json", env=env)
    assert taken.returncode == 0, taken.stderr
    backup_id = json.loads(taken.stdout)["id"]
    listed = tradedb("backup", "list", "--json", env=env)
    assert [b["id"] for b in json.loads(listed.stdout)] == [backup_id]
    verified = tradedb("backup", "verify", "--json", env=env)
    assert json.loads(verified.stdout) == [{"id": backup_id, "ok": True, "problems": []}]

    refused = tradedb("restore", backup_id, "--to", str(live), env=env)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "--force" in refused.stderr
    assert "Traceback" not in refused.stderr

    restored = tradedb("restore", backup_id, "--to", str(tmp_path / "r.sqlite"), env=env)
    assert restored.returncode == 0, restored.stderr
    assert rows(tmp_path / "r.sqlite", "SELECT count(*) FROM trades") == [(20,)]

    # A damaged backup: verify exits 1 and says which.
    data = tmp_path / "bk" / f"{backup_id}.sqlite.zst"
    data.write_bytes(data.read_bytes()[:-1] + bytes([data.read_bytes()[-1] ^ 0xFF]))
    failed = tradedb("backup", "verify", env=env)
    assert failed.returncode == 1
    assert f"{backup_id}: FAILED" in failed.stdout


@pytest.mark.fault("bad input")
def test_cli_unknown_backup_is_one_line(tmp_path: Path) -> None:
    env = isolated_environ(tmp_path)
    env["TRADEDB_BACKUP_DIR"] = str(tmp_path)

    result = tradedb("restore", "snapshot-20200101T000000Z", "--to", str(tmp_path / "x"), env=env)

    assert result.returncode == 2
    assert result.stderr.startswith("error: no backup snapshot-20200101T000000Z")
    assert result.stderr.count("\n") == 1
