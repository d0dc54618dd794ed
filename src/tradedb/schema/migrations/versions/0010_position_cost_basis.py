"""Each position's cost basis (issue 17, item 9): `positions.cost_basis`.

P&L was measured against the average entry price, quantized to 8 decimals, while cash moved
by each fill's own quantized value; the two roundings left a strategy's equity up to a few
units of 1e-8 away from its capital plus realised and unrealised P&L. The cost basis is
the quote value of the amount still held, kept exactly, and P&L is measured against it
(services.ledger.positions). Existing open positions start from amount x entry price,
half-even, the best their stored columns give; closed ones hold nothing (0).

SQLite appends the column and its storage guard to the table definition in place (a NOT
NULL column with a default reads as that default in existing rows, as ADD COLUMN does);
PostgreSQL adds it with ALTER TABLE, with its NaN guard.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from alembic import op
from sqlalchemy.engine import Connection

from tradedb.schema.migrate import relax_table_definition

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _guard(column: str) -> str:
    return (
        f"CONSTRAINT ck_positions_{column}_integer_units_1e_8 CHECK (typeof({column}) IN "
        f"('integer') OR (typeof({column}) = 'text' AND length({column}) = 38 + ({column} "
        f"GLOB '-*') AND ltrim({column}, '-') NOT GLOB '*[^0-9]*' AND ltrim({column}, '-') >= "
        f"'00000000000000000009223372036854775808' AND ltrim({column}, '-') < "
        "'00000000000000000100000000000000000000'))"
    )


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "sqlite":
        relax_table_definition(
            connection,
            "positions",
            [
                (
                    "open_fees  DEFAULT 0 NOT NULL,",
                    "open_fees  DEFAULT 0 NOT NULL,\n\tcost_basis  DEFAULT 0 NOT NULL,",
                ),
                (_guard("open_fees"), f"{_guard('open_fees')},\n\t{_guard('cost_basis')}"),
            ],
        )
    else:
        connection.exec_driver_sql(
            "ALTER TABLE positions ADD COLUMN cost_basis NUMERIC(20, 8) DEFAULT 0 NOT NULL, "
            "ADD CONSTRAINT ck_positions_cost_basis_not_nan CHECK (cost_basis <> 'NaN')"
        )
    _open_positions_from_their_entry_price(connection)


def _open_positions_from_their_entry_price(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    marker = "?" if sqlite else "%s"
    rows = connection.exec_driver_sql(
        "SELECT id, amount, entry_price FROM positions WHERE status = 'open'"
    ).all()
    for row_id, stored_amount, stored_price in rows:
        amount, price = (
            (Decimal(int(v)).scaleb(-8) for v in (stored_amount, stored_price))
            if sqlite  # integer units of 1e-8, or past int64 their zero-padded text
            else (stored_amount, stored_price)
        )
        cost = (amount * price).quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN)
        stored: object = cost
        if sqlite:
            units = int(cost.scaleb(8))
            stored = units if abs(units) < 2**63 else f"{'-' if units < 0 else ''}{abs(units):038d}"
        connection.exec_driver_sql(
            f"UPDATE positions SET cost_basis = {marker} WHERE id = {marker}", (stored, row_id)
        )


def downgrade() -> None:
    raise NotImplementedError("tradedb migrations are upgrade-only; restore a backup instead")
