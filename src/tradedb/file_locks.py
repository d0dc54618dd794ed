"""Locks between processes on an open file: the one module that knows the platform's call.

On POSIX these are `fcntl.lockf` locks on the whole file: held until the descriptor (or
any descriptor of the file in the same process) is closed, and dropped by the kernel when
the process dies, however it dies. Where there is no fcntl (Windows), `SUPPORTED` is False
and callers keep their documented fallback (the writer gate leaves the waiting to SQLite;
`maintain` and retention take no lock). Every other module imports this one rather than
fcntl, so that tradedb imports on any platform.
"""

from __future__ import annotations

import errno
from types import ModuleType

_fcntl: ModuleType | None
try:
    import fcntl as _fcntl
except ImportError:  # Windows
    _fcntl = None

SUPPORTED = _fcntl is not None


def lock(descriptor: int) -> None:
    """Wait for the exclusive lock of the file open at `descriptor`."""
    if _fcntl is not None:
        _fcntl.lockf(descriptor, _fcntl.LOCK_EX)


def try_lock(descriptor: int) -> bool:
    """Take the exclusive lock if no other process holds it; whether it was taken. Any
    other failure is raised."""
    if _fcntl is None:
        return True
    try:
        _fcntl.lockf(descriptor, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise
    return True
