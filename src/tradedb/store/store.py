"""The Store: a Database with one typed repository per table of the specification."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from tradedb.errors import UnknownName
from tradedb.models import (
    BalanceHistory,
    BalanceHistoryCreate,
    Candle,
    CandleCreate,
    Config,
    ConfigCreate,
    Log,
    LogCreate,
    Order,
    OrderCreate,
    Performance,
    PerformanceCreate,
    PortfolioSnapshot,
    PortfolioSnapshotCreate,
    Position,
    PositionCreate,
    ReferencePrice,
    ReferencePriceCreate,
    SyncCursor,
    SyncCursorCreate,
    Ticker,
    TickerCreate,
    Trade,
    TradeCreate,
    Wallet,
    WalletCreate,
    WalletMovement,
    WalletMovementCreate,
)
from tradedb.models.fields import TimeframeName
from tradedb.models.values import to_iso_date
from tradedb.schema import tables as t
from tradedb.schema.migrate import SchemaStatus
from tradedb.store.bulk import (
    TICKER_COLUMNS,
    TICKER_KEY,
    BulkResult,
    OnConflict,
    candle_batch,
    rows_batch,
    ticker_rows,
    write_batch,
)
from tradedb.store.database import Database
from tradedb.store.engines import PostgresTarget
from tradedb.store.ledger import LedgerRecords
from tradedb.store.market import MarketRecords
from tradedb.store.repository import Repository, TableSpec

TRADES = TableSpec(t.trades, TradeCreate, Trade, "timestamp")
ORDERS = TableSpec(t.crypto_orders, OrderCreate, Order, "timestamp", ("order_id",))
POSITIONS = TableSpec(t.positions, PositionCreate, Position, "opened_at")
CANDLES = TableSpec(
    t.market_data,
    CandleCreate,
    Candle,
    "timestamp",
    ("symbol", "timestamp", "timeframe", "exchange"),
    durable=False,
)
TICKERS = TableSpec(
    t.tickers, TickerCreate, Ticker, "timestamp", ("symbol", "exchange", "timestamp"), durable=False
)
PERFORMANCE = TableSpec(
    t.performance_metrics,
    PerformanceCreate,
    Performance,
    "date",
    ("date", "coalesce(strategy, '')", "coalesce(exchange, '')"),
    parse_time=to_iso_date,
)
SNAPSHOTS = TableSpec(
    t.portfolio_snapshots, PortfolioSnapshotCreate, PortfolioSnapshot, "timestamp"
)
CONFIG = TableSpec(t.bot_config, ConfigCreate, Config, None, ("config_key",))
LOGS = TableSpec(t.bot_logs, LogCreate, Log, "timestamp", durable=False)
WALLETS = TableSpec(t.wallets, WalletCreate, Wallet, "last_updated", ("exchange", "asset"))
BALANCE_HISTORY = TableSpec(t.balance_history, BalanceHistoryCreate, BalanceHistory, "timestamp")
MOVEMENTS = TableSpec(t.wallet_movements, WalletMovementCreate, WalletMovement, "timestamp")
# Ordered by id: a period's open start (NULL) has no place in a time order.
REFERENCE_PRICES = TableSpec(t.reference_prices, ReferencePriceCreate, ReferencePrice, None)
SYNC_CURSORS = TableSpec(
    t.sync_cursors, SyncCursorCreate, SyncCursor, "synced_at", ("exchange", "stream", "scope")
)


class Store:
    """Typed access to every table of one database. Close it, or use it with `with`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.trades = Repository(db, TRADES)
        self.orders = Repository(db, ORDERS)
        self.positions = Repository(db, POSITIONS)
        self.candles = Repository(db, CANDLES)
        self.tickers = Repository(db, TICKERS)
        self.performance = Repository(db, PERFORMANCE)
        self.snapshots = Repository(db, SNAPSHOTS)
        self.config = Repository(db, CONFIG)
        self.logs = Repository(db, LOGS)
        self.wallets = Repository(db, WALLETS)
        self.balance_history = Repository(db, BALANCE_HISTORY)
        self.movements = Repository(db, MOVEMENTS)
        self.sync_cursors = Repository(db, SYNC_CURSORS)
        self.reference_prices = Repository(db, REFERENCE_PRICES)
        self.market = MarketRecords(db)
        self.ledger = LedgerRecords(
            db,
            trades=self.trades,
            orders=self.orders,
            positions=self.positions,
            wallets=self.wallets,
            movements=self.movements,
        )
        self._by_table: dict[str, Repository[Any, Any]] = {
            repo.name: repo
            for repo in (
                self.trades,
                self.orders,
                self.positions,
                self.candles,
                self.tickers,
                self.performance,
                self.snapshots,
                self.config,
                self.logs,
                self.wallets,
                self.balance_history,
                self.movements,
                self.sync_cursors,
                self.reference_prices,
            )
        }

    @classmethod
    def open(
        cls, target: str | os.PathLike[str] | PostgresTarget, *, readonly: bool = False
    ) -> Store:
        """The store of a SQLite path or a database URL (see tradedb.store.engines)."""
        return cls(Database.open(target, readonly=readonly))

    def repo(self, table: str) -> Repository[Any, Any]:
        """The repository of a table, by its spec name."""
        try:
            return self._by_table[table]
        except KeyError:
            known = ", ".join(sorted(self._by_table))
            raise UnknownName("table", table, f"is not a tradedb table (tables: {known})") from None

    def write_candles(
        self,
        rows: Iterable[Sequence[object]],
        *,
        exchange: str,
        symbol: str,
        timeframe: TimeframeName,
        on_conflict: OnConflict = "replace",
    ) -> BulkResult:
        """Bulk-store OHLCV rows [timestamp_ms, open, high, low, close, volume]."""
        batch = candle_batch(rows, exchange=exchange, symbol=symbol, timeframe=timeframe)
        seal = None
        # With 'keep', stored candles may differ from the written ones.
        if batch.arrays is not None and on_conflict == "replace":
            seal = partial(self.market.seal_written, exchange, symbol, timeframe, batch.arrays)
        return write_batch(self.db, batch, on_conflict=on_conflict, then=seal)

    def write_tickers(
        self,
        rows: Iterable[Mapping[str, object]],
        *,
        exchange: str,
        on_conflict: OnConflict = "replace",
    ) -> BulkResult:
        """Bulk-store tickers given as mappings keyed by the tickers columns."""
        batch = rows_batch(
            "tickers", TICKER_KEY, TICKER_COLUMNS, ticker_rows(rows, exchange=exchange)
        )
        return write_batch(self.db, batch, on_conflict=on_conflict)

    def table_names(self) -> list[str]:
        return list(self._by_table)

    def row_counts(self) -> dict[str, int]:
        with self.db.snapshot():
            return {name: repo.count() for name, repo in self._by_table.items()}

    def schema_status(self) -> SchemaStatus:
        return self.db.schema_status()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
