"""`tradedb browse`: Datasette over a tradedb SQLite file, read-only, with every table and
column described (from tradedb.services.catalog, the one description of the schema) and
canned queries whose figures are exact (docs/browse.md).

Needs the `browse` extra; nothing else in tradedb imports this module.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from datasette.app import Datasette
from datasette.database import Database
from sqlalchemy import Table

from tradedb.schema.derived import ReadableColumn, readable_columns, view_name
from tradedb.schema.migrate import VERSION_TABLE
from tradedb.schema.money import ScaledDecimal
from tradedb.schema.tables import ALL_TABLES, CACHE_TABLES
from tradedb.services.catalog import TABLE_DESCRIPTIONS, column_description, column_unit
from tradedb.store import browse as sql

# Tables a person browsing has no use for, still described for completeness.
HIDDEN_TABLES = {
    VERSION_TABLE: {"version_num": "The schema revision the database is at."},
    "sqlite_sequence": {
        "name": "A table with AUTOINCREMENT ids.",
        "seq": "The largest id that table has handed out.",
    },
}
HIDDEN_DESCRIPTIONS = {
    VERSION_TABLE: "The schema revision (Alembic's); `tradedb db status` shows it.",
    "sqlite_sequence": "SQLite's record of the largest id of each AUTOINCREMENT table.",
}

QUERIES = {
    "pnl_by_strategy": {
        "title": "Realised P&L by strategy",
        "description": (
            "Closing fills per strategy, exchange and quote currency, with the P&L they "
            "realised (trades.profit_loss: in the quote currency, net of both fees of each "
            "round trip), summed exactly. realized_pnl is a number to sort by; "
            "realized_pnl_exact has the exact digits. Best first within each quote currency."
        ),
    },
    "open_positions": {
        "title": "Open positions",
        "description": (
            "Every open position: size in the base currency, prices and P&L in the quote "
            "currency, each as a number with its exact text beside it."
        ),
    },
    "fees_by_currency": {
        "title": "Fees by currency",
        "description": (
            "Fees paid on fills, summed exactly per fee currency (fills without a fee left "
            "out). fees is a number to sort by; fees_exact has the exact digits."
        ),
    },
    "candle_coverage": {
        "title": "Candle coverage",
        "description": (
            "Per exchange, market and timeframe: the first and last stored candle (epoch ms "
            "and ISO 8601 UTC) and how many there are. Archived candles (retention) are not "
            "counted."
        ),
    },
}


def metadata(database: str, source: str) -> dict[str, Any]:
    """Datasette's metadata for the database named `database`: a description of every
    table, view and column, and the canned queries. `source` names the file."""
    tables: dict[str, Any] = {}
    for table in (*ALL_TABLES, *CACHE_TABLES):
        tables[table.name] = {
            "description": _table_description(table),
            "columns": {column.name: _stored_text(table, column.name) for column in table.columns},
        }
        if table in CACHE_TABLES:
            tables[table.name]["hidden"] = True
            continue
        tables[view_name(table)] = {
            "description": (
                f"{TABLE_DESCRIPTIONS[table.name]} Readable: every amount as a number that "
                "sorts and filters as one, with its exact text in <column>_exact; every time "
                "with its ISO 8601 UTC text in <column>_utc."
            ),
            "columns": {
                column.name: _view_text(table, column) for column in readable_columns(table)
            },
        }
    for name, columns in HIDDEN_TABLES.items():
        tables[name] = {
            "description": HIDDEN_DESCRIPTIONS[name],
            "columns": columns,
            "hidden": True,
        }
    return {
        "title": "tradedb",
        "description": (
            f"{source}, read-only. The <table>_readable views show amounts as numbers with "
            "their exact text beside them and times in ISO 8601 UTC; the tables hold "
            "amounts as integer units of 1e-8 (1e-4 for percentages)."
        ),
        "databases": {
            database: {
                "tables": tables,
                "queries": {
                    name: {"sql": sql.QUERIES[name], **described}
                    for name, described in QUERIES.items()
                },
            }
        },
    }


def _table_description(table: Table) -> str:
    description = TABLE_DESCRIPTIONS[table.name]
    if any(isinstance(column.type, ScaledDecimal) for column in table.columns):
        description += (
            f" Amounts are stored as integer units; {view_name(table)} shows them as numbers "
            "and exact text."
        )
    return description


def _described(table: Table, column: str) -> str:
    # A column nobody has described yet fails the tests; browsing still works meanwhile.
    return column_description(table.name, column) or "(Not described yet.)"


def _stored_text(table: Table, name: str) -> str:
    """A table column: what it holds, and how it is stored."""
    column = table.columns[name]
    description = _described(table, name)
    if isinstance(column.type, ScaledDecimal):
        scale = column.type.spec.scale
        return (
            f"{description} Stored as integer units of 1e-{scale} (past 64-bit integers, "
            "as zero-padded digits: text)."
        )
    unit = column_unit(column)
    return f"{description} Unit: {unit}." if unit else description


def _view_text(table: Table, column: ReadableColumn) -> str:
    """A view column: what its source holds, and the form the view gives it in."""
    description = _described(table, column.source)
    if column.form == "number":
        return (
            f"{description} A number: sorts and filters as one (approximate past 15 "
            f"significant digits; {column.source}_exact has the exact digits)."
        )
    if column.form == "exact":
        amount = table.columns[column.source].type
        assert isinstance(amount, ScaledDecimal)
        return f"{description} Exact fixed-point text, {amount.spec.scale} decimals."
    if column.form == "utc":
        return f"{description} ISO 8601 text, UTC."
    return _stored_text(table, column.source)


class ReadOnlyDatabase(Database):  # type: ignore[misc]  # datasette has no type hints
    """A database every connection of which is read-only, including one Datasette asks
    for to write with: nothing Datasette does (or a plugin, or a canned query marked as a
    write) can change the file."""

    def connect(self, write: bool = False) -> sqlite3.Connection:
        conn = sql.connect_read_only(Path(self.path))
        self._all_file_connections.append(conn)
        return conn


def datasette(path: Path) -> Datasette:
    """Datasette serving the tradedb database at `path`, read-only, as `tradedb browse`
    does."""
    name = database_name(path)
    app = Datasette(metadata=metadata(name, path.name), settings=SETTINGS)
    # Without files Datasette adds its scratch in-memory database, which would only show
    # up beside ours.
    app.remove_database("_memory")
    app.add_database(ReadOnlyDatabase(app, path=str(path)), name=name)
    return app


def database_name(path: Path) -> str:
    """The database's name in URLs (/tradedb/trades_readable): the file's stem, as
    Datasette names files, unless it could be taken for one of Datasette's own (_internal,
    _memory)."""
    return "tradedb" if path.stem.startswith("_") else path.stem


# Datasette's defaults, but a longer time limit: the canned queries read whole tables
# (coverage reads the candle index), seconds on tens of millions of rows.
SETTINGS: dict[str, Any] = {"sql_time_limit_ms": 5_000}
