"""`tradedb demo`: the whole of tradedb on the real sample data it ships, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from tradedb.cli.common import JsonOption, err, out, print_json, user_errors
from tradedb.cli.paper import session_json
from tradedb.cli.reports import print_comparison
from tradedb.models.values import format_fixed
from tradedb.services.demo import DemoResult, StepReport, Unpriced, run_demo
from tradedb.services.reports.table import report_json

DemoDbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH",
        help="The demo's database: a new file, an empty one, or an earlier demo database "
        "(replaced). Default: a new demo-<UTC time>.sqlite in the default database's "
        "folder. $TRADEDB_DB and the config file are not used: they name your own data.",
        show_default=False,
    ),
]
DemoHtmlOption = Annotated[
    Path | None,
    typer.Option(
        "--html",
        metavar="FILE",
        help="Where to write the HTML report (default: <database stem>-report.html beside "
        "the database).",
        dir_okay=False,
        show_default=False,
    ),
]

HEADING = Text.assemble(
    ("tradedb demo", "bold"),
    ": the real Binance (2018) and Kraken (2023) market data shipped with tradedb, two "
    "strategies paper-traded side by side",
)


class _Display:
    """The demo's steps at a terminal: a live line for the running step, and a line with
    its timing for each finished one (printed even when the live display is off)."""

    def __init__(self, bar: Progress, console: Console, *, lines: bool) -> None:
        self.bar = bar
        self.console = console
        self.lines = lines
        self.task: TaskID | None = None
        self.heading_shown = False

    def started(self, step: str, title: str) -> None:
        self.task = self.bar.add_task(title, total=None)

    def advanced(self, step: str, done: int, total: int | None) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=done, total=total)

    def finished(self, report: StepReport) -> None:
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
        if self.lines and not self.heading_shown:
            # Only now: a refused --db is one line on stderr, with nothing before it.
            self.heading_shown = True
            self.console.print(HEADING, highlight=False)
        if self.lines:
            self.console.print(
                Text.assemble(
                    ("✓", "green"),
                    f" {report.title:<46} {report.seconds:6.2f} s  {report.summary}",
                ),
                highlight=False,
                soft_wrap=True,
            )


def demo(db: DemoDbOption = None, html: DemoHtmlOption = None, as_json: JsonOption = False) -> None:
    """Run tradedb end to end on the real market data it ships, offline, into a new
    database: import Binance candles and Kraken trades, paper-trade sma_cross against
    rsi_revert on both exchanges, write daily snapshots and metrics, compare the
    strategies and write the HTML report."""
    console = err if as_json else out
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        result = run_demo(db, html, progress=_Display(bar, console, lines=not as_json))
    if as_json:
        print_json(_as_json(result))
        return
    _show(result)


def _show(result: DemoResult) -> None:
    out.print()
    for note in result.notes:
        out.print(f"• {note}", highlight=False)
    print_comparison(
        result.comparison.rows,
        "strategies compared (USD; realized P&L and fees in the quote currency)",
    )
    out.print(f"database: {result.database}", highlight=False, soft_wrap=True)
    out.print(
        f"report:   {result.report} ({result.report_bytes / 1_000_000:.1f} MB, opens offline)",
        highlight=False,
        soft_wrap=True,
    )
    out.print(f"total:    {result.seconds:.1f} s", highlight=False)


def _unpriced(unpriced: Unpriced | None) -> dict[str, Any] | None:
    if unpriced is None:
        return None
    return {"what": list(unpriced.what), "days": list(unpriced.days), "reason": unpriced.reason}


def _as_json(result: DemoResult) -> dict[str, Any]:
    return {
        "database": str(result.database),
        "report": str(result.report),
        "report_bytes": result.report_bytes,
        "replaced_earlier_demo": result.replaced,
        "seconds": round(result.seconds, 3),
        "steps": [
            {
                "step": step.step,
                "title": step.title,
                "seconds": round(step.seconds, 3),
                "summary": step.summary,
            }
            for step in result.steps
        ],
        "markets": [
            {
                "exchange": m.exchange,
                "symbol": m.symbol,
                "timeframe": m.timeframe,
                "candles": m.candles,
                "first": m.first,
                "last": m.last,
                "rounded": m.rounded,
                "trades": m.trades,
                "files": list(m.files),
            }
            for m in result.markets
        ],
        "reference_prices": [
            {
                "asset": venue.reference.asset,
                "usd": format_fixed(venue.reference.usd),
                "first_day": period.start,
                "last_day": period.last_day.isoformat(),
                "source": venue.reference.source,
            }
            for venue, period in result.references
        ],
        "sessions": [session_json(session) for session in result.sessions],
        "snapshots": {
            "days": result.snapshot_days,
            "rows": result.snapshot_rows,
            "unpriced": _unpriced(result.snapshots_unpriced),
        },
        "metrics": {"rows": result.metrics_rows, "unpriced": _unpriced(result.metrics_unpriced)},
        "comparison": report_json(result.comparison)["rows"],
        "notes": list(result.notes),
    }


def register(app: typer.Typer) -> None:
    """Add `tradedb demo` to the app."""
    app.command()(user_errors(demo))
