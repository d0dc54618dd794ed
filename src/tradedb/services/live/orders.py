"""Orders placed on a live exchange account through tradedb, each sent at most once.

Placing an order:

1. the order is stored, pending, with its client order id as its order_id and its
   submission "unknown", and its funds are locked; an order the wallet cannot pay for is
   refused here, before anything is sent;
2. create_order is sent once, carrying the client order id;
3. the exchange's answer completes the record: the order takes the exchange's id and
   becomes open. A refusal ends it canceled with its submission "rejected", its funds
   released. A lost answer (a timeout, a dropped connection) leaves it unknown, and so does
   a crash anywhere between 1 and 3.

An unknown order is settled by its client order id, never by sending it again
(tradedb.services.live.submissions): by the next sync, by placing the same intent again, or
at once when the answer was lost. Placing an intent whose client order id is already stored
returns the stored order: the same intent never makes a second order at the exchange.
Callers that may retry (a bot restarted after a crash) derive the client order id from the
decision itself, such as the strategy, the market and the candle it acted on.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from tradedb.errors import (
    ExchangeUnavailable,
    InvalidTransition,
    TradeDBError,
    UnknownRecord,
    ValidationError,
)
from tradedb.models import Order
from tradedb.models.values import (
    check_name,
    check_symbol,
    format_fixed,
    format_plain,
)
from tradedb.services.ledger import Ledger
from tradedb.services.ledger import orders as order_rules
from tradedb.services.ledger.orders import OrderTerms
from tradedb.services.live.account import AccountSync
from tradedb.services.live.exchange import ExchangeAccount
from tradedb.services.live.submissions import (
    CLOCK_SLACK_MS,
    UNKNOWN_GRACE_MS,
    Settlement,
    settle,
)
from tradedb.services.marketdata.download import reason
from tradedb.store import Store

# What both Binance (newClientOrderId, at most 36 of these) and ccxt pass on unchanged.
CLIENT_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
# Kraken takes a UUID (with or without hyphens) or free text of at most 18 characters.
KRAKEN_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
KRAKEN_TEXT_MAX = 18
# ccxt's states of an order that has ended, after which its fills are all known.
ENDED = frozenset({"closed", "canceled", "cancelled", "expired", "rejected"})

Outcome = Literal["acknowledged", "unknown", "existing"]


class OrderRejected(TradeDBError):
    """The exchange refused an order tradedb sent. It is recorded canceled, with its
    submission rejected, and its funds are released; the message is the exchange's own."""


@dataclass(frozen=True)
class OrderIntent:
    """An order a bot decided to place, checked before anything is stored or sent."""

    symbol: str
    side: str
    order_type: str
    amount: Decimal
    price: Decimal | None
    strategy: str | None
    client_order_id: str | None

    @classmethod
    def parse(
        cls,
        *,
        symbol: str,
        side: str,
        order_type: str,
        amount: object,
        price: object = None,
        strategy: str | None = None,
        client_order_id: str | None = None,
    ) -> OrderIntent:
        check_symbol(symbol)
        terms = OrderTerms.parse(
            side,
            order_type,
            amount,
            price,
            "tradedb places market and limit orders on an exchange; a stop or take-profit "
            "order placed elsewhere is adopted by the sync",
        )
        if strategy is not None:
            check_name(strategy, "strategy")
        if client_order_id is not None and not CLIENT_ORDER_ID.fullmatch(client_order_id):
            raise ValidationError(
                "client_order_id",
                client_order_id,
                "must be 1 to 36 letters, digits, '-' or '_' (what every exchange takes)",
            )
        return cls(symbol, side, order_type, terms.amount, terms.price, strategy, client_order_id)


@dataclass(frozen=True)
class Placement:
    """What placing an order did: the order as stored, and whether this call sent it."""

    order: Order
    outcome: Outcome
    sent: bool
    # Why the outcome is unknown: the error that lost the exchange's answer.
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "sent": self.sent,
            **order_state(self.order),
            "detail": self.detail,
        }


def order_state(order: Order) -> dict[str, Any]:
    """Where a live order stands, as JSON values."""
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "status": order.status,
        "submission": order.submission,
        "filled_amount": format_fixed(order.filled_amount or Decimal(0)),
    }


class LiveOrders:
    """Places and cancels orders on one exchange account, keeping the ledger in step."""

    def __init__(
        self,
        store: Store,
        client: Any,
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], int] | None = None,
        grace_ms: int = UNKNOWN_GRACE_MS,
    ) -> None:
        self._store = store
        self._ledger = Ledger(store)
        self._sync = AccountSync(store, client, sleep=sleep, clock=clock)
        self._account: ExchangeAccount = self._sync.account
        self._exchange = self._account.id
        self._clock = self._sync.clock
        self._grace_ms = grace_ms

    def place(self, intent: OrderIntent) -> Placement:
        """Store the order, send it once, and record the exchange's answer (docstring of
        this module). Raises OrderRejected when the exchange refuses it."""
        self._account.require(("createOrder", "fetchOpenOrders", "fetchOrder"), "take orders")
        self._account.require_market(intent.symbol)
        if not self._ledger.wallets(exchange=self._exchange):
            raise ValidationError(
                "exchange",
                self._exchange,
                "has no wallets in the ledger yet: a first sync with apply=True (tradedb "
                "sync --apply) opens them at the account's balances",
            )
        client_order_id = intent.client_order_id or uuid.uuid4().hex
        self._check_client_id(client_order_id)
        amount = self._as_sent(intent, "amount", intent.amount)
        price = None if intent.price is None else self._as_sent(intent, "price", intent.price)
        stored = self._ledger.submitted_order(self._exchange, client_order_id)
        if stored is not None:
            if stored.submission == "unknown":
                self._settle(stored)
            return Placement(self._current(client_order_id), "existing", sent=False)
        self._ledger.place_order(
            exchange=self._exchange,
            order_id=client_order_id,
            client_order_id=client_order_id,
            submission="unknown",
            status="pending",
            symbol=intent.symbol,
            side=intent.side,
            order_type=intent.order_type,
            amount=intent.amount,
            price=intent.price,
            strategy=intent.strategy,
            timestamp=self._clock(),
            # As for an adopted order: the exchange locks the amount and price, and takes
            # fees from what a fill brings in.
            fee_reserve_rate=0,
        )
        return self._send(intent, client_order_id, amount, price)

    def cancel(self, order_id: str) -> Order:
        """Cancel a live order at the exchange, then record its fills up to the cancel and
        the cancel itself. `order_id` is the exchange's id or the client order id."""
        order = self._live_order(order_id)
        found = self._account.find("cancel_order", order.order_id, order.symbol)
        self._follow(order)
        current = self._ledger.order(self._exchange, order.order_id)
        assert current is not None  # an order is never deleted
        if found is None and current.status in order_rules.LIVE:
            # The exchange knows no such order, yet the ledger holds it live: only a
            # sync that can see the order again settles this.
            raise ExchangeUnavailable(
                f"{self._exchange} cancel_order: the exchange does not know order "
                f"{order.order_id}; run `tradedb sync` to bring the ledger up to date"
            )
        return current

    # --- sending -----------------------------------------------------------------------

    def _send(
        self, intent: OrderIntent, client_order_id: str, amount: str, price: str | None
    ) -> Placement:
        import ccxt

        try:
            answer = self._account.send(
                "create_order",
                intent.symbol,
                intent.order_type,
                intent.side,
                amount,
                price,
                {"clientOrderId": client_order_id},
            )
        except ccxt.NetworkError as exc:
            # The order may or may not be at the exchange: look, never send again.
            return self._lost_answer(client_order_id, reason(exc))
        except ccxt.BaseError as exc:
            return self._refused(client_order_id, exc)
        order = self._ledger.acknowledge_order(self._exchange, client_order_id, str(answer["id"]))
        if str(answer.get("status")) in ENDED or _positive_text(answer.get("filled")):
            self._follow(order)
        return Placement(self._current(client_order_id), "acknowledged", sent=True)

    def _lost_answer(self, client_order_id: str, detail: str) -> Placement:
        stored = self._current(client_order_id)
        try:
            settled = self._settle(stored)
        except ExchangeUnavailable:
            return Placement(stored, "unknown", sent=True, detail=detail)
        outcome: Outcome = "acknowledged" if settled.outcome == "acknowledged" else "unknown"
        return Placement(self._current(client_order_id), outcome, sent=True, detail=detail)

    def _refused(self, client_order_id: str, exc: Exception) -> Placement:
        import ccxt

        stored = self._current(client_order_id)
        # A refusal can also mean the exchange has the order already (Binance: "Duplicate
        # order sent."), so the account is asked before the order is called rejected.
        settled = self._settle(stored, grace_ms=0)
        if settled.outcome == "acknowledged":
            current = self._current(client_order_id)
            return Placement(current, "acknowledged", sent=True, detail=reason(exc))
        if isinstance(exc, ccxt.AuthenticationError):
            raise self._account.credentials_refused(exc) from None
        raise OrderRejected(
            f"{self._exchange} create_order refused order {client_order_id}: {reason(exc)}; "
            "it is recorded as rejected and its funds are released"
        ) from None

    # --- settling ----------------------------------------------------------------------

    def _settle(self, order: Order, grace_ms: int | None = None) -> Settlement:
        grace = self._grace_ms if grace_ms is None else grace_ms
        settled = settle(self._ledger, self._account, order, self._clock(), grace)
        if settled.outcome == "acknowledged":
            self._follow(self._current(settled.client_order_id))
        return settled

    def _follow(self, order: Order) -> None:
        """The order's fills and end, as the sync of its market records them."""
        self._sync.follow_market(order.symbol, order.timestamp - CLOCK_SLACK_MS)

    # --- the ledger --------------------------------------------------------------------

    def _current(self, client_order_id: str) -> Order:
        order = self._ledger.submitted_order(self._exchange, client_order_id)
        assert order is not None  # stored before anything was sent, never deleted
        return order

    def _live_order(self, order_id: str) -> Order:
        name = check_name(order_id, "order_id")
        order = self._ledger.order(self._exchange, name) or self._ledger.submitted_order(
            self._exchange, name
        )
        if order is None:
            raise UnknownRecord("order_id", order_id, f"no order on {self._exchange} has this id")
        if order.submission == "unknown":
            self._settle(order)
            order = self._current(str(order.client_order_id))
            if order.submission == "unknown":
                raise InvalidTransition(
                    "submission",
                    "unknown",
                    f"order {order_id} is not found at {self._exchange} yet; it cannot be "
                    "canceled until a sync finds it or rejects it",
                )
        if order.status not in order_rules.LIVE:
            raise InvalidTransition(
                "status", order.status, f"order {order.order_id} has ended; nothing to cancel"
            )
        return order

    def _as_sent(self, intent: OrderIntent, field: str, value: Decimal) -> str:
        """`value` as ccxt will send it. ccxt cuts an amount or a price to the market's
        step without a word; an order is refused instead of being placed for less."""
        import ccxt

        client = self._account.client
        step = (client.market(intent.symbol).get("precision") or {}).get(field)
        if step is None:
            raise ValidationError(
                "symbol", intent.symbol, f"{self._exchange} gives no {field} step for it"
            )
        to_precision = (
            client.amount_to_precision if field == "amount" else client.price_to_precision
        )
        try:
            sent = str(to_precision(intent.symbol, format_plain(value)))
        except ccxt.BaseError as exc:
            raise ValidationError(field, value, reason(exc)) from None
        if Decimal(sent) != value:
            raise ValidationError(
                field,
                value,
                f"{self._exchange} takes {intent.symbol} {field}s in steps of "
                f"{format_plain(Decimal(str(step)))}; {sent} would be sent",
            )
        return sent

    def _check_client_id(self, client_order_id: str) -> None:
        if self._exchange == "kraken" and not (
            KRAKEN_UUID.fullmatch(client_order_id) or len(client_order_id) <= KRAKEN_TEXT_MAX
        ):
            raise ValidationError(
                "client_order_id",
                client_order_id,
                f"Kraken takes a UUID or at most {KRAKEN_TEXT_MAX} characters",
            )


def _positive_text(value: object) -> bool:
    return value not in (None, "") and Decimal(str(value)) > 0
