"""The public object: one open tradedb database, with everything a program does with it.

```python
import tradedb

with tradedb.open("bot.sqlite") as db:        # or "postgresql://bot@db-host/trading"
    db.ledger.deposit(exchange="kraken", asset="USD", amount="1000")
    db.ledger.place_order(exchange="kraken", order_id="o-1", symbol="BTC/USD",
                          side="buy", order_type="limit", amount="0.01", price="60000")
    db.tables.trades.list({"exchange": "kraken"})
```
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from tradedb.api.accounts import Accounts
from tradedb.api.admin import locate
from tradedb.api.analytics import Analytics
from tradedb.api.ccxt import CcxtShapes
from tradedb.api.logs import BotLogs
from tradedb.api.market import MarketData
from tradedb.api.operations import Operations
from tradedb.api.settings import BotConfig
from tradedb.api.tables import TableReader, Tables
from tradedb.schema.migrate import SchemaStatus
from tradedb.services.ledger import Ledger
from tradedb.services.location import prepare_for_writing
from tradedb.store import Store, engines
from tradedb.store.engines import PostgresTarget


class TradeDB:
    """An open database. Share it between threads; open one per process. Close it, or
    use it with `with`.

    - `ledger`: orders, fills, positions, wallets and their journal (the only way the
      ledger's tables change);
    - `market`: candles and tickers;
    - `analytics`: valuation, snapshots, daily performance, reports, paper trading;
    - `ops`: retention and the audit;
    - `config`: bot_config settings;
    - `logs`: bot_logs;
    - `tables`: reads of every table (get, list with filters and pages, count);
    - `accounts`: live exchange accounts synced into the ledger;
    - `ccxt`: what the reads give, in ccxt's unified structures.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self.ledger = Ledger(store)
        self.market = MarketData(store)
        self.analytics = Analytics(store)
        self.ops = Operations(store)
        self.config = BotConfig(store)
        self.logs = BotLogs(store)
        self.tables = Tables(store)
        self.accounts = Accounts(store)
        self.ccxt = CcxtShapes(store)

    @property
    def engine(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self._store.db.engine

    @property
    def location(self) -> str:
        """The database file, or its URL with the password masked."""
        return self._store.db.display_name

    @property
    def readonly(self) -> bool:
        return self._store.db.readonly

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Several operations as one: inside, each operation joins this transaction, and
        at the end all of them are committed durably, or none (an exception rolls every
        one back)."""
        with self._store.db.transaction():
            yield

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read snapshot: every read inside sees the same committed state. A write
        inside one is refused (TransactionModeError), never silently rolled back."""
        with self._store.db.snapshot():
            yield

    def schema(self) -> SchemaStatus:
        """The schema revision the database is at, and the newest this tradedb knows."""
        return self._store.schema_status()

    def size_bytes(self) -> int:
        return self._store.db.size_bytes()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> TradeDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TradeDB {self.engine} {self.location}>"


def open(
    database: str | os.PathLike[str] | PostgresTarget | None = None,
    *,
    readonly: bool = False,
    allow_network_share: bool = False,
) -> TradeDB:
    """Open a database: a SQLite path (created owner-only, with tradedb's schema, if it
    is new), a `sqlite:///` URL, or `postgresql://user:password@host:port/name` (a
    database that exists; its schema is created if it holds no tables). Without a
    `database`: $TRADEDB_DB, else the config file's `[database] path`, else the default
    file in the user data folder (D:\\crypto-bot\\ on Windows with a D: drive).

    A database at an older schema is refused until `tradedb init` upgrades it.
    `readonly=True` never writes: the file is opened read-only, or the server refuses
    every write of the session.

    A new SQLite file on a network share (SMB, NFS) is refused unless
    `allow_network_share=True`: SQLite's locks are unreliable there. One that exists
    opens, with a NetworkShareWarning once per process."""
    location = locate(database)
    if not readonly:
        prepare_for_writing(location, allow_network_share=allow_network_share)
    return TradeDB(Store.open(location.target, readonly=readonly))


def driver_errors() -> tuple[type[Exception], ...]:
    """The database drivers' own error classes (sqlite3's, and psycopg's where it is
    installed): what a front end reports as one line when one escapes an operation."""
    return engines.driver_errors()


__all__ = [
    "Analytics",
    "BotConfig",
    "BotLogs",
    "CcxtShapes",
    "MarketData",
    "Operations",
    "TableReader",
    "Tables",
    "TradeDB",
    "driver_errors",
    "open",
]
