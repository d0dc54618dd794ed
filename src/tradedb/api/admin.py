"""A database as a whole, named by where it is and never opened for its records: create
or upgrade its schema, read its schema version, copy it to another engine, run its
maintenance. Unlike `tradedb.open`, none of this refuses a database at an older schema:
it is what upgrades one, or backs it up first (see `Backups`).

Every `database` here is what `tradedb.open` takes (a SQLite path, a sqlite:/// or
postgresql:// URL, None for $TRADEDB_DB, the config file, the default) or a location
already resolved.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from tradedb.schema.migrate import SchemaStatus
from tradedb.services import admin
from tradedb.services.admin import InitResult
from tradedb.services.location import DatabaseLocation, resolve_database
from tradedb.services.ops import maintain, schedule_lines
from tradedb.services.ops.migrate_db import (
    DEFAULT_PAGE_ROWS,
    CopyProgress,
    MigrationReport,
    migrate_database,
)
from tradedb.store.engines import PostgresTarget, Target

# What names a database: a path, a URL, or a PostgreSQL target parsed from one.
Locator = str | os.PathLike[str] | PostgresTarget


def locate(database: Locator | DatabaseLocation | None = None) -> DatabaseLocation:
    """Where a database is: `database` (a path or URL), else $TRADEDB_DB, else the config
    file's `[database] path`, else the default file in the user data folder."""
    if isinstance(database, DatabaseLocation):
        return database
    if isinstance(database, PostgresTarget):
        return DatabaseLocation(database, "--db")
    return resolve_database(None if database is None else os.fspath(database))


def init(
    database: Locator | DatabaseLocation | None = None, *, allow_network_share: bool = False
) -> InitResult:
    """Create the database (owner-only, in the default folder if it is the default), or
    upgrade it to the newest schema; what was done. A new SQLite file on a network share
    is refused unless `allow_network_share` (see `tradedb.open`)."""
    return admin.init_database(locate(database), allow_network_share=allow_network_share)


def schema_status(database: Locator | DatabaseLocation | None = None) -> SchemaStatus:
    """The schema revision the database is at and the newest this tradedb knows, read
    without writing (a missing database is an error, never created)."""
    return admin.schema_status(locate(database))


def migrate(
    source: Locator,
    target: Locator,
    *,
    into_non_empty: bool = False,
    page_rows: int = DEFAULT_PAGE_ROWS,
    progress: CopyProgress | None = None,
) -> MigrationReport:
    """Copy every table from `source` to `target` (SQLite or PostgreSQL, either way), in
    pages that resume after a kill, then compare counts and sums and audit the copy."""
    return migrate_database(
        source, target, into_non_empty=into_non_empty, page_rows=page_rows, progress=progress
    )


class Maintenance:
    """The maintenance jobs of one database: retention and a snapshot daily, the cloud
    copy weekly, the full backup monthly, each run when its period comes due."""

    def __init__(self, database: Locator | DatabaseLocation | None = None) -> None:
        target = locate(database).target
        # Absolute, so that the schedule's lines work from any folder.
        self.database: Target = target.resolve() if isinstance(target, Path) else target

    def run_due(
        self,
        *,
        force: Sequence[str] = (),
        on_start: Callable[[maintain.Job], None] | None = None,
    ) -> list[maintain.JobOutcome]:
        """Run every due job (and those named in `force`) once; a failed job is reported
        in its outcome and retried at the next run, never raised."""
        return maintain.run_due(self.database, force=force, on_start=on_start)

    def run_forever(
        self,
        *,
        check_every_s: float = 3600.0,
        report: Callable[[list[maintain.JobOutcome]], None],
    ) -> None:
        """Run due jobs, then sleep until the next is due (at most `check_every_s`), until
        interrupted."""
        maintain.run_forever(self.database, check_every_s=check_every_s, report=report)

    def schedule(self) -> schedule_lines.ScheduleLines:
        """The crontab line and the Task Scheduler command that run the due jobs hourly,
        with the absolute paths of this tradedb and of the database. A path that this
        system's line cannot carry raises CannotSchedule; the other system's line is
        then None instead, with the reason in `not_printed`."""
        return schedule_lines.schedule_lines(self.database)

    def cron_line(self) -> str:
        """An hourly crontab line running the due jobs (a password stays out of it)."""
        return schedule_lines.cron_line(self.database)

    def windows_task(self) -> str:
        """The Task Scheduler command that does the same on Windows: a schtasks line for
        cmd.exe, or a PowerShell line when it is longer than schtasks takes."""
        return schedule_lines.windows_task(self.database)

    def password_note(self) -> str | None:
        """Where the password left out of those lines goes, if the URL has one."""
        return schedule_lines.password_note(self.database)
