"""Objects derived from the table definitions: readable views, updated_at triggers and
the triggers that keep the candle read cache (candle_blocks) true to market_data.

They hold no data, so they are dropped and rebuilt from `tables` after every create or
upgrade; no migration ever has to spell them out. Each is written for SQLite and for
PostgreSQL (`dialect` is SQLAlchemy's dialect name).
"""

from __future__ import annotations

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


def view_name(table: Table) -> str:
    return f"{table.name}{VIEW_SUFFIX}"


def _fixed_point(column: str, scale: int) -> str:
    """SQL that renders stored units as exact fixed-point text, e.g. 10 -> '0.00000010';
    the overflow form (tradedb.schema.money) by cutting its digits, never through a
    float."""
    unit = 10**scale
    digits = f"ltrim({column}, '-')"
    whole_digits = OVERFLOW_DIGITS - scale
    return (
        f"CASE WHEN {column} IS NULL THEN NULL WHEN typeof({column}) = 'text' THEN "
        f"substr({column}, 1, length({column}) - {OVERFLOW_DIGITS}) || "
        f"ltrim(substr({digits}, 1, {whole_digits}), '0') || '.' || "
        f"substr({digits}, {whole_digits + 1}) ELSE printf('%s%d.%0{scale}d', "
        f"CASE WHEN {column} < 0 THEN '-' ELSE '' END, abs({column}) / {unit}, "
        f"abs({column}) % {unit}) END AS {column}"
    )


def readable_view_ddl(table: Table, dialect: str = "sqlite") -> str:
    """Amounts as exact fixed-point text: on SQLite rendered from the units, on
    PostgreSQL the NUMERIC's own text (the same digits)."""
    columns = []
    for column in table.columns:
        if not isinstance(column.type, ScaledDecimal):
            columns.append(column.name)
        elif dialect == "sqlite":
            columns.append(_fixed_point(column.name, column.type.spec.scale))
        else:
            columns.append(f"CAST({column.name} AS TEXT) AS {column.name}")
    return f"CREATE VIEW {view_name(table)} AS SELECT {', '.join(columns)} FROM {table.name}"


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
