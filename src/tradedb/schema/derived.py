"""Objects derived from the table definitions: readable views, updated_at triggers and
the triggers that keep the candle read cache (candle_blocks) true to market_data.

They hold no data, so they are dropped and rebuilt from `tables` after every create or
upgrade; no migration ever has to spell them out. Each is written for SQLite and for
PostgreSQL (`dialect` is SQLAlchemy's dialect name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Table

from tradedb.schema.money import OVERFLOW_DIGITS, ScaledDecimal
from tradedb.schema.tables import (
    ALL_TABLES,
    CACHE_TABLES,
    EPOCH_SECONDS_NOW,
    PG_EPOCH_SECONDS_NOW,
)

VIEW_SUFFIX = "_readable"
TRIGGER_PREFIX = "trg_"
# The readable views' columns beside an amount and beside a time (docs/schema.md).
EXACT_SUFFIX = "_exact"
UTC_SUFFIX = "_utc"

# ARCHITECTURE's "Time": when something happened, as ccxt reports it, and tradedb's own
# moments (a sync cursor's, a reference price's period) are epoch milliseconds UTC; the
# spec's row times are epoch seconds. Each gets its ISO 8601 text beside it in the views.
EPOCH_MS_COLUMNS = frozenset(
    {
        "timestamp",
        "opened_at",
        "closed_at",
        "filled_at",
        "canceled_at",
        "last_updated",
        "next_since",
        "synced_at",
        "valid_from",
        "valid_until",
    }
)
EPOCH_SECONDS_COLUMNS = frozenset({"created_at", "updated_at"})

Form = Literal["stored", "number", "exact", "utc"]


@dataclass(frozen=True)
class ReadableColumn:
    """One column of a readable view: `source` (a column of the table) as stored, as a
    number, as exact text or as an ISO 8601 UTC time."""

    name: str
    source: str
    form: Form


def view_name(table: Table) -> str:
    return f"{table.name}{VIEW_SUFFIX}"


def readable_columns(table: Table) -> list[ReadableColumn]:
    """The view's columns in order: every column of the table under its own name, an
    amount as a number with its exact text after it, a time with its ISO text after it."""
    columns = []
    for column in table.columns:
        name = column.name
        if isinstance(column.type, ScaledDecimal):
            columns += [
                ReadableColumn(name, name, "number"),
                ReadableColumn(f"{name}{EXACT_SUFFIX}", name, "exact"),
            ]
        elif name in EPOCH_MS_COLUMNS or name in EPOCH_SECONDS_COLUMNS:
            columns += [
                ReadableColumn(name, name, "stored"),
                ReadableColumn(f"{name}{UTC_SUFFIX}", name, "utc"),
            ]
        else:
            columns.append(ReadableColumn(name, name, "stored"))
    return columns


def fixed_point_sql(units: str, scale: int) -> str:
    """SQLite SQL rendering the units `units` (a column, or an alias of a sum) as exact
    fixed-point text, e.g. 10 -> '0.00000010'; the overflow form (tradedb.schema.money)
    by cutting its digits, never through a float."""
    unit = 10**scale
    digits = f"ltrim({units}, '-')"
    whole_digits = OVERFLOW_DIGITS - scale
    return (
        f"CASE WHEN {units} IS NULL THEN NULL WHEN typeof({units}) = 'text' THEN "
        f"substr({units}, 1, length({units}) - {OVERFLOW_DIGITS}) || "
        f"ltrim(substr({digits}, 1, {whole_digits}), '0') || '.' || "
        f"substr({digits}, {whole_digits + 1}) ELSE printf('%s%d.%0{scale}d', "
        f"CASE WHEN {units} < 0 THEN '-' ELSE '' END, abs({units}) / {unit}, "
        f"abs({units}) % {unit}) END"
    )


def number_sql(units: str, scale: int) -> str:
    """SQLite SQL giving the units `units` as a REAL number, which sorts, compares and
    aggregates as a number (the exact text sorts as text and compares above any number);
    approximate past 15 significant digits. The overflow form casts as its digits do."""
    return f"CAST({units} AS REAL) / 1e{scale}"


def iso_utc_sql(epoch: str, dialect: str = "sqlite", *, milliseconds: bool = True) -> str:
    """SQL giving the epoch time `epoch` (ms, or seconds) as ISO 8601 UTC text,
    '2023-11-14T22:13:20.123Z' (seconds: without the fraction)."""
    if dialect == "sqlite":
        if milliseconds:
            # SQLite rounds a fractional unixepoch to the nearest millisecond.
            return f"strftime('%Y-%m-%dT%H:%M:%fZ', {epoch} / 1000.0, 'unixepoch')"
        return f"strftime('%Y-%m-%dT%H:%M:%SZ', {epoch}, 'unixepoch')"
    # Interval arithmetic from the epoch as a plain timestamp: exact, and UTC whatever
    # the session's time zone.
    step, fraction = ("millisecond", ".MS") if milliseconds else ("second", "")
    pattern = f'YYYY-MM-DD"T"HH24:MI:SS{fraction}"Z"'
    return f"to_char(TIMESTAMP '1970-01-01' + {epoch} * INTERVAL '1 {step}', '{pattern}')"


def _readable_sql(table: Table, column: ReadableColumn, dialect: str) -> str:
    source = column.source
    if column.form == "stored":
        return source
    if column.form == "utc":
        expression = iso_utc_sql(source, dialect, milliseconds=source in EPOCH_MS_COLUMNS)
    elif dialect != "sqlite":
        # NUMERIC is exact and sorts as a number; its text has the same digits.
        if column.form == "number":
            return source
        expression = f"CAST({source} AS TEXT)"
    else:
        amount = table.columns[source].type
        assert isinstance(amount, ScaledDecimal)
        render = number_sql if column.form == "number" else fixed_point_sql
        expression = render(source, amount.spec.scale)
    return f"{expression} AS {column.name}"


def readable_view_ddl(table: Table, dialect: str = "sqlite") -> str:
    """Amounts as numbers that sort and filter as numbers, each with its exact
    fixed-point text beside it (on SQLite a REAL and the text rendered from the units; on
    PostgreSQL the NUMERIC itself and its text); times with their ISO 8601 UTC text."""
    columns = ", ".join(_readable_sql(table, c, dialect) for c in readable_columns(table))
    return f"CREATE VIEW {view_name(table)} AS SELECT {columns} FROM {table.name}"


def updated_at_trigger_ddl(table: Table, dialect: str = "sqlite") -> list[str]:
    # Fires only when the UPDATE itself left updated_at alone, so an explicit value wins,
    # and only when the value would change: a row updated again within the same second
    # (the ledger's wallets, many times a second) then costs no second UPDATE.
    name = f"{TRIGGER_PREFIX}{table.name}_updated_at"
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {name} AFTER UPDATE ON {table.name} "
            "FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at "
            f"AND OLD.updated_at IS NOT CAST({EPOCH_SECONDS_NOW} AS INTEGER) BEGIN "
            f"UPDATE {table.name} SET updated_at = {EPOCH_SECONDS_NOW} WHERE id = NEW.id; END"
        ]
    return [
        f"CREATE TRIGGER {name} BEFORE UPDATE ON {table.name} FOR EACH ROW "
        "WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at) "
        f"EXECUTE FUNCTION {TRIGGER_PREFIX}touch_updated_at()"
    ]


def _pg_touch_function() -> str:
    return (
        f"CREATE FUNCTION {TRIGGER_PREFIX}touch_updated_at() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"NEW.updated_at := {PG_EPOCH_SECONDS_NOW}; RETURN NEW; END $$"
    )


def candle_block_trigger_ddl(dialect: str = "sqlite") -> list[str]:
    """Any write to a candle deletes the cached block that spans it, whoever writes it
    (tradedb, retention, or a user's own SQL), in the same transaction."""
    prefix = f"{TRIGGER_PREFIX}market_data_blocks"
    if dialect != "sqlite":
        return _pg_candle_block_triggers(prefix)

    def forget(row: str) -> str:
        return (
            f"DELETE FROM candle_blocks WHERE symbol = {row}.symbol "
            f"AND timeframe = {row}.timeframe AND exchange = {row}.exchange "
            f"AND first_ts <= {row}.timestamp AND end_ts > {row}.timestamp;"
        )

    return [
        f"CREATE TRIGGER {prefix}_insert AFTER INSERT ON market_data BEGIN {forget('NEW')} END",
        f"CREATE TRIGGER {prefix}_update AFTER UPDATE ON market_data "
        f"BEGIN {forget('OLD')} {forget('NEW')} END",
        f"CREATE TRIGGER {prefix}_delete AFTER DELETE ON market_data BEGIN {forget('OLD')} END",
    ]


def _pg_candle_block_triggers(prefix: str) -> list[str]:
    """Statement triggers over the statement's transition tables: a COPY of a million
    candles forgets the blocks it touched in one DELETE, not a million. A candle's block
    starts at its time rounded down to the span its market's blocks have."""

    def forget(rows: str) -> str:
        return (
            "WITH spans AS (SELECT DISTINCT b.symbol, b.timeframe, b.exchange, "
            "b.end_ts - b.first_ts AS span FROM candle_blocks b JOIN (SELECT DISTINCT "
            f"symbol, timeframe, exchange FROM {rows}) m USING (symbol, timeframe, exchange)), "
            "touched AS (SELECT DISTINCT c.symbol, c.timeframe, c.exchange, "
            f"c.timestamp - mod(c.timestamp, s.span) AS first_ts FROM {rows} c "
            "JOIN spans s USING (symbol, timeframe, exchange)) "
            "DELETE FROM candle_blocks b USING touched t WHERE b.symbol = t.symbol "
            "AND b.timeframe = t.timeframe AND b.exchange = t.exchange "
            "AND b.first_ts = t.first_ts;"
        )

    statements = []
    for event, tables, body in (
        ("INSERT", "NEW TABLE AS new_rows", forget("new_rows")),
        ("DELETE", "OLD TABLE AS old_rows", forget("old_rows")),
        (
            "UPDATE",
            "OLD TABLE AS old_rows NEW TABLE AS new_rows",
            forget("old_rows") + " " + forget("new_rows"),
        ),
    ):
        name = f"{prefix}_{event.lower()}"
        statements += [
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"{body} RETURN NULL; END $$",
            f"CREATE TRIGGER {name} AFTER {event} ON market_data REFERENCING {tables} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
        ]
    # TRUNCATE fires no DELETE trigger, and without this one the blocks of the candles it
    # removed would still be read. SQLite has no TRUNCATE (its DELETE fires the triggers).
    name = f"{prefix}_truncate"
    statements += [
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "DELETE FROM candle_blocks; RETURN NULL; END $$",
        f"CREATE TRIGGER {name} AFTER TRUNCATE ON market_data "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
    ]
    return statements


def create_statements(dialect: str, tables: set[str]) -> list[str]:
    """The derived objects of a database holding `tables` (an upgrade to an older
    revision may lack the newer tables)."""
    present = [table for table in ALL_TABLES if table.name in tables]
    statements = [readable_view_ddl(table, dialect) for table in present]
    touched = [table for table in present if "updated_at" in table.columns]
    if touched and dialect != "sqlite":
        statements.append(_pg_touch_function())
    for table in touched:
        statements += updated_at_trigger_ddl(table, dialect)
    if "candle_blocks" in tables:
        statements += candle_block_trigger_ddl(dialect)
    # A revision may have rewritten candles while the triggers were gone.
    statements += [f"DELETE FROM {table.name}" for table in CACHE_TABLES if table.name in tables]
    return statements


def existing_objects_sql(dialect: str) -> str:
    """SQL listing (type, name) of the views, triggers and trigger functions there are."""
    if dialect == "sqlite":
        return "SELECT type, name FROM sqlite_master WHERE type IN ('view', 'trigger')"
    return (
        "SELECT 'view', viewname FROM pg_views WHERE schemaname = current_schema() "
        "UNION ALL SELECT 'function', p.proname FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema()"
    )


def drop_statements(dialect: str, existing: list[tuple[str, str]]) -> list[str]:
    """DROP statements for the derived objects among `existing` (type, name) pairs. On
    PostgreSQL dropping a trigger function drops its triggers with it."""
    drops = []
    for kind, name in existing:
        if kind == "view" and name.endswith(VIEW_SUFFIX):
            drops.append(f"DROP VIEW IF EXISTS {name}")
        elif kind == "trigger" and name.startswith(TRIGGER_PREFIX):
            drops.append(f"DROP TRIGGER IF EXISTS {name}")
        elif kind == "function" and name.startswith(TRIGGER_PREFIX):
            drops.append(f"DROP FUNCTION IF EXISTS {name}() CASCADE")
    return drops
