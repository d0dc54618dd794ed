"""Cloud copies: upload to moto's S3 server on loopback (real s3fs, real HTTP), encrypted or
not, fetch back and restore; encryption refuses a wrong passphrase and any altered byte."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from moto_s3 import CREDENTIALS, REGION, moto_s3
from test_backup import fill_ledger, rows
from tradedb.services.ops import backup_catalog, backup_snapshot, backup_upload
from tradedb.services.ops.backup_encryption import decrypt_stream, encrypt_stream
from tradedb.services.ops.backup_manifest import BackupError
from tradedb.store import Store

PASSPHRASE = "correct horse battery staple"
BUCKET = "tradedb-backups"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """moto's S3 server on loopback, with a bucket; yields s3fs storage options."""
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        with moto_s3(BUCKET) as endpoint:
            yield {"client_kwargs": {"endpoint_url": endpoint, "region_name": REGION}}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def snapshot_folder(db_path: Path, tmp_path: Path) -> tuple[Path, str]:
    with Store.open(db_path) as store:
        fill_ledger(store, 10)
    folder = tmp_path / "backups"
    folder.mkdir()
    return folder, backup_snapshot.take_snapshot(db_path, folder).id


@pytest.mark.parametrize("passphrase", [None, PASSPHRASE], ids=["plain", "encrypted"])
def test_upload_to_s3_fetch_and_restore(
    s3: dict[str, Any], snapshot_folder: tuple[Path, str], tmp_path: Path, passphrase: str | None
) -> None:
    folder, backup_id = snapshot_folder
    url = f"s3://{BUCKET}/bot-{'enc' if passphrase else 'plain'}"

    [sent] = backup_upload.upload(folder, url, passphrase=passphrase, options=s3)
    again = backup_upload.upload(folder, url, passphrase=passphrase, options=s3)

    assert sent.backup_id == backup_id
    assert not sent.skipped
    assert again[0].skipped  # the weekly copy can run again without sending it twice
    import s3fs

    remote = s3fs.S3FileSystem(**s3)
    stored = remote.cat(f"{url}/{sent.remote_file}")
    local = (folder / f"{backup_id}.sqlite.zst").read_bytes()
    if passphrase:
        assert sent.remote_file.endswith(".enc")
        assert stored != local
        assert local[100:200] not in stored
    else:
        assert stored == local

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fetched = backup_upload.fetch(url, backup_id, elsewhere, passphrase=passphrase, options=s3)
    assert fetched.id == backup_id
    assert [v.ok for v in backup_catalog.verify(elsewhere)] == [True]
    backup_catalog.restore(elsewhere, backup_id, tmp_path / "restored.sqlite")
    assert rows(tmp_path / "restored.sqlite", "SELECT count(*) FROM trades") == [(10,)]


def test_upload_to_a_local_folder_writes_the_manifest_last(
    snapshot_folder: tuple[Path, str], tmp_path: Path
) -> None:
    folder, backup_id = snapshot_folder
    target = tmp_path / "copy"

    backup_upload.upload(folder, str(target), options={})

    assert sorted(p.name for p in target.iterdir()) == [
        f"{backup_id}.manifest.json",
        f"{backup_id}.sqlite.zst",
    ]


@pytest.mark.fault("bad input")
def test_encrypted_fetch_without_passphrase_is_refused(
    s3: dict[str, Any], snapshot_folder: tuple[Path, str], tmp_path: Path
) -> None:
    folder, backup_id = snapshot_folder
    url = f"s3://{BUCKET}/refuse"
    backup_upload.upload(folder, url, passphrase=PASSPHRASE, options=s3)

    with pytest.raises(BackupError, match="TRADEDB_BACKUP_PASSPHRASE"):
        backup_upload.fetch(url, backup_id, tmp_path, options=s3)
    with pytest.raises(BackupError, match="wrong passphrase"):
        backup_upload.fetch(url, backup_id, tmp_path, passphrase="not the passphrase", options=s3)
    assert backup_catalog.list_backups(tmp_path) == []


def encrypted(data: bytes) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, PASSPHRASE)
    return out.getvalue()


def decrypted(data: bytes) -> bytes:
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(data), out, PASSPHRASE)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) * 2 + 5])
def test_encryption_round_trips_every_chunk_boundary(size: int) -> None:
    data = os.urandom(size)

    assert decrypted(encrypted(data)) == data


@pytest.mark.fault("damage")
def test_encryption_detects_altered_truncated_and_extended_data() -> None:
    sealed = encrypted(os.urandom((1 << 20) + 1000))  # two chunks
    flipped = bytearray(sealed)
    flipped[len(sealed) // 2] ^= 1
    one_chunk = len(sealed) - (1000 + 16 + 4)

    for damaged in (bytes(flipped), sealed[:one_chunk], sealed[:-1], sealed + b"x"):
        with pytest.raises(BackupError):
            decrypted(damaged)


@pytest.mark.fault("bad input")
def test_short_passphrase_is_refused() -> None:
    with pytest.raises(BackupError, match="at least 12"):
        encrypt_stream(io.BytesIO(b"x"), io.BytesIO(), "short")
