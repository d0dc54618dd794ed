"""What every `tradedb` command shares: options, consoles, JSON output and user errors."""

from __future__ import annotations

import inspect
import json
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar, get_args, get_type_hints

import typer
from rich.console import Console
from rich.text import Text

import tradedb
from tradedb.api import driver_errors
from tradedb.errors import TradeDBError, TradeDBWarning, respell_arguments
from tradedb.models.values import format_plain, ms_to_datetime


def _width() -> int | None:
    """Rich's own width at a terminal; when piped, wide enough that tables are not
    squeezed into 80 columns (COLUMNS still wins)."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return PIPED_WIDTH


PIPED_WIDTH = 200
# Markup off: what the commands print holds data (file names, symbols, messages), and a
# `[...]` in data is text. Style goes in as rich.text.Text.
out = Console(width=_width(), markup=False)
err = Console(stderr=True, markup=False)

USER_ERROR = 2

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH|URL",
        help="The database: a path, or a sqlite:/// or postgresql:// URL (else $TRADEDB_DB, "
        "the config file, the default).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for programs.")]

P = ParamSpec("P")
R = TypeVar("R")

DRIVER_ERRORS = driver_errors()


def open_database(db: str | None, *, readonly: bool = False) -> tradedb.TradeDB:
    """The database a command works on, as the public object: --db, else $TRADEDB_DB,
    else the config file, else the default file (whose folder is created to write)."""
    return tradedb.open(db, readonly=readonly)


def show_warnings_as_lines() -> None:
    """Show tradedb's own warnings as one plain line on stderr, as errors are shown
    (Python's own format adds the source file, its line and a second line of code); other
    warnings keep Python's format."""
    show_as_python_does = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, TradeDBWarning):
            err.print(
                Text.assemble(("warning:", "yellow"), f" {message}"),
                highlight=False,
                soft_wrap=True,
            )
        else:
            show_as_python_does(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a user's mistake into one line on stderr and exit status 2, no traceback."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except TradeDBError as exc:
            message = Text.assemble(("error:", "red"), f" {as_options(str(exc), command)}")
            err.print(message, highlight=False, soft_wrap=True)
        except DRIVER_ERRORS as exc:
            # A driver's message (SQLite's or PostgreSQL's) may run over several lines
            # (PostgreSQL adds the statement's LINE and a caret); its first says what.
            message = Text.assemble(("error:", "red"), f" database: {first_line(exc)}")
            err.print(message, highlight=False, soft_wrap=True)
        raise typer.Exit(USER_ERROR)

    return run


def as_options(message: str, command: Callable[..., Any]) -> str:
    """A library message as the command line says it: each argument of the library it
    names (`force=True`, `quote_usd=PRICE`) as the option of `command` (`--force`,
    `--quote-usd PRICE`); one the command does not have stays as it is."""
    options = _options_of(command)

    def spell(name: str, value: str) -> str | None:
        # The library's mappings (reference_prices) are the CLI's repeated options.
        candidates = (name, name.removesuffix("s"), *_CLI_NAMES.get(name, ()))
        option = next((options[known] for known in candidates if known in options), None)
        if option is None:
            return None
        if option.switch:
            return option.off if value == "False" else option.on
        if value.startswith("{") and value.endswith("}"):
            key, _, item = value[1:-1].partition(":")
            value = f"{key.strip().strip(QUOTES)}={item.strip()}"
        return f"{option.on} {value}" if value else option.on

    return respell_arguments(message, spell)


# Library arguments whose command-line options are named otherwise.
_CLI_NAMES = {"database": ("db",), "folder": ("backup_dir",)}
QUOTES = "'\""


@dataclass(frozen=True)
class _Option:
    on: str
    switch: bool = False
    # The switch's option that turns it off, where it has one.
    off: str | None = None


def _options_of(command: Callable[..., Any]) -> dict[str, _Option]:
    """A command's options by parameter name, as typer names them."""
    options: dict[str, _Option] = {}
    hints = get_type_hints(command, include_extras=True)
    for name, parameter in inspect.signature(command).parameters.items():
        hint = hints.get(name)
        declared = [*getattr(hint, "__metadata__", ()), parameter.default]
        if any(isinstance(item, typer.models.ArgumentInfo) for item in declared):
            continue
        info = next((item for item in declared if isinstance(item, typer.models.OptionInfo)), None)
        given = [
            part
            for declaration in ((info.param_decls or ()) if info else ())
            for part in declaration.split("/")
            if part.startswith("--")
        ]
        dashed = "--" + name.replace("_", "-")
        if bool not in (hint, *get_args(hint)[:1]):
            options[name] = _Option(given[0] if given else dashed)
        elif given:
            options[name] = _Option(given[0], True, given[1] if len(given) > 1 else None)
        else:
            options[name] = _Option(dashed, True, f"--no-{dashed[2:]}")
    return options


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


# --- shared by the commands ---------------------------------------------------------


def amount(value: Decimal | None) -> str:
    """An amount in a sentence: exact, without trailing zeros, empty when there is none.
    Tables line their amounts up instead (tradedb.cli.tables)."""
    return "" if value is None else format_plain(value)


def moment(millis: int | None) -> str:
    if millis is None:
        return ""
    return ms_to_datetime(millis).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
