# ruff: noqa: E501 - the frozen DDL is kept exactly as each engine is given it
"""USD reference prices with their validity period (issue 17, item 1).

`reference_prices` holds an asset's configured USD price together with the period it is
meant for (docs/metrics.md, "Reference prices"). Before this revision a reference price
was a bot_config value `reference_price.<ASSET>` without any period, so a price meant for
January 2018 valued holdings five years later. Each active such value moves into the new
table with both ends of its period open (the old meaning, now visible and editable), its
description as the source, and its bot_config row goes: one place holds reference prices.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from decimal import Decimal

from alembic import op
from sqlalchemy.engine import Connection

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

REFERENCE_PRICES_DDL = {
    "sqlite": """
CREATE TABLE reference_prices (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	asset TEXT NOT NULL,
	price_usd  NOT NULL,
	valid_from INTEGER,
	valid_until INTEGER,
	source TEXT NOT NULL,
	created_at INTEGER DEFAULT (strftime('%s', 'now')),
	updated_at INTEGER DEFAULT (strftime('%s', 'now')),
	CONSTRAINT ck_reference_prices_period CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_until > valid_from),
	CONSTRAINT ck_reference_prices_price_usd_integer_units_1e_8 CHECK (typeof(price_usd) IN ('integer') OR (typeof(price_usd) = 'text' AND length(price_usd) = 38 + (price_usd GLOB '-*') AND ltrim(price_usd, '-') NOT GLOB '*[^0-9]*' AND ltrim(price_usd, '-') >= '00000000000000000009223372036854775808' AND ltrim(price_usd, '-') < '00000000000000000100000000000000000000'))
)
""",
    "postgresql": """
CREATE TABLE reference_prices (
	id BIGSERIAL NOT NULL,
	asset TEXT COLLATE "C" NOT NULL,
	price_usd NUMERIC(20, 8) NOT NULL,
	valid_from BIGINT,
	valid_until BIGINT,
	source TEXT COLLATE "C" NOT NULL,
	created_at BIGINT DEFAULT (CAST(floor(EXTRACT(EPOCH FROM now())) AS BIGINT)),
	updated_at BIGINT DEFAULT (CAST(floor(EXTRACT(EPOCH FROM now())) AS BIGINT)),
	PRIMARY KEY (id),
	CONSTRAINT ck_reference_prices_period CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_until > valid_from),
	CONSTRAINT ck_reference_prices_price_usd_not_nan CHECK (price_usd <> 'NaN')
)
""",
}
INDEX_DDL = "CREATE INDEX idx_reference_prices_asset ON reference_prices (asset, valid_from)"
OLD_PREFIX = "reference_price."


def upgrade() -> None:
    apply(op.get_bind())


def apply(connection: Connection) -> None:
    dialect = connection.dialect.name
    connection.exec_driver_sql(REFERENCE_PRICES_DDL[dialect])
    connection.exec_driver_sql(INDEX_DDL)
    marker = "?" if dialect == "sqlite" else "%s"
    moved = connection.exec_driver_sql(
        "SELECT id, config_key, config_value, description FROM bot_config "
        f"WHERE substr(config_key, 1, {len(OLD_PREFIX)}) = {marker} AND is_active "
        "ORDER BY config_key",
        (OLD_PREFIX,),
    ).all()
    for row_id, key, value, description in moved:
        # bot_config numbers are fixed-point text of at most 8 decimals; SQLite stores the
        # price in units of 1e-8 (tradedb.schema.money), PostgreSQL the NUMERIC itself.
        price = Decimal(value)
        stored: object = int(price.scaleb(8)) if dialect == "sqlite" else price
        source = f"bot_config {key}" + (f": {description}" if description else "")
        connection.exec_driver_sql(
            "INSERT INTO reference_prices (asset, price_usd, source) "
            f"VALUES ({marker}, {marker}, {marker})",
            (key[len(OLD_PREFIX) :], stored, source),
        )
        connection.exec_driver_sql(f"DELETE FROM bot_config WHERE id = {marker}", (row_id,))


def downgrade() -> None:
    raise NotImplementedError("tradedb migrations are upgrade-only; restore a backup instead")
