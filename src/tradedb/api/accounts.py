"""`db.accounts`: live exchange accounts synced into the ledger."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from tradedb.errors import ValidationError
from tradedb.models import SyncCursor
from tradedb.services.live.account import LOG_MODULE, AccountSync, SyncReport, SyncRequest
from tradedb.services.live.credentials import account_client
from tradedb.store import Store


class Accounts:
    """Exchange accounts: `sync` brings the ledger to what one holds (docs/live.md)."""

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
        if client is None:
            client = account_client(exchange)
        elif client.id != exchange:
            raise ValidationError(
                "client", client.id, f"is a client of another exchange than {exchange}"
            )
        return AccountSync(self._store, client, sleep=time.sleep).run(request)

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
