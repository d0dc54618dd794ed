"""Files and folders that only their owner can read: everything tradedb writes.

Backups, archives, reports and manifests hold balances, trades and positions, so every
file tradedb creates is owner-only, and so is every folder. `restrict` is the one place
that says how; everything tradedb creates goes through it.

On POSIX a file is 0600 and a folder 0700. A file gets its mode when it is created,
before the first byte is written: a chmod afterwards would leave a moment in which
another user could open it and keep reading. The modes are set exactly (fchmod/chmod),
whatever the umask, which can only narrow a mode at creation.

On Windows a mode means nothing, so the file or folder gets a protected access list
(DACL) with one entry: full control for the user the process runs as. Protected means
that nothing is inherited from the folders above, so the Users, Administrators and
SYSTEM entries a drive usually passes down are gone. A folder's entry is inherited by
what is created inside it. A new file gets its list right after it is created and before
its first byte is written; in between it is empty and carries its folder's inherited
list (owner-only already when tradedb made the folder). Where Windows cannot keep a list
(pywin32 missing, a FAT32 or exFAT drive, a share that refuses), the file is still
written and one OwnerOnlyWarning per process says so.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from tradedb.errors import OwnerOnlyWarning, warn_once

FILE_MODE = 0o600
FOLDER_MODE = 0o700
# Read through the module, so that tests can run the Windows branch on Linux.
WINDOWS = os.name == "nt"
# GetVolumeInformation's flag for a filesystem that stores and enforces access lists.
# Windows reports success when one without them (FAT32, exFAT) is given a list and drops
# it, so only this flag tells.
FILE_PERSISTENT_ACLS = 0x00000008
PYWIN32_MODULES = ("win32security", "win32api", "win32file", "ntsecuritycon", "pywintypes")


@dataclass
class _PerProcess:
    """What is looked up once per process."""

    user_sid: Any = None


_once = _PerProcess()


def restrict(path: Path, *, folder: bool) -> None:
    """Make an existing file or folder owner-only: 0600 or 0700 on POSIX, the current
    user's protected access list on Windows (see the module's description)."""
    if WINDOWS:
        _restrict_on_windows(path, folder=folder)
    else:
        os.chmod(path, FOLDER_MODE if folder else FILE_MODE)


def create(path: Path, *, replace: bool = False) -> int:
    """Open a new file for writing, owner-only from its first byte; returns the descriptor.
    With `replace`, an existing file is truncated and made owner-only too (a mode given
    to open applies only to a file it creates)."""
    flags = os.O_CREAT | os.O_WRONLY | getattr(os, "O_BINARY", 0)
    flags |= os.O_TRUNC if replace else os.O_EXCL
    return _owner_only(os.open(path, flags, FILE_MODE), path)


def _owner_only(descriptor: int, path: Path) -> int:
    """The open file made owner-only (closed if that fails); the descriptor."""
    try:
        if WINDOWS:
            # By path: the C runtime opens the handle without the right to change its
            # access list (WRITE_DAC), and the share mode it asks for allows this.
            _restrict_on_windows(path, folder=False)
        else:
            os.fchmod(descriptor, FILE_MODE)
    except BaseException:
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
    return os.fdopen(_owner_only(descriptor, path), "ab")


def write_bytes(path: Path, data: bytes, *, replace: bool = True) -> None:
    with new_file(path, replace=replace) as handle:
        handle.write(data)


def make_folders(folder: Path) -> None:
    """Create `folder` and any missing parents, each owner-only. Unlike `mkdir(parents=True,
    mode=...)`, which gives the parents it creates the default mode, every folder created
    here is owner-only; folders that already exist are left as they are."""
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
        restrict(path, folder=True)


def make_folder(folder: Path) -> None:
    """Create one owner-only folder, whose parent must exist (FileNotFoundError otherwise);
    an existing folder is left as it is."""
    try:
        folder.mkdir(mode=FOLDER_MODE)
    except FileExistsError:
        if not folder.is_dir():
            raise
        return
    restrict(folder, folder=True)


def _restrict_on_windows(path: Path, *, folder: bool) -> None:
    problem = _set_owner_only_acl(path, folder=folder)
    if problem is not None:
        _warn_once(path, *problem)


def _set_owner_only_acl(path: Path, *, folder: bool) -> tuple[str, str] | None:
    """None once `path` holds the current user's protected access list; else why it
    cannot, and what that leaves."""
    inherited = "it keeps the access its folder gives, which may let other users read it"
    try:
        security, api, files, constants, pywintypes = [
            importlib.import_module(name) for name in PYWIN32_MODULES
        ]
    except ModuleNotFoundError:
        return "pywin32 is not installed", inherited
    except ImportError as exc:
        return f"pywin32 cannot be loaded: {exc}", inherited
    name = str(path)
    try:
        volume = files.GetVolumePathName(name)
        _label, _serial, _longest_name, volume_flags, filesystem = api.GetVolumeInformation(volume)
        if not volume_flags & FILE_PERSISTENT_ACLS:
            return (
                f"its drive's {filesystem} filesystem keeps no access lists",
                "anyone who can read that drive can read it",
            )
        inheritance = constants.OBJECT_INHERIT_ACE | constants.CONTAINER_INHERIT_ACE
        acl = security.ACL()
        acl.AddAccessAllowedAceEx(
            security.ACL_REVISION,
            inheritance if folder else 0,
            constants.FILE_ALL_ACCESS,
            _current_user_sid(security, api, constants),
        )
        security.SetNamedSecurityInfo(
            name,
            security.SE_FILE_OBJECT,
            security.DACL_SECURITY_INFORMATION | security.PROTECTED_DACL_SECURITY_INFORMATION,
            None,
            None,
            acl,
            None,
        )
    except (pywintypes.error, OSError) as exc:
        return f"Windows refused its access list: {_windows_reason(exc)}", inherited
    return None


def _current_user_sid(security: ModuleType, api: ModuleType, constants: ModuleType) -> Any:
    """The SID of the user the process runs as (its token's, not a thread's)."""
    if _once.user_sid is None:
        token = security.OpenProcessToken(api.GetCurrentProcess(), constants.TOKEN_QUERY)
        try:
            _once.user_sid, _attributes = security.GetTokenInformation(token, security.TokenUser)
        finally:
            token.Close()
    return _once.user_sid


def _windows_reason(exc: BaseException) -> str:
    """pywintypes.error carries Windows' own words in `strerror`, as OSError does."""
    reason = getattr(exc, "strerror", None)
    return str(reason).rstrip(".") if reason else str(exc)


def _warn_once(path: Path, problem: str, consequence: str) -> None:
    """One OwnerOnlyWarning per process, for the first file or folder left unprotected.
    A program can filter the category."""
    warning = OwnerOnlyWarning(
        f"{path} is not restricted to the current user ({problem}); {consequence}. "
        "tradedb says this once, for the first such file."
    )
    warn_once("owner-only", warning, stacklevel=3)
