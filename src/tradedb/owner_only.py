"""Files and folders that only their owner can read: everything tradedb writes.

Backups, archives, reports and manifests hold balances, trades and positions, so every
file tradedb creates is 0600 and every folder 0700. A file gets its mode when it is
created, before the first byte is written: a chmod afterwards would leave a moment in
which another user could open it and keep reading. The modes are set exactly
(fchmod/chmod), whatever the umask, which can only narrow a mode at creation.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def create(path: Path, *, replace: bool = False) -> int:
    """Open a new file for writing, owner-only from its first byte; returns the descriptor.
    With `replace`, an existing file is truncated and made owner-only too (a mode given
    to open applies only to a file it creates)."""
    flags = os.O_CREAT | os.O_WRONLY | getattr(os, "O_BINARY", 0)
    flags |= os.O_TRUNC if replace else os.O_EXCL
    return _owner_only(os.open(path, flags, FILE_MODE))


def _owner_only(descriptor: int) -> int:
    """The open file made owner-only (closed if that fails); the descriptor."""
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(descriptor, FILE_MODE)
    except OSError:
        os.close(descriptor)
        raise
    return descriptor


@contextmanager
def new_file(path: Path, *, replace: bool = False, fsync: bool = True) -> Iterator[IO[bytes]]:
    """A file open for writing bytes, owner-only from its first byte (see `create`), and
    flushed to disk before it is closed unless `fsync` is False."""
    with os.fdopen(create(path, replace=replace), "wb") as handle:
        yield handle
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())


def open_for_append(path: Path) -> IO[bytes]:
    """A log file open for appending: created owner-only, or an existing one made so."""
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, FILE_MODE)
    return os.fdopen(_owner_only(descriptor), "ab")


def write_bytes(path: Path, data: bytes, *, replace: bool = True) -> None:
    with new_file(path, replace=replace) as handle:
        handle.write(data)


def make_folders(folder: Path) -> None:
    """Create `folder` and any missing parents, each owner-only. Unlike `mkdir(parents=True,
    mode=...)`, which gives the parents it creates the default mode, every folder created
    here is 0700; folders that already exist are left as they are."""
    missing = []
    current = folder
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            if not path.is_dir():
                raise
            continue
        os.chmod(path, FOLDER_MODE)


def make_folder(folder: Path) -> None:
    """Create one owner-only folder, whose parent must exist (FileNotFoundError otherwise);
    an existing folder is left as it is."""
    try:
        folder.mkdir(mode=FOLDER_MODE)
    except FileExistsError:
        if not folder.is_dir():
            raise
        return
    os.chmod(folder, FOLDER_MODE)
