"""What the platform allows of a database file's path, said in one line before SQLite
fails with "unable to open database file".

Windows: a drive letter must name a drive that exists; no part of the path may be a
device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9, with or without an extension: `nul.sqlite`
opens the null device) or end in a space or a dot (Windows drops them, so the file
would not be the one named); and the path, with the longest suffix tradedb adds to it
for a companion file, must fit in MAX_PATH unless long paths are enabled. POSIX: no part
of the path may be longer than 255 bytes.

Network shares (SMB, NFS and the like): SQLite's locks are unreliable there and its WAL
needs memory shared by every process that opens the file, which processes on two hosts
cannot share; two writers can corrupt the database. `network_share` tells one from a
local disk: a UNC path or a remote drive on Windows, the mount's file-system type on
Linux. Where the platform does not say (another POSIX system), nothing is refused.

Every platform fact reaches this module through `Platform`, so that tests can simulate
Windows, its drives and Linux's mounts on any machine.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

from tradedb.errors import DatabaseLocationError

# The longest suffix tradedb appends to a database's path for a file beside it.
LONGEST_COMPANION_SUFFIX = "-maintain.lock"
# MAX_PATH is 260 characters with the terminating NUL.
WINDOWS_MAX_PATH = 259
WINDOWS_LONG_MAX_PATH = 32_767
POSIX_NAME_MAX_BYTES = 255
WINDOWS_DEVICE_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{digit}" for port in ("COM", "LPT") for digit in "123456789¹²³"}
)
NETWORK_FILE_SYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "ceph", "glusterfs", "lustre"}
    | {"fuse.sshfs", "fuse.glusterfs", "fuse.cephfs", "fuse.s3fs", "fuse.rclone"}
)
WINDOWS_FORBIDDEN = frozenset('<>:"|?*')
# A tab or newline in a path most often was "\t" or "\n" in a double-quoted TOML string.
_ESCAPE_HINT = (
    " (in the config file, write Windows paths in single quotes: a double-quoted \\t or "
    "\\n is a tab or a newline)"
)
_DRIVE_REMOTE = 4  # GetDriveType's answer for a network drive


def _long_paths_enabled() -> bool:
    """Whether Windows lets a long-path-aware program (python.exe is one) past MAX_PATH."""
    try:
        winreg = importlib.import_module("winreg")
        with winreg.OpenKey(
            winreg.HKEY_LOCAL_MACHINE, r"SYSTEM\CurrentControlSet\Control\FileSystem"
        ) as key:
            return bool(winreg.QueryValueEx(key, "LongPathsEnabled")[0])
    except (ImportError, OSError):
        return False


def _drive_is_remote(root: str) -> bool:
    try:
        win32file = importlib.import_module("win32file")
    except ImportError:
        return False
    return bool(win32file.GetDriveType(root) == _DRIVE_REMOTE)


def _mount_table() -> str:
    try:
        return Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


@dataclass(frozen=True)
class Platform:
    """The facts the checks need; the defaults ask this machine."""

    windows: bool = os.name == "nt"
    # Looked up when asked, not bound here, so that a test can stand in for the system.
    drive_exists: Callable[[str], bool] = lambda root: os.path.isdir(root)  # noqa: PLW0108
    long_paths_enabled: Callable[[], bool] = lambda: _long_paths_enabled()  # noqa: PLW0108
    drive_is_remote: Callable[[str], bool] = lambda root: _drive_is_remote(root)  # noqa: PLW0108
    mount_table: Callable[[], str] = lambda: _mount_table()  # noqa: PLW0108
    # Where a relative path starts; None for this process's folder.
    current_folder: str | None = field(default=None)

    def pure(self, path: str | os.PathLike[str]) -> PurePath:
        """`path` as this platform reads it."""
        return (PureWindowsPath if self.windows else PurePosixPath)(os.fspath(path))

    def absolute(self, path: str | os.PathLike[str]) -> PurePath:
        pure = self.pure(path)
        if pure.is_absolute():
            return pure
        return self.pure(self.current_folder or os.getcwd()) / pure


THIS_MACHINE = Platform()


def check(path: str | os.PathLike[str], platform: Platform = THIS_MACHINE) -> None:
    """Refuse, in one line, a database path this platform cannot hold."""
    problem = (_windows_problem if platform.windows else _posix_problem)(path, platform)
    if problem:
        shown = os.fspath(path)
        if any(ord(character) < 32 for character in shown):
            shown = repr(shown)  # keep the message on one line
        raise DatabaseLocationError(f"{shown}: {problem}")


def _windows_problem(path: str | os.PathLike[str], platform: Platform) -> str | None:
    given = PureWindowsPath(os.fspath(path))
    if given.drive and given.drive[1:] == ":" and not platform.drive_exists(given.drive + "\\"):
        return f"drive {given.drive.upper()} does not exist on this computer"
    for part in given.parts[1:] if given.anchor else given.parts:
        if bad := next((c for c in part if c in WINDOWS_FORBIDDEN or ord(c) < 32), None):
            return f"{part!r} holds {bad!r}, which Windows does not allow in a file name" + (
                _ESCAPE_HINT if ord(bad) < 32 else ""
            )
        if part.split(".", 1)[0].rstrip(" ").upper() in WINDOWS_DEVICE_NAMES:
            return (
                f"{part!r} is a device name on Windows (CON, PRN, AUX, NUL, COM1-9, LPT1-9, "
                "with any extension), not a file name; choose another name"
            )
        if part.endswith((" ", ".")) and part not in (".", ".."):
            return f"{part!r} ends in a space or a dot, which Windows drops from file names"
    full = str(platform.absolute(path)) + LONGEST_COMPANION_SUFFIX
    limit = WINDOWS_LONG_MAX_PATH if platform.long_paths_enabled() else WINDOWS_MAX_PATH
    if len(full) > limit:
        enable = (
            ""
            if limit == WINDOWS_LONG_MAX_PATH
            else "; choose a shorter path, or enable Windows' long paths (LongPathsEnabled)"
        )
        return (
            f"the path is too long for Windows: with tradedb's {LONGEST_COMPANION_SUFFIX} "
            f"file beside it, {len(full)} characters, at most {limit}{enable}"
        )
    return None


def _posix_problem(path: str | os.PathLike[str], platform: Platform) -> str | None:
    parts = PurePosixPath(os.fspath(path)).parts
    for number, part in enumerate(parts, start=1):
        # The file's own name gets the companion's suffix; the folders' names don't.
        name = part + LONGEST_COMPANION_SUFFIX if number == len(parts) else part
        if len(os.fsencode(name)) > POSIX_NAME_MAX_BYTES:
            return (
                f"a name in the path is too long: {len(os.fsencode(name))} bytes (with "
                f"tradedb's {LONGEST_COMPANION_SUFFIX} file beside the database), at most "
                f"{POSIX_NAME_MAX_BYTES}"
            )
    return None


def network_share(path: str | os.PathLike[str], platform: Platform = THIS_MACHINE) -> str | None:
    """What makes `path` a place on a network share, e.g. "\\\\nas\\bot is a network
    share" or "/mnt/nas is a network mount (nfs4 from nas:/export)"; None on a local disk or where
    the platform does not say."""
    full = platform.absolute(path)
    if platform.windows:
        return _windows_share(PureWindowsPath(full), platform)
    return _posix_share(PurePosixPath(full), platform.mount_table())


def _windows_share(path: PureWindowsPath, platform: Platform) -> str | None:
    drive = path.drive
    if drive.startswith("\\\\") and not drive.startswith(("\\\\?\\", "\\\\.\\")):
        return f"{drive} is a network share"
    if drive.upper().startswith("\\\\?\\UNC\\"):
        return f"{drive} is a network share"
    root = drive[-2:] + "\\" if drive.endswith(":") else None
    if root and platform.drive_is_remote(root):
        return f"drive {root[:2].upper()} is a network drive"
    return None


def _posix_share(path: PurePosixPath, table: str) -> str | None:
    best: tuple[int, str, str, str] | None = None
    for line in table.splitlines():
        fields = line.split(" ")
        if " - " not in line or len(fields) < 5:
            continue
        mount_point = _unescape(fields[4])
        after = line.split(" - ", 1)[1].split(" ")
        file_system, source = after[0], after[1] if len(after) > 1 else "?"
        holds = path == PurePosixPath(mount_point) or PurePosixPath(mount_point) in path.parents
        if holds and (best is None or len(mount_point) >= best[0]):
            best = (len(mount_point), mount_point, file_system, _unescape(source))
    if best is None or best[2] not in NETWORK_FILE_SYSTEMS:
        return None
    _, mount_point, file_system, source = best
    return f"{mount_point} is a network mount ({file_system} from {source})"


def _unescape(text: str) -> str:
    """mountinfo writes a space, tab, newline and backslash in a path as \\040 and so on."""
    for code, character in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, character)
    return text
