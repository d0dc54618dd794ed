"""The ledger's SQL: lookups by business key, wallet changes with their journal and
history, and the sums the ledger's invariants are checked against.

Every method runs on the calling thread's connection, inside the transaction the ledger
service opened, so that one ledger operation is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, partial
from typing import Any

from tradedb.errors import AmountOutOfRange
from tradedb.models import (
    Order,
    OrderCreate,
    Position,
    PositionCreate,
    Trade,
    TradeCreate,
    Wallet,
    WalletCreate,
    WalletMovement,
    WalletMovementCreate,
)
from tradedb.models.values import AMOUNT, format_plain
from tradedb.store.database import Database
from tradedb.store.repository import Repository

SCALE = AMOUNT.scale


@dataclass(frozen=True)
class WalletChange:
    """One journal line: a signed change of one wallet's available and locked funds."""

    asset: str
    kind: str
    available: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)
    order_id: str | None = None
    reference: str | None = None


class BalanceOutOfRange(AmountOutOfRange):
    """A wallet change, or the balance it would lead to, beyond what the wallet's column
    holds; nothing was written. The ledger reports it in its caller's terms (the amount
    given), so the column's name here is only for a caller of the store itself."""

    def __init__(
        self,
        *,
        exchange: str,
        asset: str,
        balance: str | None,
        value: Decimal | None,
        limit: Decimal,
        change: bool,
    ) -> None:
        self.limit = limit
        what = f"the {balance} balance" if balance else "a balance"
        what += f" of {asset} on {exchange}"
        if value is None:
            effect = f"would take {what}"
        elif change:
            effect = f"would change {what} by {format_plain(value)},"
        else:
            effect = f"would make {what} {format_plain(value)},"
        self.consequence = (
            f"{effect} beyond ±{format_plain(limit)}, the most a wallet holds ({AMOUNT.sql})"
        )
        column = f"{balance or 'total'}_{'change' if change else 'balance'}"
        super().__init__(column, value, self.consequence)


@dataclass(frozen=True)
class Balance:
    available: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.available + self.locked


class LedgerRecords:
    """Reads and writes of the ledger tables in the caller's open transaction."""

    def __init__(
        self,
        db: Database,
        *,
        trades: Repository[TradeCreate, Trade],
        orders: Repository[OrderCreate, Order],
        positions: Repository[PositionCreate, Position],
        wallets: Repository[WalletCreate, Wallet],
        movements: Repository[WalletMovementCreate, WalletMovement],
    ) -> None:
        self.db = db
        # Bound once: these run for every amount of every fill.
        self._in = partial(db.dialect.amount_in, scale=SCALE)
        self._out = partial(db.dialect.amount_out, scale=SCALE)
        integrity = db.IntegrityError
        self._wallet_refusals: tuple[type[Exception], ...] = (
            *(integrity if isinstance(integrity, tuple) else (integrity,)),
            OverflowError,
        )
        self.trades = trades
        self.orders = orders
        self.positions = positions
        self.wallets = wallets
        self.movements = movements

    # --- lookups by business key ---------------------------------------------------------

    def fill(self, exchange: str, exchange_trade_id: str) -> Trade | None:
        return self.trades.select_one(
            "exchange = ? AND exchange_trade_id = ?", (exchange, exchange_trade_id)
        )

    def order(self, exchange: str, order_id: str) -> Order | None:
        return self.orders.select_one("order_id = ? AND exchange = ?", (order_id, exchange))

    def order_by_client_id(self, exchange: str, client_order_id: str) -> Order | None:
        return self.orders.select_one(
            "exchange = ? AND client_order_id = ?", (exchange, client_order_id)
        )

    def unknown_submissions(self, exchange: str) -> list[Order]:
        return self.orders.select_all("exchange = ? AND submission = 'unknown'", (exchange,))

    def move_order_references(self, exchange: str, old_id: str, new_id: str) -> None:
        """Journal lines of an order that now has the exchange's id in place of the client
        order id it held, so that the lock it made stays found under its id."""
        self.db.require_write("move_order_references")
        self.db.connection.execute(
            "UPDATE wallet_movements SET order_id = ? WHERE exchange = ? AND order_id = ?",
            (new_id, exchange, old_id),
        )

    def order_anywhere(self, order_id: str) -> Order | None:
        """The order holding this id on any exchange (the spec keeps order ids unique)."""
        return self.orders.select_one("order_id = ?", (order_id,))

    def open_position(self, exchange: str, symbol: str, strategy: str | None) -> Position | None:
        return self.positions.select_one(
            "status = 'open' AND exchange = ? AND symbol = ? AND coalesce(strategy, '') = ?",
            (exchange, symbol, strategy or ""),
        )

    def open_positions(self) -> list[Position]:
        return self.positions.select_all("status = 'open'", ())

    def movement(self, exchange: str, kind: str, reference: str) -> WalletMovement | None:
        return self.movements.select_one(
            "exchange = ? AND kind = ? AND reference = ?", (exchange, kind, reference)
        )

    def newest_movement(self) -> WalletMovement | None:
        """The last movement written; inside a write transaction, the caller's own."""
        return self.movements.select_one("id = (SELECT max(id) FROM wallet_movements)", ())

    def balance(self, exchange: str, asset: str) -> Balance | None:
        row = self.db.connection.execute(
            "SELECT available_balance, locked_balance FROM wallets "
            "WHERE exchange = ? AND asset = ?",
            (exchange, asset),
        ).fetchone()
        return None if row is None else Balance(self._out(row[0]), self._out(row[1]))

    def balances(self, exchange: str) -> dict[str, Balance]:
        rows = self.db.connection.execute(
            "SELECT asset, available_balance, locked_balance FROM wallets WHERE exchange = ?",
            (exchange,),
        ).fetchall()
        return {
            asset: Balance(self._out(available), self._out(locked))
            for asset, available, locked in rows
        }

    # --- wallets -------------------------------------------------------------------------

    def change_wallets(
        self,
        exchange: str,
        changes: Sequence[WalletChange],
        timestamp: int,
        *,
        trade_id: int | None = None,
    ) -> dict[str, tuple[Balance, Balance]]:
        """Apply journal lines: one wallet update per asset, the lines themselves, and a
        balance_history row for each balance type whose value changed.

        Returns each touched asset's balances before and after. The caller checks them
        and raises (rolling the whole transaction back) when a rule is broken.
        """
        self.db.require_write("change_wallets")
        conn = self.db.connection
        number, stored = self.db.dialect.amount_number, self.db.dialect.amount_stored
        net: dict[str, list[Any]] = {}
        journal = []
        for change in changes:
            try:
                available = self._in(change.available, column="available_change")
                locked = self._in(change.locked, column="locked_change")
            except AmountOutOfRange as exc:
                over = "available" if exc.field == "available_change" else "locked"
                raise self._out_of_range(
                    exchange, change.asset, over, exc.value, change=True
                ) from None
            totals = net.setdefault(change.asset, [0, 0])
            totals[0] += number(available)
            totals[1] += number(locked)
            journal.append(
                (
                    exchange,
                    change.asset,
                    change.kind,
                    available,
                    locked,
                    trade_id,
                    change.order_id,
                    change.reference,
                    timestamp,
                )
            )
        conn.executemany(_INSERT_MOVEMENT, journal)
        result: dict[str, tuple[Balance, Balance]] = {}
        history = []
        for asset, (available, locked) in net.items():
            try:
                row = conn.execute(
                    self._change_wallet_sql,
                    (exchange, asset, stored(available), stored(locked), timestamp),
                ).fetchone()
            except self._wallet_refusals:
                # The wallet's only constraints guard its columns' range: SQLite refuses a
                # sum past int64 with a storage CHECK (the driver a net change past it),
                # PostgreSQL with a numeric overflow.
                raise self._balance_overflow(exchange, asset, available, locked) from None
            new_available, new_locked = number(row[0]), number(row[1])
            after = Balance(self._out(row[0]), self._out(row[1]))
            before = Balance(
                self._out(stored(new_available - available)),
                self._out(stored(new_locked - locked)),
            )
            result[asset] = (before, after)
            for kind, changed, value in (
                ("available", available, new_available),
                ("locked", locked, new_locked),
                ("total", available + locked, new_available + new_locked),
            ):
                if changed:
                    history.append((exchange, asset, stored(value), timestamp, kind))
        if history:
            conn.executemany(_INSERT_HISTORY, history)
        return result

    def _balance_overflow(
        self, exchange: str, asset: str, available: Any, locked: Any
    ) -> BalanceOutOfRange:
        """Which balance a refused wallet change would have taken out of range, and to
        what, where the engine still answers in the failed transaction."""
        try:
            current = self.balance(exchange, asset) or Balance(Decimal(0), Decimal(0))
        except self.db.Error:
            # PostgreSQL runs nothing more in a transaction after an error.
            return self._out_of_range(exchange, asset, None, None, change=False)
        after = Balance(
            current.available + self._out(available), current.locked + self._out(locked)
        )
        limit = AMOUNT.largest
        for balance, value in (
            ("available", after.available),
            ("locked", after.locked),
            ("total", after.total),
        ):
            if abs(value) > limit:
                return self._out_of_range(exchange, asset, balance, value, change=False)
        return self._out_of_range(exchange, asset, None, None, change=False)

    def _out_of_range(
        self,
        exchange: str,
        asset: str,
        balance: str | None,
        value: object,
        *,
        change: bool,
    ) -> BalanceOutOfRange:
        return BalanceOutOfRange(
            exchange=exchange,
            asset=asset,
            balance=balance,
            value=None if value is None else Decimal(str(value)),
            limit=AMOUNT.largest,
            change=change,
        )

    # --- sums for the invariants ---------------------------------------------------------

    def journal_sums(self) -> dict[tuple[str, str], Balance]:
        """Per wallet: the sum of its journal lines."""
        total = self.db.dialect.sum_of
        rows = self.db.summed_rows(
            lambda exact: (
                f"SELECT exchange, asset, {total('available_change', exact=exact)}, "
                f"{total('locked_change', exact=exact)} FROM wallet_movements "
                "GROUP BY exchange, asset"
            )
        )
        return self._balances_by_wallet(rows)

    def wallet_rows(self) -> dict[tuple[str, str], Balance]:
        return self._balances_by_wallet(
            self.db.connection.execute(
                "SELECT exchange, asset, available_balance, locked_balance FROM wallets"
            ).fetchall()
        )

    def _balances_by_wallet(self, rows: Iterable[Any]) -> dict[tuple[str, str], Balance]:
        """Rows of (exchange, asset, available units, locked units) as Balances."""
        return {
            (exchange, asset): Balance(self._out(available), self._out(locked))
            for exchange, asset, available, locked in rows
        }

    def movement_sums(self, kinds: Iterable[str]) -> dict[tuple[str, str], Decimal]:
        """Per wallet: the total change recorded by journal lines of these kinds."""
        kinds = tuple(kinds)
        marks = ", ".join("?" for _ in kinds)
        total = self.db.dialect.sum_of
        rows = self.db.summed_rows(
            lambda exact: (
                "SELECT exchange, asset, "
                f"{total('available_change', 'locked_change', exact=exact)} "
                f"FROM wallet_movements WHERE kind IN ({marks}) GROUP BY exchange, asset"
            ),
            kinds,
        )
        return {(e, a): self._out(total) for e, a, total in rows}

    def wallets_with_movements(self, kinds: Iterable[str]) -> set[tuple[str, str]]:
        kinds = tuple(kinds)
        marks = ", ".join("?" for _ in kinds)
        rows = self.db.connection.execute(
            f"SELECT DISTINCT exchange, asset FROM wallet_movements WHERE kind IN ({marks})",
            kinds,
        ).fetchall()
        return {(e, a) for e, a in rows}

    def trade_flows(self) -> list[tuple[str, str, str, str | None, Decimal, Decimal, Decimal]]:
        """Per exchange, symbol, side and fee currency: sums of amount, value and fee."""
        total = self.db.dialect.sum_of
        rows = self.db.summed_rows(
            lambda exact: (
                f"SELECT exchange, symbol, side, fee_currency, {total('amount', exact=exact)}, "
                f"{total('total_value', exact=exact)}, {total('coalesce(fee, 0)', exact=exact)} "
                "FROM trades GROUP BY exchange, symbol, side, fee_currency"
            )
        )
        return [
            (e, s, side, fc, self._out(a), self._out(v), self._out(f))
            for e, s, side, fc, a, v, f in rows
        ]

    def order_fill_sums(self) -> list[tuple[str, str, Decimal, Decimal, Decimal, Decimal]]:
        """Per order: amount, filled_amount, remaining_amount and the sum of its fills."""
        total = self.db.dialect.sum_of
        rows = self.db.summed_rows(
            lambda exact: (
                "SELECT o.exchange, o.order_id, o.amount, coalesce(o.filled_amount, 0), "
                "o.remaining_amount, coalesce(t.total, 0) FROM crypto_orders o LEFT JOIN "
                f"(SELECT exchange, order_id, {total('amount', exact=exact)} AS total "
                "FROM trades WHERE order_id IS NOT NULL GROUP BY exchange, order_id) t "
                "ON t.exchange = o.exchange AND t.order_id = o.order_id"
            )
        )
        out = []
        for exchange, order_id, amount, filled, remaining, fills in rows:
            ordered, done = self._out(amount), self._out(filled)
            left = ordered - done if remaining is None else self._out(remaining)
            out.append((exchange, order_id, ordered, done, left, self._out(fills)))
        return out

    def reserved_by_live_orders(self) -> dict[tuple[str, str], Decimal]:
        total = self.db.dialect.sum_of
        rows = self.db.summed_rows(
            lambda exact: (
                f"SELECT exchange, locked_asset, {total('locked_amount', exact=exact)} "
                "FROM crypto_orders WHERE status IN ('pending', 'open') "
                "AND locked_asset IS NOT NULL GROUP BY exchange, locked_asset"
            )
        )
        return {(e, a): self._out(total) for e, a, total in rows}

    def final_orders_holding_funds(self) -> list[tuple[str, str, Decimal]]:
        rows = self.db.connection.execute(
            "SELECT exchange, order_id, locked_amount FROM crypto_orders "
            "WHERE status NOT IN ('pending', 'open') AND locked_amount != 0"
        ).fetchall()
        return [(e, oid, self._out(amount)) for e, oid, amount in rows]

    def position_pnl_sums(self) -> list[tuple[int, str, Decimal, Decimal]]:
        """Per position: status, realized_pnl and the sum of its trades' profit_loss."""
        total = self.db.dialect.sum_of
        rows = self.db.summed_rows(
            lambda exact: (
                "SELECT p.id, p.status, coalesce(p.realized_pnl, 0), coalesce(t.total, 0) "
                f"FROM positions p LEFT JOIN (SELECT position_id, "
                f"{total('profit_loss', exact=exact)} AS total FROM trades "
                "WHERE position_id IS NOT NULL GROUP BY position_id) t ON t.position_id = p.id"
            )
        )
        return [(pid, status, self._out(r), self._out(s)) for pid, status, r, s in rows]

    def integrity_problems(self) -> list[str]:
        return self.db.integrity_problems()

    @cached_property
    def _change_wallet_sql(self) -> str:
        # A wallet is created by its first change; last_updated keeps the latest event time
        # even when events are recorded out of order.
        dialect = self.db.dialect
        # Exact on SQLite past int64 too (units_add), where + would give a float that the
        # storage guard refuses: a whale's SHIB balance passes int64 units.
        available = dialect.add_of(
            "wallets.available_balance", "excluded.available_balance", exact=True
        )
        locked = dialect.add_of("wallets.locked_balance", "excluded.locked_balance", exact=True)
        return (
            "INSERT INTO wallets (exchange, asset, available_balance, locked_balance, "
            "last_updated) VALUES (?, ?, ?, ?, ?) ON CONFLICT (exchange, asset) DO UPDATE SET "
            f"available_balance = {available}, locked_balance = {locked}, "
            f"last_updated = {dialect.greatest}(wallets.last_updated, excluded.last_updated), "
            f"updated_at = {dialect.epoch_seconds_now} "
            "RETURNING available_balance, locked_balance"
        )


_INSERT_MOVEMENT = (
    "INSERT INTO wallet_movements (exchange, asset, kind, available_change, locked_change, "
    "trade_id, order_id, reference, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_HISTORY = (
    "INSERT INTO balance_history (exchange, asset, balance, timestamp, balance_type) "
    "VALUES (?, ?, ?, ?, ?)"
)
