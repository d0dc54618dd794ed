"""How each engine copies a database into a backup file, and a backup file back into a
database: the part of backups that differs between the engines.

The backup services (services/ops/backup_*) own everything the engines share: backup
ids, temp names and renames, manifests, checksums of stored files, full backups' tar,
rotation, cloud copies. They ask this module for the engine's side and call it without
knowing which engine it is:

- `backup_source(target)` is the database to back up. `check()` refuses what cannot be
  backed up (a missing file, an unreachable server, a wrong password) before anything is
  written; `write(path, workspace)` writes the backup's data file (SQLite: VACUUM INTO,
  then zstd; PostgreSQL: pg_dump's custom format).
- `restore_method(engine)` reads such a file back: `scratch(...)` into a throwaway copy
  for `verify` (a temp file, or a scratch database on the server), `staged(...)` into a
  copy beside the destination for `restore`, which `install()`s it once the checks pass.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, ClassVar

from tradedb import owner_only
from tradedb.errors import BackupError
from tradedb.store.database import EngineName
from tradedb.store.engines import PostgresTarget, Target, parse_target, postgresql_engine

Progress = Callable[[str], None]

CHUNK = 1 << 20
# Files a backup has not finished with; never a backup, and removed by prune a day later.
TEMP_PREFIX = ".tmp-"


class CopyFailed(BackupError):
    """The copy of the database failed for another reason than a full disk; the message
    is that reason (the backup services say what it means for the folder)."""


class DamagedCopy(BackupError):
    """The database data inside a backup does not match its manifest."""

    def __init__(self) -> None:
        super().__init__("the database inside does not match its manifest (damaged)")


class DamagedDatabase(BackupError):
    """The database to back up fails its engine's check for damage; nothing was written."""

    def __init__(self, database: object, problem: str) -> None:
        self.database = database
        self.problem = problem
        super().__init__(
            f"database {database} is damaged ({problem}); nothing was backed up: keep "
            "the existing backups, and restore the newest one that verifies"
        )


@dataclass(frozen=True)
class WrittenCopy:
    """What an engine wrote into a backup's data file, for its manifest."""

    size_bytes: int  # the data file as stored
    sha256: str
    database_bytes: int  # the database data inside it (the SQLite file, the dump)
    database_sha256: str
    schema: str | None
    compression: str
    engine_version: str
    tool: str


@dataclass(frozen=True)
class StoredCopy:
    """The database data of a backup, to be read back: `open()` gives the stream as the
    engine wrote it (the snapshot file itself, or the member of a full backup's tar), and
    `path` the file holding exactly that stream, when there is one. `sha256` and
    `size_bytes` are what the manifest says that stream is; `workspace` is a folder for
    temp files (the backup folder)."""

    open: Callable[[], AbstractContextManager[IO[bytes]]]
    sha256: str
    size_bytes: int
    backup_id: str
    workspace: Path
    path: Path | None = None


class BackupSource(ABC):
    """A database to back up."""

    engine: ClassVar[EngineName]
    # The data file's suffix: `<backup id><suffix>`.
    suffix: ClassVar[str]
    # The data file's name inside a full backup's tar.
    full_member: ClassVar[str]

    @property
    @abstractmethod
    def display_name(self) -> str:
        """The database as written into manifests: never with a password."""

    @abstractmethod
    def check(self) -> None:
        """Refuse, in one line, a database that cannot be backed up; nothing is written."""

    @abstractmethod
    def write(self, target: Path, workspace: Path, progress: Progress | None) -> WrittenCopy:
        """Write the backup's data file to the new path `target` (owner-only, fsynced),
        using `workspace` (the backup folder) for temp files, which are gone afterwards.
        A full disk raises OSError(ENOSPC); any other failure BackupError. The live
        database is only read."""


class StagedCopy(ABC):
    """A backup read back into a copy that tradedb can open at `target`."""

    target: Target

    @abstractmethod
    def problems(self) -> list[str]:
        """What the engine's own checks find wrong with the copy; empty when it is sound."""

    @abstractmethod
    def install(self, to: Target, *, force: bool) -> None:
        """Put the copy in place at `to` (checked by `check_destination`)."""


class RestoreMethod(ABC):
    """How one engine's backups are read back."""

    engine: ClassVar[EngineName]
    # What a restore checks before it installs the copy, for people.
    checks: ClassVar[str]
    # The database's name inside a full backup's tar, and in the folder it restores into.
    full_member: ClassVar[str]

    @abstractmethod
    def check_destination(self, backup_id: str, to: Target, *, force: bool) -> None:
        """Refuse, before anything is written, a destination of the other engine, and one
        that holds a database unless `force`."""

    @abstractmethod
    def default_destination(self, folder: Path) -> Target | None:
        """Where a full backup restored into `folder` puts its database (None: there is no
        such place, the user must name one)."""

    @abstractmethod
    def check_scratch_server(self, server: Target | None) -> None:
        """Refuse, in one line, what `scratch` cannot use to verify this engine's backups."""

    @abstractmethod
    def scratch(
        self, data: StoredCopy, *, server: Target | None
    ) -> AbstractContextManager[StagedCopy]:
        """A throwaway copy for verifying (a temp file in the workspace, or a database on
        `server` with a unique name); it is removed at the end, even after a failure."""

    @abstractmethod
    def staged(self, data: StoredCopy, to: Target) -> AbstractContextManager[StagedCopy]:
        """A copy beside `to`, removed at the end unless it was installed."""


def backup_source(target: str | Path | PostgresTarget) -> BackupSource:
    """The engine's side of backing up the database at a path or URL."""
    parsed = parse_target(target)
    if isinstance(parsed, PostgresTarget):
        source: BackupSource = postgresql_backup().PostgresSource(parsed)
        return source
    from tradedb.store.engines.sqlite_backup import SQLiteSource

    return SQLiteSource(parsed)


def restore_method(engine: str) -> RestoreMethod:
    """The engine's side of reading back a backup made from an `engine` database."""
    if engine == "postgresql":
        method: RestoreMethod = postgresql_backup().PostgresRestore()
        return method
    if engine == "sqlite":
        from tradedb.store.engines.sqlite_backup import SQLiteRestore

        return SQLiteRestore()
    raise BackupError(f"backups of {engine!r} databases are not known to this tradedb")


def postgresql_backup() -> ModuleType:
    postgresql_engine()  # a clear error when psycopg is not installed
    from tradedb.store.engines import postgresql_backup as module

    return module


# --- files -------------------------------------------------------------------------------


@contextmanager
def owner_only_file(path: Path) -> Iterator[IO[bytes]]:
    """A new file readable by its owner only, fsynced before it is closed."""
    with owner_only.new_file(path) as handle:
        yield handle


def create_empty_owner_only(path: Path) -> None:
    os.close(owner_only.create(path))


def fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_folder(folder: Path) -> None:
    """Make a rename in the folder durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def copy_checked(reader: IO[bytes], target: Path, data: StoredCopy) -> None:
    """Copy a stream into a new owner-only `target`, and refuse it (DamagedCopy) unless
    its SHA-256 and size are those the manifest gives for the database data."""
    digest = hashlib.sha256()
    size = 0
    with owner_only_file(target) as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            writer.write(chunk)
    if (digest.hexdigest(), size) != (data.sha256, data.size_bytes):
        raise DamagedCopy
