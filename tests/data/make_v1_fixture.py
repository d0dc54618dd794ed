"""Build tests/data/tradedb-v1.sqlite: a small real tradedb database at schema revision 0001.

Run with the tradedb whose newest revision is 0001:

    .venv/bin/python tests/data/make_v1_fixture.py

The file is a historical artefact: tests/test_migrations.py upgrades a copy of it and checks
that every row survives. Once a later revision exists, do not regenerate it with the newer
tradedb (that would build it at the new head); check out a commit at revision 0001 instead.
Every row goes in through the public Store API, so the values are what tradedb really wrote.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

from tradedb.schema import migrate
from tradedb.store import Store

REVISION = "0001"
TARGET = Path(__file__).with_name("tradedb-v1.sqlite")
MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
DAY = 86_400_000


def fill(store: Store) -> None:
    store.trades.insert(
        {
            "symbol": "BTC/USDT",
            "side": "buy",
            "amount": "0.00000001",
            "price": "37000.12345678",
            "total_value": "0.00037000",
            "fee": "0",
            "fee_currency": "USDT",
            "timestamp": MS,
            "exchange": "kraken",
            "order_id": "O-1",
            "strategy": "grid",
            "exchange_trade_id": "T-1",
        }
    )
    store.trades.insert(
        {
            "symbol": "ETH/USDT",
            "side": "sell",
            "amount": "12345678901.12345678",
            "price": "1",
            "total_value": "12345678901.12345678",
            "fee": None,
            "timestamp": MS + 1,
            "exchange": "binance",
            "status": "partial",
            "profit_loss": "-1234.56789012",
        }
    )
    store.trades.insert(
        {
            "symbol": "SOL/USDT:USDT",
            "side": "buy",
            "amount": "92233720368.54775807",
            "price": "0.00000001",
            "total_value": "922.33720368",
            "timestamp": MS + 2,
            "exchange": "kraken",
            "status": "canceled",
            "profit_loss": "0",
        }
    )

    store.orders.insert(
        {
            "order_id": "O-1",
            "symbol": "BTC/USDT",
            "side": "buy",
            "order_type": "limit",
            "amount": "1.5",
            "price": "37000.12345678",
            "filled_amount": "0.5",
            "remaining_amount": "1.0",
            "status": "open",
            "exchange": "kraken",
            "strategy": "grid",
            "timestamp": MS,
        }
    )
    market = store.orders.insert(
        {
            "order_id": "O-2",
            "symbol": "ETH/USDT",
            "side": "sell",
            "order_type": "market",
            "amount": "2",
            "exchange": "binance",
            "timestamp": MS + 1,
        }
    )
    store.orders.update(market.id, {"status": "canceled", "canceled_at": MS + 5})

    store.positions.insert(
        {
            "symbol": "BTC/USDT",
            "side": "long",
            "amount": "0.5",
            "entry_price": "37000",
            "current_price": "38000.5",
            "unrealized_pnl": "500.25",
            "exchange": "kraken",
            "strategy": "grid",
            "opened_at": MS,
        }
    )
    store.positions.insert(
        {
            "symbol": "ETH/USDT",
            "side": "short",
            "amount": "3",
            "entry_price": "2000",
            "realized_pnl": "-45.12345678",
            "status": "closed",
            "exchange": "binance",
            "opened_at": MS,
            "closed_at": MS + DAY,
        }
    )

    for step, close in enumerate(("37000.5", "36999.99999999")):
        store.candles.insert(
            {
                "symbol": "BTC/USDT",
                "timestamp": MS - MS % 60_000 + step * 60_000,
                "open_price": "37000",
                "high_price": "37001",
                "low_price": "36999.99999999",
                "close_price": close,
                "volume": "12.3456789",
                "timeframe": "1m",
                "exchange": "kraken",
            }
        )

    store.tickers.insert(
        {
            "symbol": "BTC/USDT",
            "bid_price": "36999.9",
            "ask_price": "37000.1",
            "last_price": "37000",
            "volume_24h": "1234.5",
            "price_change_24h": "-120.5",
            "price_change_percent_24h": "-0.3246",
            "timestamp": MS,
            "exchange": "kraken",
        }
    )
    store.tickers.insert(
        {"symbol": "ETH/USDT", "last_price": "2000", "timestamp": MS, "exchange": "binance"}
    )

    store.performance.insert(
        {
            "date": "2023-11-14",
            "total_portfolio_value": "100000.12345678",
            "daily_pnl": "-12.5",
            "daily_pnl_percent": "-0.0125",
            "total_trades": 3,
            "winning_trades": 1,
            "losing_trades": 1,
            "win_rate": "33.3333",
            "sharpe_ratio": "1.2345",
            "max_drawdown": "-4.5",
        }
    )
    store.performance.insert(
        {
            "date": "2023-11-14",
            "total_portfolio_value": "50000",
            "strategy": "grid",
            "exchange": "kraken",
        }
    )

    store.snapshots.insert(
        {
            "timestamp": MS,
            "asset": "BTC",
            "amount": "0.5",
            "usd_value": "18500",
            "price_per_unit": "37000",
            "exchange": "kraken",
        }
    )

    store.config.insert({"config_key": "bot.name", "config_value": "tradebot"})
    store.config.insert(
        {
            "config_key": "grid.levels",
            "config_value": "12",
            "config_type": "number",
            "strategy": "grid",
            "description": "price levels of the grid",
        }
    )
    store.config.insert(
        {
            "config_key": "paper",
            "config_value": "false",
            "config_type": "boolean",
            "is_active": False,
        }
    )
    store.config.insert(
        {"config_key": "pairs", "config_value": '["BTC/USDT", "ETH/USDT"]', "config_type": "json"}
    )

    store.logs.insert({"timestamp": MS, "level": "INFO", "message": "bot started"})
    store.logs.insert(
        {
            "timestamp": MS + 1,
            "level": "ERROR",
            "message": "order rejected: ünïcode ✓",
            "module": "ledger",
            "strategy": "grid",
            "exchange": "kraken",
            "symbol": "BTC/USDT",
            "metadata": {"code": 42, "retry": True},
        }
    )

    store.wallets.upsert(
        {
            "exchange": "kraken",
            "asset": "BTC",
            "available_balance": "0.1",
            "locked_balance": "0.2",
            "usd_value": "11100",
            "last_updated": MS,
        }
    )
    store.wallets.upsert({"exchange": "binance", "asset": "USDT", "last_updated": MS})

    for balance_type, balance in (("available", "0.1"), ("locked", "0.2"), ("total", "0.3")):
        store.balance_history.insert(
            {
                "exchange": "kraken",
                "asset": "BTC",
                "balance": balance,
                "timestamp": MS,
                "balance_type": balance_type,
            }
        )


def main() -> int:
    head = migrate.head_revision()
    if head != REVISION:
        print(
            f"this tradedb is at revision {head}; the v1 fixture must be built by a tradedb "
            f"whose newest revision is {REVISION} (check out that commit)",
            file=sys.stderr,
        )
        return 1
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / TARGET.name
        with Store.open(path) as store:
            fill(store)
            counts = store.row_counts()
        empty = [table for table, count in counts.items() if count == 0]
        assert not empty, f"tables left empty: {empty}"
        # All rows in the main file, so copying that one file copies the whole database.
        conn = sqlite3.connect(path)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            conn.close()
        assert revision == REVISION, revision
        assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
        TARGET.write_bytes(path.read_bytes())
    print(f"wrote {TARGET} at revision {REVISION}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
