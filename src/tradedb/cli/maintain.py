"""`tradedb maintain`: run the maintenance jobs that are due (retention, snapshot, cloud
copy, full backup), once from cron or the Task Scheduler, or in a loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from tradedb.api.admin import Maintenance
from tradedb.cli.common import DbOption, JsonOption, err, out, print_json, user_errors
from tradedb.cli.options import SEVERAL, listed
from tradedb.models.values import parse_every
from tradedb.services.ops.maintain import Job, JobOutcome
from tradedb.services.ops.schedule_lines import SCHTASKS_TR_LIMIT, ScheduleLines

# Exit status when a job failed or is unavailable (reported; the others still ran).
JOB_FAILED = 1


def maintain(
    once: Annotated[
        bool, typer.Option("--once", help="Run what is due, then exit (for cron).")
    ] = False,
    force: Annotated[
        list[str] | None,
        typer.Option(
            "--force",
            help=f"Run these jobs now even if they are not due ({SEVERAL}).",
            metavar="JOB",
        ),
    ] = None,
    every: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            help="Without --once: check what is due at least this often: 30s, 10m, 1h.",
        ),
    ] = "1h",
    print_schedule: Annotated[
        bool,
        typer.Option(
            "--print-schedule", help="Print a cron line and a Windows Task Scheduler command."
        ),
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run what is due: a check for damage (quick_check daily, integrity_check weekly),
    retention and a snapshot daily, the cloud copy weekly ([maintain] cloud_to), the full
    backup monthly (periods are UTC calendar days, ISO weeks, months), each backup
    followed by rotation. A failed job is reported (exit 1) and retried at the next run.
    Schedule it hourly: `tradedb maintain --print-schedule` shows how."""
    check_every_s = parse_every(every) / 1000
    maintenance = Maintenance(db)
    if print_schedule:
        lines = maintenance.schedule()
        if as_json:
            print_json(vars(lines))
            return
        _show_schedule(lines)
        return
    if once:
        outcomes = maintenance.run_due(force=listed(force), on_start=_started(as_json))
        _show(outcomes, as_json)
        if any(outcome.status in ("failed", "unavailable") for outcome in outcomes):
            raise typer.Exit(JOB_FAILED)
        return
    err.print(f"maintaining {maintenance.database}; Ctrl-C stops", highlight=False, markup=False)
    try:
        maintenance.run_forever(
            check_every_s=check_every_s, report=lambda found: _show(found, as_json)
        )
    except KeyboardInterrupt:
        err.print("stopped", highlight=False)


def _show_schedule(lines: ScheduleLines) -> None:
    shown = ["# cron (Linux, macOS): crontab -e, then add", lines.cron]
    if lines.windows_shell == "cmd":
        shown.append("# Windows (Task Scheduler), in a command prompt (cmd.exe, not PowerShell):")
    elif lines.windows_shell == "powershell":
        shown.append(
            "# Windows (Task Scheduler), in PowerShell (the command is longer than the "
            f"{SCHTASKS_TR_LIMIT} characters schtasks takes):"
        )
    if lines.windows_task is not None:
        shown.append(lines.windows_task)
    shown += [f"# {note}" for note in (lines.not_printed, lines.password_note) if note]
    for line in shown:
        out.print(line, highlight=False, markup=False, soft_wrap=True)


def _started(quiet: bool) -> Callable[[Job], None] | None:
    if quiet:
        return None
    return lambda job: err.print(f"running {job.name} …", highlight=False)


def _show(outcomes: list[JobOutcome], as_json: bool) -> None:
    if as_json:
        print_json([vars(outcome) for outcome in outcomes])
        return
    table = Table("job", "every", "status", "what", "last success", "seconds")
    colours = {"done": "green", "failed": "red", "unavailable": "red", "skipped": "yellow"}
    for outcome in outcomes:
        colour = colours.get(outcome.status, "dim")
        table.add_row(
            outcome.name,
            outcome.period,
            Text(outcome.status, colour),
            outcome.detail,
            (outcome.last_success or "never")[:19],
            f"{outcome.seconds:.1f}" if outcome.status != "not due" else "",
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add `tradedb maintain` to the `tradedb` app."""
    app.command("maintain")(user_errors(maintain))
