"""One vocabulary across the commands, read from the commands themselves: `--since` and
`--until` bound every time range, `--to` is always what a command writes, the replica is
`--replica`, an option taking several values is named in the singular and takes them
repeated or comma-separated, and every command takes `--db`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from typer import _click
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from tradedb.cli.app import app
from tradedb.store import Store

USER_ERROR = 2


def leaves() -> Iterator[tuple[str, _click.Command]]:
    """Every command a user runs (groups with options of their own included)."""

    def walk(command: _click.Command, path: list[str]) -> Iterator[tuple[str, _click.Command]]:
        if isinstance(command, TyperGroup):
            if command.params and path:
                yield " ".join(path), command
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path), command

    yield from walk(typer.main.get_command(app), [])


COMMANDS = dict(leaves())


def names(command: _click.Command) -> set[str]:
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts)}


def having(option: str) -> set[str]:
    return {path for path, command in COMMANDS.items() if option in names(command)}


def test_every_command_takes_db() -> None:
    assert {path for path, command in COMMANDS.items() if "--db" not in names(command)} == set()


def test_time_ranges_are_since_and_until() -> None:
    for old in ("--start", "--end", "--timestamp", "--from-date", "--to-date"):
        assert having(old) == set(), old
    assert having("--until") <= having("--since")
    for command in ("paper", "report", "metrics", "snapshot", "orders", "candles", "download"):
        assert command in having("--since") & having("--until"), command


def test_to_is_what_the_command_writes_and_from_is_only_a_download_source() -> None:
    assert having("--to") == {"restore", "backup upload", "migrate-db", "replicate restore"}
    assert having("--from") == {"backup fetch"}


def test_the_replica_is_named_alike_wherever_it_is_used() -> None:
    assert having("--replica") == {"replicate", "replicate restore", "replicate list"}


def test_options_taking_several_values_are_named_in_the_singular() -> None:
    several = {
        (path, param.opts[0])
        for path, command in COMMANDS.items()
        for param in command.params
        if isinstance(param, TyperOption) and param.multiple
    }
    assert several >= {
        ("paper", "--strategy"),
        ("paper", "--symbol"),
        ("report", "--strategy"),
        ("download", "--symbol"),
        ("download", "--timeframe"),
        ("tickers", "--symbol"),
        ("resample", "--into"),
        ("value", "--usd-asset"),
    }
    assert [name for _, name in several if name.endswith("s")] == []
    for plural in ("--symbols", "--timeframes", "--strategies", "--usd-assets", "--exchanges"):
        assert having(plural) == set(), plural


@pytest.mark.parametrize(
    "args",
    [
        ["backup", "list"],
        ["backup", "prune", "--dry-run"],
        ["restore", "20240101-000000-snapshot", "--to", "x.sqlite"],
        ["backup", "fetch", "20240101-000000-snapshot", "--from", "nowhere"],
        ["backup", "upload", "--to", "nowhere"],
        ["migrate-db", "--to", "copy.sqlite"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_db_is_accepted_by_the_backup_commands(
    tmp_path: Path, args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`backup list --db X` was refused with "No such option: --db"."""
    monkeypatch.chdir(tmp_path)  # the relative paths above land here, not in the checkout
    db = tmp_path / "t.sqlite"
    Store.open(db).close()
    result = CliRunner().invoke(app, [*args, "--db", str(db)])
    assert "No such option" not in result.output
    assert result.exit_code in (0, 1, USER_ERROR), result.output


def test_backup_list_of_a_database_lists_its_backups(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    Store.open(db).close()
    folder = tmp_path / "backups"
    taken = CliRunner().invoke(
        app, ["backup", "snapshot", "--db", str(db), "--backup-dir", str(folder), "--json"]
    )
    assert taken.exit_code == 0, taken.output
    listed = CliRunner().invoke(
        app, ["backup", "list", "--db", str(db), "--backup-dir", str(folder), "--json"]
    )
    assert listed.exit_code == 0, listed.output
    assert [m["id"] for m in json.loads(listed.stdout)] == [json.loads(taken.stdout)["id"]]
