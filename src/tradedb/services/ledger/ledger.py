"""The ledger: orders, fills, trades, positions and wallets, one transaction per operation.

Every public method validates its input first, then does all of its writes in one
IMMEDIATE transaction committed with synchronous=FULL. When a rule is broken midway (funds
would go negative, an order is in the wrong state) it raises, and the transaction rolls
back: nothing of the operation is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, localcontext
from functools import wraps
from typing import Any, Concatenate, ParamSpec, TypeVar

from tradedb.errors import (
    AmountOutOfRange,
    DuplicateRecord,
    InsufficientFunds,
    InvalidTransition,
    UnknownRecord,
    ValidationError,
)
from tradedb.models import Order, OrderCreate, Position, Trade, Wallet, WalletMovement
from tradedb.models.base import validate_record
from tradedb.models.fields import OrderStatus
from tradedb.models.values import (
    EXACT,
    check_asset,
    check_exchange,
    check_name,
    check_symbol,
    format_plain,
    market_assets,
    now_epoch_ms,
    to_decimal,
    to_epoch_ms,
)
from tradedb.services.ledger import freqtrade_db, listing
from tradedb.services.ledger import orders as order_rules
from tradedb.services.ledger.arithmetic import quantize, share
from tradedb.services.ledger.audit import audit
from tradedb.services.ledger.ccxt import ccxt_fee, parse_balance
from tradedb.services.ledger.listing import Filters
from tradedb.services.ledger.positions import (
    FillTerms,
    Holding,
    PositionChange,
    apply_fill,
    fill_terms,
    unrealized_pnl,
)
from tradedb.store import Page, Store
from tradedb.store.ledger import Balance, BalanceOutOfRange, LedgerRecords, WalletChange

ZERO = Decimal(0)
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class FillResult:
    """What recording a fill did. A re-delivered fill comes back with duplicate=True,
    the trade as first recorded, and nothing changed."""

    trade: Trade
    order: Order
    # The position of the fill's key after the fill: the one it opened, grew or reduced.
    position: Position | None
    # Set when the fill closed a position (and, on a flip, opened `position`).
    closed_position: Position | None = None
    duplicate: bool = False


@dataclass(frozen=True)
class TransferResult:
    """A deposit or withdrawal, and the wallet after it."""

    movement: WalletMovement
    wallet: Wallet
    duplicate: bool = False


@dataclass(frozen=True)
class MarkResult:
    updated: list[Position]
    # Open positions the price map had no price for, left as they were.
    unpriced: list[Position]


@dataclass(frozen=True)
class BalanceDifference:
    asset: str
    ledger: Balance
    exchange: Balance

    @property
    def available(self) -> Decimal:
        return self.exchange.available - self.ledger.available

    @property
    def locked(self) -> Decimal:
        return self.exchange.locked - self.ledger.locked

    @property
    def total(self) -> Decimal:
        return self.exchange.total - self.ledger.total


@dataclass(frozen=True)
class Reconciliation:
    """How the ledger's wallets differed from the exchange's balances before a sync.

    Each difference is exchange minus ledger; after the sync the wallets hold the
    exchange's figures, and each change is journalled as a 'sync' movement.
    """

    exchange: str
    timestamp: int
    differences: list[BalanceDifference]
    matched: list[str] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return not self.differences


@dataclass(frozen=True)
class Transfer:
    """A deposit or withdrawal, checked before any database is touched."""

    kind: str  # 'deposit' or 'withdrawal'
    exchange: str
    asset: str
    amount: Decimal
    timestamp: int
    reference: str | None

    @classmethod
    def parse(  # noqa: PLR0917 - mirrors the positional order of the fields
        cls,
        kind: str,
        exchange: str,
        asset: str,
        amount: object,
        timestamp: object = None,
        reference: str | None = None,
    ) -> Transfer:
        if reference is not None:
            check_name(reference, "reference")
        return cls(
            kind,
            check_exchange(exchange),
            check_asset(asset),
            order_rules.positive(amount, "amount"),
            _time(timestamp),
            reference,
        )

    @property
    def change(self) -> Decimal:
        return self.amount if self.kind == "deposit" else -self.amount


def _operation(
    method: Callable[Concatenate[Ledger, P], R],
) -> Callable[Concatenate[Ledger, P], R]:
    """A ledger operation: its money arithmetic in the exact decimal context, and the whole
    of it run again from the start if the database reports a conflict with another writer
    or lost the connection before committing (see Database.retrying); inside a caller's
    transaction it runs once, as part of it."""

    @wraps(method)
    def run(self: Ledger, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with localcontext(EXACT):
            return self._store.db.retrying(lambda: method(self, *args, **kwargs))

    return run


class Ledger:
    """Bookkeeping for one database. Safe to share between threads; every process may
    open its own Ledger on the same file."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._records: LedgerRecords = store.ledger

    # --- orders --------------------------------------------------------------------------

    @_operation
    def place_order(
        self,
        *,
        exchange: str,
        order_id: str,
        symbol: str,
        side: str,
        order_type: str,
        amount: object,
        price: object = None,
        strategy: str | None = None,
        timestamp: object = None,
        status: str = "open",
        fee_reserve_rate: object = None,
        client_order_id: str | None = None,
        submission: str | None = None,
    ) -> Order:
        """Record a new order and lock the funds it needs.

        A sell locks its base amount; a buy with a price locks amount x price plus a fee
        reserve (`fee_reserve_rate`, by default the exchange's taker fee). Raises
        InsufficientFunds, writing nothing, when the wallet cannot cover it.

        `submission` is how the order reached the exchange: "unknown" for one tradedb is
        about to send (pending, under its `client_order_id` until the exchange's id is
        known), "adopted" for one a sync found there; None when the bot records its own.
        """
        if status not in order_rules.LIVE:
            raise InvalidTransition(
                "status", status, "a new order starts as pending or open; fills end it"
            )
        order_rules.check_new_submission(submission, status, order_id, client_order_id)
        record = validate_record(
            OrderCreate,
            {
                "order_id": order_id,
                "symbol": symbol,
                "side": side,
                "order_type": order_type,
                "amount": amount,
                "price": price,
                "exchange": exchange,
                "strategy": strategy,
                "timestamp": _time(timestamp),
                "status": status,
                "client_order_id": client_order_id,
                "submission": submission,
            },
        )
        rate = (
            order_rules.fee_reserve_rate(record.exchange)
            if fee_reserve_rate is None
            else _non_negative(fee_reserve_rate, "fee_reserve_rate")
        )
        base, quote = market_assets(record.symbol)
        locked_asset = base if record.side == "sell" else quote
        reserve = order_rules.reservation(record.side, record.amount, record.price, rate)
        values = record.model_dump(exclude={"filled_at", "canceled_at"})
        values.update(
            filled_amount=ZERO,
            remaining_amount=record.amount,
            locked_amount=reserve,
            locked_asset=locked_asset,
        )
        with self._store.db.transaction():
            taken = self._records.order_anywhere(record.order_id)
            if taken is not None:
                raise DuplicateRecord(
                    "order_id",
                    record.order_id,
                    f"is already the id of a {taken.status} order on {taken.exchange}; order "
                    "ids are unique across exchanges in this schema",
                )
            if record.client_order_id is not None:
                self._refuse_taken_client_id(record.exchange, record.client_order_id)
            order = self._store.orders.insert_checked(values)
            if reserve:
                self._change(
                    record.exchange,
                    [WalletChange(locked_asset, "lock", -reserve, reserve, record.order_id)],
                    record.timestamp,
                    f"placing order {record.order_id}",
                    ("amount", record.amount),
                )
        return order

    @_operation
    def open_order(self, exchange: str, order_id: str, *, timestamp: object = None) -> Order:
        """The exchange acknowledged a pending order: pending -> open."""
        del timestamp  # the spec keeps no acknowledgement time; accepted for symmetry
        with self._store.db.transaction():
            order = self._order(exchange, order_id)
            order_rules.check_transition(order.order_id, order.status, "open")
            return self._store.orders.update_checked(order, {"status": "open"})

    @_operation
    def acknowledge_order(
        self, exchange: str, client_order_id: str, exchange_order_id: str
    ) -> Order:
        """The exchange has the order tradedb submitted under `client_order_id` (its answer
        came, or a sync found it): the order takes the exchange's id, and a pending one
        becomes open. Acknowledging it again with the same id changes nothing."""
        exchange = check_exchange(exchange)
        exchange_order_id = check_name(exchange_order_id, "order_id")
        with self._store.db.transaction():
            order = self._submitted(exchange, client_order_id)
            if order.submission == "acknowledged" and order.order_id == exchange_order_id:
                return order
            order_rules.check_submission(order, "acknowledged")
            if exchange_order_id != order.order_id:
                taken = self._records.order_anywhere(exchange_order_id)
                if taken is not None:
                    raise DuplicateRecord(
                        "order_id",
                        exchange_order_id,
                        f"is already the id of another order on {taken.exchange}, so order "
                        f"{client_order_id} cannot take it",
                    )
                self._records.move_order_references(exchange, order.order_id, exchange_order_id)
            changes: dict[str, object] = {
                "order_id": exchange_order_id,
                "submission": "acknowledged",
            }
            if order.status == "pending":
                changes["status"] = "open"
            return self._store.orders.update_checked(order, changes)

    def reject_order(
        self, exchange: str, client_order_id: str, *, timestamp: object = None
    ) -> Order:
        """The exchange refused the order tradedb submitted, or it never reached the
        exchange: it ends canceled, its reservation released, marked rejected."""
        order = self._submitted(check_exchange(exchange), client_order_id)
        order_rules.check_submission(order, "rejected")
        return self._end_order(
            exchange, order.order_id, "canceled", timestamp, {"submission": "rejected"}
        )

    def submitted_order(self, exchange: str, client_order_id: str) -> Order | None:
        """The order tradedb submitted (or is submitting) under `client_order_id`."""
        return self._records.order_by_client_id(
            check_exchange(exchange), check_name(client_order_id, "client_order_id")
        )

    def unknown_submissions(self, exchange: str) -> list[Order]:
        """Orders tradedb stored and sent to `exchange` whose answer it has not seen."""
        return self._records.unknown_submissions(check_exchange(exchange))

    def cancel_order(self, exchange: str, order_id: str, *, timestamp: object = None) -> Order:
        """Cancel a live order and unlock what it still reserves."""
        return self._end_order(exchange, order_id, "canceled", timestamp)

    def expire_order(self, exchange: str, order_id: str, *, timestamp: object = None) -> Order:
        """An order ran out its time in force: unlock what it still reserves."""
        return self._end_order(exchange, order_id, "expired", timestamp)

    @_operation
    def _end_order(
        self,
        exchange: str,
        order_id: str,
        status: OrderStatus,
        timestamp: object,
        changes: Mapping[str, object] | None = None,
    ) -> Order:
        when = _time(timestamp)
        with self._store.db.transaction():
            order = self._order(exchange, order_id)
            order_rules.check_transition(order.order_id, order.status, status)
            release = self._releasable(order, order.locked_amount)
            # canceled_at is the time the order stopped being live, by cancel or expiry.
            ended = self._store.orders.update_checked(
                order,
                {"status": status, "canceled_at": when, "locked_amount": ZERO, **(changes or {})},
            )
            if release:
                asset = _locked_asset(order)
                self._change(
                    order.exchange,
                    [WalletChange(asset, "unlock", release, -release, order.order_id)],
                    when,
                    f"{status} order {order.order_id}",
                    ("order_id", order.order_id),
                )
        return ended

    # --- fills ---------------------------------------------------------------------------

    @_operation
    def record_fill(
        self,
        *,
        exchange: str,
        order_id: str,
        exchange_trade_id: str,
        amount: object,
        price: object,
        fee: object = 0,
        fee_currency: str | None = None,
        timestamp: object = None,
        opens_short: bool = True,
    ) -> FillResult:
        """Record one fill of an order: the order, a trade, the position, the wallets and
        their history, all in one transaction.

        The fee is debited in its own currency (the quote currency if none is given).
        Re-delivering a fill with the same exchange and exchange_trade_id changes nothing
        and returns duplicate=True; a different fill under a recorded id is refused.

        With `opens_short=False` (a spot market, where nothing can be sold short) the part
        of a sell beyond the long position of its key sells coins held outside any
        position (an opening balance, a deposit): it opens no short position.
        """
        exchange = check_exchange(exchange)
        order_id = check_name(order_id, "order_id")
        exchange_trade_id = check_name(exchange_trade_id, "exchange_trade_id")
        quantity = order_rules.positive(amount, "amount")
        fill_price = order_rules.positive(price, "price")
        fee_amount = _non_negative(fee, "fee")
        if fee_currency is not None:
            check_asset(fee_currency, "fee_currency")
        when = _time(timestamp)
        records = self._records
        with self._store.db.transaction():
            recorded = records.fill(exchange, exchange_trade_id)
            if recorded is not None:
                return self._redelivered(
                    recorded, order_id, quantity, fill_price, (fee_amount, fee_currency)
                )
            order = self._order(exchange, order_id)
            if order.status not in order_rules.LIVE:
                raise InvalidTransition(
                    "order_id",
                    order_id,
                    f"order is {order.status}; only a pending or open order can be filled",
                )
            remaining = _remaining(order)
            if quantity > remaining:
                raise InvalidTransition(
                    "amount",
                    quantity,
                    f"exceeds the {plain(remaining)} still open of order {order_id} "
                    f"(amount {plain(order.amount)}, filled {plain(order.filled_amount)})",
                )
            base, quote = market_assets(order.symbol)
            currency = fee_currency or quote
            value = quantize(quantity * fill_price)
            terms = fill_terms(
                order.symbol, order.side, quantity, fill_price, fee=fee_amount, currency=currency
            )

            change, position, closed = self._move_position(
                order, terms, fill_price, when, opens_short=opens_short
            )
            # A fill that closes a position realised its P&L there, even on a flip.
            owner = closed or position
            position_id = owner.id if owner is not None else None
            left = remaining - quantity
            trade = self._store.trades.insert_checked(
                {
                    "symbol": order.symbol,
                    "side": order.side,
                    "amount": quantity,
                    "price": fill_price,
                    "total_value": value,
                    "fee": fee_amount,
                    "fee_currency": currency if fee_amount else fee_currency,
                    "timestamp": when,
                    "exchange": exchange,
                    "order_id": order_id,
                    "strategy": order.strategy,
                    "status": "filled" if not left else "partial",
                    "profit_loss": change.profit_loss,
                    "exchange_trade_id": exchange_trade_id,
                    "position_id": position_id,
                }
            )
            # The order gives up its whole share even when the wallet holds less locked
            # than that (after a sync), so that a filled order never keeps a reservation.
            released_share = share(order.locked_amount, quantity, remaining)
            release = self._releasable(order, released_share)
            order_changes: dict[str, Any] = {
                "filled_amount": (order.filled_amount or ZERO) + quantity,
                "remaining_amount": left,
                "locked_amount": order.locked_amount - released_share,
                "status": "open" if left else "filled",
            }
            if not left:
                order_changes["filled_at"] = when
            order = self._store.orders.update_checked(order, order_changes)

            paid, received = (quote, base) if order.side == "buy" else (base, quote)
            spent, got = (value, quantity) if order.side == "buy" else (quantity, value)
            changes = [
                WalletChange(paid, "trade", release - spent, -release, order_id),
                WalletChange(received, "trade", got, ZERO, order_id),
            ]
            if fee_amount:
                changes.append(WalletChange(currency, "fee", -fee_amount, ZERO, order_id))
            self._change(
                exchange,
                changes,
                when,
                f"fill {exchange_trade_id}",
                ("amount", quantity),
                trade_id=trade.id,
            )
        return FillResult(trade, order, position, closed)

    def record_ccxt_trade(
        self, exchange: str, trade: Mapping[str, Any], *, opens_short: bool = True
    ) -> FillResult:
        """Record a fill given as ccxt's unified trade structure (fetch_my_trades,
        watch_my_trades): its id, order, amount, price, fee and timestamp. `opens_short`
        as for record_fill."""
        fee, fee_currency = ccxt_fee(trade)
        return self.record_fill(
            exchange=exchange,
            order_id=trade.get("order"),  # type: ignore[arg-type]
            exchange_trade_id=trade.get("id"),  # type: ignore[arg-type]
            amount=trade.get("amount"),
            price=trade.get("price"),
            fee=fee,
            fee_currency=fee_currency,
            timestamp=trade.get("timestamp"),
            opens_short=opens_short,
        )

    def import_freqtrade(
        self, path: str | os.PathLike[str], *, strict: bool = False
    ) -> freqtrade_db.FreqtradeImport:
        """Import a freqtrade bot's database (tradesv3.sqlite, read-only) in one
        transaction: its orders, their fills and fees, with its strategies and exchanges;
        positions and P&L follow exactly, and each trade's P&L is compared with
        freqtrade's `close_profit_abs`. Importing it again records nothing twice.

        freqtrade's float noise past 8 decimals is rounded half-even and counted;
        `strict` refuses it instead. Futures and margin trades are skipped, with the
        reason. docs/ledger.md says what maps to what."""
        source = freqtrade_db.read_database(path, strict=strict)
        return freqtrade_db.import_database(self._store, self, source)

    def _redelivered(
        self,
        trade: Trade,
        order_id: str,
        amount: Decimal,
        price: Decimal,
        fee: tuple[Decimal, str | None],
    ) -> FillResult:
        fee_amount, fee_currency = fee
        checks: list[tuple[str, object, object]] = [
            ("order_id", order_id, trade.order_id),
            ("amount", amount, trade.amount),
            ("price", price, trade.price),
            ("fee", fee_amount, trade.fee or ZERO),
        ]
        if fee_amount:
            # A fee given without a currency was recorded in the quote currency.
            quote = market_assets(trade.symbol)[1]
            checks.append(("fee_currency", fee_currency or quote, trade.fee_currency))
        for name, given, stored in checks:
            if given != stored:
                raise DuplicateRecord(
                    "exchange_trade_id",
                    trade.exchange_trade_id,
                    f"is already recorded with {name} {plain(stored)}, not {plain(given)}; a "
                    "re-delivered "
                    "fill must be the same fill",
                )
        order = self._order(trade.exchange, order_id)
        position = None
        if trade.position_id is not None:
            position = self._store.positions.get(trade.position_id)
        return FillResult(trade, order, position, duplicate=True)

    def _move_position(
        self,
        order: Order,
        terms: FillTerms,
        price: Decimal,
        when: int,
        *,
        opens_short: bool,
    ) -> tuple[PositionChange, Position | None, Position | None]:
        """Apply a fill to its position; return the change, the open position after it
        and the position it closed (if any)."""
        current = self._records.open_position(order.exchange, order.symbol, order.strategy)
        holding = None if current is None else _holding(current)
        change = apply_fill(
            holding, terms.direction, terms.moved, price, terms.fee, value=terms.value
        )
        if not opens_short and change.opened is not None and change.opened.side == "short":
            change = replace(change, opened=None)
        positions = self._store.positions
        position: Position | None = None
        closed: Position | None = None
        if current is not None and change.existing is not None:
            after = change.existing
            values: dict[str, Any] = {
                "amount": after.amount,
                "entry_price": after.entry_price,
                "open_fees": after.open_fees,
                "cost_basis": after.basis,
                "realized_pnl": after.realized_pnl,
                "current_price": price,
                "unrealized_pnl": unrealized_pnl(after, price),
            }
            if not after.amount:
                values.update(status="closed", closed_at=max(when, current.opened_at))
            updated = positions.update_checked(current, values)
            if after.amount:
                position = updated
            else:
                closed = updated
        if change.opened is not None:
            opened = change.opened
            position = positions.insert_checked(
                {
                    "symbol": order.symbol,
                    "side": opened.side,
                    "amount": opened.amount,
                    "entry_price": opened.entry_price,
                    "current_price": price,
                    "unrealized_pnl": unrealized_pnl(opened, price),
                    "realized_pnl": ZERO,
                    "open_fees": opened.open_fees,
                    "cost_basis": opened.basis,
                    "status": "open",
                    "exchange": order.exchange,
                    "strategy": order.strategy,
                    "opened_at": when,
                }
            )
        return change, position, closed

    # --- positions -----------------------------------------------------------------------

    @_operation
    def mark_to_market(
        self, prices: Mapping[str | tuple[str, str], object], *, timestamp: object = None
    ) -> MarkResult:
        """Set current_price and unrealized_pnl of every open position from a price map,
        in one transaction. Keys are symbols ('BTC/USDT', for every exchange) or
        (exchange, symbol) pairs, which win over a plain symbol."""
        del timestamp  # positions keep no mark time; accepted so callers can pass theirs
        marks: dict[str | tuple[str, str], Decimal] = {}
        for key, price in prices.items():
            if isinstance(key, tuple):
                exchange, symbol = key
                check_exchange(exchange)
                check_symbol(symbol)
            else:
                check_symbol(key)
            marks[key] = order_rules.positive(price, f"prices[{key!r}]")
        updated: list[Position] = []
        unpriced: list[Position] = []
        with self._store.db.transaction():
            for position in self._records.open_positions():
                mark = marks.get((position.exchange, position.symbol), marks.get(position.symbol))
                if mark is None:
                    unpriced.append(position)
                    continue
                pnl = unrealized_pnl(_holding(position), mark)
                updated.append(
                    self._store.positions.update_checked(
                        position, {"current_price": mark, "unrealized_pnl": pnl}
                    )
                )
        return MarkResult(updated, unpriced)

    # --- wallets -------------------------------------------------------------------------

    def deposit(
        self,
        *,
        exchange: str,
        asset: str,
        amount: object,
        timestamp: object = None,
        reference: str | None = None,
    ) -> TransferResult:
        """Funds arrived on the exchange. With a `reference` (e.g. the transaction hash),
        recording the same deposit again changes nothing."""
        return self.transfer(
            Transfer.parse("deposit", exchange, asset, amount, timestamp, reference)
        )

    def withdraw(
        self,
        *,
        exchange: str,
        asset: str,
        amount: object,
        timestamp: object = None,
        reference: str | None = None,
    ) -> TransferResult:
        """Funds left the exchange; refused with InsufficientFunds beyond the available."""
        return self.transfer(
            Transfer.parse("withdrawal", exchange, asset, amount, timestamp, reference)
        )

    @_operation
    def transfer(self, request: Transfer) -> TransferResult:
        """Record a checked deposit or withdrawal (see `Transfer.parse`)."""
        exchange, asset, kind, reference = (
            request.exchange,
            request.asset,
            request.kind,
            request.reference,
        )
        with self._store.db.transaction():
            if reference is not None:
                earlier = self._records.movement(exchange, kind, reference)
                if earlier is not None:
                    if (earlier.asset, earlier.available_change) != (asset, request.change):
                        raise DuplicateRecord(
                            "reference",
                            reference,
                            f"is already a {kind} of {plain(abs(earlier.available_change))} "
                            f"{earlier.asset} on {exchange}",
                        )
                    return TransferResult(earlier, self._wallet(exchange, asset), duplicate=True)
            verb = "depositing" if kind == "deposit" else "withdrawing"
            self._change(
                exchange,
                [WalletChange(asset, kind, request.change, ZERO, reference=reference)],
                request.timestamp,
                f"{verb} {plain(request.amount)} {asset}",
                ("amount", request.amount),
            )
            # This transaction holds the write lock, so the newest movement is ours.
            movement = self._records.newest_movement()
            assert movement is not None
            return TransferResult(movement, self._wallet(exchange, asset))

    @_operation
    def sync_balances(
        self,
        exchange: str,
        ccxt_balance: Mapping[str, Any],
        *,
        timestamp: object = None,
        apply: bool = True,
    ) -> Reconciliation:
        """Bring the wallets of `exchange` to what ccxt's fetch_balance() reported.

        Assets the exchange did not list are taken as zero. Returns the differences the
        ledger had (exchange minus ledger); each is journalled as a 'sync' movement, unless
        `apply` is False, which only compares.
        """
        exchange = check_exchange(exchange)
        reported = parse_balance(ccxt_balance)
        when = _time(timestamp if timestamp is not None else ccxt_balance.get("timestamp"))
        differences: list[BalanceDifference] = []
        matched: list[str] = []
        with self._store.db.transaction():
            ledger = self._records.balances(exchange)
            for asset in sorted(set(ledger) | set(reported)):
                ours = ledger.get(asset, Balance(ZERO, ZERO))
                theirs = reported.get(asset, Balance(ZERO, ZERO))
                if ours == theirs:
                    matched.append(asset)
                else:
                    differences.append(BalanceDifference(asset, ours, theirs))
            changes = [WalletChange(d.asset, "sync", d.available, d.locked) for d in differences]
            if changes and apply:
                self._change(exchange, changes, when, "syncing balances", ("ccxt_balance", None))
        return Reconciliation(exchange, when, differences, matched)

    # --- reading -------------------------------------------------------------------------

    def orders(self, filters: Filters | None = None, **fields: Any) -> Page[Order]:
        """Orders, newest first: `filters` or its fields (exchange, symbol, strategy,
        status, since, until, limit, after) given as keywords."""
        return listing.orders(self._store, _filters(filters, fields))

    def trades(self, filters: Filters | None = None, **fields: Any) -> Page[Trade]:
        """Fills (the trades table), newest first; filters as for `orders`."""
        return listing.trades(self._store, _filters(filters, fields))

    def positions(self, filters: Filters | None = None, **fields: Any) -> Page[Position]:
        """Positions, newest first; filters as for `orders`."""
        return listing.positions(self._store, _filters(filters, fields))

    def order(self, exchange: str, order_id: str) -> Order | None:
        """The order with this id on `exchange`, or None."""
        return self._records.order(check_exchange(exchange), check_name(order_id, "order_id"))

    def wallets(self, *, exchange: str | None = None, asset: str | None = None) -> list[Wallet]:
        """Every wallet (of one exchange or asset), in exchange then asset order."""
        return listing.balances(self._store, exchange=exchange, asset=asset)

    def balance(self, exchange: str, asset: str) -> Balance:
        """One wallet's available and locked funds (zero for a wallet never used)."""
        found = self._records.balance(check_exchange(exchange), check_asset(asset))
        return found if found is not None else Balance(ZERO, ZERO)

    def audit(self) -> list[str]:
        """Every broken invariant of the ledger (and the engine's own checks); empty when
        all hold: wallets equal their journal, orders their fills, positions their P&L."""
        return audit(self._store)

    # --- helpers -------------------------------------------------------------------------

    def _order(self, exchange: str, order_id: str) -> Order:
        order = self._records.order(exchange, order_id)
        if order is None:
            raise UnknownRecord(
                "order_id", order_id, f"no order with this id on {exchange}; record it first"
            )
        return order

    def _submitted(self, exchange: str, client_order_id: str) -> Order:
        order = self._records.order_by_client_id(
            exchange, check_name(client_order_id, "client_order_id")
        )
        if order is None:
            raise UnknownRecord(
                "client_order_id", client_order_id, f"no order on {exchange} was submitted with it"
            )
        return order

    def _refuse_taken_client_id(self, exchange: str, client_order_id: str) -> None:
        taken = self._records.order_by_client_id(exchange, client_order_id)
        if taken is not None:
            raise DuplicateRecord(
                "client_order_id",
                client_order_id,
                f"already names order {taken.order_id} on {exchange} ({taken.status}); a "
                "client order id is used once",
            )

    def _wallet(self, exchange: str, asset: str) -> Wallet:
        wallet = self._store.wallets.select_one("exchange = ? AND asset = ?", (exchange, asset))
        assert wallet is not None
        return wallet

    def _releasable(self, order: Order, wanted: Decimal) -> Decimal:
        """What the order may release from its wallet's locked funds: its own share, but
        never more than the wallet still holds locked (a sync may have lowered it to the
        exchange's figure)."""
        if not wanted:
            return ZERO
        held = self._records.balance(order.exchange, _locked_asset(order))
        return min(wanted, held.locked) if held is not None else ZERO

    def _change(
        self,
        exchange: str,
        changes: list[WalletChange],
        when: int,
        action: str,
        cause: tuple[str, object],
        *,
        trade_id: int | None = None,
    ) -> None:
        """Apply wallet changes; refuse (rolling everything back) if funds go negative.

        `cause` is the input field and value the error names if funds fall short, or if a
        balance would grow beyond what the database holds.
        """
        try:
            results = self._records.change_wallets(exchange, changes, when, trade_id=trade_id)
        except BalanceOutOfRange as exc:
            raise AmountOutOfRange(*cause, f"{action} {exc.consequence}") from None
        for asset, (before, after) in results.items():
            if after.available < 0:
                raise InsufficientFunds(
                    *cause,
                    f"{action} needs {plain(before.available - after.available)} {asset} on "
                    f"{exchange} but {plain(before.available)} is available",
                )


def _filters(filters: Filters | None, fields: Mapping[str, Any]) -> Filters:
    if filters is not None and fields:
        raise ValidationError("filters", fields, "give a Filters object or keywords, not both")
    return filters if filters is not None else Filters(**fields)


def plain(value: object) -> str:
    """A value in a message: amounts as people write them, anything else as it is."""
    return format_plain(value) if isinstance(value, Decimal) else str(value)


def _time(value: object) -> int:
    return now_epoch_ms() if value is None else to_epoch_ms(value, "timestamp")


def _non_negative(value: object, name: str) -> Decimal:
    number = to_decimal(value, name)
    if number < 0:
        raise ValidationError(name, value, "must not be negative")
    return number


def _remaining(order: Order) -> Decimal:
    if order.remaining_amount is not None:
        return order.remaining_amount
    return order.amount - (order.filled_amount or ZERO)


def _locked_asset(order: Order) -> str:
    if order.locked_asset is not None:
        return order.locked_asset
    base, quote = market_assets(order.symbol)
    return base if order.side == "sell" else quote


def _holding(position: Position) -> Holding:
    return Holding(
        position.side,
        position.amount,
        position.entry_price,
        position.open_fees,
        position.realized_pnl or ZERO,
        position.cost_basis,
    )
