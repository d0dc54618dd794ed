"""Candles of every ccxt timeframe: market_data's timeframe CHECK allows 1m 3m 5m 15m 30m
1h 2h 4h 6h 8h 12h 1d 3d 1w 1M, a superset of the specification's six.

Every stored row satisfies the wider CHECK, so SQLite's table definition is edited in
place instead of copying every candle into a rebuilt table; PostgreSQL replaces the
constraint, which reads the table once to validate it and writes nothing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from tradedb.schema.migrate import relax_table_definition

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SPEC_SIX = "timeframe IN ('1m', '5m', '15m', '1h', '4h', '1d')"
CCXT_STANDARD = (
    "timeframe IN ('1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', "
    "'1d', '3d', '1w', '1M')"
)


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        relax_table_definition(connection, "market_data", [(SPEC_SIX, CCXT_STANDARD)])
        return
    connection.exec_driver_sql(
        "ALTER TABLE market_data DROP CONSTRAINT ck_market_data_timeframe, "
        f"ADD CONSTRAINT ck_market_data_timeframe CHECK ({CCXT_STANDARD})"
    )


def downgrade() -> None:
    raise NotImplementedError("tradedb migrations are upgrade-only; restore a backup instead")
