"""Amounts past 64-bit integers (issue 16, item 1): meme-coin volumes and large balances.

- Volumes: `market_data.volume` and `tickers.volume_24h` become DECIMAL(38,8). The spec's
  DECIMAL(20,8) stops below 10^12, while SHIB's and PEPE's daily volumes run to trillions
  of coins. PostgreSQL changes their type to NUMERIC(38,8), rewriting those two tables.
- SQLite: every amount column loses its declared type (BIGINT, INTEGER affinity, would turn
  the digits of a value past int64 into a float) and its storage guard also accepts the
  overflow form (tradedb.schema.money) below the column's precision; `total_balance` adds
  balances past int64 exactly. Every stored row stays valid and keeps its stored format,
  so the table definitions are edited in place, as 0006 does, instead of copying rows.

The new definitions are spelt out here, as they stood at this revision, so that later
changes to tables.py cannot change what this step does.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from tradedb.schema.migrate import relax_table_definition

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Per table, its amount columns: (name, precision) at this revision; scale 8 unless noted.
AMOUNT_COLUMNS = {
    "trades": ("amount", "price", "total_value", "fee", "profit_loss"),
    "crypto_orders": ("amount", "price", "filled_amount", "remaining_amount", "locked_amount"),
    "positions": (
        "amount",
        "entry_price",
        "current_price",
        "unrealized_pnl",
        "realized_pnl",
        "open_fees",
    ),
    "market_data": ("open_price", "high_price", "low_price", "close_price", "volume"),
    "tickers": (
        "bid_price",
        "ask_price",
        "last_price",
        "volume_24h",
        "price_change_24h",
        "price_change_percent_24h",
    ),
    "performance_metrics": (
        "total_portfolio_value",
        "daily_pnl",
        "daily_pnl_percent",
        "win_rate",
        "sharpe_ratio",
        "max_drawdown",
    ),
    "portfolio_snapshots": ("amount", "usd_value", "price_per_unit"),
    "wallets": ("available_balance", "locked_balance", "total_balance", "usd_value"),
    "balance_history": ("balance", "usd_value"),
    "wallet_movements": ("available_change", "locked_change"),
}
NULLABLE = {
    "trades": {"fee", "profit_loss"},
    "crypto_orders": {"price", "filled_amount", "remaining_amount"},
    "positions": {"current_price", "unrealized_pnl", "realized_pnl"},
    "tickers": {
        "bid_price",
        "ask_price",
        "volume_24h",
        "price_change_24h",
        "price_change_percent_24h",
    },
    "performance_metrics": {
        "daily_pnl",
        "daily_pnl_percent",
        "win_rate",
        "sharpe_ratio",
        "max_drawdown",
    },
    "wallets": {"total_balance", "usd_value"},
    "balance_history": {"usd_value"},
}
VOLUMES = {("market_data", "volume"), ("tickers", "volume_24h")}
# DECIMAL(10,4): every value fits int64, so their guards stay as they were.
PERCENTS = {
    "price_change_percent_24h",
    "daily_pnl_percent",
    "win_rate",
    "sharpe_ratio",
    "max_drawdown",
}

OVERFLOW_DIGITS = 38
OVERFLOW_FLOOR = str(2**63).zfill(OVERFLOW_DIGITS)
OLD_TOTAL = "total_balance BIGINT GENERATED ALWAYS AS (available_balance + locked_balance)"
NEW_TOTAL = "total_balance GENERATED ALWAYS AS ({})".format(
    "CASE WHEN typeof(available_balance) = 'integer' AND typeof(locked_balance) = "
    "'integer' AND typeof(available_balance + locked_balance) = 'integer' THEN "
    "available_balance + locked_balance ELSE printf('%028d%010d', (CASE WHEN "
    "typeof(available_balance) = 'integer' THEN available_balance / 10000000000 ELSE "
    "CAST(substr(available_balance, 1, length(available_balance) - 10) AS INTEGER) END) + "
    "(CASE WHEN typeof(locked_balance) = 'integer' THEN locked_balance / 10000000000 ELSE "
    "CAST(substr(locked_balance, 1, length(locked_balance) - 10) AS INTEGER) END) + "
    "((CASE WHEN typeof(available_balance) = 'integer' THEN available_balance % "
    "10000000000 ELSE CAST(substr(available_balance, -10) AS INTEGER) END) + (CASE WHEN "
    "typeof(locked_balance) = 'integer' THEN locked_balance % 10000000000 ELSE "
    "CAST(substr(locked_balance, -10) AS INTEGER) END)) / 10000000000, ((CASE WHEN "
    "typeof(available_balance) = 'integer' THEN available_balance % 10000000000 ELSE "
    "CAST(substr(available_balance, -10) AS INTEGER) END) + (CASE WHEN "
    "typeof(locked_balance) = 'integer' THEN locked_balance % 10000000000 ELSE "
    "CAST(substr(locked_balance, -10) AS INTEGER) END)) % 10000000000) END"
)


def _guard(table: str, column: str) -> tuple[str, str]:
    kinds = "'integer', 'null'" if column in NULLABLE.get(table, ()) else "'integer'"
    old = f"CHECK (typeof({column}) IN ({kinds}))"
    if column in PERCENTS:
        return old, old
    precision = 38 if (table, column) in VOLUMES else 20
    limit = str(10**precision).zfill(OVERFLOW_DIGITS)
    digits = f"ltrim({column}, '-')"
    new = (
        f"CHECK (typeof({column}) IN ({kinds}) OR (typeof({column}) = 'text' AND "
        f"length({column}) = {OVERFLOW_DIGITS} + ({column} GLOB '-*') AND {digits} NOT GLOB "
        f"'*[^0-9]*' AND {digits} >= '{OVERFLOW_FLOOR}' AND {digits} < '{limit}'))"
    )
    return old, new


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        for table, column in sorted(VOLUMES):
            connection.exec_driver_sql(
                f"ALTER TABLE {table} ALTER COLUMN {column} TYPE NUMERIC(38, 8)"
            )
        return
    for table, columns in AMOUNT_COLUMNS.items():
        edits: list[tuple[str, str]] = [(OLD_TOTAL, NEW_TOTAL)] if table == "wallets" else []
        for column in columns:
            if (table, column) != ("wallets", "total_balance"):
                edits.append((f"{column} BIGINT", f"{column} "))
            old, new = _guard(table, column)
            if old != new:
                edits.append((old, new))
        relax_table_definition(connection, table, edits)


def downgrade() -> None:
    raise NotImplementedError("tradedb migrations are upgrade-only; restore a backup instead")
