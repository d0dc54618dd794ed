"""The one door: `tradedb.open` returns the object a program uses; `tradedb.__all__` is
exactly what docs/api.md documents; reads of every table are there, and the ledger's
tables cannot be written around the ledger's operations."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

import tradedb

ROOT = Path(__file__).parents[1]
API_DOC = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
LEDGER_TABLES = (
    "crypto_orders",
    "trades",
    "positions",
    "wallets",
    "balance_history",
    "wallet_movements",
)
WRITE_METHODS = ("insert", "insert_many", "update", "upsert", "insert_checked", "update_checked")


def documented_names() -> set[str]:
    section = API_DOC.split("## Names in tradedb.__all__", 1)[1]
    bullets = "\n".join(line for line in section.splitlines() if line.startswith(("-", " ")))
    return set(re.findall(r"`(\w+)`", bullets))


def test_the_exported_names_are_exactly_the_documented_ones() -> None:
    assert set(tradedb.__all__) == documented_names()
    assert len(tradedb.__all__) == len(set(tradedb.__all__))
    for name in tradedb.__all__:
        assert getattr(tradedb, name) is not None, name


def test_open_gives_every_part_on_both_engines(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        assert db.engine in ("sqlite", "postgresql")
        assert isinstance(db.ledger, tradedb.Ledger)
        assert isinstance(db.market, tradedb.MarketData)
        assert isinstance(db.analytics, tradedb.Analytics)
        assert isinstance(db.ops, tradedb.Operations)
        assert isinstance(db.config, tradedb.BotConfig)
        assert isinstance(db.logs, tradedb.BotLogs)
        assert set(db.tables) == {
            "trades",
            "crypto_orders",
            "positions",
            "market_data",
            "tickers",
            "performance_metrics",
            "portfolio_snapshots",
            "bot_config",
            "bot_logs",
            "wallets",
            "balance_history",
            "wallet_movements",
            "sync_cursors",
            "reference_prices",
        }
        assert db.schema().up_to_date


def test_every_table_is_readable_with_filters_pages_and_counts(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        for n in range(5):
            db.ledger.deposit(
                exchange="kraken", asset="USD", amount=f"{n + 1}.5", timestamp=1_700_000_000_000 + n
            )
        movements = db.tables["wallet_movements"]
        assert movements.count({"kind": "deposit"}) == 5
        first = movements.list({"asset": "USD"}, limit=2)
        assert [m.available_change for m in first.items] == [Decimal("1.5"), Decimal("2.5")]
        assert first.next_after is not None
        rest = movements.list({"asset": "USD"}, after=first.next_after, limit=10)
        assert [m.available_change for m in rest.items] == [
            Decimal(v) for v in ("3.5", "4.5", "5.5")
        ]
        assert rest.next_after is None
        wallet = db.tables.wallets.list().items[0]
        assert db.tables.wallets.get(wallet.id) == wallet
        assert wallet.total_balance == Decimal("17.5")
        assert db.tables.counts()["balance_history"] == 10


def test_the_ledgers_tables_have_no_write_path_around_the_ledger(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        for table in LEDGER_TABLES:
            reader = db.tables[table]
            for method in WRITE_METHODS:
                assert not hasattr(reader, method), (table, method)
        public = [name for name in dir(db) if not name.startswith("_")]
        assert "store" not in public
        assert "db" not in public
        for part in (db.ledger, db.market, db.analytics, db.ops, db.config, db.logs, db.tables):
            assert not [name for name in dir(part) if name in ("store", "records", "db")], part


@pytest.mark.fault("bad input")
def test_a_write_inside_a_read_snapshot_is_refused_and_nothing_is_written(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        db.ledger.deposit(exchange="kraken", asset="USD", amount="1")
        with db.snapshot(), pytest.raises(tradedb.TransactionModeError, match="read snapshot"):
            db.ledger.deposit(exchange="kraken", asset="USD", amount="5")
        assert db.ledger.balance("kraken", "USD").available == 1
        assert db.tables.wallet_movements.count() == 1


def test_a_transaction_makes_several_operations_all_or_nothing(db_target: str) -> None:
    with tradedb.open(db_target) as db:

        def deposit_then_overdraw() -> None:
            with db.transaction():
                db.ledger.deposit(exchange="kraken", asset="USD", amount="10")
                db.ledger.withdraw(exchange="kraken", asset="USD", amount="11")

        with pytest.raises(tradedb.InsufficientFunds):
            deposit_then_overdraw()
        assert db.tables.wallet_movements.count() == 0
        with db.transaction():
            db.ledger.deposit(exchange="kraken", asset="USD", amount="10")
            db.ledger.withdraw(exchange="kraken", asset="USD", amount="4")
        assert db.ledger.balance("kraken", "USD").available == 6


@pytest.mark.fault("bad input")
def test_a_read_only_database_refuses_writes_and_keeps_its_rows(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        db.ledger.deposit(exchange="kraken", asset="BTC", amount="0.5")
    with tradedb.open(db_target, readonly=True) as db:
        assert db.readonly
        with pytest.raises(tradedb.TradeDBError, match="read-only"):
            db.ledger.deposit(exchange="kraken", asset="BTC", amount="1")
        assert db.ledger.balance("kraken", "BTC").available == Decimal("0.5")
