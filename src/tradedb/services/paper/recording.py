"""Where the paper exchange's orders, fills and cancels go: the ledger, or nowhere.

A session records through `tradedb.services.ledger.Ledger` exactly as live trading does:
`place_order`, `record_fill` and `cancel_order`. What the exchange does at one instant of
the session (every market's candle of that time, every strategy) commits as one durable
transaction: the ledger's operations join it, so an instant is recorded whole or not at
all, and a session pays one synchronous commit per instant in which something happened
rather than one per operation (a market order alone is a placement and a fill). The ids
are deterministic (the session's id and the order's sequence number), so running the same
session again replays the same operations: an order already placed, a fill already
recorded (the ledger's own idempotency by exchange trade id) or a cancel already made is
not written twice. An interrupted session, run again, therefore completes where it
stopped, and a completed one writes nothing new.
"""

from __future__ import annotations

from contextlib import ExitStack
from decimal import Decimal
from typing import Protocol

from tradedb.errors import DuplicateRecord
from tradedb.models import Order
from tradedb.services.ledger import Ledger
from tradedb.services.paper.orders import Fill, PaperOrder
from tradedb.store import Store


class Recorder(Protocol):
    def placed(self, order: PaperOrder, at: int, fee_reserve_rate: Decimal) -> None: ...

    def filled(self, fill: Fill) -> None: ...

    def canceled(self, order: PaperOrder, at: int) -> None: ...

    def commit(self) -> None:
        """An instant of the session is over: make what it recorded durable."""

    def rollback(self, error: BaseException) -> None:
        """The session failed with `error`: drop what the current instant recorded."""


class DryRun:
    """Records nothing: a strategy run to measure it before a session (inverse-volatility
    weights), never a session itself."""

    def placed(self, order: PaperOrder, at: int, fee_reserve_rate: Decimal) -> None:
        pass

    def filled(self, fill: Fill) -> None:
        pass

    def canceled(self, order: PaperOrder, at: int) -> None:
        pass

    def commit(self) -> None:
        pass

    def rollback(self, error: BaseException) -> None:
        pass


class LedgerRecorder:
    def __init__(self, store: Store, ledger: Ledger, exchange: str) -> None:
        self.store = store
        self.ledger = ledger
        self.exchange = exchange
        self._instant: ExitStack | None = None

    def _write(self) -> None:
        """Open the instant's transaction on its first write; an instant in which nothing
        happened costs nothing."""
        if self._instant is None:
            instant = ExitStack()
            instant.enter_context(self.store.db.transaction())
            self._instant = instant

    def commit(self) -> None:
        instant, self._instant = self._instant, None
        if instant is not None:
            instant.close()

    def rollback(self, error: BaseException) -> None:
        instant, self._instant = self._instant, None
        if instant is not None:
            instant.__exit__(type(error), error, error.__traceback__)

    def placed(self, order: PaperOrder, at: int, fee_reserve_rate: Decimal) -> None:
        self._write()
        recorded = self.ledger.order(self.exchange, order.order_id)
        if recorded is not None:
            _check_same(recorded, order, at)
            return
        self.ledger.place_order(
            exchange=self.exchange,
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            order_type=order.order_type,
            amount=order.amount,
            price=order.price,
            strategy=order.strategy,
            timestamp=at,
            fee_reserve_rate=fee_reserve_rate,
        )

    def filled(self, fill: Fill) -> None:
        self._write()
        self.ledger.record_fill(
            exchange=self.exchange,
            order_id=fill.order_id,
            exchange_trade_id=fill.exchange_trade_id,
            amount=fill.amount,
            price=fill.price,
            fee=fill.fee,
            timestamp=fill.timestamp,
        )

    def canceled(self, order: PaperOrder, at: int) -> None:
        self._write()
        recorded = self.ledger.order(self.exchange, order.order_id)
        if recorded is not None and recorded.status == "canceled":
            return
        self.ledger.cancel_order(self.exchange, order.order_id, timestamp=at)


def _check_same(recorded: Order, order: PaperOrder, at: int) -> None:
    """A replayed order must be the order first recorded; anything else means the
    candles or the code changed since, and the ledger would no longer match a replay."""
    ours: tuple[object, ...] = (order.symbol, order.side, order.order_type, order.amount)
    theirs: tuple[object, ...] = (recorded.symbol, recorded.side, recorded.order_type)
    ours += (order.price, order.strategy, at)
    theirs += (recorded.amount, recorded.price, recorded.strategy, recorded.timestamp)
    if ours != theirs:
        raise DuplicateRecord(
            "order_id",
            order.order_id,
            "is already recorded as a different order; this session's candles changed "
            "since it was first run (re-imported?), so its replay no longer matches the "
            "ledger. Run it in a new database",
        )
