"""`db.accounts`: live exchange accounts synced into the ledger."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from tradedb.errors import ValidationError
from tradedb.models import Order, SyncCursor
from tradedb.models.values import check_exchange
from tradedb.services.live.account import LOG_MODULE, AccountSync, SyncReport, SyncRequest
from tradedb.services.live.credentials import account_client
from tradedb.services.live.orders import LiveOrders, OrderIntent, Placement
from tradedb.store import Store


class Accounts:
    """Exchange accounts: `sync` brings the ledger to what one holds, `place` and `cancel`
    change it, each request sent at most once (docs/live.md)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def sync(
        self,
        exchange: str,
        *,
        symbols: Iterable[str],
        since: object = None,
        apply: bool = False,
        default_strategy: str | None = None,
        client: Any = None,
    ) -> SyncReport:
        """Record the account's new deposits, withdrawals, orders and fills of `symbols`,
        and compare its balances with the ledger's (journalling the differences with
        `apply`). `client` is a ccxt client of your own; by default one is made with the
        credentials in the environment (TRADEDB_<EXCHANGE>_API_KEY, ..._SECRET)."""
        request = SyncRequest.parse(
            symbols=symbols, since=since, apply=apply, default_strategy=default_strategy
        )
        return AccountSync(self._store, _client(exchange, client), sleep=time.sleep).run(request)

    def place(
        self,
        exchange: str,
        *,
        symbol: str,
        side: str,
        order_type: str,
        amount: object,
        price: object = None,
        strategy: str | None = None,
        client_order_id: str | None = None,
        client: Any = None,
    ) -> Placement:
        """Place a real order: stored first under its client order id (a new UUID unless
        given), sent once, completed by the exchange's answer. Placing the same
        `client_order_id` again returns the stored order and sends nothing. A lost answer
        leaves the outcome "unknown" until a sync finds the order or rejects it."""
        intent = OrderIntent.parse(
            symbol=symbol,
            side=side,
            order_type=order_type,
            amount=amount,
            price=price,
            strategy=strategy,
            client_order_id=client_order_id,
        )
        return self._orders(exchange, client).place(intent)

    def cancel(self, exchange: str, order_id: str, *, client: Any = None) -> Order:
        """Cancel a live order (by the exchange's id or the client order id) and record
        its fills up to the cancel; the order as the ledger then holds it."""
        return self._orders(exchange, client).cancel(order_id)

    def unknown_submissions(self, exchange: str | None = None) -> list[Order]:
        """Orders tradedb sent whose outcome is not known yet (the next sync settles them)."""
        return self._orders_where(exchange, "unknown")

    def adopted_orders(self, exchange: str | None = None) -> list[Order]:
        """Orders a sync found at the exchange that were placed outside tradedb."""
        return self._orders_where(exchange, "adopted")

    def _orders(self, exchange: str, client: Any) -> LiveOrders:
        return LiveOrders(self._store, _client(exchange, client), sleep=time.sleep)

    def _orders_where(self, exchange: str | None, submission: str) -> list[Order]:
        where: dict[str, Any] = {"submission": submission}
        if exchange is not None:
            where["exchange"] = check_exchange(exchange)
        return self._store.orders.list(where, limit=10_000).items

    def last_report(self, exchange: str) -> dict[str, Any] | None:
        """The newest sync report of `exchange` (SyncReport.as_json), or None before its
        first sync."""
        newest = self._store.logs.list(
            {"module": LOG_MODULE, "exchange": exchange}, newest_first=True, limit=1
        ).items
        if not newest or newest[0].metadata is None:
            return None
        report: dict[str, Any] = json.loads(newest[0].metadata)
        return report

    def cursors(self, exchange: str | None = None) -> list[SyncCursor]:
        """Where each stream's next sync starts, and when it last moved."""
        where = {} if exchange is None else {"exchange": exchange}
        return self._store.sync_cursors.list(where, limit=1000).items


def _client(exchange: str, client: Any) -> Any:
    """The caller's ccxt client, or one made from the credentials in the environment."""
    if client is None:
        return account_client(exchange)
    if client.id != exchange:
        raise ValidationError(
            "client", client.id, f"is a client of another exchange than {exchange}"
        )
    return client
