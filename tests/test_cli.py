"""The `tradedb` command as a user runs it: init, db status and info.

Most tests drive the real console command in a subprocess, with the environment cut off
from the user's own (no TRADEDB_DB, a config path that does not exist, HOME and the XDG
folders inside tmp). The larger matrix of user errors also runs in-process through typer's
CliRunner, which is faster and shows whether the error was handled (SystemExit) rather
than escaping as an exception.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tradedb
from cli_harness import isolated_environ
from conftest import sha256
from tradedb.cli.app import app
from tradedb.schema.migrate import head_revision
from tradedb.store import Store

SPEC_TABLES = (
    "trades",
    "crypto_orders",
    "positions",
    "market_data",
    "tickers",
    "performance_metrics",
    "portfolio_snapshots",
    "bot_config",
    "bot_logs",
    "wallets",
    "balance_history",
)
# Tables of tradedb's own beyond the specification (docs/schema.md).
EXTRA_TABLES = ("wallet_movements", "sync_cursors", "reference_prices")
TABLES = SPEC_TABLES + EXTRA_TABLES
USER_ERROR = 2


# --- harness -----------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment in which the default database and config live inside tmp."""
    return isolated_environ(tmp_path)


@pytest.fixture
def isolated(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The same environment for in-process runs."""
    monkeypatch.delenv("TRADEDB_DB", raising=False)
    for key in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "TRADEDB_CONFIG"):
        monkeypatch.setenv(key, env[key])
    return env


@pytest.fixture
def run(env: dict[str, str], tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run_command(
        *args: str, extra_env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tradedb", *args],
            env={**env, **(extra_env or {})},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return run_command


def default_database(env: dict[str, str]) -> Path:
    # platformdirs follows XDG_DATA_HOME on Linux.
    return Path(env["XDG_DATA_HOME"]) / "tradedb" / "tradedb.sqlite"


def assert_user_error(returncode: int, stdout: str, stderr: str) -> str:
    """Exit 2, exactly one non-empty line on stderr, no traceback; return that line."""
    assert returncode == USER_ERROR, (returncode, stdout, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].strip()
    assert "Traceback" not in stderr
    assert "Traceback" not in stdout
    return lines[0]


@pytest.fixture
def created(tmp_path: Path) -> Iterator[Path]:
    """A tradedb database made by the library, closed before the command runs."""
    path = tmp_path / "made.sqlite"
    Store.open(path).close()
    return path


# --- version -----------------------------------------------------------------------------


def test_version_prints_the_package_version(
    run: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    result = run("--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"tradedb {tradedb.__version__}"


# --- init --------------------------------------------------------------------------------


def test_init_creates_an_owner_only_database_then_reports_it_up_to_date(
    run: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    path = tmp_path / "bot.sqlite"

    first = run("init", "--db", str(path))

    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with Store.open(path, readonly=True) as store:
        assert store.schema_status().up_to_date

    second = run("init", "--db", str(path))

    assert second.returncode == 0, second.stderr
    assert "already up to date" in second.stdout
    assert "created" not in second.stdout


def test_init_json_is_machine_readable(
    run: Callable[..., subprocess.CompletedProcess[str]], isolated: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "bot.sqlite"

    first = json.loads(run("init", "--db", str(path), "--json").stdout)
    second = json.loads(CliRunner().invoke(app, ["init", "--db", str(path), "--json"]).stdout)

    assert Path(first["path"]) == path
    assert first["action"] == "created"
    assert first["schema"] == head_revision()
    assert second["action"] == "already up to date"
    assert second["schema"] == head_revision()


def test_init_without_db_uses_the_default_location_and_creates_its_folder(
    run: Callable[..., subprocess.CompletedProcess[str]], env: dict[str, str]
) -> None:
    expected = default_database(env)
    assert not expected.parent.exists()

    result = run("init", "--json")

    assert result.returncode == 0, result.stderr
    assert Path(json.loads(result.stdout)["path"]) == expected
    assert expected.is_file()
    assert stat.S_IMODE(expected.stat().st_mode) == 0o600
    assert stat.S_IMODE(expected.parent.stat().st_mode) == 0o700


def test_environment_variable_is_honoured_and_db_option_beats_it(
    run: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path, env: dict[str, str]
) -> None:
    from_env = tmp_path / "from-env.sqlite"
    from_option = tmp_path / "from-option.sqlite"

    by_env = run("init", extra_env={"TRADEDB_DB": str(from_env)})

    assert by_env.returncode == 0, by_env.stderr
    assert from_env.is_file()
    assert "TRADEDB_DB" in by_env.stdout  # says where the path came from

    by_option = run("init", "--db", str(from_option), extra_env={"TRADEDB_DB": str(from_env)})

    assert by_option.returncode == 0, by_option.stderr
    assert from_option.is_file()
    assert "--db" in by_option.stdout
    assert not default_database(env).exists()


def test_config_file_is_honoured(
    run: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    target = tmp_path / "from-config.sqlite"
    config = tmp_path / "tradedb.toml"
    config.write_text(f'[database]\npath = "{target}"\n', encoding="utf-8")

    result = run("init", "--json", extra_env={"TRADEDB_CONFIG": str(config)})

    assert result.returncode == 0, result.stderr
    assert Path(json.loads(result.stdout)["path"]) == target
    assert target.is_file()


def test_sqlite_url_is_accepted_by_db_option(
    run: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    result = run("init", "--db", "sqlite:///relative.sqlite", "--json")

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "relative.sqlite").is_file()


# --- db status ---------------------------------------------------------------------------


def test_db_status_shows_current_and_latest(
    run: Callable[..., subprocess.CompletedProcess[str]], isolated: dict[str, str], created: Path
) -> None:
    as_json = run("db", "status", "--db", str(created), "--json")
    as_table = CliRunner().invoke(app, ["db", "status", "--db", str(created)])

    assert as_json.returncode == 0, as_json.stderr
    status = json.loads(as_json.stdout)
    assert status["current"] == status["latest"] == head_revision()
    assert status["up_to_date"] is True
    assert as_table.exit_code == 0, as_table.output
    for word in ("current", "latest", head_revision()):
        assert word in as_table.stdout


def test_db_status_on_missing_file_is_a_user_error(
    run: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.sqlite"

    result = run("db", "status", "--db", str(missing))

    line = assert_user_error(result.returncode, result.stdout, result.stderr)
    assert str(missing) in line
    assert not missing.exists()


# --- info --------------------------------------------------------------------------------


def test_info_json_reports_size_schema_and_rows_of_every_table(
    run: Callable[..., subprocess.CompletedProcess[str]], created: Path
) -> None:
    with Store.open(created) as store:
        for index in range(3):
            store.trades.insert(
                {
                    "symbol": "BTC/USDT",
                    "side": "buy",
                    "amount": Decimal("0.5"),
                    "price": Decimal("60000.12345678"),
                    "total_value": Decimal("30000.06172839"),
                    "timestamp": 1_700_000_000_000 + index,
                    "exchange": "kraken",
                }
            )

    result = run("info", "--db", str(created), "--json")

    assert result.returncode == 0, result.stderr
    details = json.loads(result.stdout)
    assert Path(details["path"]) == created
    assert details["size_bytes"] > 0
    assert details["schema"] == head_revision()
    assert set(details["row_counts"]) == set(TABLES)
    assert details["row_counts"]["trades"] == 3
    assert all(details["row_counts"][name] == 0 for name in TABLES if name != "trades")


def test_info_table_lists_every_table(
    run: Callable[..., subprocess.CompletedProcess[str]], created: Path
) -> None:
    result = run("info", "--db", str(created))

    assert result.returncode == 0, result.stderr
    for name in TABLES:
        assert name in result.stdout


def test_info_never_creates_a_database(
    run: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.sqlite"

    result = run("info", "--db", str(missing))

    line = assert_user_error(result.returncode, result.stdout, result.stderr)
    assert str(missing) in line
    assert not missing.exists()
    assert list(tmp_path.glob("missing.sqlite*")) == []


def test_info_and_status_leave_an_existing_database_unchanged(
    isolated: dict[str, str], created: Path
) -> None:
    before = sha256(created)
    runner = CliRunner()

    for args in (["info", "--json"], ["db", "status"]):
        result = runner.invoke(app, [*args, "--db", str(created)])
        assert result.exit_code == 0, result.output

    assert sha256(created) == before


# --- user errors -------------------------------------------------------------------------


def missing_folder(tmp_path: Path) -> str:
    return str(tmp_path / "no-such-folder" / "bot.sqlite")


def a_folder(tmp_path: Path) -> str:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    return str(folder)


def not_sqlite(tmp_path: Path) -> str:
    path = tmp_path / "hello.txt"
    path.write_text("hello", encoding="utf-8")
    return str(path)


def postgresql(tmp_path: Path) -> str:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    return f"postgresql://bot:{PASSWORD}@127.0.0.1:1/trading"


PASSWORD = "s3cret-Pa55"


def foreign_sqlite(tmp_path: Path) -> str:
    path = tmp_path / "notes.sqlite"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO notes (body) VALUES ('not a trading database')")
    conn.close()
    return str(path)


BAD_LOCATIONS: dict[str, Callable[[Path], str]] = {
    "missing folder": missing_folder,
    "a folder": a_folder,
    "not SQLite": not_sqlite,
    "postgresql URL": postgresql,
    "foreign SQLite": foreign_sqlite,
}
COMMANDS = {"init": ["init"], "info": ["info"], "db status": ["db", "status"]}

# What the one line must name so that the user knows what was wrong.
EXPECTED_IN_MESSAGE = {
    "missing folder": "does not exist",
    "a folder": "folder",
    "not SQLite": "not a database",
    "postgresql URL": "postgresql://bot:***@127.0.0.1:1/trading: cannot connect",
    "foreign SQLite": "not a tradedb database",
}


def bad_location_cases() -> list[object]:
    cases: list[object] = []
    for case in BAD_LOCATIONS:
        for command in COMMANDS:
            cases.append(pytest.param(case, command, id=f"{command}-{case}"))
    return cases


@pytest.mark.parametrize(("case", "command"), bad_location_cases())
@pytest.mark.fault("bad input")
def test_bad_location_is_one_line_exit_2(
    isolated: dict[str, str], tmp_path: Path, case: str, command: str
) -> None:
    target = BAD_LOCATIONS[case](tmp_path)

    result = CliRunner().invoke(app, [*COMMANDS[command], "--db", target])

    # A handled error ends in SystemExit; anything else escaped as an exception.
    assert isinstance(result.exception, SystemExit), result.exception
    line = assert_user_error(result.exit_code, result.stdout, result.stderr)
    assert EXPECTED_IN_MESSAGE[case] in line
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("case", "command"),
    [
        ("missing folder", "init"),
        ("a folder", "init"),
        ("not SQLite", "info"),
        ("not SQLite", "init"),
        ("not SQLite", "db status"),
        ("foreign SQLite", "init"),
        ("foreign SQLite", "info"),
    ],
)
def test_error_names_the_path(
    isolated: dict[str, str], tmp_path: Path, case: str, command: str
) -> None:
    target = BAD_LOCATIONS[case](tmp_path)

    result = CliRunner().invoke(app, [*COMMANDS[command], "--db", target])

    assert result.exit_code == USER_ERROR
    assert Path(target).name in result.stderr or str(Path(target).parent) in result.stderr


@pytest.mark.parametrize("case", list(BAD_LOCATIONS))
@pytest.mark.fault("bad input")
def test_bad_location_in_a_real_process_has_no_traceback(
    run: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path, case: str
) -> None:
    target = BAD_LOCATIONS[case](tmp_path)

    result = run("init", "--db", target)

    line = assert_user_error(result.returncode, result.stdout, result.stderr)
    assert EXPECTED_IN_MESSAGE[case] in line
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.fault("bad input")
def test_bad_environment_variable_is_a_user_error(
    run: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    result = run("info", extra_env={"TRADEDB_DB": "mysql://localhost/db"})

    line = assert_user_error(result.returncode, result.stdout, result.stderr)
    assert "mysql" in line


@pytest.mark.parametrize(
    "command",
    ["info", "db status"],
)
@pytest.mark.fault("bad input")
def test_foreign_database_is_not_offered_an_init_that_refuses(
    isolated: dict[str, str], tmp_path: Path, command: str
) -> None:
    target = foreign_sqlite(tmp_path)

    result = CliRunner().invoke(app, [*COMMANDS[command], "--db", target])

    assert result.exit_code == USER_ERROR
    assert "tradedb init" not in result.output + result.stderr
    assert "not a tradedb database" in result.stderr


@pytest.mark.parametrize("command", list(COMMANDS))
def test_foreign_database_is_left_unchanged(
    isolated: dict[str, str], tmp_path: Path, command: str
) -> None:
    target = Path(foreign_sqlite(tmp_path))
    before = sha256(target)

    CliRunner().invoke(app, [*COMMANDS[command], "--db", str(target)])

    assert sha256(target) == before
    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        assert conn.execute("SELECT body FROM notes").fetchall() == [("not a trading database",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        conn.close()


@pytest.mark.fault("bad input")
def test_refused_foreign_database_gets_no_tradedb_tables(
    isolated: dict[str, str], tmp_path: Path
) -> None:
    target = Path(foreign_sqlite(tmp_path))

    result = CliRunner().invoke(app, ["init", "--db", str(target)])

    assert result.exit_code == USER_ERROR
    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert tables == {"notes"}
