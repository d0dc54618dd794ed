"""How `tradedb --help` looks: typer's rich help, with every text shown as written and
typer's usual placeholders (TEXT, INTEGER, PATH after a value option; nothing after a
flag), and the top-level commands grouped in panels.

typer 0.29 reads every help text as Rich markup, so `[maintain] cloud_to` loses its
`[maintain]` and a `[/` ends the program; and it writes `<str>` or `<bool>` after every
option. The classes here keep typer's rendering and fix what it is fed: help texts are
escaped just for the rendering (the commands keep their own text), and each parameter
gets a placeholder. `App` is `typer.Typer` with these classes as its defaults, so each
command module builds its app and commands as usual.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from rich.markup import escape
from typer import _click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

# The placeholder of a value option or argument whose command gives none of its own.
PLACEHOLDERS = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "FLOAT",
    "bool": "BOOLEAN",
    "Path": "PATH",
}

# A panel's title and the top-level commands in it, in the order `tradedb --help` shows.
Panels = Sequence[tuple[str, Sequence[str]]]


def paragraphs(text: str | None) -> list[str]:
    """A help text as its paragraphs, each on one line: docstrings break lines where the
    source is wrapped, not where the reader's terminal is."""
    if not text:
        return []
    blocks = re.split(r"\n\s*\n", text.strip())
    return [" ".join(block.split()) for block in blocks if block.strip()]


def placeholder(param: _click.Parameter) -> str:
    """What a value option or an argument shows after its name: its own metavar, else
    typer's usual name of its type."""
    if param.metavar is not None:
        return param.metavar
    descriptor = getattr(param, "type_descriptor", None)
    choices = getattr(descriptor, "choices", None)
    if choices:
        return "[" + "|".join(str(choice) for choice in choices) + "]"
    bare = param.bare_type() if isinstance(param, TyperArgument | TyperOption) else "str"
    element = re.fullmatch(r"list\[(.+)\]", bare)
    name = element.group(1) if element else bare
    return PLACEHOLDERS.get(name, name.upper())


class _Argument(TyperArgument):
    """An argument shown as typer usually shows one: `path  PATH` in its panel and
    `PATH` (`[BACKUP_ID]` when optional) in the usage line."""

    def display_type_rich(self, ctx: _click.Context) -> str | None:
        return placeholder(self)

    def _rich_display_name(self) -> str:
        name = self.name or ""
        return name + ("..." if self.nargs != 1 else "")

    def _usage_display_name(self) -> str:
        name = self.metavar or (self.name or "").upper()
        shown = name if self.required else f"[{name}]"
        return shown + ("..." if self.nargs != 1 else "")


def _styled(params: Sequence[_click.Parameter]) -> None:
    """Give each parameter its placeholder (a flag none). Idempotent: a command's
    parameters are styled when it is built, the help option when it is first made."""
    for param in params:
        if isinstance(param, TyperOption):
            if param.is_flag or param.count:
                param.metavar = ""
            elif param.metavar is None:
                param.metavar = placeholder(param)
        elif type(param) is TyperArgument:
            # typer builds its parameters itself, with no say over their class; the
            # subclass only changes how the argument is displayed.
            param.__class__ = _Argument


@contextmanager
def _literal(objects: Sequence[Any]) -> Iterator[None]:
    """For the rendering only: each object's help and short help escaped, so that Rich
    shows them as written, with one line per paragraph."""
    saved = [(obj, obj.help, getattr(obj, "short_help", None)) for obj in objects]
    try:
        for obj, help_text, short_help in saved:
            if help_text:
                obj.help = "\n\n".join(escape(p) for p in paragraphs(help_text))
            if short_help:
                obj.short_help = escape(" ".join(short_help.split()))
        yield
    finally:
        for obj, help_text, short_help in saved:
            obj.help = help_text
            if hasattr(obj, "short_help"):
                obj.short_help = short_help


class _StyledHelpOption(_click.Command):
    """--help styled as the other options (typer makes it apart from them)."""

    def get_help_option(self, ctx: _click.Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None:
            _styled([option])
        return option


class Command(_StyledHelpOption, TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _styled(self.params)

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        with _literal([self, *self.get_params(ctx)]):
            super().format_help(ctx, formatter)


class Group(_StyledHelpOption, TyperGroup):
    """A group of commands; `panels` (empty: typer's one "Commands" panel) puts its
    commands in panels, in that order."""

    panels: Panels = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _styled(self.params)
        placed = {name: title for title, names in self.panels for name in names}
        for name, command in self.commands.items():
            if name in placed and isinstance(command, TyperCommand | TyperGroup):
                command.rich_help_panel = placed[name]

    def list_commands(self, ctx: _click.Context) -> list[str]:
        order = [name for _, names in self.panels for name in names]
        known = [name for name in order if name in self.commands]
        return known + [name for name in self.commands if name not in known]

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        subcommands = [self.commands[name] for name in self.list_commands(ctx)]
        with _literal([self, *self.get_params(ctx), *subcommands]):
            super().format_help(ctx, formatter)


def grouped(panels: Panels) -> type[Group]:
    """A group class that shows its commands in these panels."""
    return type("PanelledGroup", (Group,), {"panels": tuple(panels)})


class App(typer.Typer):
    """`typer.Typer` whose groups and commands render their help as written."""

    def __init__(self, *, cls: type[TyperGroup] = Group, **kwargs: Any) -> None:
        # "rich": the mode that draws panels; the texts reach it escaped (see _literal).
        super().__init__(cls=cls, rich_markup_mode="rich", **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        if kwargs.get("cls") is None:
            kwargs["cls"] = Command
        return super().command(*args, **kwargs)
