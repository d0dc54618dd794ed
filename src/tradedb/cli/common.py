"""What every `tradedb` command shares: options, consoles, JSON output and user errors."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC
from decimal import Decimal
from functools import wraps
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

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


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn a user's mistake into one line on stderr and exit status 2, no traceback."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except TradeDBError as exc:
            err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False, soft_wrap=True)
        except sqlite3.DatabaseError as exc:
            err.print(f"[red]error:[/red] database: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(USER_ERROR)

    return run


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
