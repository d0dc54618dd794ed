"""The rest of ccxt's unified ticker in `tickers` (issue 17, item 5): open, high, low, vwap,
quote volume, the best bid's and ask's volumes and the previous close, as nullable
columns after `created_at` (docs/schema.md says why).

Existing rows get NULL in every new column: they were recorded without these values.
SQLite: appending nullable columns with no default changes no stored row (it is what
ALTER TABLE ADD COLUMN does), so the table definition is edited in place, as 0006 and 0007
do, with each column's storage guard among the table's other constraints where a new
database has it. PostgreSQL: ALTER TABLE ADD COLUMN, with each column's NaN guard.

The new definitions are spelt out here, as they stood at this revision, so that later
changes to tables.py cannot change what this step does.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from tradedb.schema.migrate import relax_table_definition

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# (column, precision) in table order, all with scale 8 and nullable.
COLUMNS = (
    ("open_price", 20),
    ("high_price", 20),
    ("low_price", 20),
    ("vwap", 20),
    ("quote_volume_24h", 38),
    ("bid_volume", 38),
    ("ask_volume", 38),
    ("previous_close", 20),
)

OVERFLOW_DIGITS = 38
OVERFLOW_FLOOR = str(2**63).zfill(OVERFLOW_DIGITS)
LAST_COLUMN = "created_at INTEGER DEFAULT (strftime('%s', 'now')),"
LAST_GUARD = "CHECK (typeof(price_change_percent_24h) IN ('integer', 'null'))"


def _sqlite_guard(column: str, precision: int) -> str:
    limit = str(10**precision).zfill(OVERFLOW_DIGITS)
    digits = f"ltrim({column}, '-')"
    return (
        f"CONSTRAINT ck_tickers_{column}_integer_units_1e_8 CHECK (typeof({column}) IN "
        f"('integer', 'null') OR (typeof({column}) = 'text' AND length({column}) = "
        f"{OVERFLOW_DIGITS} + ({column} GLOB '-*') AND {digits} NOT GLOB '*[^0-9]*' AND "
        f"{digits} >= '{OVERFLOW_FLOOR}' AND {digits} < '{limit}'))"
    )


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        columns = "".join(f"\n\t{column} , " for column, _ in COLUMNS)
        guards = "".join(f", \n\t{_sqlite_guard(column, p)}" for column, p in COLUMNS)
        relax_table_definition(
            connection,
            "tickers",
            [(LAST_COLUMN, LAST_COLUMN + columns), (LAST_GUARD, LAST_GUARD + guards)],
        )
        return
    changes = [f"ADD COLUMN {column} NUMERIC({p}, 8)" for column, p in COLUMNS]
    changes += [
        f"ADD CONSTRAINT ck_tickers_{column}_not_nan CHECK ({column} <> 'NaN')"
        for column, _ in COLUMNS
    ]
    connection.exec_driver_sql(f"ALTER TABLE tickers {', '.join(changes)}")


def downgrade() -> None:
    raise NotImplementedError("tradedb migrations are upgrade-only; restore a backup instead")
