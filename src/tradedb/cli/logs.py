"""`tradedb logs`: what the bot logged into bot_logs, as a table, JSON, or followed live."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from tradedb.cli.common import (
    DbOption,
    JsonOption,
    moment,
    open_database,
    out,
    print_json,
    user_errors,
)
from tradedb.cli.options import UntilOption
from tradedb.models import Log
from tradedb.services.ops.logs import LEVELS, LogQuery

LEVEL_STYLES = {
    "DEBUG": "dim",
    "INFO": "",
    "WARNING": "yellow",
    "ERROR": "red",
    "CRITICAL": "bold red",
}


def logs(
    db: DbOption = None,
    level: Annotated[
        str | None,
        typer.Option(help=f"This level and above: {', '.join(LEVELS)}.", show_default=False),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="TIME",
            help="From this time on: a span back from now (30m, 2h, 7d), YYYY-MM-DD (UTC), "
            "ISO 8601 with an offset, or epoch ms.",
            show_default=False,
        ),
    ] = None,
    until: UntilOption = None,
    strategy: Annotated[
        str | None, typer.Option(help="Only this strategy's records.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option(help="Show the newest N records.")] = 100,
    follow_new: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep printing new records as they are written (Ctrl-C stops)."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show bot_logs records, oldest first; --json prints an array (one object a line with
    --follow)."""
    # Checked before the database is opened; a span back from now is fixed here, once.
    selection = LogQuery.parse(
        level=level, since=since, until=until, strategy=strategy, limit=limit
    ).selection
    since_ms, until_ms = selection.since_ms, selection.until_ms
    with open_database(db, readonly=True) as database:
        bot_logs = database.logs
        if follow_new:
            try:
                live = bot_logs.follow(
                    level=level, since=since_ms, until=until_ms, strategy=strategy, limit=limit
                )
                _print_live(live, as_json=as_json)
            except KeyboardInterrupt:
                return
            return
        rows = bot_logs.recent(
            level=level, since=since_ms, until=until_ms, strategy=strategy, limit=limit
        )
    if as_json:
        print_json([log_json(row) for row in rows])
        return
    out.print(_table(rows))


def log_json(row: Log) -> dict[str, Any]:
    return {
        "id": row.id,
        "timestamp": row.timestamp,
        "level": row.level,
        "message": row.message,
        "module": row.module,
        "strategy": row.strategy,
        "exchange": row.exchange,
        "symbol": row.symbol,
        "metadata": None if row.metadata is None else json.loads(row.metadata),
    }


def _table(rows: list[Log]) -> Table:
    table = Table("time (UTC)", "level", "module", "strategy", "exchange", "symbol", "message")
    for row in rows:
        message = row.message if row.metadata is None else f"{row.message}  {row.metadata}"
        table.add_row(
            moment(row.timestamp),
            row.level,
            row.module or "",
            row.strategy or "",
            row.exchange or "",
            row.symbol or "",
            Text(message),
            style=LEVEL_STYLES[row.level] or None,
        )
    return table


def _print_live(rows: Iterable[Log], *, as_json: bool) -> None:
    for row in rows:
        if as_json:
            sys.stdout.write(json.dumps(log_json(row)) + "\n")
        else:
            context = " ".join(part for part in (row.strategy, row.exchange, row.symbol) if part)
            line = f"{moment(row.timestamp)} {row.level:<8} {row.module or ''} "
            line += f"[{context}] " if context else ""
            line += row.message
            if row.metadata is not None:
                line += f"  {row.metadata}"
            out.print(line, style=LEVEL_STYLES[row.level] or None, highlight=False, markup=False)
        sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add `tradedb logs` to the app."""
    app.command("logs")(user_errors(logs))
