"""Snapshots: a consistent online copy of the database, compressed, with its manifest.

Steps, each of which can fail without harm to the live database or the folder:
1. `VACUUM INTO` a temp file in the backup folder (one read transaction: writers go on);
2. fsync it, then zstd-compress it into a second temp file, hashing both sides;
3. fsync and rename the compressed file to its name, fsync the folder;
4. write the manifest, last and atomically. Only then is it a backup.
On any failure the temp files are removed and the error names the folder and the cause.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import IO

from tradedb.services.ops.backup_manifest import (
    CHUNK,
    OWNER_ONLY,
    TEMP_PREFIX,
    BackupError,
    Kind,
    Manifest,
    create_empty_owner_only,
    fsync_file,
    fsync_folder,
    missing_extra,
    new_backup_id,
    owner_only_file,
    write_manifest,
)
from tradedb.store import backup as sqlite_backup

# Level 6 compresses a tradedb file to about as small as level 19 does, at a fraction
# of the time (measured in docs/operations.md).
ZSTD_LEVEL = 6
SNAPSHOT_SUFFIX = ".sqlite.zst"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SnapshotData:
    """A compressed copy of the database, in place but not yet described by a manifest."""

    path: Path
    size_bytes: int
    sha256: str
    database_bytes: int
    database_sha256: str
    schema: str | None


def take_snapshot(
    database: Path, folder: Path, *, now: datetime | None = None, progress: Progress | None = None
) -> Manifest:
    """Snapshot `database` into `folder` and return the manifest that makes it a backup."""
    now = now or datetime.now(UTC)
    backup_id = new_backup_id(folder, "snapshot", now)
    data = write_snapshot_data(database, folder, backup_id, progress=progress)
    return finish(folder, backup_id, "snapshot", now, data, source=database)


def finish(
    folder: Path, backup_id: str, kind: Kind, now: datetime, data: SnapshotData, *, source: Path
) -> Manifest:
    manifest = Manifest(
        id=backup_id,
        kind=kind,
        created_at_ms=int(now.timestamp() * 1000),
        file=data.path.name,
        size_bytes=data.size_bytes,
        sha256=data.sha256,
        compression="zstd" if kind == "snapshot" else "tar",
        database_bytes=data.database_bytes,
        database_sha256=data.database_sha256,
        schema=data.schema,
        source=str(source),
    )
    try:
        write_manifest(folder, manifest)
    except OSError as exc:
        data.path.unlink(missing_ok=True)
        raise storage_error(folder, exc) from None
    return manifest


def write_snapshot_data(
    database: Path, folder: Path, backup_id: str, *, progress: Progress | None = None
) -> SnapshotData:
    """Steps 1-3: the compressed snapshot at `<folder>/<backup_id>.sqlite.zst`."""
    if not database.is_file():
        raise BackupError(f"database {database} does not exist")
    copy = folder / f"{TEMP_PREFIX}{backup_id}.sqlite"
    packed = folder / f"{TEMP_PREFIX}{backup_id}{SNAPSHOT_SUFFIX}"
    target = folder / f"{backup_id}{SNAPSHOT_SUFFIX}"
    try:
        if progress:
            progress("copying the database (VACUUM INTO)")
        # Created first so that the copy is owner-only from its first byte.
        create_empty_owner_only(copy)
        sqlite_backup.vacuum_into(database, copy)
        fsync_file(copy)
        schema = sqlite_backup.schema_revision(copy)
        if progress:
            progress("compressing (zstd)")
        database_sha256, database_bytes, sha256, size = compress(copy, packed)
        os.replace(packed, target)
        fsync_folder(folder)
    except (OSError, sqlite3.Error) as exc:
        packed.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        raise storage_error(folder, exc) from None
    finally:
        copy.unlink(missing_ok=True)
    return SnapshotData(target, size, sha256, database_bytes, database_sha256, schema)


def _zstd() -> ModuleType:
    try:
        import zstandard
    except ImportError:
        raise missing_extra("zstandard") from None
    return zstandard


def compress(source: Path, target: Path) -> tuple[str, int, str, int]:
    """zstd-compress `source` into a new owner-only `target`, fsynced. Returns the SHA-256
    and size of the source, then of the compressed file, hashed as they stream by."""
    plain, packed = hashlib.sha256(), hashlib.sha256()
    plain_size = packed_size = 0
    compressor = _zstd().ZstdCompressor(level=ZSTD_LEVEL).compressobj()
    with source.open("rb") as reader, owner_only_file(target) as writer:
        while chunk := reader.read(CHUNK):
            plain.update(chunk)
            plain_size += len(chunk)
            out = compressor.compress(chunk)
            packed.update(out)
            packed_size += len(out)
            writer.write(out)
        out = compressor.flush()
        packed.update(out)
        packed_size += len(out)
        writer.write(out)
    return plain.hexdigest(), plain_size, packed.hexdigest(), packed_size


def decompress(reader: IO[bytes], target: Path) -> tuple[str, int]:
    """Decompress a zstd stream into a new owner-only, fsynced `target`; returns the SHA-256
    and size of what was written. A damaged stream raises BackupError."""
    zstandard = _zstd()
    digest = hashlib.sha256()
    size = 0
    try:
        with (
            zstandard.ZstdDecompressor().stream_reader(reader, read_across_frames=True) as source,
            owner_only_file(target) as writer,
        ):
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                writer.write(chunk)
    except zstandard.ZstdError as exc:
        raise BackupError(f"the compressed data is damaged: {exc}") from None
    return digest.hexdigest(), size


def storage_error(folder: Path, exc: BaseException) -> BackupError:
    """One line a user can act on; a full disk is named as such."""
    full = (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or (
        isinstance(exc, sqlite3.Error) and "full" in str(exc)
    )
    if full:
        return BackupError(
            f"backup folder {folder} is full (no space left on device); nothing was kept "
            "and the database is untouched: free space or choose another --backup-dir"
        )
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return BackupError(
        f"backup into {folder} failed: {detail}; nothing was kept and the database is untouched"
    )


def restore_database_file(
    source: Callable[[], IO[bytes]], manifest: Manifest, to: Path, *, force: bool
) -> None:
    """Decompress a snapshot next to `to`, check it against the manifest and
    integrity_check, and only then move it into place. `source` opens the compressed
    stream. An existing database at `to` is replaced only with `force`."""
    refuse_live_target(to, force=force)
    if not to.parent.is_dir():
        raise BackupError(f"folder {to.parent} does not exist; create it or choose another --to")
    temp = to.parent / f"{TEMP_PREFIX}{to.name}.restore"
    temp.unlink(missing_ok=True)
    try:
        with source() as reader:
            sha256, size = decompress(reader, temp)
        if (sha256, size) != (manifest.database_sha256, manifest.database_bytes):
            raise BackupError(
                f"backup {manifest.id}: the database inside does not match its manifest "
                "(damaged); nothing was restored"
            )
        problems = sqlite_backup.integrity_problems(temp)
        if problems:
            raise BackupError(
                f"backup {manifest.id}: integrity_check failed ({problems[0]}); "
                "nothing was restored"
            )
        os.chmod(temp, OWNER_ONLY)
        # A -wal or -shm file left by the old database would be replayed onto the new one.
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{to}{suffix}").unlink(missing_ok=True)
        os.replace(temp, to)
        fsync_folder(to.parent)
    except OSError as exc:
        raise BackupError(f"restore to {to} failed: {exc.strerror or exc}") from None
    finally:
        temp.unlink(missing_ok=True)


def refuse_live_target(to: Path, *, force: bool) -> None:
    if to.is_dir():
        raise BackupError(f"--to {to} is a folder; give the database file to write")
    if not force and (to.exists() or Path(f"{to}-wal").exists()):
        raise BackupError(
            f"{to} exists (a live database?); stop what uses it and add --force to replace it"
        )
