"""`tradedb retention run`: archive old candles and tickers, delete what the policy lets
go."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tradedb.api import Operations
from tradedb.cli.common import (
    DbOption,
    JsonOption,
    err,
    open_database,
    out,
    print_json,
    user_errors,
)
from tradedb.cli.helpstyle import App
from tradedb.services.ops import retention
from tradedb.services.ops.retention import CandleSpan, TickerSpan

retention_app = App(
    help="Retention: archive old candles and tickers, prune logs.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")


@retention_app.command("run")
@user_errors
def run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only report what would move or go.")
    ] = False,
    vacuum: Annotated[
        str | None,
        typer.Option(help="Reclaim space: auto, full (VACUUM), incremental or none."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move candles and tickers past their horizon to Parquet archives; delete old DEBUG
    logs and balance history ([retention] in the config file). Trading records are
    permanent."""
    policy = Operations.retention_policy()
    if vacuum is not None:
        policy = retention.Policy(policy.keep_days, vacuum)  # type: ignore[arg-type]
    with open_database(db, readonly=dry_run) as database:
        if dry_run:
            report = database.ops.retention_plan(policy)
        else:
            report = _run_with_progress(database.ops, policy, show=not as_json)
    if as_json:
        data = asdict(report)
        data["candles_moved"] = report.candles_moved
        data["tickers_moved"] = report.tickers_moved
        print_json(data)
        return
    _print(report)


def _run_with_progress(
    ops: Operations, policy: retention.Policy, *, show: bool
) -> retention.RetentionReport:
    progress = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not show or not err.is_terminal,
    )
    task = progress.add_task("retention", total=None)
    plan = ops.retention_plan(policy)
    progress.update(task, total=len(plan.partitions) + len(plan.ticker_partitions) + 2)

    def advance(step: str, span: CandleSpan | TickerSpan | None) -> None:
        if step == "deleted" and span is not None:
            progress.update(task, advance=1, description=f"{span.exchange} {span.symbol}")
        elif step.startswith("deleted "):
            progress.update(task, advance=1, description=step)

    with progress:
        return ops.run_retention(policy, on_event=advance)


def _print(report: retention.RetentionReport) -> None:
    verb = "would move" if report.dry_run else "moved"
    table = Table(title=f"candles to archives ({report.archive_dir})")
    for column in ("exchange", "symbol", "timeframe", "year", "rows", "status"):
        table.add_column(column, justify="right" if column in ("year", "rows") else "left")
    for move in report.partitions:
        table.add_row(
            move.exchange,
            move.symbol,
            move.timeframe,
            str(move.year),
            f"{move.rows:,}",
            move.status,
        )
    out.print(table)
    if report.ticker_partitions:
        tickers = Table(title=f"tickers to archives ({report.archive_dir})")
        for column in ("exchange", "symbol", "year", "rows", "status"):
            tickers.add_column(column, justify="right" if column in ("year", "rows") else "left")
        for move in report.ticker_partitions:
            tickers.add_row(
                move.exchange, move.symbol, str(move.year), f"{move.rows:,}", move.status
            )
        out.print(tickers)
    deleted = Table(title="rows deleted" if not report.dry_run else "rows that would go")
    deleted.add_column("table")
    deleted.add_column("group")
    deleted.add_column("rows", justify="right")
    for item in report.deletions:
        deleted.add_row(item.table, item.group, f"{item.rows:,}")
    out.print(deleted)
    out.print(
        f"{verb} {report.candles_moved:,} candles and {report.tickers_moved:,} tickers; "
        "database space freed about "
        f"{report.database_bytes_freed_estimate:,} bytes, archives about "
        f"{report.archive_bytes_estimate:,} bytes",
        highlight=False,
    )
    for line in report.recovered:
        out.print(f"recovered from an interrupted run: {line}", highlight=False)
    if not report.dry_run:
        out.print(
            f"space: {report.size_before:,} -> {report.size_after:,} bytes "
            f"(vacuum {report.vacuum}, {report.vacuum_seconds} s)",
            highlight=False,
        )
