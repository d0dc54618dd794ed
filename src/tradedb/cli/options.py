"""The vocabulary the commands share, so that one concept has one flag everywhere:
`--since`/`--until` bound every time range, `--at` names a moment, and an option that
takes several values is repeated or given them comma-separated (`--symbol A --symbol B`
is `--symbol A,B`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import typer

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
