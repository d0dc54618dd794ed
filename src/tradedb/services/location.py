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
from pathlib import Path, PureWindowsPath
from typing import Literal

import platformdirs

from tradedb import owner_only
from tradedb.errors import DatabaseLocationError
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
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


def default_database_path(
    *, is_windows: bool | None = None, drive_exists: Callable[[str], bool] = os.path.isdir
) -> Path:
    """The spec's D:\\crypto-bot\\ on Windows with a D: drive; the user data folder otherwise."""
    if is_windows is None:
        is_windows = os.name == "nt"
    if is_windows and drive_exists("D:\\"):
        return Path(WINDOWS_DB_FOLDER / DB_FILENAME)
    return Path(platformdirs.user_data_dir(APP)) / DB_FILENAME


def resolve_database(
    option: str | None,
    *,
    env: Mapping[str, str] | None = None,
    default: Callable[[], Path] = default_database_path,
) -> DatabaseLocation:
    env = os.environ if env is None else env
    if option:
        return DatabaseLocation(parse_database_url(option), "--db")
    if env.get(DB_ENV):
        return DatabaseLocation(parse_database_url(env[DB_ENV]), "TRADEDB_DB")
    configured = _from_config_file(env)
    if configured:
        return DatabaseLocation(parse_database_url(configured), "config file")
    return DatabaseLocation(default(), "default")


def default_backup_dir(
    database: Path | PostgresTarget | None = None,
    *,
    is_windows: bool | None = None,
    drive_exists: Callable[[str], bool] = os.path.isdir,
) -> Path:
    """`backups/` beside the database (beside its companion name in the user data folder
    for a PostgreSQL database), as retention's `<stem>-archives/` is: a database's folders
    follow the database (docs/decisions.md). The default database's is the spec's
    D:\\backups\\crypto-bot\\ on Windows with a D: drive, and `backups/` in the user data
    folder elsewhere; `database` None means the default database."""
    if is_windows is None:
        is_windows = os.name == "nt"
    default_database = default_database_path(is_windows=is_windows, drive_exists=drive_exists)
    base = default_database if database is None else companion_base(database)
    if base == default_database and is_windows and drive_exists("D:\\"):
        return Path(WINDOWS_BACKUP_FOLDER)
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


def ensure_default_folder(location: DatabaseLocation) -> None:
    """Create the default folder (owner-only); a folder the user named must already exist."""
    if location.source == "default" and isinstance(location.target, Path):
        owner_only.make_folders(location.target.parent)


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
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DatabaseLocationError(f"config file {path} cannot be read: {exc}") from None
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
