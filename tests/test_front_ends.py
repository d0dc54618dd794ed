"""The front ends (the command line, the MCP server, the demo) stand on the public object:
they never import the store, and a database driver's own error reaches a user of the
command line as one literal line, on either engine."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import psycopg
import pytest
import typer
from typer.testing import CliRunner

import tradedb
from tradedb.cli.app import app
from tradedb.cli.common import USER_ERROR, user_errors

SOURCE = Path(__file__).parents[1] / "src" / "tradedb"
FRONT_ENDS = sorted(
    [
        *(SOURCE / "cli").glob("*.py"),
        *(SOURCE / "mcp").glob("*.py"),
        SOURCE / "services" / "demo.py",
    ]
)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, `from tradedb import store` counted as tradedb.store."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("path", FRONT_ENDS, ids=lambda path: str(path.relative_to(SOURCE)))
def test_a_front_end_never_imports_the_store(path: Path) -> None:
    store_imports = {
        module
        for module in imported_modules(path)
        if module == "tradedb.store" or module.startswith("tradedb.store.")
    }
    assert store_imports == set()


def test_the_check_sees_every_front_end() -> None:
    names = {str(path.relative_to(SOURCE)) for path in FRONT_ENDS}
    assert {"cli/app.py", "cli/common.py", "mcp/server.py", "services/demo.py"} <= names
    assert imported_modules(SOURCE / "api" / "__init__.py") >= {"tradedb.store"}


def one_line_error(result: object) -> str:
    exit_code, stdout, stderr = (
        getattr(result, name) for name in ("exit_code", "stdout", "stderr")
    )
    assert exit_code == USER_ERROR, (exit_code, stdout, stderr)
    assert isinstance(result.exception, SystemExit), result.exception  # type: ignore[attr-defined]
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stdout + stderr
    return str(lines[0])


def drop_description_column(db_target: str) -> None:
    """Break the database under tradedb: bot_config loses a column its reads name."""
    if db_target.startswith("postgresql://"):
        with psycopg.connect(db_target, autocommit=True) as connection:
            connection.execute("ALTER TABLE bot_config DROP COLUMN description CASCADE")
        return
    connection = sqlite3.connect(db_target)
    with connection:
        for kind, name in connection.execute(
            "SELECT type, name FROM sqlite_master WHERE type IN ('view', 'trigger') "
            "AND sql LIKE '%bot_config%'"
        ).fetchall():
            connection.execute(f"DROP {kind.upper()} {name}")
        connection.execute("ALTER TABLE bot_config DROP COLUMN description")
    connection.close()


@pytest.mark.fault("bad input")
def test_a_drivers_error_is_one_line_and_exit_2_on_either_engine(db_target: str) -> None:
    tradedb.open(db_target).close()
    drop_description_column(db_target)

    result = CliRunner().invoke(app, ["config", "list", "--db", db_target])

    line = one_line_error(result)
    assert line.startswith("error: database: ")
    assert "description" in line


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.OperationalError("no such table: [bold]notes[/bold]"),
        psycopg.errors.UndefinedTable(
            'relation "[red]notes[/red]" does not exist\nLINE 1: SELECT * FROM notes\n'
            "                      ^"
        ),
    ],
    ids=["sqlite3", "psycopg"],
)
def test_a_drivers_message_is_printed_literally_first_line_only(error: Exception) -> None:
    command = typer.Typer()

    @command.command()
    @user_errors
    def fail() -> None:
        raise error

    line = one_line_error(CliRunner().invoke(command, []))

    assert line == f"error: database: {str(error).splitlines()[0]}"
