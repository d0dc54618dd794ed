"""Replication commands: `tradedb replicate` runs Litestream in the foreground, supervised,
`tradedb replicate restore` brings a replica back into a new file, and `tradedb replicate
list` shows the replica's generations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tradedb.api.replication import Replication
from tradedb.cli.common import DbOption, JsonOption, err, moment, out, print_json
from tradedb.cli.common import user_errors as _user_errors
from tradedb.cli.helpstyle import App
from tradedb.cli.options import TIME_FORMS
from tradedb.models.values import parse_time_bound
from tradedb.services.ops.replication import Replicator, rfc3339

replicate_app = App(
    help="Real-time replication with Litestream, and point-in-time restore.",
    invoke_without_command=True,
)

ReplicaOption = Annotated[
    str | None,
    typer.Option(
        "--replica",
        metavar="DIR|URL",
        help="The replica: a folder or s3://bucket/path[?endpoint=URL&region=R] (else "
        "`replica` in the config's [replication] table, else <backup folder>/replica/).",
        show_default=False,
    ),
]


@replicate_app.callback()
@_user_errors
def replicate(
    ctx: typer.Context,
    replica: ReplicaOption = None,
    sync_interval: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION", help="How often Litestream ships new WAL frames (default 1s)."
        ),
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the Litestream config and exit.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Replicate the database continuously until Ctrl-C (Litestream, in the foreground)."""
    if ctx.invoked_subcommand is not None:
        return
    replicated = Replication(db, replica=replica, sync_interval=sync_interval)
    settings = replicated.settings
    if print_config:
        # soft_wrap: a long path must not be broken across lines inside a JSON string.
        out.print(
            replicated.litestream_config(),
            highlight=False,
            markup=False,
            soft_wrap=True,
            end="",
        )
        err.print(
            f"each run replicates into {settings.replica.describe()}/<generation>, a new "
            "one named by its start time (UTC)",
            highlight=False,
        )
        return

    def started(replicator: Replicator) -> None:
        err.print(
            f"replicating {settings.database} to {settings.replica.describe()} every "
            f"{settings.sync_interval} (litestream pid {replicator.pid}); Ctrl-C stops",
            highlight=False,
        )

    def announce(line: str) -> None:
        err.print(line, highlight=False, markup=False)

    replicated.run(started=started, announce=announce)
    err.print("replication stopped; the replica is up to date", highlight=False)


@replicate_app.command("restore")
@_user_errors
def restore(
    to: Annotated[
        Path,
        typer.Option(
            "--to", metavar="PATH", help="The new database file to write (must not exist)."
        ),
    ],
    at: Annotated[
        str | None,
        typer.Option(
            "--at", metavar="TIME", help=f"Restore the state as of this time: {TIME_FORMS}."
        ),
    ] = None,
    replica: ReplicaOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore the newest generation that passes integrity_check (for --at: the newest
    started at or before it) into a new file."""
    replicated = Replication(db, replica=replica)
    at_ms = parse_time_bound(at, "at") if at is not None else None
    result = replicated.restore(to, timestamp_ms=at_ms)
    if as_json:
        print_json(
            {
                "path": str(result.path),
                "replica": result.replica,
                "generation": result.generation,
                "generation_started_ms": result.started_ms,
                "generation_ended_ms": result.ended_ms,
                "timestamp_ms": result.timestamp_ms,
                "integrity": result.integrity,
                "skipped": result.skipped,
            }
        )
        return
    for problem in result.skipped:
        err.print(f"passed over {problem}", highlight=False, markup=False)
    when = f" as of {rfc3339(at_ms)}" if at_ms is not None else ""
    span = ""
    if result.generation is not None:
        until = moment(result.ended_ms) if result.ended_ms is not None else "now"
        span = f", generation {result.generation} ({moment(result.started_ms)} to {until} UTC)"
    out.print(
        f"restored {result.replica}{when}{span} into {result.path} (integrity ok)",
        highlight=False,
        markup=False,
    )


@replicate_app.command("list")
@_user_errors
def list_generations(
    replica: ReplicaOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the replica's generations, oldest first (one per start of `replicate` and
    per tradedb writer that died inside a transaction)."""
    replicated = Replication(db, replica=replica)
    found = replicated.generations()
    if as_json:
        print_json(
            [
                {
                    "generation": generation.name,
                    "started_ms": generation.started_ms,
                    "size_bytes": generation.size_bytes,
                }
                for generation in found
            ]
        )
        return
    table = Table(
        "generation", "started (UTC)", "size", title=replicated.settings.replica.describe()
    )
    for generation in found:
        size = "" if generation.size_bytes is None else f"{generation.size_bytes:,} B"
        table.add_row(generation.name, moment(generation.started_ms), size)
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add `tradedb replicate` and its restore and list commands to the `tradedb` app."""
    app.add_typer(replicate_app, name="replicate")
