"""Where a database's Parquet archives live, and the few file operations retention and the
readers need there: a local folder, or an fsspec URL (`s3://bucket/prefix`) that several
hosts share as one market-data history.

The archive folder of a database is, first that applies:

1. the folder named in `<stem>-archives.json` beside the database: `tradedb restore` of a
   full backup writes it, so that the restored database reads the archives restored with
   it and nothing has to be configured (the database's own record wins over the config
   file, which speaks for every database);
2. `[retention] archive_dir` in the config file: a folder, or a URL such as
   `s3://bucket/prefix` (`[retention] endpoint_url` names an S3-compatible server);
3. `<stem>-archives/` beside the database (for a PostgreSQL database, beside its companion
   name in the user data folder).

What each kind of folder guarantees:

- A local folder: a file is replaced by renaming a fsynced temporary file over it, so a
  reader sees the old file or the new one; one retention run at a time per folder (a
  POSIX lock on `.lock`).
- An object store: a file is replaced by one PUT, which the store makes atomic (a reader
  gets the old object or the new one, never a mix), so no temporary objects exist. One
  retention run at a time across all hosts: the run creates `.lock` with a conditional PUT
  (`If-None-Match: *`), which fails when the object exists. The store must honour
  conditional writes (AWS S3 does since 2024, as do MinIO and moto). A run that is killed
  leaves its lock behind; the next run is refused, naming the host, process and time that
  hold it, and the lock is removed by hand once that run is known to be gone (tradedb
  never takes a lock over: two hosts doing so at once could both believe they hold it).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tradedb import file_locks, owner_only
from tradedb.errors import TradeDBError, ValidationError
from tradedb.services.location import archives_beside, config_section

LINK_SUFFIX = "-archives.json"
LINK_FORMAT = "tradedb-archive-link"
LOCK = ".lock"


class ArchiveError(TradeDBError):
    """An archive file or manifest is damaged or cannot be written; nothing was deleted."""


@dataclass(frozen=True)
class Folder:
    """An archive folder: `url` is a local path, or an fsspec URL with `fs` its filesystem
    and `root` the path inside it."""

    url: str
    root: str
    fs: Any = None

    @classmethod
    def local(cls, path: Path) -> Folder:
        return cls(str(path), str(path))

    @property
    def is_local(self) -> bool:
        return self.fs is None

    @property
    def path(self) -> Path:
        """The local folder; an object store has none."""
        if self.fs is not None:
            raise ValidationError("archive_dir", self.url, "is not a local folder")
        return Path(self.root)

    def __str__(self) -> str:
        return self.url

    def _key(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def read_bytes(self, relative: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        try:
            if self.fs is None:
                return (self.path / relative).read_bytes()
            data: bytes = self.fs.cat_file(self._key(relative))
        except FileNotFoundError:
            return None
        return data

    def open(self, relative: str) -> IO[bytes]:
        if self.fs is None:
            return (self.path / relative).open("rb")
        handle: IO[bytes] = self.fs.open(self._key(relative), "rb")
        return handle

    def identity(self, relative: str) -> tuple[object, ...]:
        """What changes whenever the file is replaced: (inode, mtime, size) of a local file
        (retention renames a new file over it), the ETag and size of an object."""
        if self.fs is None:
            status = (self.path / relative).stat()
            return (status.st_ino, status.st_mtime_ns, status.st_size)
        info = self.fs.info(self._key(relative), refresh=True)
        return (info.get("ETag"), info.get("size"))

    def sizes(self, prefix: str) -> dict[str, int]:
        """Every file under `prefix/` (relative paths) and its size in bytes."""
        if self.fs is None:
            base = self.path / prefix
            return {
                path.relative_to(self.path).as_posix(): path.stat().st_size
                for path in base.rglob("*")
                if path.is_file() and not path.name.startswith(".")
            }
        where = self._key(prefix)
        self.fs.invalidate_cache(where)
        try:
            found = self.fs.find(where, detail=True)
        except FileNotFoundError:
            return {}
        start = len(self.root) + 1
        return {
            name[start:]: int(info["size"])
            for name, info in found.items()
            if not name.rsplit("/", 1)[-1].startswith(".")
        }

    def put(self, relative: str, data: bytes) -> None:
        """Write an object whole, in one PUT (object stores only)."""
        self.fs.pipe_file(self._key(relative), data)

    def create(self, relative: str, data: bytes) -> bool:
        """Create the object only if it does not exist (a conditional PUT); False if it
        did (object stores only)."""
        try:
            self.fs.pipe_file(self._key(relative), data, mode="create")
        except (FileExistsError, OSError) as exc:
            if _precondition_failed(exc):
                return False
            raise
        return True

    def delete(self, relative: str) -> None:
        if self.fs is None:
            (self.path / relative).unlink(missing_ok=True)
            return
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._key(relative))


def _precondition_failed(exc: BaseException) -> bool:
    if isinstance(exc, FileExistsError):
        return True
    text = f"{exc} {exc.__cause__ or ''}"
    return "PreconditionFailed" in text or "412" in text or "Precondition" in text


# --- which folder ------------------------------------------------------------------------------


def link_path(database: Path) -> Path:
    return database.parent / f"{database.stem}{LINK_SUFFIX}"


def locate(database: Path, env: Mapping[str, str] | None = None) -> Folder:
    """The archive folder of the database whose companion base is `database` (see the
    module's docstring for the rule)."""
    linked = read_link(database)
    if linked is not None:
        return Folder.local(linked)
    section = config_section("retention", env)
    configured = section.get("archive_dir")
    if configured is None:
        return Folder.local(archives_beside(database))
    if not isinstance(configured, str) or not configured:
        raise ValidationError("retention.archive_dir", configured, "must be a folder path or URL")
    if is_url(configured):
        return remote(configured, section)
    return Folder.local(Path(configured.removeprefix("file://")).expanduser())


def is_url(text: str) -> bool:
    scheme, separator, _ = text.partition("://")
    return bool(separator) and scheme not in ("", "file") and len(scheme) > 1


def remote(url: str, section: Mapping[str, object]) -> Folder:
    """An object-store folder, through fsspec (s3fs for s3://)."""
    try:
        import fsspec
    except ImportError:
        raise ValidationError(
            "retention.archive_dir", url, "an object store needs: pip install 'tradedb[ops]'"
        ) from None
    options: dict[str, Any] = {}
    client: dict[str, Any] = {}
    endpoint = section.get("endpoint_url")
    if isinstance(endpoint, str) and endpoint:
        client["endpoint_url"] = endpoint
    region = section.get("region")
    if isinstance(region, str) and region:
        client["region_name"] = region
    if client and url.startswith("s3://"):
        options["client_kwargs"] = client
    try:
        fs, root = fsspec.core.url_to_fs(url.rstrip("/"), **options)
    except (ImportError, ValueError) as exc:
        raise ValidationError("retention.archive_dir", url, str(exc)) from None
    return Folder(url.rstrip("/"), str(root).rstrip("/"), fs)


def read_link(database: Path) -> Path | None:
    """The archive folder a restore recorded beside the database, if any."""
    path = link_path(database)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"archive link {path} cannot be read: {exc}") from None
    folder = data.get("folder") if isinstance(data, dict) else None
    if data.get("format") != LINK_FORMAT or not isinstance(folder, str) or not folder:
        raise ArchiveError(f"archive link {path} is not a tradedb archive link")
    return path.parent / folder


def write_link(database: Path, folder: Path) -> Path:
    """Record `folder` as the archive folder of the database (relative to the database's
    folder when it lies inside it, so that the two can move together)."""
    path = link_path(database)
    base = path.parent.absolute()
    target = folder.absolute()
    named = target.relative_to(base).as_posix() if target.is_relative_to(base) else str(target)
    data = {"format": LINK_FORMAT, "folder": named}
    owner_only.make_folders(path.parent)
    owner_only.write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())
    return path


def remove_link(database: Path) -> None:
    link_path(database).unlink(missing_ok=True)


# --- one retention run at a time ----------------------------------------------------------------


@contextlib.contextmanager
def locked(folder: Folder) -> Iterator[None]:
    """Hold the folder's retention lock for the block; another holder makes it fail."""
    if folder.is_local:
        with _locked_locally(folder.path):
            yield
        return
    token = secrets.token_hex(16)
    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since_ms": int(time.time() * 1000),
        "token": token,
    }
    if not folder.create(LOCK, json.dumps(holder).encode()):
        raise ArchiveError(_held_by(folder))
    try:
        yield
    finally:
        current = folder.read_bytes(LOCK)
        if current is not None and token.encode() in current:
            folder.delete(LOCK)


def _held_by(folder: Folder) -> str:
    data = folder.read_bytes(LOCK)
    try:
        holder = json.loads(data or b"{}")
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder["since_ms"] / 1000))
        who = f"host {holder['host']} (pid {holder['pid']}) since {since}"
    except (ValueError, KeyError, TypeError):
        who = "another run"
    return (
        f"another retention run is using {folder} ({who}); if no run is going on there, "
        f"delete {folder}/{LOCK}"
    )


@contextlib.contextmanager
def _locked_locally(path: Path) -> Iterator[None]:
    """A lock on `.lock` in the folder (see `file_locks`)."""
    owner_only.make_folders(path)
    with file_locks.tried(path / LOCK, owner_only.FILE_MODE) as taken:
        if not taken:
            raise ArchiveError(f"another retention run is using {path}")
        yield
