# ruff: noqa: E501 - the frozen DDL is kept exactly as each engine is given it
"""Where each stream of a live account's sync goes on from (sync_cursors).

One row per exchange, stream (trades, orders, deposits, withdrawals) and scope (a market,
or "account"): the time the next fetch starts from, the exchange's id of the newest item
seen, and when the stream was last synced (docs/live.md).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SYNC_CURSORS_DDL = {
    "sqlite": """
CREATE TABLE sync_cursors (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	exchange TEXT NOT NULL,
	stream TEXT NOT NULL,
	scope TEXT NOT NULL,
	next_since INTEGER NOT NULL,
	last_id TEXT,
	synced_at INTEGER NOT NULL,
	created_at INTEGER DEFAULT (strftime('%s', 'now')),
	CONSTRAINT uq_sync_cursors_exchange_stream_scope UNIQUE (exchange, stream, scope),
	CONSTRAINT ck_sync_cursors_stream CHECK (stream IN ('trades', 'orders', 'deposits', 'withdrawals'))
)
""",
    "postgresql": """
CREATE TABLE sync_cursors (
	id BIGSERIAL NOT NULL,
	exchange TEXT COLLATE "C" NOT NULL,
	stream TEXT COLLATE "C" NOT NULL,
	scope TEXT COLLATE "C" NOT NULL,
	next_since BIGINT NOT NULL,
	last_id TEXT COLLATE "C",
	synced_at BIGINT NOT NULL,
	created_at BIGINT DEFAULT (CAST(floor(EXTRACT(EPOCH FROM now())) AS BIGINT)),
	PRIMARY KEY (id),
	CONSTRAINT uq_sync_cursors_exchange_stream_scope UNIQUE (exchange, stream, scope),
	CONSTRAINT ck_sync_cursors_stream CHECK (stream IN ('trades', 'orders', 'deposits', 'withdrawals'))
)
""",
}


def upgrade() -> None:
    connection = op.get_bind()
    connection.exec_driver_sql(SYNC_CURSORS_DDL[connection.dialect.name])
