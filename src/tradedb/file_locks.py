"""Locks between processes on an open file: the one module that knows the platform's call.

On POSIX these are `fcntl.lockf` locks on the whole file: held until the descriptor (or
any descriptor of the file in the same process) is closed, and dropped by the kernel when
the process dies, however it dies.

On Windows they are `LockFileEx` locks (through pywin32, a Windows dependency of tradedb)
on one byte far past anything a lock file holds. Windows byte-range locks are mandatory:
a locked range cannot be read or written through any other handle, and the writer gate
keeps a header at the start of its file that other processes read while a writer holds
the lock. A waiting `LockFileEx` sleeps in the kernel until the range is free, so the
turn passes as promptly as with fcntl. The lock belongs to the handle; `close` releases
it explicitly, because Windows frees the locks of a closed handle only "when resources
allow", and the system frees them when the process dies.

Where neither exists (pywin32 missing on Windows), `SUPPORTED` is False and callers keep
their documented fallback (the writer gate leaves the waiting to SQLite; `maintain` and
retention take no lock). Every other module imports this one rather than fcntl, so that
tradedb imports on any platform.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

_fcntl: ModuleType | None
try:
    import fcntl as _fcntl
except ImportError:  # Windows
    _fcntl = None

# Past 4 GiB, so that no lock file's content and no 32-bit offset ever reaches it.
WINDOWS_LOCKED_OFFSET = 1 << 32
_ERROR_LOCK_VIOLATION = 33  # another handle holds the range (LOCKFILE_FAIL_IMMEDIATELY)
_ERROR_IO_PENDING = 997


def _windows_api() -> tuple[Any, Any] | None:
    """pywin32's win32file and pywintypes, where fcntl is missing and they exist."""
    if _fcntl is not None:
        return None
    try:
        return importlib.import_module("win32file"), importlib.import_module("pywintypes")
    except ImportError:
        return None


_windows = _windows_api()

SUPPORTED = _fcntl is not None or _windows is not None


def lock(descriptor: int) -> None:
    """Wait for the exclusive lock of the file open at `descriptor`."""
    if _fcntl is not None:
        _fcntl.lockf(descriptor, _fcntl.LOCK_EX)
    elif _windows is not None:
        _lock_range(descriptor, wait=True)


def try_lock(descriptor: int) -> bool:
    """Take the exclusive lock if no other process holds it; whether it was taken. Any
    other failure is raised."""
    if _fcntl is not None:
        try:
            _fcntl.lockf(descriptor, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                return False
            raise
        return True
    if _windows is not None:
        return _lock_range(descriptor, wait=False)
    return True


@contextlib.contextmanager
def tried(path: Path, mode: int) -> Iterator[bool]:
    """Try to take the exclusive lock of the file at `path` (created with `mode` if it is
    missing) for the block: whether it was taken. Where there are no locks, True: the
    block runs unguarded, the callers' documented fallback."""
    if not SUPPORTED:
        yield True
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, mode)
    try:
        yield try_lock(descriptor)
    finally:
        close(descriptor)


def close(descriptor: int) -> None:
    """Release the lock (if this descriptor holds it) and close the descriptor."""
    if _windows is not None:
        win32file, pywintypes = _windows
        # An error means this descriptor holds no lock: there is nothing to release.
        with contextlib.suppress(pywintypes.error):
            win32file.UnlockFileEx(
                win32file._get_osfhandle(descriptor), 1, 0, _overlapped(pywintypes)
            )
    os.close(descriptor)


def _lock_range(descriptor: int, *, wait: bool) -> bool:
    assert _windows is not None
    win32file, pywintypes = _windows
    flags = win32file.LOCKFILE_EXCLUSIVE_LOCK
    if not wait:
        flags |= win32file.LOCKFILE_FAIL_IMMEDIATELY
    try:
        handle = win32file._get_osfhandle(descriptor)
        win32file.LockFileEx(handle, flags, 1, 0, _overlapped(pywintypes))
    except pywintypes.error as exc:
        if not wait and exc.winerror in (_ERROR_LOCK_VIOLATION, _ERROR_IO_PENDING):
            return False
        raise OSError(exc.winerror, f"cannot lock the file: {exc.strerror}") from None
    return True


def _overlapped(pywintypes: Any) -> Any:
    """Where the locked byte starts: LockFileEx takes the offset from an OVERLAPPED."""
    overlapped = pywintypes.OVERLAPPED()
    overlapped.Offset = WINDOWS_LOCKED_OFFSET & 0xFFFFFFFF
    overlapped.OffsetHigh = WINDOWS_LOCKED_OFFSET >> 32
    return overlapped
