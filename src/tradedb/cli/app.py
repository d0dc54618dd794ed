"""The `tradedb` command: a thin front end over `tradedb.open(...)` and tradedb.api (no
SQL, no business rules)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from tradedb import __version__
from tradedb.api import admin
from tradedb.cli import analytics, backup, demo, ledger, market, paper, replicate, reports
from tradedb.cli import browse as browse_cli
from tradedb.cli import config as config_cli
from tradedb.cli import logs as logs_cli
from tradedb.cli import maintain as maintain_cli
from tradedb.cli import mcp as mcp_cli
from tradedb.cli import migrate as migrate_cli
from tradedb.cli import order as order_cli
from tradedb.cli import references as references_cli
from tradedb.cli import retention as retention_cli
from tradedb.cli import sync as sync_cli
from tradedb.cli.common import (
    USER_ERROR,
    DbOption,
    JsonOption,
    err,
    open_database,
    out,
    print_json,
    show_warnings_as_lines,
    user_errors,
)
from tradedb.cli.helpstyle import App, grouped

# `tradedb --help` lists the commands in these panels, in this order: first what sets a
# database up, then the daily work, then keeping it safe.
PANELS = (
    ("Setup", ("init", "info", "db", "config", "demo")),
    (
        "Ledger",
        (
            "deposit",
            "withdraw",
            "sync",
            "order",
            "orders",
            "trades",
            "positions",
            "balances",
            "audit",
        ),
    ),
    (
        "Market data",
        (
            "download",
            "tickers",
            "import",
            "candles",
            "ticker-history",
            "list-data",
            "gaps",
            "resample",
        ),
    ),
    (
        "Analysis",
        ("value", "reference-price", "snapshot", "metrics", "paper", "report", "browse"),
    ),
    (
        "Operations",
        ("logs", "backup", "restore", "retention", "replicate", "maintain", "migrate-db"),
    ),
    ("Agents", ("mcp",)),
)

app = App(
    name="tradedb",
    cls=grouped(PANELS),
    help="Exact, durable storage and bookkeeping for crypto trading bots.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = App(help="Schema version and maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
analytics.register(app)
browse_cli.register(app)
backup.register(app)
demo.register(app)
ledger.register(app)
market.register(app)
paper.register(app)
reports.register(app)
config_cli.register(app)
logs_cli.register(app)
retention_cli.register(app)
replicate.register(app)
maintain_cli.register(app)
mcp_cli.register(app)
migrate_cli.register(app)
sync_cli.register(app)
order_cli.register(app)
references_cli.register(app)


def _version(value: bool) -> None:
    if value:
        out.print(f"tradedb {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Exact, durable storage and bookkeeping for crypto trading bots."""


@app.command()
@user_errors
def init(
    db: DbOption = None,
    as_json: JsonOption = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Create it even on a network share, where SQLite's locks are unreliable "
            "(keep every writer on one computer).",
        ),
    ] = False,
) -> None:
    """Create the database, or upgrade it to the newest schema."""
    location = admin.locate(db)
    result = admin.init(location, allow_network_share=force)
    if as_json:
        print_json(
            {
                "path": str(result.path),
                "action": result.action,
                "schema_before": result.before,
                "schema": result.after,
            }
        )
        return
    out.print(
        f"{result.path}: {result.action} (schema {result.after}, from {location.source})",
        highlight=False,
    )


@db_app.command("status")
@user_errors
def db_status(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show the database's schema version and the newest this tradedb knows."""
    location = admin.locate(db)
    status = admin.schema_status(location)
    if as_json:
        print_json(
            {
                "path": str(location),
                "current": status.current,
                "latest": status.head,
                "up_to_date": status.up_to_date,
            }
        )
        return
    table = Table(title=str(location), show_header=False)
    table.add_row("current", status.current or "(none)")
    table.add_row("latest", status.head)
    table.add_row("up to date", "yes" if status.up_to_date else "no: run `tradedb init`")
    out.print(table)


@app.command()
@user_errors
def info(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Show the database's path, size, schema version and row counts per table."""
    with open_database(db, readonly=True) as database:
        path, size_bytes = database.location, database.size_bytes()
        schema, row_counts = database.schema(), database.tables.counts()
    if as_json:
        print_json(
            {
                "path": path,
                "size_bytes": size_bytes,
                "schema": schema.current,
                "latest_schema": schema.head,
                "row_counts": row_counts,
            }
        )
        return
    out.print(Text(path, style="bold"), highlight=False)
    out.print(
        f"size {size_bytes:,} bytes · schema {schema.current} (latest {schema.head})",
        highlight=False,
    )
    table = Table("table", "rows")
    for name, count in row_counts.items():
        table.add_row(name, f"{count:,}")
    out.print(table)


def main() -> None:
    """The console entry point: usage mistakes typer catches (a bad option value, a missing
    option) are one line on stderr and status 2, like every other user error."""
    show_warnings_as_lines()
    try:
        result = app(standalone_mode=False)
    except typer.Abort:
        err.print("aborted", highlight=False)
        sys.exit(1)
    except typer.TyperException as exc:
        format_message = getattr(exc, "format_message", None)
        message = format_message() if format_message is not None else str(exc)
        if message:  # empty when typer has already shown the help instead
            err.print(
                Text.assemble(("error:", "red"), f" {message}"), highlight=False, soft_wrap=True
            )
        sys.exit(getattr(exc, "exit_code", USER_ERROR))
    # typer returns a command's exit status instead of exiting when not standalone.
    sys.exit(result if isinstance(result, int) else 0)
