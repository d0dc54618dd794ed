"""Where backups go: --backup-dir, then TRADEDB_BACKUP_DIR, then [backup] dir, then a default."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tradedb.errors import DatabaseLocationError
from tradedb.services.location import (
    BackupLocation,
    default_backup_dir,
    ensure_backup_dir,
    resolve_backup_dir,
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "config.toml"


@pytest.fixture
def fallback(tmp_path: Path) -> Path:
    return tmp_path / "default-backups"


def resolve(option: str | None, env: dict[str, str], fallback: Path) -> BackupLocation:
    return resolve_backup_dir(option, env=env, default=lambda: fallback)


def test_option_beats_environment_and_config(config: Path, fallback: Path) -> None:
    config.write_text('[backup]\ndir = "/from/config"\n', encoding="utf-8")
    env = {"TRADEDB_BACKUP_DIR": "/from/env", "TRADEDB_CONFIG": str(config)}

    assert resolve("/from/option", env, fallback) == BackupLocation(
        Path("/from/option"), "--backup-dir"
    )


def test_environment_beats_config(config: Path, fallback: Path) -> None:
    config.write_text('[backup]\ndir = "/from/config"\n', encoding="utf-8")
    env = {"TRADEDB_BACKUP_DIR": "/from/env", "TRADEDB_CONFIG": str(config)}

    assert resolve(None, env, fallback) == BackupLocation(Path("/from/env"), "TRADEDB_BACKUP_DIR")


def test_config_beats_default(config: Path, fallback: Path) -> None:
    config.write_text('[backup]\ndir = "/from/config"\n', encoding="utf-8")

    location = resolve(None, {"TRADEDB_CONFIG": str(config)}, fallback)

    assert location == BackupLocation(Path("/from/config"), "config file")


def test_default_when_nothing_is_given(config: Path, fallback: Path) -> None:
    env = {"TRADEDB_BACKUP_DIR": "", "TRADEDB_CONFIG": str(config)}

    assert resolve(None, env, fallback) == BackupLocation(fallback, "default")


@pytest.mark.fault("bad input")
def test_config_dir_that_is_not_a_string_is_refused(config: Path, fallback: Path) -> None:
    config.write_text("[backup]\ndir = 7\n", encoding="utf-8")

    with pytest.raises(DatabaseLocationError, match=r"\[backup\] dir") as caught:
        resolve(None, {"TRADEDB_CONFIG": str(config)}, fallback)

    assert str(config) in str(caught.value)


def test_the_default_follows_the_database_as_its_archives_do(tmp_path: Path) -> None:
    from tradedb.services.ops.archive import archive_folder
    from tradedb.store.engines import parse_target

    database = tmp_path / "data" / "bot.sqlite"
    server = parse_target("postgresql://bot:secret@db-host:5433/trading")

    assert default_backup_dir(database) == database.parent / "backups"
    assert archive_folder(database, {"TRADEDB_CONFIG": str(tmp_path / "none.toml")}) == (
        database.parent / "bot-archives"
    )
    assert default_backup_dir(server).parent.name == "postgresql"


def test_default_folder_is_created_owner_only_with_its_parents(tmp_path: Path) -> None:
    folder = ensure_backup_dir(BackupLocation(tmp_path / "a" / "b" / "backups", "default"))

    assert folder.is_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_named_folder_is_created_only_where_its_parent_exists(tmp_path: Path) -> None:
    created = ensure_backup_dir(BackupLocation(tmp_path / "backups", "--backup-dir"))
    assert stat.S_IMODE(created.stat().st_mode) == 0o700

    with pytest.raises(DatabaseLocationError, match="does not exist"):
        ensure_backup_dir(BackupLocation(tmp_path / "typo" / "backups", "TRADEDB_BACKUP_DIR"))
    assert not (tmp_path / "typo").exists()
