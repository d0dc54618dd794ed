"""Where the database lives: --db, then TRADEDB_DB, then the config file, then the default."""

from __future__ import annotations

import stat
from pathlib import Path

import platformdirs
import pytest

from tradedb.errors import DatabaseLocationError
from tradedb.services.location import (
    DatabaseLocation,
    parse_database_url,
    prepare_for_writing,
    resolve_database,
)
from tradedb.store.engines import PostgresTarget


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Path of a config file that does not exist yet (tests write it when they need it)."""
    return tmp_path / "config.toml"


@pytest.fixture
def fallback(tmp_path: Path) -> Path:
    return tmp_path / "default" / "tradedb.sqlite"


def write_config(path: Path, db: str) -> Path:
    path.write_text(f'[database]\npath = "{db}"\n', encoding="utf-8")
    return path


def resolve(option: str | None, env: dict[str, str], fallback: Path) -> DatabaseLocation:
    return resolve_database(option, env=env, default=lambda: fallback)


# --- precedence --------------------------------------------------------------------------


def test_db_option_beats_environment_and_config(config: Path, fallback: Path) -> None:
    write_config(config, "/from/config.sqlite")
    env = {"TRADEDB_DB": "/from/env.sqlite", "TRADEDB_CONFIG": str(config)}

    location = resolve("/from/option.sqlite", env, fallback)

    assert location == DatabaseLocation(Path("/from/option.sqlite"), "--db")


def test_environment_beats_config(config: Path, fallback: Path) -> None:
    write_config(config, "/from/config.sqlite")
    env = {"TRADEDB_DB": "/from/env.sqlite", "TRADEDB_CONFIG": str(config)}

    location = resolve(None, env, fallback)

    assert location == DatabaseLocation(Path("/from/env.sqlite"), "TRADEDB_DB")


def test_environment_may_hold_a_sqlite_url(config: Path, fallback: Path) -> None:
    env = {"TRADEDB_DB": "sqlite:////from/env.sqlite", "TRADEDB_CONFIG": str(config)}

    assert resolve(None, env, fallback) == DatabaseLocation(Path("/from/env.sqlite"), "TRADEDB_DB")


def test_config_file_beats_default(config: Path, fallback: Path) -> None:
    write_config(config, "/from/config.sqlite")

    location = resolve(None, {"TRADEDB_CONFIG": str(config)}, fallback)

    assert location == DatabaseLocation(Path("/from/config.sqlite"), "config file")


def test_config_file_may_hold_a_sqlite_url(config: Path, fallback: Path) -> None:
    write_config(config, "sqlite:///relative.sqlite")

    location = resolve(None, {"TRADEDB_CONFIG": str(config)}, fallback)

    assert location == DatabaseLocation(Path("relative.sqlite"), "config file")


def test_default_when_nothing_else_is_given(config: Path, fallback: Path) -> None:
    assert not config.exists()

    location = resolve(None, {"TRADEDB_CONFIG": str(config)}, fallback)

    assert location == DatabaseLocation(fallback, "default")


def test_empty_environment_variable_is_ignored(config: Path, fallback: Path) -> None:
    location = resolve(None, {"TRADEDB_DB": "", "TRADEDB_CONFIG": str(config)}, fallback)

    assert location.source == "default"


def test_config_without_database_path_falls_back_to_default(config: Path, fallback: Path) -> None:
    config.write_text('[logging]\nlevel = "INFO"\n', encoding="utf-8")

    location = resolve(None, {"TRADEDB_CONFIG": str(config)}, fallback)

    assert location == DatabaseLocation(fallback, "default")


@pytest.mark.fault("bad input")
def test_malformed_config_names_the_file(config: Path, fallback: Path) -> None:
    config.write_text("[database\npath = \n", encoding="utf-8")

    with pytest.raises(DatabaseLocationError, match="config file") as caught:
        resolve(None, {"TRADEDB_CONFIG": str(config)}, fallback)

    assert str(config) in str(caught.value)


@pytest.mark.fault("bad input")
def test_config_path_that_is_not_a_string_is_refused(config: Path, fallback: Path) -> None:
    config.write_text("[database]\npath = 42\n", encoding="utf-8")

    with pytest.raises(DatabaseLocationError, match="must be a string") as caught:
        resolve(None, {"TRADEDB_CONFIG": str(config)}, fallback)

    assert str(config) in str(caught.value)


@pytest.mark.fault("bad input")
def test_malformed_config_is_not_read_when_db_option_is_given(config: Path, fallback: Path) -> None:
    config.write_text("not toml at all [[[", encoding="utf-8")

    location = resolve("/x.sqlite", {"TRADEDB_CONFIG": str(config)}, fallback)

    assert location == DatabaseLocation(Path("/x.sqlite"), "--db")


def test_config_file_defaults_to_the_user_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fallback: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    expected = Path(platformdirs.user_config_dir("tradedb")) / "config.toml"
    assert expected.is_relative_to(tmp_path)
    expected.parent.mkdir(parents=True)
    write_config(expected, "/from/user/config.sqlite")

    location = resolve(None, {}, fallback)

    assert location == DatabaseLocation(Path("/from/user/config.sqlite"), "config file")


# --- URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bot.sqlite", Path("bot.sqlite")),
        ("/var/lib/bot/trades.db", Path("/var/lib/bot/trades.db")),
        ("sqlite:///rel.sqlite", Path("rel.sqlite")),
        ("sqlite:///data/rel.sqlite", Path("data/rel.sqlite")),
        ("sqlite:////abs/x.sqlite", Path("/abs/x.sqlite")),
        ("sqlite+pysqlite:////abs/x.sqlite", Path("/abs/x.sqlite")),
        ("sqlite:////abs/x.sqlite?timeout=5", Path("/abs/x.sqlite")),
    ],
)
def test_parse_database_url_gives_the_file(value: str, expected: Path) -> None:
    assert parse_database_url(value) == expected


def test_parse_database_url_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))

    assert parse_database_url("~/bot.sqlite") == tmp_path / "bot.sqlite"
    assert parse_database_url("sqlite:///~/bot.sqlite") == tmp_path / "bot.sqlite"


@pytest.mark.parametrize("value", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
@pytest.mark.fault("bad input")
def test_sqlite_url_without_a_file_is_refused(value: str) -> None:
    with pytest.raises(DatabaseLocationError, match="give a file"):
        parse_database_url(value)


@pytest.mark.parametrize(
    "value",
    [
        "postgresql://bot:secret@localhost:5432/trading",
        "postgresql+psycopg://bot@localhost/trading",
        "postgres://bot@localhost/trading",
    ],
)
def test_postgresql_urls_name_a_server_database_and_never_show_the_password(value: str) -> None:
    target = parse_database_url(value)

    assert isinstance(target, PostgresTarget)
    assert target.database == "trading"
    assert str(target).startswith("postgresql://bot")
    # A password in the URL must not be echoed back.
    assert "secret" not in str(target)
    assert "secret" not in repr(DatabaseLocation(target, "--db"))
    assert "secret" not in str(DatabaseLocation(target, "--db"))


@pytest.mark.fault("bad input")
def test_a_postgresql_url_without_a_database_is_refused() -> None:
    with pytest.raises(DatabaseLocationError, match="name the database") as caught:
        parse_database_url("postgresql://bot:secret@localhost:5432")
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("value", ["mysql://bot@localhost/trading", "http://example.org/db"])
@pytest.mark.fault("bad input")
def test_unknown_url_scheme_is_refused(value: str) -> None:
    scheme = value.partition("://")[0]
    with pytest.raises(DatabaseLocationError, match="unsupported database URL") as caught:
        parse_database_url(value)

    assert scheme in str(caught.value)


@pytest.mark.fault("bad input")
def test_unsupported_url_in_environment_is_refused(config: Path, fallback: Path) -> None:
    env = {"TRADEDB_DB": "mysql://localhost/db", "TRADEDB_CONFIG": str(config)}

    with pytest.raises(DatabaseLocationError, match="unsupported database URL"):
        resolve(None, env, fallback)


def test_a_postgresql_url_in_the_environment_or_config_file_selects_postgresql(
    config: Path, fallback: Path
) -> None:
    url = "postgresql://bot:secret@db.internal:5432/trading"
    from_env = resolve(None, {"TRADEDB_DB": url, "TRADEDB_CONFIG": str(config)}, fallback)
    assert isinstance(from_env.target, PostgresTarget)
    assert from_env.source == "TRADEDB_DB"
    config.write_text(f'[database]\npath = "{url}"\n', encoding="utf-8")
    from_file = resolve(None, {"TRADEDB_CONFIG": str(config)}, fallback)
    assert isinstance(from_file.target, PostgresTarget)
    assert from_file.source == "config file"
    assert str(from_file) == "postgresql://bot:***@db.internal:5432/trading"


# --- the default -------------------------------------------------------------------------


def test_default_folder_is_created_owner_only(tmp_path: Path) -> None:
    location = DatabaseLocation(tmp_path / "data" / "tradedb" / "tradedb.sqlite", "default")

    prepare_for_writing(location)

    folder = location.path.parent
    assert folder.is_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_folder_the_user_named_is_never_created(tmp_path: Path) -> None:
    for source in ("--db", "TRADEDB_DB", "config file"):
        location = DatabaseLocation(tmp_path / source / "tradedb.sqlite", source)  # type: ignore[arg-type]

        prepare_for_writing(location)

        assert not location.path.parent.exists()
