"""Runs tradedb's Windows file-lock code on Linux, for tests/test_file_locks_windows.py.

Python imports `sitecustomize` at start-up from the first folder on its path that has
one, so a process (and every process it starts) with this folder on PYTHONPATH and
TRADEDB_SIMULATE_WINDOWS=1 sees what tradedb sees on Windows: no fcntl, no os.pread or
os.pwrite, and pywin32's `win32file.LockFileEx`, `UnlockFileEx` and `_get_osfhandle`.
The stand-ins lock the same byte range with fcntl range locks taken before fcntl is
hidden, so processes really wait for each other: the one difference is that Windows
range locks are mandatory and these are advisory. Each lock call is appended to the
file named by TRADEDB_SIMULATE_WINDOWS_LOG, if set, so that a test can show that the
Windows branch ran.
"""

from __future__ import annotations

import errno
import os
import sys
import types

if os.environ.get("TRADEDB_SIMULATE_WINDOWS") == "1":
    import fcntl as _real_fcntl

    _log_path = os.environ.get("TRADEDB_SIMULATE_WINDOWS_LOG")

    def _log(line: str) -> None:
        if _log_path:
            with open(_log_path, "a", encoding="ascii") as log:
                log.write(f"{os.getpid()} {line}\n")

    class _Error(Exception):
        """pywintypes.error: (winerror, funcname, strerror)."""

        def __init__(self, winerror: int, funcname: str, strerror: str) -> None:
            super().__init__(winerror, funcname, strerror)
            self.winerror, self.funcname, self.strerror = winerror, funcname, strerror

    class _Overlapped:
        def __init__(self) -> None:
            self.Offset = 0
            self.OffsetHigh = 0

    LOCKFILE_FAIL_IMMEDIATELY = 0x1
    LOCKFILE_EXCLUSIVE_LOCK = 0x2

    def _range(low: int, high: int, overlapped: _Overlapped) -> tuple[int, int]:
        return low + (high << 32), overlapped.Offset + (overlapped.OffsetHigh << 32)

    def _lock_file_ex(
        handle: int, flags: int, low: int, high: int, overlapped: _Overlapped
    ) -> None:
        length, start = _range(low, high, overlapped)
        how = _real_fcntl.LOCK_EX if flags & LOCKFILE_EXCLUSIVE_LOCK else _real_fcntl.LOCK_SH
        if flags & LOCKFILE_FAIL_IMMEDIATELY:
            how |= _real_fcntl.LOCK_NB
        try:
            _real_fcntl.lockf(handle, how, length, start)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                _log(f"busy {start} {length}")
                raise _Error(33, "LockFileEx", "The process cannot access the file") from None
            raise
        _log(f"lock {start} {length}")

    def _unlock_file_ex(handle: int, low: int, high: int, overlapped: _Overlapped) -> None:
        length, start = _range(low, high, overlapped)
        _real_fcntl.lockf(handle, _real_fcntl.LOCK_UN, length, start)
        _log(f"unlock {start} {length}")

    pywintypes = types.ModuleType("pywintypes")
    pywintypes.error = _Error  # type: ignore[attr-defined]
    pywintypes.OVERLAPPED = _Overlapped  # type: ignore[attr-defined]
    win32file = types.ModuleType("win32file")
    win32file.LOCKFILE_FAIL_IMMEDIATELY = LOCKFILE_FAIL_IMMEDIATELY  # type: ignore[attr-defined]
    win32file.LOCKFILE_EXCLUSIVE_LOCK = LOCKFILE_EXCLUSIVE_LOCK  # type: ignore[attr-defined]
    win32file.LockFileEx = _lock_file_ex  # type: ignore[attr-defined]
    win32file.UnlockFileEx = _unlock_file_ex  # type: ignore[attr-defined]
    win32file._get_osfhandle = lambda descriptor: descriptor  # type: ignore[attr-defined]

    sys.modules.update(pywintypes=pywintypes, win32file=win32file)
    sys.modules["fcntl"] = None  # type: ignore[assignment]  # `import fcntl` now fails
    del os.pread, os.pwrite
