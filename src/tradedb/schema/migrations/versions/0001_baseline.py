"""Baseline: the specification's 11 tables and 9 indexes, plus tradedb's documented extras.

A new database is built straight from `tradedb.schema.tables` and stamped with the newest
revision, so this baseline has nothing to do. Every later revision transforms a database
that already exists at the revision before it, holding data.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    raise NotImplementedError("tradedb migrations are upgrade-only; restore a backup instead")
