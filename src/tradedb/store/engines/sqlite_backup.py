"""SQLite's side of backups: a consistent copy of a live database, compressed, and read back.

The copy is `VACUUM INTO`, which reads the database inside one read transaction: writers
in other processes go on committing, and the copy is the state at the moment it began
(measured here: `backup(pages=N)` restarts on every write and never finishes under a
steady writer; copying the file loses what is still in the -wal file). It is then
zstd-compressed into the backup's data file, and both sides are hashed as they stream by.
Reading it back decompresses next to the destination, checks the hash of the database
inside and `PRAGMA integrity_check`, and only then renames it into place.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import IO

from tradedb import owner_only
from tradedb.errors import BackupError
from tradedb.store.engines import Target
from tradedb.store.engines.backups import (
    CHUNK,
    TEMP_PREFIX,
    BackupSource,
    CopyFailed,
    DamagedCopy,
    DamagedDatabase,
    Progress,
    RestoreMethod,
    StagedCopy,
    StoredCopy,
    WrittenCopy,
    create_empty_owner_only,
    fsync_file,
    fsync_folder,
    owner_only_file,
)

BUSY_TIMEOUT_MS = 10_000
# Level 6 compresses a tradedb file to about as small as level 19 does, at a fraction
# of the time (measured in docs/operations.md).
ZSTD_LEVEL = 6
SNAPSHOT_SUFFIX = ".sqlite.zst"
FULL_MEMBER = "database.sqlite.zst"
RESTORED_NAME = "tradedb.sqlite"
# Files SQLite and tradedb keep beside a database file.
COMPANIONS = ("-wal", "-shm", "-journal", "-writer.lock")


def vacuum_into(source: Path, target: Path) -> None:
    """Write a consistent, compacted copy of `source` to `target` (absent or empty).

    The live database is only read: a failure (a full disk, say) leaves it as it was.
    """
    conn = sqlite3.connect(source, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        conn.close()


def integrity_problems(path: Path) -> list[str]:
    """What `PRAGMA integrity_check` finds wrong with a database file; empty when it is ok.
    A file that is not a SQLite database at all is one problem, not an exception."""
    try:
        conn = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None
        )
    except sqlite3.Error as exc:
        return [f"cannot open: {exc}"]
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        conn.close()
    messages = [str(row[0]) for row in rows]
    return [] if messages == ["ok"] else messages


def quick_check_problems(path: Path) -> list[str]:
    """What `PRAGMA quick_check` finds damaged in a database file (a line each); empty
    when it is ok. It reads every page, as a backup copy would."""
    uri = f"{path.absolute().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        return [f"cannot open: {exc}"]
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        conn.close()
    return [line for (text,) in rows if text != "ok" for line in str(text).splitlines()]


def schema_revision(path: Path) -> str | None:
    """The Alembic revision a database file is at (None when it has none)."""
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        row = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        if row is None:
            return None
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if version is None else str(version[0])
    finally:
        conn.close()


def _zstd() -> ModuleType:
    try:
        import zstandard
    except ImportError:
        raise BackupError(
            "backups need the zstandard package: pip install 'tradedb[ops]'"
        ) from None
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


def _remove_with_companions(path: Path) -> None:
    path.unlink(missing_ok=True)
    for suffix in COMPANIONS:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class SQLiteSource(BackupSource):
    """A database file, copied by VACUUM INTO and compressed with zstd."""

    engine = "sqlite"
    suffix = SNAPSHOT_SUFFIX
    full_member = FULL_MEMBER

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def display_name(self) -> str:
        # Absolute, so that rotation knows the database whatever folder the backup ran in.
        return str(self.path.absolute())

    def check(self) -> None:
        self._check_exists()
        problems = quick_check_problems(self.path)
        if problems:
            # VACUUM INTO would copy what it can still read into a file that looks sound:
            # a backup that hides the damage, and may replace the last good one in rotation.
            raise DamagedDatabase(self.path, problems[0])

    def _check_exists(self) -> None:
        if not self.path.is_file():
            raise BackupError(f"database {self.path} does not exist")

    def write(self, target: Path, workspace: Path, progress: Progress | None) -> WrittenCopy:
        self._check_exists()
        copy = workspace / target.name.removesuffix(".zst")
        if not copy.name.startswith(TEMP_PREFIX):
            copy = workspace / f"{TEMP_PREFIX}{copy.name}"
        try:
            if progress:
                progress("copying the database (VACUUM INTO)")
            # Created first so that the copy is owner-only from its first byte.
            create_empty_owner_only(copy)
            vacuum_into(self.path, copy)
            fsync_file(copy)
            schema = schema_revision(copy)
            if progress:
                progress("compressing (zstd)")
            database_sha256, database_bytes, sha256, size = compress(copy, target)
        except sqlite3.Error as exc:
            if "full" in str(exc):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None
            raise CopyFailed(str(exc)) from None
        finally:
            # VACUUM INTO writes the copy through a rollback journal, which a failure can
            # leave behind; the copy's other companions go with it too.
            _remove_with_companions(copy)
        return WrittenCopy(
            size_bytes=size,
            sha256=sha256,
            database_bytes=database_bytes,
            database_sha256=database_sha256,
            schema=schema,
            compression="zstd",
            engine_version=sqlite3.sqlite_version,
            tool="VACUUM INTO",
        )


class _SQLiteCopy(StagedCopy):
    def __init__(self, path: Path) -> None:
        self.target = path
        self.path = path

    def problems(self) -> list[str]:
        return [f"integrity_check: {problem}" for problem in integrity_problems(self.path)]

    def install(self, to: Target, *, force: bool) -> None:
        assert isinstance(to, Path)  # check_destination refused anything else
        try:
            owner_only.restrict(self.path, folder=False)
            # A -wal or -shm file left by the old database would be replayed onto the new one.
            for suffix in ("-wal", "-shm", "-journal"):
                Path(f"{to}{suffix}").unlink(missing_ok=True)
            os.replace(self.path, to)
            fsync_folder(to.parent)
        except OSError as exc:
            raise BackupError(f"restore to {to} failed: {exc.strerror or exc}") from None


class SQLiteRestore(RestoreMethod):
    """A snapshot decompressed into a file, checked with integrity_check, renamed."""

    engine = "sqlite"
    checks = "checksum and integrity_check"
    full_member = FULL_MEMBER

    def check_destination(self, backup_id: str, to: Target, *, force: bool) -> None:
        if not isinstance(to, Path):
            raise BackupError(
                f"backup {backup_id} is a SQLite backup: restore it to a database file "
                f"(`to=PATH`), not to the PostgreSQL database {to}"
            )
        if to.is_dir():
            raise BackupError(f"`to={to}` is a folder; give the database file to write")
        if not force and (to.exists() or Path(f"{to}-wal").exists()):
            raise BackupError(
                f"{to} exists (a live database?); stop what uses it and give `force=True` to "
                "replace it"
            )
        if not to.parent.is_dir():
            raise BackupError(
                f"folder {to.parent} does not exist; create it or choose another `to=PATH`"
            )

    def default_destination(self, folder: Path) -> Target:
        return folder / RESTORED_NAME

    def check_scratch_server(self, server: Target | None) -> None:
        """A SQLite backup is verified in a temp file: it needs no server."""

    @contextmanager
    def scratch(self, data: StoredCopy, *, server: Target | None) -> Iterator[StagedCopy]:
        temp = data.workspace / f"{TEMP_PREFIX}{data.backup_id}.verify.sqlite"
        with self._decompressed(data, temp) as copy:
            yield copy

    @contextmanager
    def staged(self, data: StoredCopy, to: Target) -> Iterator[StagedCopy]:
        assert isinstance(to, Path)  # check_destination refused anything else
        with self._decompressed(data, to.parent / f"{TEMP_PREFIX}{to.name}.restore") as copy:
            yield copy

    @contextmanager
    def _decompressed(self, data: StoredCopy, temp: Path) -> Iterator[StagedCopy]:
        _remove_with_companions(temp)
        try:
            with data.open() as reader:
                sha256, size = decompress(reader, temp)
            if (sha256, size) != (data.sha256, data.size_bytes):
                raise DamagedCopy
            yield _SQLiteCopy(temp)
        except OSError as exc:
            raise BackupError(f"reading the backup into {temp.parent} failed: {exc}") from None
        finally:
            _remove_with_companions(temp)
