"""Replication commands: `tradedb replicate` runs Litestream in the foreground, and
`tradedb replicate restore` brings a replica back into a new file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tradedb.cli.common import SINCE_FORMS, DbOption, JsonOption, err, out, print_json
from tradedb.cli.common import user_errors as _user_errors
from tradedb.models.values import parse_time_bound
from tradedb.services.location import resolve_database
from tradedb.services.ops import replication

replicate_app = typer.Typer(
    help="Real-time replication with Litestream, and point-in-time restore.",
    invoke_without_command=True,
)

ReplicaOption = Annotated[
    str | None,
    typer.Option(
        "--to",
        help="Replica: a folder or s3://bucket/path[?endpoint=URL&region=R] "
        "(else `to` in the config's replication table, else <backup folder>/replica/).",
        show_default=False,
    ),
]


@replicate_app.callback()
@_user_errors
def replicate(
    ctx: typer.Context,
    to: ReplicaOption = None,
    sync_interval: Annotated[
        str | None,
        typer.Option(help="How often Litestream ships new WAL frames (default 1s)."),
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the Litestream config and exit.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Replicate the database continuously until Ctrl-C (Litestream, in the foreground)."""
    if ctx.invoked_subcommand is not None:
        return
    location = resolve_database(db)
    settings = replication.replication_settings(location.path, to=to, sync_interval=sync_interval)
    if print_config:
        out.print(settings.litestream_config(), highlight=False, markup=False, end="")
        return

    def started(replicator: replication.Replicator) -> None:
        err.print(
            f"replicating {settings.database} to {settings.replica.describe()} every "
            f"{settings.sync_interval} (litestream pid {replicator.pid}); Ctrl-C stops",
            highlight=False,
        )

    replication.replicate(settings, started=started)
    err.print("replication stopped; the replica is up to date", highlight=False)


@replicate_app.command("restore")
@_user_errors
def restore(
    to: Annotated[
        Path, typer.Option("--to", help="The new database file to write (must not exist).")
    ],
    timestamp: Annotated[
        str | None,
        typer.Option(help=f"Restore the state as of this time: {SINCE_FORMS}"),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--from", help="Replica to restore from (default: the one `replicate` uses)."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore the replica into a new file, then check it with integrity_check."""
    location = resolve_database(db)
    settings = replication.replication_settings(location.path, to=source)
    at = parse_time_bound(timestamp, "timestamp") if timestamp is not None else None
    result = replication.restore(settings, to, timestamp_ms=at)
    if as_json:
        print_json(
            {
                "path": str(result.path),
                "replica": result.replica,
                "timestamp_ms": result.timestamp_ms,
                "integrity": result.integrity,
            }
        )
        return
    when = f" as of {replication.rfc3339(at)}" if at is not None else ""
    out.print(f"restored {result.replica}{when} into {result.path} (integrity ok)", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `tradedb replicate` and `tradedb replicate restore` to the `tradedb` app."""
    app.add_typer(replicate_app, name="replicate")
