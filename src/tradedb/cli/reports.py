"""`tradedb report`: per-strategy comparison tables, and the HTML report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tradedb.api import Analytics
from tradedb.cli.common import (
    DbOption,
    JsonOption,
    err,
    open_database,
    out,
    print_json,
    user_errors,
)
from tradedb.cli.options import SEVERAL, DaysSinceOption, DaysUntilOption, listed
from tradedb.models.values import day_range
from tradedb.services.reports import ReportFilters
from tradedb.services.reports.comparison import StrategyRow
from tradedb.services.reports.table import HEADERS, NUMERIC, cells, report_json

StrategiesOption = Annotated[
    list[str] | None,
    typer.Option("--strategy", help=f"Only these strategies ({SEVERAL})."),
]
ExchangeOption = Annotated[str | None, typer.Option(help="Only this exchange, e.g. kraken.")]
HtmlOption = Annotated[
    Path | None,
    typer.Option(
        "--html",
        metavar="FILE",
        help="Also write a self-contained HTML report with charts to this file.",
        dir_okay=False,
    ),
]


def report(
    db: DbOption = None,
    strategy: StrategiesOption = None,
    exchange: ExchangeOption = None,
    since: DaysSinceOption = None,
    until: DaysUntilOption = None,
    html: HtmlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare strategies: equity, return, P&L, trades, win rate, Sharpe, drawdown, fees."""
    first, last = day_range(since, until)
    filters = ReportFilters.parse(
        strategies=listed(strategy), exchange=exchange, first_date=first, last_date=last
    )
    with open_database(db, readonly=True) as database:
        result = database.analytics.report(
            strategies=filters.strategies,
            exchange=filters.exchange,
            first_date=filters.first_date,
            last_date=filters.last_date,
        )
    if html is not None:
        with err.status("writing the HTML report"):
            size = Analytics.write_report_html(result, html)
        err.print(f"wrote {html} ({size / 1_000_000:.1f} MB)", highlight=False)
    if as_json:
        print_json(report_json(result))
        return
    out.print(comparison_table(result.rows, f"strategies compared: {filters.describe()}"))


def comparison_table(rows: Sequence[StrategyRow], title: str) -> Table:
    """The strategies side by side, as `tradedb report` and `tradedb demo` print them."""
    table = Table(title=title)
    for header in HEADERS:
        table.add_column(header, justify="right" if header in NUMERIC else "left")
    for row in rows:
        table.add_row(*cells(row))
    return table


def register(app: typer.Typer) -> None:
    """Add `tradedb report` to the app."""
    app.command("report")(user_errors(report))
