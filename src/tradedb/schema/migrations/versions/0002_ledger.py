# ruff: noqa: E501 - the frozen DDL is kept exactly as SQLite stores it
"""The ledger: order reservations, per-position fees and trades, the wallet journal.

- crypto_orders gains locked_amount and locked_asset (what an open order still reserves);
- positions gains open_fees (fees of the part still held, charged when it closes);
- trades gains position_id (the position the fill realised into or opened);
- the new wallet_movements journal explains every wallet balance; each existing wallet
  gets one 'opening' movement holding its balances, so the journal sums match from here on;
- at most one open position per (exchange, symbol, strategy).

The DDL is frozen here as it stood at this revision, so that later changes to
`tradedb.schema.tables` cannot change what this step does. ALTER TABLE ADD COLUMN would
append the new columns with column-level constraints, leaving a table that differs from a
freshly created one (named table constraints, their order); so the three tables are
rebuilt instead: created under a temporary name, filled, swapped in (rows, ids and
AUTOINCREMENT counters kept). An upgraded database is then identical to a new one.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import Connection

from tradedb.errors import SchemaVersionError
from tradedb.schema.migrate import rebuild_table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# SQLite's line breaks and tabs in the DDL are kept out of the comparison with a fresh
# database (tests normalise whitespace), but the words and their order are exact.

TRADES_DDL = """
CREATE TABLE trades (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    amount BIGINT NOT NULL,
    price BIGINT NOT NULL,
    total_value BIGINT NOT NULL,
    fee BIGINT DEFAULT 0,
    fee_currency TEXT,
    timestamp INTEGER NOT NULL,
    exchange TEXT NOT NULL,
    order_id TEXT,
    strategy TEXT,
    status TEXT DEFAULT 'filled',
    profit_loss BIGINT,
    created_at INTEGER DEFAULT (strftime('%s', 'now')),
    updated_at INTEGER DEFAULT (strftime('%s', 'now')),
    exchange_trade_id TEXT,
    position_id INTEGER,
    CONSTRAINT ck_trades_side CHECK (side IN ('buy', 'sell')),
    CONSTRAINT ck_trades_status CHECK (status IN ('filled', 'partial', 'canceled')),
    FOREIGN KEY(position_id) REFERENCES positions (id),
    CONSTRAINT ck_trades_amount_integer_units_1e_8 CHECK (typeof(amount) IN ('integer')),
    CONSTRAINT ck_trades_price_integer_units_1e_8 CHECK (typeof(price) IN ('integer')),
    CONSTRAINT ck_trades_total_value_integer_units_1e_8 CHECK (typeof(total_value) IN ('integer')),
    CONSTRAINT ck_trades_fee_integer_units_1e_8 CHECK (typeof(fee) IN ('integer', 'null')),
    CONSTRAINT ck_trades_profit_loss_integer_units_1e_8 CHECK (typeof(profit_loss) IN ('integer', 'null'))
)
"""

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
    CONSTRAINT ck_crypto_orders_side CHECK (side IN ('buy', 'sell')),
    CONSTRAINT ck_crypto_orders_order_type CHECK (order_type IN ('market', 'limit', 'stop_loss', 'take_profit')),
    CONSTRAINT ck_crypto_orders_status CHECK (status IN ('pending', 'open', 'filled', 'canceled', 'expired')),
    CONSTRAINT uq_crypto_orders_order_id UNIQUE (order_id),
    CONSTRAINT ck_crypto_orders_amount_integer_units_1e_8 CHECK (typeof(amount) IN ('integer')),
    CONSTRAINT ck_crypto_orders_price_integer_units_1e_8 CHECK (typeof(price) IN ('integer', 'null')),
    CONSTRAINT ck_crypto_orders_filled_amount_integer_units_1e_8 CHECK (typeof(filled_amount) IN ('integer', 'null')),
    CONSTRAINT ck_crypto_orders_remaining_amount_integer_units_1e_8 CHECK (typeof(remaining_amount) IN ('integer', 'null')),
    CONSTRAINT ck_crypto_orders_locked_amount_integer_units_1e_8 CHECK (typeof(locked_amount) IN ('integer'))
)
"""

POSITIONS_DDL = """
CREATE TABLE positions (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    amount BIGINT NOT NULL,
    entry_price BIGINT NOT NULL,
    current_price BIGINT,
    unrealized_pnl BIGINT DEFAULT 0,
    realized_pnl BIGINT DEFAULT 0,
    status TEXT DEFAULT 'open',
    exchange TEXT NOT NULL,
    strategy TEXT,
    opened_at INTEGER NOT NULL,
    closed_at INTEGER,
    created_at INTEGER DEFAULT (strftime('%s', 'now')),
    updated_at INTEGER DEFAULT (strftime('%s', 'now')),
    open_fees BIGINT DEFAULT 0 NOT NULL,
    CONSTRAINT ck_positions_side CHECK (side IN ('long', 'short')),
    CONSTRAINT ck_positions_status CHECK (status IN ('open', 'closed')),
    CONSTRAINT ck_positions_amount_integer_units_1e_8 CHECK (typeof(amount) IN ('integer')),
    CONSTRAINT ck_positions_entry_price_integer_units_1e_8 CHECK (typeof(entry_price) IN ('integer')),
    CONSTRAINT ck_positions_current_price_integer_units_1e_8 CHECK (typeof(current_price) IN ('integer', 'null')),
    CONSTRAINT ck_positions_unrealized_pnl_integer_units_1e_8 CHECK (typeof(unrealized_pnl) IN ('integer', 'null')),
    CONSTRAINT ck_positions_realized_pnl_integer_units_1e_8 CHECK (typeof(realized_pnl) IN ('integer', 'null')),
    CONSTRAINT ck_positions_open_fees_integer_units_1e_8 CHECK (typeof(open_fees) IN ('integer'))
)
"""

WALLET_MOVEMENTS_DDL = """
CREATE TABLE wallet_movements (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    exchange TEXT NOT NULL,
    asset TEXT NOT NULL,
    kind TEXT NOT NULL,
    available_change BIGINT DEFAULT 0 NOT NULL,
    locked_change BIGINT DEFAULT 0 NOT NULL,
    trade_id INTEGER,
    order_id TEXT,
    reference TEXT,
    timestamp INTEGER NOT NULL,
    created_at INTEGER DEFAULT (strftime('%s', 'now')),
    CONSTRAINT ck_wallet_movements_kind CHECK (kind IN ('opening', 'deposit', 'withdrawal', 'lock', 'unlock', 'trade', 'fee', 'sync')),
    FOREIGN KEY(trade_id) REFERENCES trades (id),
    CONSTRAINT ck_wallet_movements_available_change_integer_units_1e_8 CHECK (typeof(available_change) IN ('integer')),
    CONSTRAINT ck_wallet_movements_locked_change_integer_units_1e_8 CHECK (typeof(locked_change) IN ('integer'))
)
"""

INDEXES = (
    "CREATE INDEX idx_trades_strategy_timestamp ON trades (strategy, timestamp)",
    "CREATE INDEX idx_trades_symbol_timestamp ON trades (symbol, timestamp)",
    "CREATE UNIQUE INDEX uq_trades_exchange_trade_id ON trades (exchange, exchange_trade_id)",
    "CREATE INDEX idx_orders_status ON crypto_orders (status)",
    "CREATE INDEX idx_positions_status ON positions (status)",
    "CREATE UNIQUE INDEX uq_positions_open_key ON positions "
    "(exchange, symbol, coalesce(strategy, '')) WHERE status = 'open'",
    "CREATE UNIQUE INDEX uq_wallet_movements_reference ON wallet_movements "
    "(exchange, kind, reference) WHERE reference IS NOT NULL",
)


def upgrade() -> None:
    connection = op.get_bind()
    _refuse_two_open_positions_per_key(connection)
    for ddl in (POSITIONS_DDL, TRADES_DDL, CRYPTO_ORDERS_DDL):
        rebuild_table(connection, ddl)
    connection.exec_driver_sql(WALLET_MOVEMENTS_DDL)
    for statement in INDEXES:
        connection.exec_driver_sql(statement)
    connection.exec_driver_sql(
        "INSERT INTO wallet_movements (exchange, asset, kind, available_change, locked_change, "
        "timestamp) SELECT exchange, asset, 'opening', available_balance, locked_balance, "
        "last_updated FROM wallets ORDER BY id"
    )


def _refuse_two_open_positions_per_key(connection: Connection) -> None:
    """Revision 0001 allowed several open positions per (exchange, symbol, strategy); the
    new unique index does not. Say which ones, rather than failing inside CREATE INDEX."""
    clashes = connection.exec_driver_sql(
        "SELECT exchange, symbol, strategy, group_concat(id, ', ') FROM positions "
        "WHERE status = 'open' GROUP BY exchange, symbol, coalesce(strategy, '') "
        "HAVING count(*) > 1"
    ).all()
    if clashes:
        listed = "; ".join(
            f"{exchange} {symbol} strategy {strategy or '(none)'}: ids {ids}"
            for exchange, symbol, strategy, ids in clashes
        )
        raise SchemaVersionError(
            "cannot upgrade to schema 0002: it allows one open position per exchange, "
            f"symbol and strategy, and these have several ({listed}); close or merge "
            "them, then run `tradedb init` again"
        )


def downgrade() -> None:
    raise NotImplementedError("tradedb migrations are upgrade-only; restore a backup instead")
