"""The vocabulary the commands share, so that one concept has one flag everywhere:
`--since`/`--until` bound every time range, `--at` names a moment, an option that takes
several values is repeated or given them comma-separated (`--symbol A --symbol B` is
`--symbol A,B`), and a command that shows records prints them as `--format` says
(`--json` and `--csv` are short for `--format json` and `--format csv`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated

import typer

from tradedb.errors import ValidationError

TIME_FORMS = "YYYY-MM-DD (its midnight, UTC), ISO 8601 with an offset, or epoch ms"
SEVERAL = "repeat the option, or separate them with commas"

SinceOption = Annotated[
    str | None,
    typer.Option("--since", metavar="TIME", help=f"From this time on: {TIME_FORMS}."),
]
UntilOption = Annotated[
    str | None,
    typer.Option("--until", metavar="TIME", help="Before this time (same forms as --since)."),
]
# For what is kept per UTC day: the days whose midnight falls in the range.
DaysSinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="TIME",
        help=f"The days from this time on (each day whose midnight is at or after it): "
        f"{TIME_FORMS}.",
    ),
]
DaysUntilOption = Annotated[
    str | None,
    typer.Option(
        "--until",
        metavar="TIME",
        help="The days before this time (same forms as --since): 2024-01-01 to 2024-02-01 "
        "is January.",
    ),
]


def listed(values: Iterable[str] | None) -> list[str]:
    """A repeatable option's values, each of which may hold several, comma-separated."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


# How a command that shows records prints them: a table for people, JSON for programs,
# CSV, or ccxt's unified structures as JSON (docs/ccxt.md).
FORMATS = ("table", "json", "ccxt")
CSV_FORMATS = ("table", "json", "csv", "ccxt")
# Records ccxt has no structure for (positions: ccxt's are derivatives').
PLAIN_FORMATS = ("table", "json")
_CCXT = "ccxt: ccxt's unified structures, as JSON"
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help=f"How to print them: table, json or ccxt ({_CCXT}). --json is --format json.",
    ),
]
CsvFormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help=f"How to print them: table, json, csv or ccxt ({_CCXT}). --json and --csv are "
        "--format json and --format csv.",
    ),
]
PlainFormatOption = Annotated[
    str | None,
    typer.Option("--format", metavar="FORMAT", help="How to print them: table or json (--json)."),
]
NUMBERS = ("string", "float")
NumbersOption = Annotated[
    str,
    typer.Option(
        "--numbers",
        metavar="KIND",
        help="With --format ccxt, amounts as exact strings (string) or as JSON numbers "
        "(float, as ccxt gives them by default).",
    ),
]


def output_format(
    format: str | None,
    *,
    as_json: bool = False,
    as_csv: bool = False,
    numbers: str = "string",
    choices: Sequence[str] = FORMATS,
) -> str:
    """The format a command prints in: `--format`, or the one `--json` or `--csv` is short
    for, else a table. Checked before the command reads anything."""
    asked = [name for name, given in (("json", as_json), ("csv", as_csv)) if given]
    if len(asked) > 1:
        raise ValidationError("--csv", True, "--json and --csv ask for two formats; give one")
    if format is None:
        chosen = asked[0] if asked else "table"
    elif format not in choices:
        raise ValidationError("--format", format, f"must be one of {', '.join(choices)}")
    elif asked and asked[0] != format:
        raise ValidationError("--format", format, f"--{asked[0]} asks for {asked[0]}; give one")
    else:
        chosen = format
    if numbers not in NUMBERS:
        raise ValidationError("--numbers", numbers, f"must be one of {', '.join(NUMBERS)}")
    if numbers != "string" and chosen != "ccxt":
        raise ValidationError("--numbers", numbers, "applies to --format ccxt only")
    return chosen
