"""The SQL behind the spec's `usd_value` columns of wallets and balance_history: what is
held and what history is still unvalued, and the values written back.

The writes run in the caller's write transaction, so that the values of one account are
filled all at once or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from tradedb.models.values import AMOUNT
from tradedb.store.database import Database

SCALE = AMOUNT.scale
COLUMN = "usd_value"


@dataclass(frozen=True)
class WalletValue:
    """One wallet's total balance and the USD value stored for it (None: none yet)."""

    asset: str
    total: Decimal
    usd_value: Decimal | None


@dataclass(frozen=True)
class UnvaluedHistory:
    """A balance_history row whose usd_value is still NULL."""

    id: int
    asset: str
    balance: Decimal
    timestamp: int


class UsdValueRecords:
    """Reads and writes of wallets.usd_value and balance_history.usd_value."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._in = partial(db.dialect.amount_in, scale=SCALE, column=COLUMN)
        self._out = partial(db.dialect.amount_out, scale=SCALE)

    @property
    def limit(self) -> Decimal:
        """The largest USD value the columns hold on this engine."""
        return AMOUNT.largest

    # --- reads ---------------------------------------------------------------------------

    def last_history_id(self) -> int:
        """The newest balance_history id, 0 when there is none. Ids only grow (SQLite's
        AUTOINCREMENT, PostgreSQL's sequence), so rows written later have larger ones."""
        newest = self.db.connection.execute("SELECT max(id) FROM balance_history").fetchone()[0]
        return 0 if newest is None else int(newest)

    def wallets(self, exchange: str) -> list[WalletValue]:
        rows = self.db.connection.execute(
            "SELECT asset, total_balance, usd_value FROM wallets WHERE exchange = ? ORDER BY asset",
            (exchange,),
        ).fetchall()
        return [
            WalletValue(asset, self._out(total), None if usd is None else self._out(usd))
            for asset, total, usd in rows
        ]

    def unvalued_history(self, exchange: str, after_id: int) -> list[UnvaluedHistory]:
        rows = self.db.connection.execute(
            "SELECT id, asset, balance, timestamp FROM balance_history "
            "WHERE exchange = ? AND id > ? AND usd_value IS NULL ORDER BY id",
            (exchange, after_id),
        ).fetchall()
        return [
            UnvaluedHistory(int(row_id), asset, self._out(balance), int(timestamp))
            for row_id, asset, balance, timestamp in rows
        ]

    # --- writes --------------------------------------------------------------------------

    def set_wallet_values(self, exchange: str, values: Mapping[str, Decimal | None]) -> None:
        """Store each asset's USD value (None clears it). The caller passes only values
        that changed: updated_at moves with every update, and an unchanged value must not
        look like news."""
        self.db.require_write("set_wallet_values")
        if not values:
            return
        self.db.connection.executemany(
            "UPDATE wallets SET usd_value = ?, "
            f"updated_at = {self.db.dialect.epoch_seconds_now} WHERE exchange = ? AND asset = ?",
            [
                (None if value is None else self._in(value), exchange, asset)
                for asset, value in values.items()
            ],
        )

    def set_history_values(self, values: Mapping[int, Decimal]) -> None:
        """Store USD values of balance_history rows by id; a row valued meanwhile (by a
        concurrent run) keeps the value it has."""
        self.db.require_write("set_history_values")
        if not values:
            return
        self.db.connection.executemany(
            "UPDATE balance_history SET usd_value = ? WHERE id = ? AND usd_value IS NULL",
            [(self._in(value), row_id) for row_id, value in values.items()],
        )
