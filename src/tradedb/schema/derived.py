"""Objects derived from the table definitions: readable views, updated_at triggers and
the triggers that keep the candle read cache (candle_blocks) true to market_data.

They hold no data, so they are dropped and rebuilt from `tables` after every create or
upgrade; no migration ever has to spell them out.
"""

from __future__ import annotations

from sqlalchemy import Table

from tradedb.schema.money import ScaledDecimal
from tradedb.schema.tables import ALL_TABLES, CACHE_TABLES, EPOCH_SECONDS_NOW

VIEW_SUFFIX = "_readable"
TRIGGER_PREFIX = "trg_"


def view_name(table: Table) -> str:
    return f"{table.name}{VIEW_SUFFIX}"


def _fixed_point(column: str, scale: int) -> str:
    """SQL that renders integer units as exact fixed-point text, e.g. 10 -> '0.00000010'."""
    unit = 10**scale
    return (
        f"CASE WHEN {column} IS NULL THEN NULL ELSE printf('%s%d.%0{scale}d', "
        f"CASE WHEN {column} < 0 THEN '-' ELSE '' END, abs({column}) / {unit}, "
        f"abs({column}) % {unit}) END AS {column}"
    )


def readable_view_ddl(table: Table) -> str:
    columns = [
        _fixed_point(column.name, column.type.spec.scale)
        if isinstance(column.type, ScaledDecimal)
        else column.name
        for column in table.columns
    ]
    return f"CREATE VIEW {view_name(table)} AS SELECT {', '.join(columns)} FROM {table.name}"


def updated_at_trigger_ddl(table: Table) -> str:
    # Fires only when the UPDATE itself left updated_at alone, so an explicit value wins,
    # and only when the value would change: a row updated again within the same second
    # (the ledger's wallets, many times a second) then costs no second UPDATE.
    return (
        f"CREATE TRIGGER {TRIGGER_PREFIX}{table.name}_updated_at AFTER UPDATE ON {table.name} "
        "FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at "
        f"AND OLD.updated_at IS NOT CAST({EPOCH_SECONDS_NOW} AS INTEGER) BEGIN "
        f"UPDATE {table.name} SET updated_at = {EPOCH_SECONDS_NOW} WHERE id = NEW.id; END"
    )


def candle_block_trigger_ddl() -> list[str]:
    """Any write to a candle deletes the cached block that spans it, whoever writes it
    (tradedb, retention, or a user's own SQL), in the same transaction."""

    def forget(row: str) -> str:
        return (
            f"DELETE FROM candle_blocks WHERE symbol = {row}.symbol "
            f"AND timeframe = {row}.timeframe AND exchange = {row}.exchange "
            f"AND first_ts <= {row}.timestamp AND end_ts > {row}.timestamp;"
        )

    prefix = f"CREATE TRIGGER {TRIGGER_PREFIX}market_data_blocks"
    return [
        f"{prefix}_insert AFTER INSERT ON market_data BEGIN {forget('NEW')} END",
        f"{prefix}_update AFTER UPDATE ON market_data BEGIN {forget('OLD')} {forget('NEW')} END",
        f"{prefix}_delete AFTER DELETE ON market_data BEGIN {forget('OLD')} END",
    ]


def create_statements(tables: set[str]) -> list[str]:
    """The derived objects of a database holding `tables` (an upgrade to an older
    revision may lack the newer tables)."""
    statements = [readable_view_ddl(table) for table in ALL_TABLES if table.name in tables]
    statements += [
        updated_at_trigger_ddl(table)
        for table in ALL_TABLES
        if "updated_at" in table.columns and table.name in tables
    ]
    if "candle_blocks" in tables:
        statements += candle_block_trigger_ddl()
    # A revision may have rewritten candles while the triggers were gone.
    statements += [f"DELETE FROM {table.name}" for table in CACHE_TABLES if table.name in tables]
    return statements


def drop_statements(existing: list[tuple[str, str]]) -> list[str]:
    """DROP statements for the derived objects among `existing` (type, name) pairs."""
    drops = []
    for kind, name in existing:
        if kind == "view" and name.endswith(VIEW_SUFFIX):
            drops.append(f"DROP VIEW IF EXISTS {name}")
        elif kind == "trigger" and name.startswith(TRIGGER_PREFIX):
            drops.append(f"DROP TRIGGER IF EXISTS {name}")
    return drops
