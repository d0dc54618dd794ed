"""docs/cli.md, generated from the commands themselves: `python -m tradedb.cli.docs
docs/cli.md` writes it (without a path it goes to stdout).

Plain text at a fixed width, whatever the terminal, so the file changes only when a
command, an option or a help text does; tests/test_cli_docs.py fails when it is stale.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import typer.main
from typer import _click
from typer.core import TyperGroup

from tradedb.cli.app import PANELS, app
from tradedb.cli.helpstyle import paragraphs

WIDTH = 88
# Option names wider than this put their help on the next line.
NAME_COLUMN = 30
INDENT = "  "

HEADER = """\
# Command-line reference

Every `tradedb` command with its options, as `--help` shows them. Generated from the
commands by `python -m tradedb.cli.docs docs/cli.md`: edit the help texts in
src/tradedb/cli/, not this file (tests/test_cli_docs.py fails when it is out of date).
"""


def reference() -> str:
    """docs/cli.md's text."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    context = _click.Context(root, info_name="tradedb")
    sections = [HEADER, _section("tradedb", _help_block(root, context))]
    for title, names in PANELS:
        sections.append(f"## {title}\n")
        for name in names:
            command = root.commands[name]
            for path, block in _blocks(command, _sub_context(command, name, context)):
                sections.append(_section(path, block))
    return "\n".join(sections)


def _blocks(command: _click.Command, context: _click.Context) -> Iterator[tuple[str, str]]:
    yield context.command_path, _help_block(command, context)
    if isinstance(command, TyperGroup):
        for name in command.list_commands(context):
            sub = command.commands[name]
            if not sub.hidden:
                yield from _blocks(sub, _sub_context(sub, name, context))


def _sub_context(command: _click.Command, name: str, parent: _click.Context) -> _click.Context:
    return _click.Context(command, parent=parent, info_name=name)


def _section(path: str, block: str) -> str:
    level = "###" if " " in path else "##"
    return f"{level} {path}\n\n```text\n{block}```\n"


def _help_block(command: _click.Command, context: _click.Context) -> str:
    pieces = command.collect_usage_pieces(context)
    lines = [_wrap(f"Usage: {context.command_path} {' '.join(pieces)}", "       ")]
    for paragraph in paragraphs(command.help):
        lines += ["", _wrap(paragraph, "")]
    records: dict[str, list[tuple[str, str]]] = {"argument": [], "option": []}
    for param in command.get_params(context):
        record = param.get_help_record(context)
        if record is not None:
            records[param.param_type_name].append(record)
    for title, kind in (("Arguments", "argument"), ("Options", "option")):
        if records[kind]:
            lines += ["", f"{title}:", *_definitions(records[kind])]
    if isinstance(command, TyperGroup):
        lines += _commands(command, context)
    return "\n".join(lines) + "\n"


def _commands(group: TyperGroup, context: _click.Context) -> list[str]:
    panels: dict[str, list[tuple[str, str]]] = {}
    for name in group.list_commands(context):
        command = group.commands[name]
        if command.hidden:
            continue
        panel = getattr(command, "rich_help_panel", None) or "Commands"
        summary = (paragraphs(command.short_help or command.help) or [""])[0]
        panels.setdefault(panel, []).append((name, summary))
    lines = []
    for panel, rows in panels.items():
        lines += ["", f"{panel}:", *_definitions(rows)]
    return lines


def _definitions(rows: list[tuple[str, str]]) -> list[str]:
    """Name and help in two columns, the help wrapped beside its name."""
    column = min(max(len(name) for name, _ in rows), NAME_COLUMN) + 2
    lines = []
    for name, help_text in rows:
        text = " ".join(" ".join(paragraphs(help_text)).split())
        hanging = " " * (len(INDENT) + column)
        if len(name) + 2 > column:
            lines.append(INDENT + name)
            if text:
                lines.append(_wrap(text, hanging, first=hanging))
        else:
            first = INDENT + name.ljust(column)
            lines.append(_wrap(text, hanging, first=first) if text else first.rstrip())
    return lines


def _wrap(text: str, indent: str, *, first: str = "") -> str:
    return textwrap.fill(
        text,
        width=WIDTH,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def main(argv: list[str]) -> None:
    text = reference()
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8", newline="\n")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
