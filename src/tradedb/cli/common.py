"""What every `tradedb` command shares: options, consoles, JSON output and user errors."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import UTC
from decimal import Decimal
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

import tradedb
from tradedb.api import driver_errors
from tradedb.errors import TradeDBError
from tradedb.models.values import format_plain, ms_to_datetime


def _width() -> int | None:
    """Rich's own width at a terminal; when piped, wide enough that tables are not
    squeezed into 80 columns (COLUMNS still wins)."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return None
    return PIPED_WIDTH


PIPED_WIDTH = 200
out = Console(width=_width())
err = Console(stderr=True)

USER_ERROR = 2

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database path or sqlite:/// URL (else $TRADEDB_DB, the config file, the default).",
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


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a user's mistake into one line on stderr and exit status 2, no traceback."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except TradeDBError as exc:
            # The message is literal text: a `[...]` in it must not be read as markup.
            err.print(
                f"[red]error:[/red] {escape(str(exc))}",
                markup=True,
                highlight=False,
                soft_wrap=True,
            )
        except DRIVER_ERRORS as exc:
            # A driver's message (SQLite's or PostgreSQL's) may run over several lines
            # (PostgreSQL adds the statement's LINE and a caret); its first says what.
            message = Text.assemble(("error:", "red"), f" database: {first_line(exc)}")
            err.print(message, highlight=False, soft_wrap=True)
        raise typer.Exit(USER_ERROR)

    return run


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


# --- shared by the commands ---------------------------------------------------------

SINCE_FORMS = "YYYY-MM-DD (UTC), ISO 8601 with an offset, or epoch ms."
SINCE_HELP = "From this time on: " + SINCE_FORMS
UntilOption = Annotated[str | None, typer.Option(help="Before this time (same forms as --since).")]


def amount(value: Decimal | None) -> str:
    """A table cell: the exact amount without trailing zeros, empty when there is none."""
    return "" if value is None else format_plain(value)


def moment(millis: int | None) -> str:
    if millis is None:
        return ""
    return ms_to_datetime(millis).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
