# ruff: noqa: E501 - the frozen DDL is kept exactly as each engine is given it
"""Orders submitted through tradedb: crypto_orders gains client_order_id and submission.

- `client_order_id`: the id tradedb sends with an order it submits, stored before the
  request, so that an order whose answer was lost can be found at the exchange by it;
  unique per exchange (uq_crypto_orders_client_order_id);
- `submission`: how the order reached the exchange: NULL (the bot recorded it itself),
  unknown, acknowledged, rejected or adopted (docs/live.md).

Existing orders keep NULL in both. On SQLite the table is rebuilt (as in 0002) so that the
named CHECK stands where a freshly created table has it; on PostgreSQL ALTER TABLE appends
the columns and the constraint, which is where a fresh table has them too.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from tradedb.schema.migrate import rebuild_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CRYPTO_ORDERS_DDL = """
CREATE TABLE crypto_orders (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    order_type TEXT NOT NULL,
    amount BIGINT NOT NULL,
    price BIGINT,
    filled_amount BIGINT DEFAULT 0,
    remaining_amount BIGINT,
    status TEXT DEFAULT 'pending',
    exchange TEXT NOT NULL,
    strategy TEXT,
    timestamp INTEGER NOT NULL,
    filled_at INTEGER,
    canceled_at INTEGER,
    created_at INTEGER DEFAULT (strftime('%s', 'now')),
    updated_at INTEGER DEFAULT (strftime('%s', 'now')),
    locked_amount BIGINT DEFAULT 0 NOT NULL,
    locked_asset TEXT,
    client_order_id TEXT,
    submission TEXT,
    CONSTRAINT ck_crypto_orders_side CHECK (side IN ('buy', 'sell')),
    CONSTRAINT ck_crypto_orders_order_type CHECK (order_type IN ('market', 'limit', 'stop_loss', 'take_profit')),
    CONSTRAINT ck_crypto_orders_status CHECK (status IN ('pending', 'open', 'filled', 'canceled', 'expired')),
    CONSTRAINT ck_crypto_orders_submission CHECK (submission IN ('unknown', 'acknowledged', 'rejected', 'adopted')),
    CONSTRAINT uq_crypto_orders_order_id UNIQUE (order_id),
    CONSTRAINT ck_crypto_orders_amount_integer_units_1e_8 CHECK (typeof(amount) IN ('integer')),
    CONSTRAINT ck_crypto_orders_price_integer_units_1e_8 CHECK (typeof(price) IN ('integer', 'null')),
    CONSTRAINT ck_crypto_orders_filled_amount_integer_units_1e_8 CHECK (typeof(filled_amount) IN ('integer', 'null')),
    CONSTRAINT ck_crypto_orders_remaining_amount_integer_units_1e_8 CHECK (typeof(remaining_amount) IN ('integer', 'null')),
    CONSTRAINT ck_crypto_orders_locked_amount_integer_units_1e_8 CHECK (typeof(locked_amount) IN ('integer'))
)
"""

INDEXES = (
    "CREATE INDEX idx_orders_status ON crypto_orders (status)",
    "CREATE UNIQUE INDEX uq_crypto_orders_client_order_id ON crypto_orders "
    "(exchange, client_order_id) WHERE client_order_id IS NOT NULL",
)

POSTGRESQL = (
    'ALTER TABLE crypto_orders ADD COLUMN client_order_id TEXT COLLATE "C"',
    'ALTER TABLE crypto_orders ADD COLUMN submission TEXT COLLATE "C"',
    "ALTER TABLE crypto_orders ADD CONSTRAINT ck_crypto_orders_submission "
    "CHECK (submission IN ('unknown', 'acknowledged', 'rejected', 'adopted'))",
    INDEXES[1],
)


def upgrade() -> None:
    connection = op.get_bind()
    statements: tuple[str, ...] = POSTGRESQL
    if connection.dialect.name == "sqlite":
        rebuild_table(connection, CRYPTO_ORDERS_DDL)
        statements = INDEXES
    for statement in statements:
        connection.exec_driver_sql(statement)


def downgrade() -> None:
    raise NotImplementedError("tradedb migrations are upgrade-only; restore a backup instead")
