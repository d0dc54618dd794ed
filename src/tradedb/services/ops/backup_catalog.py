"""The backups in a folder, whatever their kind: list, verify, restore.

Everything works from the manifests. Verifying a backup checks the stored file's SHA-256
and size, then decompresses the database inside to a temp file in the folder and runs
`integrity_check` on it; restoring does the same checks before it writes anything.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tradedb.services.ops.backup_full import FullRestore, open_database_member, restore_full
from tradedb.services.ops.backup_manifest import (
    TEMP_PREFIX,
    BackupError,
    Manifest,
    file_sha256,
    find_manifest,
    read_manifests,
)
from tradedb.services.ops.backup_snapshot import decompress, restore_database_file
from tradedb.store import backup as sqlite_backup


@dataclass(frozen=True)
class Verdict:
    manifest: Manifest
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def list_backups(folder: Path) -> list[Manifest]:
    """The backups in the folder, oldest first (only those with a valid manifest)."""
    return read_manifests(folder)


def verify(folder: Path, backup_id: str | None = None) -> list[Verdict]:
    """Check one backup (or every backup, when `backup_id` is None)."""
    manifests = [find_manifest(folder, backup_id)] if backup_id else read_manifests(folder)
    return [Verdict(manifest, verify_one(folder, manifest)) for manifest in manifests]


def verify_one(folder: Path, manifest: Manifest) -> list[str]:
    stored = checksum_problems(folder, manifest)
    if stored:
        return stored
    temp = folder / f"{TEMP_PREFIX}{manifest.id}.verify.sqlite"
    temp.unlink(missing_ok=True)
    try:
        with _open_database(folder, manifest) as reader:
            sha256, size = decompress(reader, temp)
        if (sha256, size) != (manifest.database_sha256, manifest.database_bytes):
            return ["the database inside does not match its manifest"]
        return [f"integrity_check: {p}" for p in sqlite_backup.integrity_problems(temp)]
    except (BackupError, tarfile.TarError) as exc:
        return [str(exc)]
    finally:
        temp.unlink(missing_ok=True)


def checksum_problems(folder: Path, manifest: Manifest) -> list[str]:
    path = folder / manifest.file
    if not path.is_file():
        return [f"{manifest.file} is missing"]
    sha256, size = file_sha256(path)
    if size != manifest.size_bytes:
        return [f"{manifest.file} has {size} bytes, its manifest says {manifest.size_bytes}"]
    if sha256 != manifest.sha256:
        return [f"{manifest.file}: SHA-256 does not match its manifest (the file is damaged)"]
    return []


def restore(
    folder: Path, backup_id: str | None, to: Path, *, force: bool = False
) -> tuple[Manifest, Path | FullRestore]:
    """Restore a snapshot to the database file `to`, or a full backup into the folder `to`.
    Nothing is written unless the backup's checksum, the database inside and its
    integrity_check all agree with the manifest."""
    manifest = find_manifest(folder, backup_id)
    problems = checksum_problems(folder, manifest)
    if problems:
        raise BackupError(f"backup {manifest.id}: {problems[0]}; nothing was restored")
    path = folder / manifest.file
    if manifest.kind == "full":
        return manifest, restore_full(path, manifest, to, force=force)
    restore_database_file(lambda: path.open("rb"), manifest, to, force=force)
    return manifest, to


@contextmanager
def _open_database(folder: Path, manifest: Manifest) -> Iterator[IO[bytes]]:
    """The compressed database stream of a backup: the file itself for a snapshot, the
    member inside the tar for a full backup."""
    path = folder / manifest.file
    if manifest.kind == "snapshot":
        with path.open("rb") as handle:
            yield handle
        return
    with tarfile.open(path, mode="r") as tar, open_database_member(tar) as member:
        yield member
