"""`tradedb report`: per-strategy comparison tables, and the HTML report."""

from __future__ import annotations

import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from tradedb.api import Analytics, admin
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
from tradedb.services.location import report_beside
from tradedb.services.reports import ReportFilters
from tradedb.services.reports.comparison import StrategyRow
from tradedb.services.reports.table import (
    FIGURE_HEADERS,
    HEADERS,
    NUMERIC,
    cells,
    figure_cells,
    notes,
    report_json,
)

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
OpenOption = Annotated[
    bool,
    typer.Option(
        "--open",
        help="Write the HTML report and open it in the web browser: to --html FILE, else "
        "beside the database as <name>-report.html (a PostgreSQL database's in the "
        "current folder, as tradedb-report.html).",
    ),
]


def report(
    db: DbOption = None,
    strategy: StrategiesOption = None,
    exchange: ExchangeOption = None,
    since: DaysSinceOption = None,
    until: DaysUntilOption = None,
    html: HtmlOption = None,
    open_browser: OpenOption = False,
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
    if html is None and open_browser:
        html = _default_html(db)
    if html is not None:
        with err.status("writing the HTML report"):
            size = Analytics.write_report_html(result, html)
        err.print(f"wrote {html} ({size / 1_000_000:.1f} MB)", highlight=False, soft_wrap=True)
    if html is not None and open_browser and not webbrowser.open(html.resolve().as_uri()):
        err.print(f"no web browser found; open {html} in one", highlight=False, soft_wrap=True)
    if as_json:
        print_json(report_json(result))
        return
    print_comparison(result.rows, f"strategies compared: {filters.describe()}")


def _default_html(db: str | None) -> Path:
    """Where --open writes without --html: beside a database file, named as `tradedb
    demo` names its report; for a server database, in the current folder."""
    target = admin.locate(db).target
    if isinstance(target, Path):
        return report_beside(target)
    return Path("tradedb-report.html")


def comparison_table(rows: Sequence[StrategyRow], title: str) -> Table:
    """The strategies side by side, as `tradedb report` and `tradedb demo` print them."""
    return _table(title, HEADERS, [cells(row) for row in rows])


def print_comparison(rows: Sequence[StrategyRow], title: str) -> None:
    """The comparison table, the figures table, and why any figure is "—"."""
    out.print(comparison_table(rows, title))
    out.print(_table("risk and round trips", FIGURE_HEADERS, [figure_cells(row) for row in rows]))
    for line in notes(rows):
        out.print(line, highlight=False, markup=False, soft_wrap=True)


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title)
    for header in headers:
        table.add_column(header, justify="right" if header in NUMERIC else "left")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def register(app: typer.Typer) -> None:
    """Add `tradedb report` to the app."""
    app.command("report")(user_errors(report))
