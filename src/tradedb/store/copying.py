"""Copying one tradedb database into another, for `tradedb migrate-db`.

Tables are copied in foreign-key order (positions before the trades that name them, trades
before the wallet movements that name them), each in pages of rows by ascending id (keyset,
no OFFSET), ids and all. Within one engine values go over as they are stored. Between
engines amounts go over as integer units, which the source's dialect selects (`units_of`)
and the target's bulk path stores (`prepare_copied`, `insert_copied`): exact on both
sides, never a float.

Each page and the progress record of its table (`tradedb_migration`, defined in
tradedb.schema.tables) commit in one transaction on the target, so the record always says
exactly which rows are there, whenever the copy is stopped.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy.sql.ddl import sort_tables

from tradedb.models.values import DecimalSpec, format_decimal
from tradedb.schema.money import ScaledDecimal
from tradedb.schema.tables import ALL_TABLES, migration_progress
from tradedb.store.database import Database, Dialect

PROGRESS_TABLE = migration_progress.name
# Where a table's copy starts: below every id, so that rows given ids of 0 or less by hand
# are copied too (tradedb's own ids start at 1).
BEFORE_ANY_ID = -(2**63)


@dataclass(frozen=True)
class CopiedTable:
    """A table as the copy sees it."""

    name: str
    # The columns written, id first: every column but the generated ones.
    columns: tuple[str, ...]
    # Every amount column, generated ones included (their sums are compared too).
    amounts: Mapping[str, DecimalSpec] = field(compare=False)

    @property
    def written_amounts(self) -> dict[str, int]:
        """The written amount columns and their scales."""
        return {name: spec.scale for name, spec in self.amounts.items() if name in self.columns}


def _copied_tables() -> tuple[CopiedTable, ...]:
    tables = []
    # sort_tables puts every table after the tables its foreign keys name.
    for table in sort_tables(ALL_TABLES):
        columns = [column for column in table.columns if column.computed is None]
        columns.sort(key=lambda column: column.name != "id")
        tables.append(
            CopiedTable(
                table.name,
                tuple(column.name for column in columns),
                {
                    column.name: column.type.spec
                    for column in table.columns
                    if isinstance(column.type, ScaledDecimal)
                },
            )
        )
    return tuple(tables)


# Every table of the schema (the 11 spec tables and wallet_movements), in the order they are
# copied. Not candle_blocks, a cache the target rebuilds by itself, nor alembic_version:
# the target has its own schema, at the same revision.
COPIED_TABLES = _copied_tables()


def amounts_as_units(source: Dialect, target: Dialect) -> bool:
    """Whether amounts cross between two engines, and so travel as integer units."""
    return source.name != target.name


# --- what a table holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """A table's row count, largest id and the exact sum of each amount column."""

    rows: int
    max_id: int
    sums: Mapping[str, Decimal]

    @classmethod
    def zero(cls, table: CopiedTable) -> Figures:
        return cls(
            0, 0, {name: Decimal(0).scaleb(-spec.scale) for name, spec in table.amounts.items()}
        )

    def plus(self, other: Figures) -> Figures:
        return Figures(
            self.rows + other.rows,
            max(self.max_id, other.max_id),
            {name: total + other.sums[name] for name, total in self.sums.items()},
        )

    def to_json(self) -> str:
        sums = {name: format_decimal(total) for name, total in self.sums.items()}
        return json.dumps({"rows": self.rows, "max_id": self.max_id, "sums": sums})

    @classmethod
    def from_json(cls, text: str) -> Figures:
        data = json.loads(text)
        sums = {name: Decimal(total) for name, total in data["sums"].items()}
        return cls(int(data["rows"]), int(data["max_id"]), sums)


def figures(db: Database, table: CopiedTable) -> Figures:
    """The figures of a table as `db` holds it (in the caller's snapshot, if any)."""
    dialect = db.dialect

    def sql(exact: bool) -> str:
        sums = (part for name in table.amounts for part in dialect.exact_sum(name, exact=exact))
        selected = ["count(*)", "coalesce(max(id), 0)", *sums]
        return f"SELECT {', '.join(selected)} FROM {table.name}"

    [row] = db.summed_rows(sql)
    # The exact query has one part per column, the fast one may have more.
    width = (len(row) - 2) // max(1, len(table.amounts))
    sums = {}
    for index, (name, spec) in enumerate(table.amounts.items()):
        at = 2 + index * width
        sums[name] = dialect.exact_sum_value(row[at : at + width], spec.scale)
    return Figures(int(row[0]), int(row[1]), sums)


def row_count(db: Database, table: CopiedTable) -> int:
    return int(db.connection.execute(f"SELECT count(*) FROM {table.name}").fetchone()[0])


def occupied_tables(db: Database) -> dict[str, int]:
    """The copied tables that hold rows, and how many."""
    held = {}
    for table in COPIED_TABLES:
        if db.connection.execute(f"SELECT 1 FROM {table.name} LIMIT 1").fetchone() is not None:
            held[table.name] = row_count(db, table)
    return held


# --- pages ------------------------------------------------------------------------------------


@cache
def _page_sql(table: CopiedTable, dialect: Dialect, as_units: bool) -> str:
    amounts = table.written_amounts
    selected = [
        dialect.units_of(name, amounts[name]) if as_units and name in amounts else name
        for name in table.columns
    ]
    return f"SELECT {', '.join(selected)} FROM {table.name} WHERE id > ? ORDER BY id LIMIT ?"


@dataclass(frozen=True)
class Page:
    """Rows of one table read from the source, made ready for the target's bulk path."""

    rows: int
    last_id: int
    prepared: Any


def pages(
    source: Database,
    target: Database,
    table: CopiedTable,
    after_id: int,
    rows: int,
    *,
    as_units: bool,
) -> Generator[Page, None, None]:
    """The source's rows of `table` with ids above `after_id`, in pages of up to `rows` in
    id order, each made ready for the target (`Database.prepare_copied`; amounts as units
    when `as_units`).

    While the caller writes one page, a thread reads and prepares the next, so that the
    source, the conversion and the target's writing overlap. It reads on the caller's
    connection, so in the caller's snapshot; the caller leaves that connection alone until
    the pages end, and closes the iterator (contextlib.closing) if it stops early.
    """
    conn = source.connection
    statement = _page_sql(table, source.dialect, as_units)
    units = table.written_amounts if as_units else {}

    def read(after: int) -> Page | None:
        found = conn.execute(statement, (after, rows)).fetchall()
        if not found:
            return None
        prepared = target.prepare_copied(table.name, table.columns, found, units=units)
        return Page(len(found), int(found[-1][0]), prepared)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tradedb-copy") as reader:
        ahead = reader.submit(read, after_id)
        while (page := ahead.result()) is not None:
            ahead = reader.submit(read, page.last_id)
            yield page


def write_page(target: Database, page: Page) -> None:
    """Insert a page of `pages`, in the caller's write transaction on `target`."""
    target.require_write("write_page")
    target.insert_copied(target.connection, page.prepared)


def id_counters(source: Database) -> dict[str, int]:
    """The highest id each table has handed out (its counter, or its largest id)."""
    return {table.name: source.id_counter(source.connection, table.name) for table in COPIED_TABLES}


def advance_id_counters(target: Database, counters: Mapping[str, int]) -> None:
    """Bring each table's id counter past the given ids (in the caller's write transaction),
    so that rows added later never take an id that was copied or used by the source."""
    target.require_write("advance_id_counters")
    for name, value in counters.items():
        target.advance_id_counter(target.connection, name, value)


# --- the progress record ----------------------------------------------------------------------


@dataclass(frozen=True)
class TableProgress:
    """How far a copy into this database got with one table."""

    table: str
    source: str
    source_figures: Figures
    before_figures: Figures
    copied_through: int
    rows_copied: int
    started_at: int


_PROGRESS_COLUMNS = (
    "table_name",
    "source",
    "source_figures",
    "before_figures",
    "copied_through",
    "rows_copied",
    "started_at",
)


def has_progress(db: Database) -> bool:
    """Whether `db` holds the progress record of a copy that has not finished."""
    row = db.connection.execute(db.dialect.table_exists, (PROGRESS_TABLE,)).fetchone()
    return bool(row[0])


def read_progress(db: Database) -> dict[str, TableProgress]:
    rows = db.connection.execute(
        f"SELECT {', '.join(_PROGRESS_COLUMNS)} FROM {PROGRESS_TABLE} ORDER BY table_name"
    ).fetchall()
    return {
        str(row[0]): TableProgress(
            str(row[0]),
            str(row[1]),
            Figures.from_json(row[2]),
            Figures.from_json(row[3]),
            int(row[4]),
            int(row[5]),
            int(row[6]),
        )
        for row in rows
    }


def create_progress(
    target: Database,
    source: str,
    source_figures: Mapping[str, Figures],
    before_figures: Mapping[str, Figures],
    started_at: int,
) -> None:
    """Create the progress record of a new copy from `source` (in the caller's write
    transaction): one row per table, nothing copied yet."""
    target.require_write("create_progress")
    conn = target.connection
    conn.execute(target.dialect.create_table_ddl(migration_progress))
    marks = ", ".join("?" for _ in _PROGRESS_COLUMNS)
    for table in COPIED_TABLES:
        conn.execute(
            f"INSERT INTO {PROGRESS_TABLE} ({', '.join(_PROGRESS_COLUMNS)}) VALUES ({marks})",
            (
                table.name,
                source,
                source_figures[table.name].to_json(),
                before_figures[table.name].to_json(),
                BEFORE_ANY_ID,
                0,
                started_at,
            ),
        )


def record_page(target: Database, table: CopiedTable, page: Page) -> None:
    """Record a page copied, in the transaction that wrote it."""
    target.require_write("record_page")
    target.connection.execute(
        f"UPDATE {PROGRESS_TABLE} SET copied_through = ?, rows_copied = rows_copied + ? "
        "WHERE table_name = ?",
        (page.last_id, page.rows, table.name),
    )


def drop_progress(target: Database) -> None:
    """Remove the progress record of a finished copy (in the caller's write transaction)."""
    target.require_write("drop_progress")
    target.connection.execute(f"DROP TABLE {PROGRESS_TABLE}")
