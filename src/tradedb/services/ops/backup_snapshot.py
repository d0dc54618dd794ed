"""Snapshots: a consistent online copy of the database, with its manifest.

Steps, each of which can fail without harm to the live database or the folder:
1. check that the database can be backed up (the file exists; the server answers, the
   password works, pg_dump is new enough), before anything is written;
2. the engine writes the data file under a temp name in the backup folder, hashing it
   (SQLite: `VACUUM INTO` a temp file, then zstd; PostgreSQL: pg_dump's custom format,
   see store/engines/*_backup.py); it is fsynced;
3. rename it to its name, fsync the folder;
4. write the manifest, last and atomically. Only then is it a backup.
On any failure the temp files are removed and the error names the folder and the cause.
"""

from __future__ import annotations

import errno
import os
import tarfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tradedb.services.location import BackupLocation, ensure_backup_dir
from tradedb.services.ops.backup_manifest import (
    TEMP_PREFIX,
    BackupError,
    Kind,
    Manifest,
    fsync_folder,
    new_backup_id,
    write_manifest,
)
from tradedb.store.engines import PostgresTarget, Target
from tradedb.store.engines.backups import (
    BackupSource,
    CopyFailed,
    RestoreMethod,
    StoredCopy,
    WrittenCopy,
    backup_source,
)

Progress = Callable[[str], None]
Database = Path | PostgresTarget | str


@dataclass(frozen=True)
class SnapshotData:
    """A backup's data file, in place but not yet described by a manifest."""

    path: Path
    copy: WrittenCopy


def take_snapshot(
    database: Database,
    folder: Path | BackupLocation,
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Snapshot `database` (a SQLite path or a PostgreSQL target) into `folder` and return
    the manifest that makes it a backup. A BackupLocation is created (owner-only) once the
    database is known to be usable, so that a mistake writes nothing."""
    now = now or datetime.now(UTC)
    source = backup_source(database)
    source.check()
    ready = ready_folder(folder)
    backup_id = new_backup_id(ready, "snapshot", now)
    data = write_snapshot_data(source, ready, backup_id, progress=progress)
    return finish(ready, backup_id, "snapshot", now, data, source=source)


def ready_folder(folder: Path | BackupLocation) -> Path:
    return ensure_backup_dir(folder) if isinstance(folder, BackupLocation) else folder


def finish(
    folder: Path,
    backup_id: str,
    kind: Kind,
    now: datetime,
    data: SnapshotData,
    *,
    source: BackupSource,
) -> Manifest:
    copy = data.copy
    manifest = Manifest(
        id=backup_id,
        kind=kind,
        created_at_ms=int(now.timestamp() * 1000),
        file=data.path.name,
        size_bytes=copy.size_bytes,
        sha256=copy.sha256,
        compression=copy.compression if kind == "snapshot" else "tar",
        database_bytes=copy.database_bytes,
        database_sha256=copy.database_sha256,
        schema=copy.schema,
        source=source.display_name,
        engine=source.engine,
        engine_version=copy.engine_version,
        tool=copy.tool,
    )
    try:
        write_manifest(folder, manifest)
    except OSError as exc:
        data.path.unlink(missing_ok=True)
        raise storage_error(folder, exc) from None
    return manifest


def write_snapshot_data(
    source: BackupSource, folder: Path, backup_id: str, *, progress: Progress | None = None
) -> SnapshotData:
    """Steps 2-3: the engine's data file at `<folder>/<backup_id><suffix>`."""
    packed = folder / f"{TEMP_PREFIX}{backup_id}{source.suffix}"
    target = folder / f"{backup_id}{source.suffix}"
    try:
        copy = source.write(packed, folder, progress)
        os.replace(packed, target)
        fsync_folder(folder)
    except (OSError, CopyFailed) as exc:
        packed.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        raise storage_error(folder, exc) from None
    except BaseException:
        packed.unlink(missing_ok=True)
        raise
    return SnapshotData(target, copy)


def storage_error(folder: Path, exc: BaseException) -> BackupError:
    """One line a user can act on; a full disk is named as such."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return BackupError(
            f"backup folder {folder} is full (no space left on device); nothing was kept "
            "and the database is untouched: free space or choose another folder (`folder=PATH`)"
        )
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return BackupError(
        f"backup into {folder} failed: {detail}; nothing was kept and the database is untouched"
    )


def install_copy(method: RestoreMethod, data: StoredCopy, to: Target, *, force: bool) -> None:
    """Read a backup's database back into a copy beside `to` (checked against the
    manifest as it goes), run the engine's checks on it, and only then put it in place.
    `to` was accepted by `method.check_destination`."""
    with ExitStack() as stack:
        try:
            copy = stack.enter_context(method.staged(data, to))
        except (BackupError, tarfile.TarError) as exc:
            raise BackupError(f"backup {data.backup_id}: {exc}; nothing was restored") from None
        problems = copy.problems()
        if problems:
            raise BackupError(f"backup {data.backup_id}: {problems[0]}; nothing was restored")
        copy.install(to, force=force)
