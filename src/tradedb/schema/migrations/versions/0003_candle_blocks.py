# ruff: noqa: E501 - the frozen DDL is kept exactly as SQLite stores it
"""The candle read cache (candle_blocks) and an index on candles by exchange.

Compressed blocks of one market's candles, read instead of row by row (docs/schema.md).
The spec's candle index (symbol, timeframe, timestamp) leaves out the exchange; the new
index (exchange, symbol, timeframe, timestamp) serves one market's reads and its newest
candle without stepping over other exchanges' rows. The table holds derived data only; its triggers on market_data are derived objects,
rebuilt after every upgrade, and every upgrade clears the blocks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CANDLE_BLOCKS_DDL = """
CREATE TABLE candle_blocks (
    id INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    exchange TEXT NOT NULL,
    first_ts INTEGER NOT NULL,
    end_ts INTEGER NOT NULL,
    candles INTEGER,
    data BLOB,
    builder INTEGER,
    PRIMARY KEY (id),
    CONSTRAINT uq_candle_blocks_symbol_timeframe_exchange_first_ts UNIQUE (symbol, timeframe, exchange, first_ts)
)
"""


MARKET_INDEX_DDL = (
    "CREATE INDEX idx_market_data_exchange_symbol_timeframe "
    "ON market_data (exchange, symbol, timeframe, timestamp)"
)


def upgrade() -> None:
    connection = op.get_bind()
    connection.exec_driver_sql(CANDLE_BLOCKS_DDL)
    connection.exec_driver_sql(MARKET_INDEX_DDL)
