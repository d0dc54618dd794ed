"""Copy every table of one tradedb database into another, between any two engines
(`tradedb migrate-db`): SQLite to PostgreSQL and back, SQLite to SQLite, PostgreSQL to
PostgreSQL.

How it goes:

1. Checks, before anything is written: both locations can be reached; the source is at
   this tradedb's schema; the target is new, empty, or holds the unfinished copy of this
   same source (otherwise it is refused unless `into_non_empty`); the two are not the same
   database; every source amount fits the target's engine.
2. The target gets tradedb's schema by being opened (a new one is created at the newest
   revision, the source's), and a progress record (`tradedb_migration`) that names the
   source and holds its figures (row counts, largest ids, amount sums).
3. Tables are copied in foreign-key order, in pages by id, from one read snapshot of the
   source; each page and its progress commit in one transaction on the target. Ids are
   kept; afterwards every id counter of the target is brought past the source's.
4. The source's figures (read again) are compared with the target's, the ledger audit is
   run on the target, and the progress record is dropped once the figures agree.

A rerun after the copy was stopped, at any moment (SIGKILL included), finds the record,
checks that the source still holds what it held when the copy began and that the target
holds exactly the rows recorded, and carries on after the last page recorded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from contextlib import ExitStack, closing
from dataclasses import dataclass
from typing import Protocol

from tradedb.errors import SchemaVersionError, TradeDBError, ValidationError
from tradedb.models.values import format_decimal, now_epoch_ms
from tradedb.schema.migrate import SchemaStatus, describe_mismatch
from tradedb.services.ledger.audit import audit
from tradedb.store import Database, Store, copying
from tradedb.store.copying import COPIED_TABLES, CopiedTable, Figures, TableProgress
from tradedb.store.database import DatabaseUnavailable
from tradedb.store.engines import (
    PostgresTarget,
    Target,
    driver_errors,
    location_key,
    parse_target,
    probe_schema_status,
    read_schema_status,
    same_database,
)

DEFAULT_PAGE_ROWS = 20_000


_CONTINUE = "every page migrate-db committed is recorded: run the same command to continue"


class MigrationRefused(TradeDBError):
    """The copy was refused before anything was written."""


class MigrationStopped(TradeDBError):
    """The copy stopped part-way on a database error. Every page copied is recorded, and
    the same command continues after the last one."""


class CopyProgress(Protocol):
    """What the copy tells about its progress (the CLI draws a bar per table)."""

    def table(self, name: str, total: int, done: int) -> None:
        """Copying `name` begins: `total` rows in the source, `done` copied already."""

    def copied(self, name: str, rows: int) -> None:
        """A page of `rows` rows of `name` was committed."""

    def step(self, description: str) -> None:
        """A step other than copying rows begins."""


class _Silent:
    def table(self, name: str, total: int, done: int) -> None:
        pass

    def copied(self, name: str, rows: int) -> None:
        pass

    def step(self, description: str) -> None:
        pass


@dataclass(frozen=True)
class TableComparison:
    """One table's figures in the source and in the target after the copy."""

    table: CopiedTable
    source: Figures
    target: Figures
    # What the target held before the copy: zero, except with into_non_empty.
    before: Figures

    @property
    def expected(self) -> Figures:
        return self.before.plus(self.source)

    @property
    def equal(self) -> bool:
        expected = self.expected
        return self.target.rows == expected.rows and dict(self.target.sums) == dict(expected.sums)


@dataclass(frozen=True)
class MigrationReport:
    source: str
    target: str
    resumed: bool
    # The target held rows before the copy (into_non_empty): the copy adds to them.
    into_non_empty: bool
    # Rows copied by this run, and how long its copying took.
    rows_copied: int
    seconds: float
    tables: list[TableComparison]
    # The source no longer holds what it held when the copy began (a writer was at work).
    source_changed: bool
    audit_problems: list[str]

    @property
    def equal(self) -> bool:
        return all(comparison.equal for comparison in self.tables)

    @property
    def ok(self) -> bool:
        return self.equal and not self.audit_problems

    @property
    def rows_per_second(self) -> float:
        return self.rows_copied / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Start:
    """Where the copy starts: per table, the last id copied and the rows copied so far."""

    resumed: bool
    copied_through: dict[str, int]
    rows_copied: dict[str, int]
    before: dict[str, Figures]
    # A non-empty target whose rows must not collide with the source's (into_non_empty).
    needs_trial: bool


def migrate_database(
    source_location: str | os.PathLike[str] | PostgresTarget,
    target_location: str | os.PathLike[str] | PostgresTarget,
    *,
    into_non_empty: bool = False,
    page_rows: int = DEFAULT_PAGE_ROWS,
    progress: CopyProgress | None = None,
) -> MigrationReport:
    """Copy every table of the source database into the target (see the module docstring);
    refusals raise MigrationRefused (or the location's own error) with nothing written."""
    shown = progress or _Silent()
    if isinstance(page_rows, bool) or not isinstance(page_rows, int) or page_rows < 1:
        raise ValidationError("page_rows", page_rows, "must be a whole number of at least 1")
    source = parse_target(source_location)
    target = parse_target(target_location)
    _check_source_schema(source)
    target_status = probe_schema_status(target)
    if target_status is not None and not target_status.up_to_date:
        raise SchemaVersionError(describe_mismatch(str(target), target_status))
    if same_database(source, target):
        raise MigrationRefused(
            f"{source} and {target} are the same database; copy into another (`target=PATH|URL`)"
        )
    source_key = location_key(source)
    try:
        with ExitStack() as stack:
            source_db = stack.enter_context(Database.open(source, readonly=True))
            with source_db.snapshot():
                shown.step("reading the source")
                source_figures = {
                    table.name: copying.figures(source_db, table) for table in COPIED_TABLES
                }
                start = _starting_point(
                    target, target_status, source_key, source_figures, into_non_empty
                )
                target_db = stack.enter_context(Database.open(target))
                began = time.monotonic()
                copied = _copy(
                    source_db,
                    target_db,
                    source_key=source_key,
                    source_figures=source_figures,
                    start=start,
                    page_rows=page_rows,
                    shown=shown,
                )
                seconds = time.monotonic() - began
            return _verify(
                source_db,
                target_db,
                source_figures,
                start,
                shown,
                source=str(source),
                target=str(target),
                rows_copied=copied,
                seconds=seconds,
            )
    except driver_errors() as exc:
        # A server gone, a connection lost, a file locked: every page that committed is in
        # the progress record, with its rows.
        raise MigrationStopped(
            f"migrate-db into {target} stopped: {_first_line(exc)}; {_CONTINUE}"
        ) from None
    except DatabaseUnavailable as exc:
        raise MigrationStopped(f"{exc}; {_CONTINUE}") from None
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns


# --- checks --------------------------------------------------------------------------------


def _check_source_schema(source: Target) -> None:
    status = read_schema_status(source)
    if status.up_to_date:
        return
    if status.current is None:
        raise MigrationRefused(f"{source} has no tradedb schema, so there is nothing to copy")
    raise MigrationRefused(
        f"{source} is at schema {status.current} and this tradedb copies schema "
        f"{status.head}: back it up, then run `tradedb init --db {source}` first"
    )


def _starting_point(
    target: Target,
    status: SchemaStatus | None,
    source_key: str,
    source_figures: Mapping[str, Figures],
    into_non_empty: bool,
) -> _Start:
    zero = {table.name: Figures.zero(table) for table in COPIED_TABLES}
    fresh = _Start(
        resumed=False,
        copied_through=dict.fromkeys(zero, copying.BEFORE_ANY_ID),
        rows_copied={name: 0 for name in zero},
        before=zero,
        needs_trial=False,
    )
    if status is None:
        return fresh  # nothing there yet: opening it creates the schema
    with Database.open(target, readonly=True) as probe, probe.snapshot():
        if copying.has_progress(probe):
            return _resumption(probe, source_key, source_figures)
        occupied = copying.occupied_tables(probe)
        if not occupied:
            return fresh
        if not into_non_empty:
            first, count = next(iter(occupied.items()))
            raise MigrationRefused(
                f"{target} is not empty ({sum(occupied.values()):,} rows in "
                f"{len(occupied)} tables, {first}: {count:,}) and holds no unfinished copy "
                f"of {source_key}; copy into a new or empty database, or give "
                "`into_non_empty=True` to add the rows to it (refused if any id or unique "
                "key would collide)"
            )
        before = {table.name: copying.figures(probe, table) for table in COPIED_TABLES}
    return _Start(False, fresh.copied_through, fresh.rows_copied, before, needs_trial=True)


def _resumption(target: Database, source_key: str, source_figures: Mapping[str, Figures]) -> _Start:
    """The start of a copy the progress record shows unfinished, once it is clear that it
    is a copy of this source, that the source has not changed since it began, and that
    the target holds exactly the rows recorded."""
    recorded = copying.read_progress(target)
    if set(recorded) != {table.name for table in COPIED_TABLES}:
        raise MigrationRefused(
            f"{target.display_name}: its {copying.PROGRESS_TABLE} table does not list the "
            "tables this tradedb copies; it was not left by this version's migrate-db"
        )
    origins = {entry.source for entry in recorded.values()}
    if origins != {source_key}:
        raise MigrationRefused(
            f"{target.display_name} holds an unfinished copy of {', '.join(sorted(origins))}, "
            f"not of {source_key}: finish that one by copying from it again, or copy into "
            "another database"
        )
    for table in COPIED_TABLES:
        entry = recorded[table.name]
        if entry.source_figures != source_figures[table.name]:
            raise MigrationRefused(
                f"{source_key} has changed since the unfinished copy into "
                f"{target.display_name} began ({table.name}: {_change(entry, source_figures)}); "
                "the copy cannot be finished exactly: stop the source's writers, remove or "
                "empty the target and run migrate-db again"
            )
        rows = copying.row_count(target, table)
        if rows != entry.before_figures.rows + entry.rows_copied:
            raise MigrationRefused(
                f"{target.display_name} has changed since the unfinished copy began: "
                f"{table.name} holds {rows:,} rows, the copy recorded "
                f"{entry.before_figures.rows + entry.rows_copied:,}; remove or empty it and "
                "run migrate-db again"
            )
    return _Start(
        resumed=True,
        copied_through={name: entry.copied_through for name, entry in recorded.items()},
        rows_copied={name: entry.rows_copied for name, entry in recorded.items()},
        before={name: entry.before_figures for name, entry in recorded.items()},
        needs_trial=False,
    )


def _change(entry: TableProgress, now: Mapping[str, Figures]) -> str:
    then, current = entry.source_figures, now[entry.table]
    if then.rows != current.rows:
        return f"{then.rows:,} rows then, {current.rows:,} now"
    for name, total in then.sums.items():
        if total != current.sums[name]:
            later = format_decimal(current.sums[name])
            return f"sum of {name} {format_decimal(total)} then, {later} now"
    return f"largest id {then.max_id} then, {current.max_id} now"


# --- copying ----------------------------------------------------------------------------------


class _TrialOver(Exception):
    """Ends the trial copy, which is then rolled back."""


def _copy(
    source_db: Database,
    target_db: Database,
    *,
    source_key: str,
    source_figures: Mapping[str, Figures],
    start: _Start,
    page_rows: int,
    shown: CopyProgress,
) -> int:
    """Copy what is left to copy; the rows copied by this run."""
    as_units = copying.amounts_as_units(source_db.dialect, target_db.dialect)
    if start.needs_trial:
        shown.step("checking that no row collides with the target's")
        _trial(source_db, target_db, page_rows, as_units)
    if not start.resumed:
        with target_db.transaction():
            copying.create_progress(
                target_db, source_key, source_figures, start.before, now_epoch_ms()
            )
    copied = 0
    for table in COPIED_TABLES:
        after = start.copied_through[table.name]
        shown.table(table.name, source_figures[table.name].rows, start.rows_copied[table.name])
        pages = copying.pages(source_db, target_db, table, after, page_rows, as_units=as_units)
        with closing(pages):
            for page in pages:
                with target_db.transaction(durable=False):
                    copying.write_page(target_db, page)
                    copying.record_page(target_db, table, page)
                copied += page.rows
                shown.copied(table.name, page.rows)
    shown.step("moving the id counters past the copied ids")
    counters = copying.id_counters(source_db)
    with target_db.transaction():
        copying.advance_id_counters(target_db, counters)
    return copied


def _trial(source_db: Database, target_db: Database, page_rows: int, as_units: bool) -> None:
    """Copy everything in one transaction that is rolled back, so that the target's own
    constraints (primary keys, unique keys) tell whether any source row collides with a
    row the target holds, before anything is written."""
    try:
        with target_db.transaction(durable=False):
            for table in COPIED_TABLES:
                pages = copying.pages(
                    source_db,
                    target_db,
                    table,
                    copying.BEFORE_ANY_ID,
                    page_rows,
                    as_units=as_units,
                )
                with closing(pages):
                    for page in pages:
                        try:
                            copying.write_page(target_db, page)
                        except target_db.IntegrityError as exc:
                            violation = target_db.violation(exc)
                            raise MigrationRefused(
                                f"{target_db.display_name} already holds rows that rows of "
                                f"{table.name} would collide with ({violation.message}); "
                                "nothing was written"
                            ) from None
            raise _TrialOver
    except _TrialOver:
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- verifying --------------------------------------------------------------------------------


def _verify(
    source_db: Database,
    target_db: Database,
    source_figures: Mapping[str, Figures],
    start: _Start,
    shown: CopyProgress,
    *,
    source: str,
    target: str,
    rows_copied: int,
    seconds: float,
) -> MigrationReport:
    shown.step("comparing row counts and amount sums")
    with source_db.snapshot():
        now = {table.name: copying.figures(source_db, table) for table in COPIED_TABLES}
    with target_db.snapshot():
        copied = {table.name: copying.figures(target_db, table) for table in COPIED_TABLES}
    comparisons = [
        TableComparison(table, now[table.name], copied[table.name], start.before[table.name])
        for table in COPIED_TABLES
    ]
    shown.step("auditing the target's ledger")
    problems = audit(Store(target_db))
    if all(comparison.equal for comparison in comparisons):
        with target_db.transaction():
            copying.drop_progress(target_db)
    return MigrationReport(
        source=source,
        target=target,
        resumed=start.resumed,
        into_non_empty=any(figures.rows for figures in start.before.values()),
        rows_copied=rows_copied,
        seconds=seconds,
        tables=comparisons,
        source_changed=any(now[name] != source_figures[name] for name in now),
        audit_problems=problems,
    )
