"""Owner-only on Windows (issue 18, item 4): every file and folder tradedb creates gets a
protected access list holding one entry, full control for the current user, inheritable
on folders; where Windows cannot keep one (pywin32 missing, a FAT32 or exFAT drive, a
refusal), the files are written all the same and ONE warning says so.

Linux cannot run pywin32, so these tests turn on owner_only's Windows branch and put
stand-ins for pywin32's modules in sys.modules. The stand-ins record the access list
each path is given, by inode (tradedb writes under a temporary name and renames), and how
many bytes the file held then, so that a file written before it was protected shows."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import tradedb
from cli_harness import isolated_environ
from tradedb import errors, owner_only
from tradedb.api.backups import Backups

# pywin32's values (ntsecuritycon, win32security).
OBJECT_INHERIT_ACE = 0x1
CONTAINER_INHERIT_ACE = 0x2
FILE_ALL_ACCESS = 0x1F01FF
TOKEN_QUERY = 0x8
ACL_REVISION = 2
SE_FILE_OBJECT = 1
DACL_SECURITY_INFORMATION = 0x4
PROTECTED_DACL_SECURITY_INFORMATION = 0x80000000
TOKEN_USER = 1
NTFS_FLAGS = 0x3E706FF  # what an NTFS volume reports, FILE_PERSISTENT_ACLS (0x8) among them
FAT32_FLAGS = 0x20206  # case-preserved names, Unicode on disk: no access lists
USER_SID = "S-1-5-21-1004336348-1177238915-682003330-1001"


class WindowsError(Exception):
    """pywintypes.error, as pywintypes names it: (winerror, funcname, strerror)."""

    def __init__(self, winerror: int, funcname: str, strerror: str) -> None:
        super().__init__(winerror, funcname, strerror)
        self.winerror, self.funcname, self.strerror = winerror, funcname, strerror


@dataclass(frozen=True)
class Entry:
    revision: int
    flags: int
    access: int
    sid: object


@dataclass
class Acl:
    entries: list[Entry] = field(default_factory=list)

    def AddAccessAllowedAceEx(self, revision: int, flags: int, access: int, sid: object) -> None:
        self.entries.append(Entry(revision, flags, access, sid))


@dataclass(frozen=True)
class Protection:
    """One SetNamedSecurityInfo call: what it set, on what, holding how many bytes."""

    name: str
    information: int
    acl: Acl
    folder: bool
    size: int


@dataclass
class FakeWindows:
    """pywin32 as tradedb uses it, on a drive of the given filesystem."""

    filesystem: str = "NTFS"
    volume_flags: int = NTFS_FLAGS
    refusal: WindowsError | None = None
    protected: dict[tuple[int, int], list[Protection]] = field(default_factory=dict)
    token_lookups: int = 0

    def modules(self) -> dict[str, types.ModuleType]:
        return {
            "win32security": module(
                "win32security",
                ACL=Acl,
                ACL_REVISION=ACL_REVISION,
                SE_FILE_OBJECT=SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION=DACL_SECURITY_INFORMATION,
                PROTECTED_DACL_SECURITY_INFORMATION=PROTECTED_DACL_SECURITY_INFORMATION,
                TokenUser=TOKEN_USER,
                OpenProcessToken=self.open_process_token,
                GetTokenInformation=self.get_token_information,
                SetNamedSecurityInfo=self.set_named_security_info,
            ),
            "win32api": module(
                "win32api",
                GetCurrentProcess=lambda: -1,
                GetVolumeInformation=self.get_volume_information,
            ),
            "win32file": module("win32file", GetVolumePathName=lambda name: "C:\\"),
            "ntsecuritycon": module(
                "ntsecuritycon",
                OBJECT_INHERIT_ACE=OBJECT_INHERIT_ACE,
                CONTAINER_INHERIT_ACE=CONTAINER_INHERIT_ACE,
                FILE_ALL_ACCESS=FILE_ALL_ACCESS,
                TOKEN_QUERY=TOKEN_QUERY,
            ),
            "pywintypes": module("pywintypes", error=WindowsError),
        }

    def open_process_token(self, process: int, access: int) -> types.SimpleNamespace:
        assert (process, access) == (-1, TOKEN_QUERY)
        self.token_lookups += 1
        return types.SimpleNamespace(Close=lambda: None)

    @staticmethod
    def get_token_information(token: object, kind: int) -> tuple[str, int]:
        assert kind == TOKEN_USER
        return USER_SID, 0

    def get_volume_information(self, root: str) -> tuple[str, int, int, int, str]:
        assert root == "C:\\"
        return "", 0x1234ABCD, 255, self.volume_flags, self.filesystem

    def set_named_security_info(  # noqa: PLR0917 (pywin32 takes them by position)
        self,
        name: str,
        kind: int,
        information: int,
        owner: object,
        group: object,
        dacl: Acl,
        sacl: object,
    ) -> None:
        assert (kind, owner, group, sacl) == (SE_FILE_OBJECT, None, None, None)
        if self.refusal is not None:
            raise self.refusal
        found = os.stat(name)
        protection = Protection(name, information, dacl, stat.S_ISDIR(found.st_mode), found.st_size)
        self.protected.setdefault((found.st_dev, found.st_ino), []).append(protection)

    def protections(self, path: Path) -> list[Protection]:
        found = path.stat()
        return self.protected.get((found.st_dev, found.st_ino), [])


def module(name: str, **attributes: object) -> types.ModuleType:
    made = types.ModuleType(name)
    made.__dict__.update(attributes)
    return made


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> FakeWindows:
    """owner_only as it runs on Windows, with a fresh process's state, over the fakes."""
    fake = FakeWindows()
    monkeypatch.setattr(owner_only, "WINDOWS", True)
    monkeypatch.setattr(owner_only, "_once", owner_only._PerProcess())
    monkeypatch.setattr(errors, "_said", set())
    for name, stand_in in fake.modules().items():
        monkeypatch.setitem(sys.modules, name, stand_in)
    return fake


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default database (in XDG_DATA_HOME, which the conftest makes temporary) and
    the default backup folder beside it; no config file."""
    monkeypatch.setenv("TRADEDB_CONFIG", str(tmp_path / "no-such-config.toml"))
    for name in ("TRADEDB_DB", "TRADEDB_BACKUP_DIR"):
        monkeypatch.delenv(name, raising=False)


def default_database_and_a_snapshot() -> Path:
    """What a new user does first: open the default database (its folders are created),
    write, take a snapshot into the default backup folder and try restoring it. The user
    data folder, which holds all of it."""
    with tradedb.open() as db:
        db.ledger.deposit(exchange="kraken", asset="USD", amount="100")
        location = Path(db.location)
    manifest = Backups().snapshot()
    assert list((location.parent / "backups").glob("*.json"))
    Backups().restore(manifest.id, str(location.parent / "restored.sqlite"))
    return Path(os.environ["XDG_DATA_HOME"])


def created_under(root: Path) -> Iterator[Path]:
    yield root
    yield from sorted(root.rglob("*"))


# What SQLite makes beside a database (its WAL, shared memory and journal) and the writer
# gate's lock file (counters, no records) are not created through owner_only: they
# inherit the entry of their folder, which is owner-only where tradedb made it.
BESIDE_THE_DATABASE = ("-wal", "-shm", "-journal", "-writer.lock")


@pytest.mark.usefixtures("no_config")
def test_every_file_and_folder_is_the_current_users_alone(windows: FakeWindows) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", tradedb.OwnerOnlyWarning)
        root = default_database_and_a_snapshot()

    assert_the_current_users_alone(windows, root)
    names = {path.name for path in created_under(root)}
    assert {"tradedb", "backups", "tradedb.sqlite", "restored.sqlite"} <= names
    assert {".zst", ".json"} <= {path.suffix for path in created_under(root)}
    # The user's SID comes from the process token, once.
    assert windows.token_lookups == 1


@pytest.mark.usefixtures("store")  # the database exists, with its schema
def test_a_snapshot_into_a_named_folder_is_the_current_users_alone(
    windows: FakeWindows, db_target: str, tmp_path: Path
) -> None:
    """On PostgreSQL pg_dump writes the file, which is protected again after it."""
    folder = tmp_path / "backups"
    with warnings.catch_warnings():
        warnings.simplefilter("error", tradedb.OwnerOnlyWarning)
        manifest = Backups(folder, database=db_target).snapshot()

    assert_the_current_users_alone(windows, folder)
    assert (folder / manifest.file).stat().st_size > 0


def assert_the_current_users_alone(windows: FakeWindows, root: Path) -> None:
    """Every file and folder under `root` (and `root`) got a protected access list with
    one entry, full control for the current user, inheritable on folders, except the
    files beside a database, which inherit their folder's."""
    unprotected, inherited = [], []
    for path in created_under(root):
        protections = windows.protections(path)
        if not protections:
            (inherited if path.name.endswith(BESIDE_THE_DATABASE) else unprotected).append(path)
            continue
        for protection in protections:
            # Protected: the drive's Users, Administrators and SYSTEM entries are cut off.
            assert protection.information == (
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION
            )
            inheritance = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE if path.is_dir() else 0
            assert protection.acl.entries == [
                Entry(ACL_REVISION, inheritance, FILE_ALL_ACCESS, USER_SID)
            ], path
        # A file is protected while still empty: no byte is ever readable by others.
        assert protections[0].size == 0 or protections[0].folder, path
    assert unprotected == []
    for path in inherited:
        assert windows.protections(path.parent)[0].acl.entries[0].flags == (
            OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE
        )


def unprotected_run() -> list[warnings.WarningMessage]:
    """The OwnerOnlyWarnings shown while a new user's first steps run unprotected."""
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        default_database_and_a_snapshot()
    # Written all the same: the database holds the deposit, the backup its manifest.
    with tradedb.open() as db:
        assert db.ledger.balance("kraken", "USD").available == 100
    return [item for item in shown if issubclass(item.category, tradedb.OwnerOnlyWarning)]


def xdg_data() -> Path:
    return Path(os.environ["XDG_DATA_HOME"])


@pytest.mark.usefixtures("no_config")
def test_a_drive_without_access_lists_gets_one_warning_for_all_files(
    windows: FakeWindows,
) -> None:
    windows.filesystem, windows.volume_flags = "FAT32", FAT32_FLAGS

    shown = unprotected_run()

    assert len(shown) == 1
    message = str(shown[0].message)
    # The first thing tradedb created: the default database's folder.
    assert message.startswith(f"{xdg_data()} is not restricted to the current user")
    assert "FAT32 filesystem keeps no access lists" in message
    assert "anyone who can read that drive can read it" in message
    assert windows.protected == {}


@pytest.mark.usefixtures("no_config")
def test_a_refused_access_list_gets_one_warning_for_all_files(windows: FakeWindows) -> None:
    windows.refusal = WindowsError(5, "SetNamedSecurityInfo", "Access is denied.")

    shown = unprotected_run()

    assert len(shown) == 1
    message = str(shown[0].message)
    assert "(Windows refused its access list: Access is denied)" in message
    assert "keeps the access its folder gives" in message


@pytest.mark.usefixtures("no_config")
def test_without_pywin32_the_files_are_written_and_one_warning_says_so(
    windows: FakeWindows, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in owner_only.PYWIN32_MODULES:
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now fails

    shown = unprotected_run()

    assert len(shown) == 1
    assert "(pywin32 is not installed)" in str(shown[0].message)


class Tripwire(types.ModuleType):
    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"{self.__name__}.{name} used on POSIX")


@pytest.mark.usefixtures("no_config")
def test_posix_keeps_its_modes_and_never_touches_pywin32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(owner_only, "_once", owner_only._PerProcess())
    for name in owner_only.PYWIN32_MODULES:
        monkeypatch.setitem(sys.modules, name, Tripwire(name))
    previous = os.umask(0o022)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", tradedb.OwnerOnlyWarning)
            root = default_database_and_a_snapshot()
    finally:
        os.umask(previous)

    loose = [
        f"{path}: {stat.S_IMODE(path.stat().st_mode):o}"
        for path in created_under(root)
        if stat.S_IMODE(path.stat().st_mode) != (0o700 if path.is_dir() else 0o600)
    ]
    assert loose == []


# The `tradedb` command with owner_only's Windows branch on and pywin32 absent.
WITHOUT_PYWIN32 = textwrap.dedent(
    """
    import sys
    from tradedb import owner_only
    owner_only.WINDOWS = True
    for name in owner_only.PYWIN32_MODULES:
        sys.modules[name] = None
    sys.argv = ["tradedb", *sys.argv[1:]]
    from tradedb.cli.app import main
    main()
    """
)


def test_the_cli_shows_the_warning_once_as_one_plain_line(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite"
    with tradedb.open(database) as db:
        db.ledger.deposit(exchange="kraken", asset="USD", amount="100")

    ran = subprocess.run(
        [sys.executable, "-c", WITHOUT_PYWIN32, "backup", "snapshot", "--db", str(database)],
        env=isolated_environ(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr
    backups = tmp_path / "backups"
    assert list(backups.glob("*.sqlite.zst"))
    assert list(backups.glob("*.json"))
    # The backup folder, the snapshot and its manifest were all written: one line.
    assert ran.stderr.splitlines() == [
        f"warning: {backups} is not restricted to the current user (pywin32 is not "
        "installed); it keeps the access its folder gives, which may let other users read "
        "it. tradedb says this once, for the first such file."
    ]
