"""`tradedb migrate-db --db SRC --to DST`: copy every table between two databases, of
either engine, then compare them and audit the copy."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from tradedb.api import admin
from tradedb.cli.common import JsonOption, err, out, print_json, user_errors
from tradedb.models.values import format_fixed
from tradedb.services.ops.migrate_db import DEFAULT_PAGE_ROWS, MigrationReport, TableComparison


def register(app: typer.Typer) -> None:
    app.command("migrate-db")(migrate_db)


@user_errors
def migrate_db(
    target: Annotated[
        str,
        typer.Option(
            "--to",
            metavar="PATH|URL",
            help="Where to copy it: a new or empty database of either engine (a PostgreSQL "
            "database must exist: createdb), or one an interrupted copy of --db left.",
            show_default=False,
        ),
    ],
    source: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="PATH|URL",
            help="The database to copy: a path, or a sqlite:/// or postgresql:// URL (else "
            "$TRADEDB_DB, the config file, the default).",
            show_default=False,
        ),
    ] = None,
    into_non_empty: Annotated[
        bool,
        typer.Option(
            "--into-non-empty",
            help="Add the rows to a target that already holds some, ids kept. Refused, with "
            "nothing written, if any id or unique key would collide (found by a trial copy "
            "that is rolled back).",
        ),
    ] = False,
    page_rows: Annotated[
        int,
        typer.Option("--page-rows", min=1, help="Rows per page; each page is one transaction."),
    ] = DEFAULT_PAGE_ROWS,
    as_json: JsonOption = False,
) -> None:
    """Copy every table from one database to another (SQLite or PostgreSQL, either way),
    in pages that survive a kill: run the same command again and it continues. Then
    compare row counts and amount sums, and audit the ledger; exit 1 if anything differs."""
    with _Bars(show=not as_json and err.is_terminal) as bars:
        report = admin.migrate(
            admin.locate(source).target,
            target,
            into_non_empty=into_non_empty,
            page_rows=page_rows,
            progress=bars,
        )
    if as_json:
        print_json(_json(report))
    else:
        _print(report)
    if not report.ok:
        raise typer.Exit(1)


class _Bars:
    """A progress bar per table on stderr, and a line naming the step under way."""

    def __init__(self, *, show: bool) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<20}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=not show,
        )
        self._tasks: dict[str, tuple[TaskID, int]] = {}
        self._step: TaskID | None = None

    def __enter__(self) -> _Bars:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._end_step()
        self._progress.stop()

    def table(self, name: str, total: int, done: int) -> None:
        self._end_step()
        self._end_tables()
        self._tasks[name] = self._progress.add_task(name, total=total, completed=done), total

    def copied(self, name: str, rows: int) -> None:
        self._progress.advance(self._tasks[name][0], rows)

    def step(self, description: str) -> None:
        self._end_step()
        self._end_tables()
        self._step = self._progress.add_task(description, total=None)

    def _end_tables(self) -> None:
        # A bar stops its clock once it is updated at its total.
        for task, total in self._tasks.values():
            self._progress.update(task, completed=total)

    def _end_step(self) -> None:
        if self._step is not None:
            self._progress.update(self._step, total=1, completed=1)
            self._step = None


def _sums(comparison: TableComparison) -> dict[str, dict[str, str]]:
    scales = comparison.table.amounts
    return {
        name: {
            "source": format_fixed(comparison.source.sums[name], scales[name]),
            "target": format_fixed(comparison.target.sums[name], scales[name]),
            "before": format_fixed(comparison.before.sums[name], scales[name]),
        }
        for name in comparison.source.sums
    }


def _json(report: MigrationReport) -> dict[str, Any]:
    return {
        "source": report.source,
        "target": report.target,
        "resumed": report.resumed,
        "into_non_empty": report.into_non_empty,
        "rows_copied": report.rows_copied,
        "seconds": round(report.seconds, 3),
        "rows_per_second": round(report.rows_per_second),
        "tables": [
            {
                "table": comparison.table.name,
                "equal": comparison.equal,
                "rows": {
                    "source": comparison.source.rows,
                    "target": comparison.target.rows,
                    "before": comparison.before.rows,
                },
                "sums": _sums(comparison),
            }
            for comparison in report.tables
        ],
        "equal": report.equal,
        "source_changed": report.source_changed,
        "audit": {"ok": not report.audit_problems, "problems": report.audit_problems},
        "ok": report.ok,
    }


def _mark(equal: bool) -> Text:
    return Text("✓", "green") if equal else Text("✗", "red")


def _line(ok: bool, text: str) -> Text:
    return Text.assemble(_mark(ok), " ", text)


def _print(report: MigrationReport) -> None:
    how = "continued an interrupted copy" if report.resumed else "copied"
    out.print(
        f"{report.source} → {report.target}: {how}, {report.rows_copied:,} rows in "
        f"{report.seconds:.1f} s ({report.rows_per_second:,.0f} rows/s)",
        markup=False,
        highlight=False,
    )
    table = Table(title="source and target compared")
    table.add_column("table")
    table.add_column("figure")
    if report.into_non_empty:
        table.add_column("target before", justify="right")
    table.add_column("source", justify="right")
    table.add_column("target", justify="right")
    table.add_column("")
    for comparison in report.tables:
        before = [f"{comparison.before.rows:,}"] if report.into_non_empty else []
        rows_equal = comparison.target.rows == comparison.expected.rows
        table.add_row(
            comparison.table.name,
            "rows",
            *before,
            f"{comparison.source.rows:,}",
            f"{comparison.target.rows:,}",
            _mark(rows_equal),
        )
        for name, sums in _sums(comparison).items():
            sum_equal = comparison.target.sums[name] == comparison.expected.sums[name]
            before = [sums["before"]] if report.into_non_empty else []
            table.add_row(
                "", f"sum {name}", *before, sums["source"], sums["target"], _mark(sum_equal)
            )
    out.print(table)
    if report.audit_problems:
        for problem in report.audit_problems:
            out.print(_line(False, f"audit of the target: {problem}"), highlight=False)
    else:
        out.print(_line(True, "audit of the target: ledger invariants hold"), highlight=False)
    if report.equal:
        out.print(
            _line(True, "row counts and amount sums agree: the copy is complete"),
            highlight=False,
        )
        return
    differing = sum(1 for comparison in report.tables if not comparison.equal)
    out.print(
        _line(
            False,
            f"{differing} table(s) differ; the copy's progress record stays in the target",
        ),
        highlight=False,
    )
    if report.source_changed:
        out.print(
            _line(
                False,
                "the source changed while it was copied: stop its writers, remove or empty "
                "the target and copy again",
            ),
            highlight=False,
        )
