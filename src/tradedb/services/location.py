"""Where the database lives: --db, then TRADEDB_DB, then the config file, then a default.

The default follows the specification on Windows (D:\\crypto-bot\\ when a D: drive exists)
and the platform's user data folder elsewhere.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePath, PureWindowsPath
from typing import Literal, TypeVar

import platformdirs
import platformdirs.unix
import platformdirs.windows

from tradedb import owner_only, platform_paths
from tradedb.errors import DatabaseLocationError, NetworkShareWarning, warn_once
from tradedb.platform_paths import THIS_MACHINE, Platform
from tradedb.store.engines import PostgresTarget, companion_base, parse_target

APP = "tradedb"
DB_ENV = "TRADEDB_DB"
CONFIG_ENV = "TRADEDB_CONFIG"
DB_FILENAME = "tradedb.sqlite"
WINDOWS_DB_FOLDER = PureWindowsPath("D:/crypto-bot")
BACKUP_DIR_ENV = "TRADEDB_BACKUP_DIR"
WINDOWS_BACKUP_FOLDER = PureWindowsPath("D:/backups/crypto-bot")

Source = Literal["--db", "TRADEDB_DB", "config file", "default"]
BackupSource = Literal["--backup-dir", "TRADEDB_BACKUP_DIR", "config file", "default"]


@dataclass(frozen=True)
class DatabaseLocation:
    """Where the database is: a SQLite file, or a PostgreSQL database (whose `str`, like
    the location's, masks the password)."""

    target: Path | PostgresTarget
    source: Source

    @property
    def is_file(self) -> bool:
        return isinstance(self.target, Path)

    @property
    def path(self) -> Path:
        """The SQLite file; a PostgreSQL location has none, which is said in one line."""
        if not isinstance(self.target, Path):
            raise DatabaseLocationError(
                f"{self.target} is a PostgreSQL database; this needs a SQLite database file"
            )
        return self.target

    def __str__(self) -> str:
        return str(self.target)


@dataclass(frozen=True)
class BackupLocation:
    path: Path
    source: BackupSource


def config_file(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    return Path(_default_config(THIS_MACHINE))


@dataclass(frozen=True)
class DefaultLayout:
    """Where tradedb puts the files nobody named: the default database, its backups, its
    Parquet archives and its HTML report, and the config file. On Windows with a D:
    drive, the specification's layout (the database in D:\\crypto-bot\\, backups in
    D:\\backups\\crypto-bot\\, archives and report beside the database); elsewhere the
    platform's user folders (platformdirs). Pure paths, so that a test can lay out
    another platform than its own."""

    database: PurePath
    backups: PurePath
    archives: PurePath
    report: PurePath
    config: PurePath


def default_layout(platform: Platform = THIS_MACHINE) -> DefaultLayout:
    if platform.windows and platform.drive_exists("D:\\"):
        database: PurePath = WINDOWS_DB_FOLDER / DB_FILENAME
        backups: PurePath = WINDOWS_BACKUP_FOLDER
    else:
        database = platform.pure(_user_dirs(platform).user_data_dir) / DB_FILENAME
        backups = database.parent / "backups"
    return DefaultLayout(
        database=database,
        backups=backups,
        archives=archives_beside(database),
        report=report_beside(database),
        config=_default_config(platform),
    )


def _default_config(platform: Platform) -> PurePath:
    # Read on every config lookup: the user config folder alone, no drive check.
    return platform.pure(_user_dirs(platform).user_config_dir) / "config.toml"


def _user_dirs(platform: Platform) -> platformdirs.PlatformDirsABC:
    """platformdirs' folders for `platform`: this machine's, or Windows' or Unix's when a
    test lays out the other (platformdirs then reads Windows' from WIN_PD_OVERRIDE_*)."""
    if platform.windows == (os.name == "nt"):
        return platformdirs.PlatformDirs(APP)
    if platform.windows:
        return platformdirs.windows.Windows(APP)
    return platformdirs.unix.Unix(APP)


PathType = TypeVar("PathType", bound=PurePath)


def archives_beside(database: PathType) -> PathType:
    """Retention's `<stem>-archives/` folder beside a database file."""
    return database.with_name(f"{database.stem}-archives")


def report_beside(database: PathType) -> PathType:
    """`<stem>-report.html` beside a database file: where `tradedb demo` and `tradedb
    report --open` write the HTML report unless told otherwise."""
    return database.with_name(f"{database.stem}-report.html")


def default_database_path(platform: Platform = THIS_MACHINE) -> Path:
    """The spec's D:\\crypto-bot\\ on Windows with a D: drive; the user data folder otherwise."""
    return Path(default_layout(platform).database)


def resolve_database(
    option: str | None,
    *,
    env: Mapping[str, str] | None = None,
    default: Callable[[], Path] = default_database_path,
    platform: Platform = THIS_MACHINE,
) -> DatabaseLocation:
    """--db, then TRADEDB_DB, then `[database] path` in the config file, then the
    default; a file's path is checked against what the platform allows."""
    env = os.environ if env is None else env
    if option:
        location = DatabaseLocation(parse_database_url(option), "--db")
    elif env.get(DB_ENV):
        location = DatabaseLocation(parse_database_url(env[DB_ENV]), "TRADEDB_DB")
    elif configured := _from_config_file(env):
        location = DatabaseLocation(parse_database_url(configured), "config file")
    else:
        location = DatabaseLocation(default(), "default")
    if isinstance(location.target, Path):
        platform_paths.check(location.target, platform)
    return location


def default_backup_dir(
    database: Path | PostgresTarget | None = None, *, platform: Platform = THIS_MACHINE
) -> Path:
    """`backups/` beside the database (beside its companion name in the user data folder
    for a PostgreSQL database), as retention's `<stem>-archives/` is: a database's folders
    follow the database (docs/decisions.md). The default database's is the spec's
    D:\\backups\\crypto-bot\\ on Windows with a D: drive, and `backups/` in the user data
    folder elsewhere; `database` None means the default database."""
    layout = default_layout(platform)
    base = Path(layout.database) if database is None else companion_base(database)
    if base == Path(layout.database):
        return Path(layout.backups)
    return base.absolute().parent / "backups"


def resolve_backup_dir(
    option: str | None,
    *,
    env: Mapping[str, str] | None = None,
    database: Path | PostgresTarget | None = None,
    default: Callable[[], Path] | None = None,
) -> BackupLocation:
    """--backup-dir, then TRADEDB_BACKUP_DIR, then `[backup] dir` in the config file, then
    the default: `default()` if given, else `backups/` beside `database`."""
    if default is None:
        default = partial(default_backup_dir, database)
    env = os.environ if env is None else env
    if option:
        return BackupLocation(Path(option).expanduser(), "--backup-dir")
    if env.get(BACKUP_DIR_ENV):
        return BackupLocation(Path(env[BACKUP_DIR_ENV]).expanduser(), "TRADEDB_BACKUP_DIR")
    configured = config_section("backup", env).get("dir")
    if configured is not None:
        if not isinstance(configured, str) or not configured:
            raise DatabaseLocationError(
                f"config file {config_file(env)}: [backup] dir must be a non-empty string"
            )
        return BackupLocation(Path(configured).expanduser(), "config file")
    return BackupLocation(default(), "default")


def prepare_for_writing(
    location: DatabaseLocation,
    *,
    allow_network_share: bool = False,
    platform: Platform = THIS_MACHINE,
) -> None:
    """Before a database file is opened for writing: create the default folder
    (owner-only; a folder the user named must already exist), and keep a new database
    off a network share unless `allow_network_share`. A database already on a share was
    put there by choice (or by a tradedb that did not check): it opens, with a warning
    once per process, since refusing it would stop a running bot after an upgrade."""
    if not isinstance(location.target, Path):
        return
    if location.source == "default":
        owner_only.make_folders(location.target.parent)
    check_database_place(
        location.target,
        new=not location.target.exists(),
        allow_network_share=allow_network_share,
        override="`tradedb init --force`",
        platform=platform,
    )


def check_database_place(
    path: Path,
    *,
    new: bool,
    allow_network_share: bool,
    override: str | None,
    platform: Platform = THIS_MACHINE,
) -> None:
    """The network-share rule for a database file about to be written: a `new` one on a
    share is refused unless `allow_network_share` (`override` names how a user allows
    it, if one can); one that exists, or is allowed, gets the warning once per process."""
    share = platform_paths.network_share(path, platform)
    if share is None:
        return
    if new and not allow_network_share:
        anyway = f", or put it there anyway with {override}" if override else ""
        raise DatabaseLocationError(
            f"{path}: {share}; SQLite's file locks are unreliable on network shares and "
            "two writers can corrupt the database. Put it on a local disk (or use "
            f"PostgreSQL for a database several hosts share){anyway}"
        )
    message = (
        f"{path}: {share}; SQLite's file locks are unreliable there, so keep every writer "
        "of this database on one computer"
    )
    warn_once(message, NetworkShareWarning(message), stacklevel=3)


def parse_database_url(value: str | os.PathLike[str] | PostgresTarget) -> Path | PostgresTarget:
    """A plain path, a sqlite:/// URL, or a postgresql:// URL (a parsed one as it is)."""
    return parse_target(value)


def config_section(name: str, env: Mapping[str, str] | None = None) -> dict[str, object]:
    """One `[name]` table of the config file (empty when the file or the table is absent).
    Each part of tradedb reads its own table: [database], [backup], [retention], ..."""
    path = config_file(env)
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        # A Windows path in double quotes reads its backslashes as escapes (\c, \t...).
        hint = (
            "; write a Windows path in single quotes, path = 'D:\\crypto-bot\\tradedb.sqlite'"
            if isinstance(exc, tomllib.TOMLDecodeError) and "\\" in text
            else ""
        )
        raise DatabaseLocationError(f"config file {path} cannot be read: {exc}{hint}") from None
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise DatabaseLocationError(f"config file {path}: [{name}] must be a table")
    return section


def _from_config_file(env: Mapping[str, str]) -> str | None:
    value = config_section("database", env).get("path")
    if value is not None and not isinstance(value, str):
        raise DatabaseLocationError(
            f"config file {config_file(env)}: [database] path must be a string"
        )
    return value


def ensure_backup_dir(location: BackupLocation) -> Path:
    """Create the backup folder owner-only if it is missing. The default is created with its
    parents; a folder the user named is created only where its parent exists, so that a
    mistyped path does not quietly grow a tree."""
    folder = location.path
    if folder.is_dir():
        return folder
    if folder.exists():
        raise DatabaseLocationError(f"backup folder {folder} is a file, not a folder")
    try:
        if location.source == "default":
            owner_only.make_folders(folder)
        else:
            owner_only.make_folder(folder)
    except FileNotFoundError:
        raise DatabaseLocationError(
            f"backup folder {folder}: its parent {folder.parent} does not exist"
        ) from None
    except OSError as exc:
        raise DatabaseLocationError(
            f"cannot create backup folder {folder}: {exc.strerror}"
        ) from None
    return folder
