"""Settling an order whose submission is unknown: finding it at the exchange by the client
order id tradedb stored before sending it.

An order is stored (pending, submission "unknown") before create_order is sent. When the
answer is lost (a timeout, a dropped connection, a crash between the write and the
answer), only the exchange knows whether the order exists, and it is asked by the client
order id, never by sending the order again:

- Binance keeps the id as origClientOrderId, which fetch_order looks an order up by;
- Kraken keeps it as cl_ord_id, which its open and closed order lists filter on;
- elsewhere the open orders and the orders closed since the submission are searched for
  an order carrying it.

Found, the order is acknowledged: it takes the exchange's id and goes on through the sync
like any other. Not found after the grace period, it never reached the exchange: a signed
request is refused once it is older than the exchange's receive window (Binance's is at
most 60 s), so one not seen after two minutes will never arrive. It is rejected and its
reservation released. Within the grace period it stays unknown, and nothing may resend
it: the same client order id is never sent twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tradedb.models import Order
from tradedb.services.ledger import Ledger
from tradedb.services.live.exchange import ExchangeAccount

UNKNOWN_GRACE_MS = 120_000
# How far before its stored time an order's own time at the exchange may be: the two
# clocks differ, and a closed-order search from exactly the stored time could miss it.
CLOCK_SLACK_MS = 60_000
# Exchanges that look an order up by its client order id in fetch_order.
FETCH_BY_CLIENT_ID = frozenset({"binance", "binanceus"})
# Exchanges whose open and closed order lists take the client order id as a filter.
LISTS_FILTER_BY_CLIENT_ID = frozenset({"kraken"})

Outcome = Literal["acknowledged", "rejected", "unknown"]


@dataclass(frozen=True)
class Settlement:
    """What became of one order whose submission was unknown."""

    client_order_id: str
    outcome: Outcome
    order_id: str  # the exchange's id once acknowledged; the client order id otherwise

    def as_json(self) -> dict[str, str]:
        return {
            "client_order_id": self.client_order_id,
            "outcome": self.outcome,
            "order_id": self.order_id,
        }


def find_by_client_id(account: ExchangeAccount, order: Order) -> Mapping[str, Any] | None:
    """The exchange's order submitted under `order`'s client order id, or None."""
    client_order_id = str(order.client_order_id)
    if account.id in FETCH_BY_CLIENT_ID:
        found: Mapping[str, Any] | None = account.find(
            "fetch_order", None, order.symbol, {"clientOrderId": client_order_id}
        )
        return found
    params = {"clientOrderId": client_order_id} if account.id in LISTS_FILTER_BY_CLIENT_ID else {}
    lists: list[tuple[str, int | None]] = [("fetch_open_orders", None)]
    if account.has("fetchClosedOrders"):
        lists.append(("fetch_closed_orders", order.timestamp - CLOCK_SLACK_MS))
    for method, since in lists:
        for listed in account.call(method, order.symbol, since, None, params):
            if str(listed.get("clientOrderId")) == client_order_id:
                return dict(listed)
    return None


def settle(
    ledger: Ledger,
    account: ExchangeAccount,
    order: Order,
    now_ms: int,
    grace_ms: int = UNKNOWN_GRACE_MS,
) -> Settlement:
    """Acknowledge `order` if the exchange has it, reject it if it cannot have it any
    more, or leave it unknown."""
    client_order_id = str(order.client_order_id)
    found = find_by_client_id(account, order)
    if found is not None:
        acknowledged = ledger.acknowledge_order(account.id, client_order_id, str(found["id"]))
        return Settlement(client_order_id, "acknowledged", acknowledged.order_id)
    if now_ms - order.timestamp >= grace_ms:
        ledger.reject_order(account.id, client_order_id, timestamp=now_ms)
        return Settlement(client_order_id, "rejected", order.order_id)
    return Settlement(client_order_id, "unknown", order.order_id)


def settle_all(
    ledger: Ledger, account: ExchangeAccount, now_ms: int, grace_ms: int = UNKNOWN_GRACE_MS
) -> list[Settlement]:
    """Settle every order of the account whose submission is unknown."""
    return [
        settle(ledger, account, order, now_ms, grace_ms)
        for order in ledger.unknown_submissions(account.id)
    ]
