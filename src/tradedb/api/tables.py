"""Every table, readable: get by id, list with filters and keyset pages, count.

Reads are public for every table, ledger tables included. Writes are not here: ledger
tables change only through the ledger's operations (`TradeDB.ledger`), market data
through `TradeDB.market`, settings through `TradeDB.config` and logs through
`TradeDB.logs`, so that the invariants `tradedb audit` checks cannot be bypassed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic

from tradedb.store import Page, Store
from tradedb.store.repository import DEFAULT_LIMIT, ReadT, Repository


class TableReader(Generic[ReadT]):
    """Reads of one table. Each call is one read; inside `TradeDB.snapshot()` every read
    sees the same committed state."""

    def __init__(self, repository: Repository[Any, ReadT]) -> None:
        self._repository = repository

    @property
    def name(self) -> str:
        return self._repository.name

    def get(self, record_id: int) -> ReadT | None:
        """The row with this id, or None."""
        return self._repository.get(record_id)

    def list(
        self,
        where: Mapping[str, Any] | None = None,
        *,
        since: object = None,
        until: object = None,
        after: str | None = None,
        limit: int = DEFAULT_LIMIT,
        newest_first: bool = False,
    ) -> Page[ReadT]:
        """Rows matching `where` (column = value; a list means IN; None means IS NULL), in
        the order of the table's time column, from `since` (inclusive) to `until`
        (exclusive). Pass a page's `next_after` as `after` for the next page."""
        return self._repository.list(
            where, since=since, until=until, after=after, limit=limit, newest_first=newest_first
        )

    def count(self, where: Mapping[str, Any] | None = None) -> int:
        """How many rows match `where` (as in `list`)."""
        return self._repository.count(where)

    def __repr__(self) -> str:
        return f"<TableReader {self.name}>"


class Tables:
    """One reader per table, by the specification's name: `tables.trades`,
    `tables.crypto_orders`, ..., or `tables["market_data"]`."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.trades = TableReader(store.trades)
        self.crypto_orders = TableReader(store.orders)
        self.positions = TableReader(store.positions)
        self.market_data = TableReader(store.candles)
        self.tickers = TableReader(store.tickers)
        self.performance_metrics = TableReader(store.performance)
        self.portfolio_snapshots = TableReader(store.snapshots)
        self.bot_config = TableReader(store.config)
        self.bot_logs = TableReader(store.logs)
        self.wallets = TableReader(store.wallets)
        self.balance_history = TableReader(store.balance_history)
        self.wallet_movements = TableReader(store.movements)
        self.sync_cursors = TableReader(store.sync_cursors)
        self.reference_prices = TableReader(store.reference_prices)

    def __getitem__(self, name: str) -> TableReader[Any]:
        reader: TableReader[Any] = getattr(self, self._store.repo(name).name)
        return reader

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def names(self) -> list[str]:
        """The tables' names: the specification's eleven, the wallet journal, the sync
        cursors of exchange accounts and the USD reference prices."""
        return self._store.table_names()

    def counts(self) -> dict[str, int]:
        """Rows per table, read in one consistent view."""
        return self._store.row_counts()
