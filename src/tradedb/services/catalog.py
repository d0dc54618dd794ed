"""The database described for programs: every table, column, type and unit, generated from
the schema's one definition (tradedb.schema.tables), so it cannot drift from it.

An agent reading the database through tradedb's tools needs to know what a column means:
that `timestamp` is epoch milliseconds UTC while `created_at` is epoch seconds, that an
amount is exact to 1e-8 and comes as a fixed-point string, which values a status takes.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Column, Table, UniqueConstraint
from sqlalchemy.sql.elements import TextClause

from tradedb.models.values import MAX_NAME_LENGTH
from tradedb.schema.money import ScaledDecimal
from tradedb.schema.tables import ALL_TABLES, EXTRA_TABLES

# ARCHITECTURE's event times: when something happened, as ccxt reports it.
EVENT_TIME_COLUMNS = frozenset(
    {"timestamp", "opened_at", "closed_at", "filled_at", "canceled_at", "last_updated"}
)
ROW_TIME_COLUMNS = frozenset({"created_at", "updated_at"})
_ONE_OF = re.compile(r"^(\w+) IN \((.*)\)$")


def describe_schema() -> dict[str, Any]:
    """Tables (the specification's and tradedb's own), with their columns, keys and the
    conventions every value follows."""
    return {
        "conventions": {
            "amounts": (
                "DECIMAL(20,8) and DECIMAL(10,4) columns are exact decimals: stored in SQLite "
                "as integers of 1e-8 (or 1e-4) units, returned by tradedb as fixed-point "
                "strings such as '0.00000001', never floats or '1E-8'"
            ),
            "event_times": "epoch milliseconds, UTC (as ccxt reports them)",
            "row_times": "created_at and updated_at are epoch seconds, UTC",
            "dates": "performance_metrics.date is a UTC calendar date, YYYY-MM-DD",
            "names": (
                "exchanges are lowercase ccxt ids ('kraken'); symbols are ccxt market "
                f"symbols 'BASE/QUOTE' in capitals; strategies are 1 to {MAX_NAME_LENGTH} "
                "characters"
            ),
            "readable_views": (
                "each table has a view <table>_readable showing amounts as fixed-point text"
            ),
            "archives": (
                "market_data and tickers rows past retention's horizon move to Parquet "
                "archives: tradedb's market-data readers (candles, list_data, tickers, "
                "valuation) include them, reads of the tables themselves do not"
            ),
        },
        "tables": [_table(table) for table in ALL_TABLES],
    }


def _table(table: Table) -> dict[str, Any]:
    allowed = _allowed_values(table)
    unique = [
        [column.name for column in constraint.columns]
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    unique += [
        [column.name] for column in table.columns if column.unique and [column.name] not in unique
    ]
    return {
        "name": table.name,
        "origin": "tradedb" if table in EXTRA_TABLES else "specification",
        "columns": [_column(column, allowed.get(column.name)) for column in table.columns],
        "unique": unique,
        "indexes": sorted(index.name for index in table.indexes if index.name),
    }


def _column(column: Column[Any], allowed: list[str] | None) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": column.name,
        "type": _sql_type(column),
        "nullable": bool(column.nullable) and not column.primary_key,
        "primary_key": column.primary_key,
    }
    unit = _unit(column)
    if unit is not None:
        described["unit"] = unit
    if allowed is not None:
        described["allowed_values"] = allowed
    default = _default(column)
    if default is not None:
        described["default"] = default
    if column.computed is not None:
        described["generated"] = str(column.computed.sqltext)
    foreign = [key.target_fullname for key in column.foreign_keys]
    if foreign:
        described["references"] = foreign[0]
    return described


def _default(column: Column[Any]) -> str | None:
    """A literal server default ('0', 'filled'); None for none or a function (the row
    times' strftime)."""
    argument = getattr(column.server_default, "arg", None)
    if isinstance(argument, str):
        return argument
    if isinstance(argument, TextClause):
        return argument.text
    return None


def _sql_type(column: Column[Any]) -> str:
    if isinstance(column.type, ScaledDecimal):
        return column.type.spec.sql
    if isinstance(column.type, Boolean):
        return "BOOLEAN"
    return str(column.type.compile())


def _unit(column: Column[Any]) -> str | None:
    if isinstance(column.type, ScaledDecimal):
        scale = column.type.spec.scale
        return f"exact decimal, {scale} places; a fixed-point string in tradedb's output"
    if column.name in EVENT_TIME_COLUMNS:
        return "epoch milliseconds, UTC"
    if column.name in ROW_TIME_COLUMNS:
        return "epoch seconds, UTC"
    if column.name == "date":
        return "UTC calendar date, YYYY-MM-DD"
    return None


def _allowed_values(table: Table) -> dict[str, list[str]]:
    """The CHECK (column IN (...)) value sets of a table, by column."""
    values: dict[str, list[str]] = {}
    for constraint in table.constraints:
        if not isinstance(constraint, CheckConstraint):
            continue
        match = _ONE_OF.match(str(constraint.sqltext))
        if match:
            values[match.group(1)] = [item.strip().strip("'") for item in match.group(2).split(",")]
    return values
