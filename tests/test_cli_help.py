"""What `tradedb` prints is literal text, and its help reads as typer's usually does.

Square brackets are data (file names, `pip install 'tradedb[exchanges]'`, the config
file's `[maintain]` table), never Rich markup: no message, table or help text loses them,
and a `[/` ends nothing. Every command's help shows a value option with an uppercase
placeholder (TEXT, INTEGER, PATH, TIME...) and a flag with none (never `<bool>` or
`<str>`), and `tradedb --help` lists the commands in panels.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from typer import _click
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.testing import CliRunner

from cli_harness import isolated_environ
from conftest import DATA
from tradedb.cli.app import PANELS, app
from tradedb.store import Store

USER_ERROR = 2
# Wide enough that no help row wraps, so a row can be read as one line.
WIDE = {"COLUMNS": "320"}
BOX = re.compile(r"[│╭╮╰╯─]")
# typer 0.29's own placeholders, which tradedb's help must never show.
TYPE_LABEL = re.compile(r"<(?:bool|str|int|float|path|file|dir|datetime|list\[[^>]*\])>")
PLACEHOLDER = re.compile(r"(?:[A-Z][A-Z0-9_.=|-]*|\[[^\]]+\])(?:\.\.\.)?")


def commands() -> Iterator[tuple[list[str], _click.Command]]:
    """Every command and group under `tradedb`, with the words that reach it."""
    root = typer.main.get_command(app)

    def walk(
        command: _click.Command, path: list[str]
    ) -> Iterator[tuple[list[str], _click.Command]]:
        yield path, command
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])

    yield from walk(root, [])


COMMANDS = list(commands())


def help_of(path: list[str]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.stdout


def flat(text: str) -> str:
    """Help as words: no box drawing, runs of spaces and line breaks as one space."""
    return " ".join(BOX.sub(" ", text).split())


def one_line(text: str | None) -> str:
    return " ".join((text or "").split())


# --- literal text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "tradedb" for p, _ in COMMANDS]
)
def test_every_help_text_is_shown_with_its_square_brackets(
    path: list[str], command: _click.Command
) -> None:
    shown = flat(help_of(path))
    texts = [command.help, *(getattr(param, "help", None) for param in command.params)]
    if isinstance(command, TyperGroup):
        texts += [sub.help for sub in command.commands.values()]
    bracketed = [part for text in texts for part in re.findall(r"\[[^\]]*\]", one_line(text))]
    for part in bracketed:
        assert part in shown, (part, shown)


def test_the_help_texts_the_issue_names_read_as_written() -> None:
    assert "weekly ([maintain] cloud_to)" in flat(help_of(["maintain"]))
    assert "[backup] dir in the config file" in flat(help_of(["backup", "snapshot"]))
    assert "[retention] in the config file" in flat(help_of(["retention", "run"]))


def test_a_file_name_with_brackets_is_shown_whole(tmp_path: Path) -> None:
    data = tmp_path / "binance" / "x[red].feather"
    data.parent.mkdir()
    data.write_bytes((DATA / "XRP_ETH-5m.feather").read_bytes())
    db = tmp_path / "t.sqlite"
    Store.open(db).close()

    result = CliRunner().invoke(
        app,
        [
            "import",
            str(data),
            "--db",
            str(db),
            "--symbol",
            "XRP/ETH",
            "--timeframe",
            "5m",
            "--format",
            "freqtrade-feather",
        ],
        env=WIDE,
    )

    assert result.exit_code == 0, result.output
    assert "x[red].feather" in result.stdout
    assert f"imported {data}" in result.stdout


def test_a_path_with_brackets_is_shown_whole(tmp_path: Path) -> None:
    db = tmp_path / "live[red]1.sqlite"
    Store.open(db).close()

    result = CliRunner().invoke(app, ["info", "--db", str(db)], env=WIDE)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == str(db)


def test_an_error_quoting_pip_install_keeps_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "t.sqlite"
    Store.open(db).close()
    monkeypatch.setitem(sys.modules, "tradedb.mcp", None)  # as if the extra were missing

    result = CliRunner().invoke(app, ["mcp", "--db", str(db)])

    assert result.exit_code == USER_ERROR
    assert "pip install 'tradedb[mcp]'" in result.stderr


@pytest.mark.parametrize("value", ["x[/]", "a[red]b", "[/bold]"])
def test_a_message_holding_markup_is_printed_as_it_is(tmp_path: Path, value: str) -> None:
    """Through the real console entry point, whose usage errors are its own lines."""
    done = subprocess.run(
        [sys.executable, "-m", "tradedb", value],
        env=isolated_environ(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == USER_ERROR, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0] == f"error: No such command '{value}'."
    assert "Traceback" not in done.stderr


def test_a_table_cell_with_brackets_keeps_them(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    Store.open(db).close()
    setting = ["config", "set", "note.x", "[bold]kept[/bold] [/]", "--db", str(db)]
    assert CliRunner().invoke(app, setting).exit_code == 0

    listed = CliRunner().invoke(app, ["config", "list", "--db", str(db)], env=WIDE)
    got = CliRunner().invoke(app, ["config", "get", "note.x", "--db", str(db), "--json"])

    assert "[bold]kept[/bold] [/]" in listed.stdout
    assert json.loads(got.stdout)["value"] == "[bold]kept[/bold] [/]"


# --- typer's usual help -------------------------------------------------------------------------


def rows(shown: str) -> dict[str, list[str]]:
    """An option or argument row of the help, by its first name: the words after it."""
    found = {}
    for line in shown.splitlines():
        words = BOX.sub(" ", line).replace(" * ", " ").split()
        if words and (words[0].startswith("--") or words[0].islower()):
            found.setdefault(words[0], words[1:])
    return found


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "tradedb" for p, _ in COMMANDS]
)
def test_value_options_show_a_placeholder_and_flags_none(
    path: list[str], command: _click.Command
) -> None:
    text = help_of(path)
    assert not TYPE_LABEL.search(text), text
    shown = rows(text)
    assert shown["--help"][:1] == ["Show"]
    for param in command.params:
        if isinstance(param, TyperOption):
            names = {*param.opts, *param.secondary_opts}
            after = [word for word in shown[param.opts[0]] if word not in names]
            if param.is_flag:
                # Right after the flag's names comes its help text.
                assert after[0] == one_line(param.help).split()[0], (param.opts, after)
            else:
                assert PLACEHOLDER.fullmatch(after[0]), (param.opts, after)
        elif isinstance(param, TyperArgument):
            (after,) = [words for name, words in shown.items() if name.rstrip(".") == param.name]
            assert PLACEHOLDER.fullmatch(after[0]), (param.name, after)


def test_an_argument_is_named_in_capitals_in_the_usage_line() -> None:
    assert "Usage: tradedb import [OPTIONS] PATH" in help_of(["import"])
    assert "Usage: tradedb backup upload [OPTIONS] [BACKUP_IDS]..." in help_of(["backup", "upload"])


def test_the_top_level_commands_are_in_panels_in_order() -> None:
    shown = help_of([])
    titles = re.findall(r"╭─ (.+?) ─", shown)
    assert titles == ["Options", *(title for title, _ in PANELS)]
    listed = re.findall(r"^│ ([a-z][a-z-]*) ", shown, flags=re.MULTILINE)
    in_panels = [name for _, names in PANELS for name in names]
    assert listed == in_panels
    assert sorted(in_panels) == sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
