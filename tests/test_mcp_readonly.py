"""Read-only by default, at the SQLite level: without --allow-writes the write tools do not
exist, and a write that reached the database anyway (a write tool wired to the read-only
store, a service, raw SQL on the server's connection) is refused by SQLite itself. After all
of it the database file is byte for byte what it was, and the write-ahead log holds nothing
that a later checkpoint could copy into it."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.server import MCPServer

import mcp_database as data
from mcp_database import anyio_backend, call, refusal, server_store  # noqa: F401
from tradedb.mcp import TradedbServer, build_server, write_tools
from tradedb.services.ledger import Ledger
from tradedb.services.ops import config
from tradedb.store import Store
from tradedb.store.database import ReadOnlyDatabaseError

pytestmark = pytest.mark.anyio

CANDLES = {"exchange": data.EXCHANGE, "symbol": data.SYMBOL, "timeframe": data.TIMEFRAME}
READ_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("get_candles", {**CANDLES, "limit": 1000, "since": data.FIRST_CANDLE}),
    ("get_candles", CANDLES),
    ("get_ticker", {"symbol": data.SYMBOL}),
    ("list_positions", {}),
    ("list_orders", {}),
    ("list_trades", {}),
    ("pnl_summary", {}),
    ("performance", {}),
    ("balances", {}),
    ("portfolio", {}),
    ("search_logs", {"text": "order"}),
    ("list_data", {}),
]
WRITE_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("set_config", {"key": "risk.max", "value": "1", "config_type": "number"}),
    (
        "record_analysis",
        {
            "chart_pattern": {"type": "Flag", "price_level": 0.0015, "confidence": "Low"},
            "symbol": data.SYMBOL,
        },
    ),
    (
        "place_paper_order",
        {
            "exchange": data.EXCHANGE,
            "symbol": data.SYMBOL,
            "side": "buy",
            "amount": "1",
            "at": "2019-10-13T11:17:00+00:00",
        },
    ),
]


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def server(database: str) -> Iterator[TradedbServer]:
    built = build_server(database)
    yield built
    built.close()


def wal_is_empty(database: str | Path) -> bool:
    wal = Path(f"{database}-wal")
    return not wal.exists() or wal.stat().st_size == 0


async def reads_answer_and_writes_are_refused(server: TradedbServer, refused: str) -> None:
    """Every read tool answers; the write tools do not exist; and wired to the read-only
    store anyway (as a bug might), each write tool is refused with the hint."""
    async with Client(server.mcp) as client:
        for tool, arguments in READ_CALLS:
            await call(client, tool, arguments)
        for tool, arguments in WRITE_CALLS:
            assert await refusal(client, tool, arguments) == f"Unknown tool: {tool}"
    wired = MCPServer("tradedb-test")
    write_tools.register(wired, server.db)
    async with Client(wired) as client:
        for tool, arguments in WRITE_CALLS:
            text = await refusal(client, tool, arguments)
            assert refused in text, tool
            assert "--allow-writes" in text, tool


@pytest.mark.sqlite_only
@pytest.mark.fault("bad input")
async def test_every_write_attempt_fails_and_the_file_is_unchanged(database: str) -> None:
    before = sha256(database)
    assert not Path(f"{database}-wal").exists()
    server = build_server(database)
    store = server_store(server)
    counts = store.row_counts()
    await reads_answer_and_writes_are_refused(server, "attempt to write a readonly database")

    # Services and raw SQL on the server's own connection are refused the same way.
    with pytest.raises(sqlite3.OperationalError, match="readonly database"):
        Ledger(store).deposit(exchange="kraken", asset="USD", amount="1")
    with pytest.raises(sqlite3.OperationalError, match="readonly database"):
        config.set_value(store, "x", "y")
    connection = store.db.connection
    assert connection.execute("PRAGMA query_only").fetchone()[0] == 1
    for statement in (
        "DELETE FROM trades",
        "DROP TABLE crypto_orders",
        "UPDATE wallets SET available_balance = 0",
        "CREATE TABLE evil (x)",
    ):
        with pytest.raises(sqlite3.OperationalError, match="readonly database"):
            connection.execute(statement)
    assert store.row_counts() == counts

    server.close()
    assert sha256(database) == before
    assert wal_is_empty(database)
    with Store.open(database, readonly=True) as reopened:
        assert reopened.row_counts() == counts


@pytest.mark.postgresql_only
@pytest.mark.fault("bad input")
async def test_every_write_attempt_is_refused_by_the_server_itself(database: str) -> None:
    server = build_server(database)
    store = server_store(server)
    counts = store.row_counts()
    await reads_answer_and_writes_are_refused(server, "opened read-only")

    # Past tradedb's own refusal, the server's sessions are read-only: raw SQL on the
    # server's connection, outside a transaction and inside a snapshot, is refused by
    # PostgreSQL itself.
    statements = (
        "DELETE FROM trades",
        "DROP TABLE crypto_orders",
        "UPDATE wallets SET available_balance = 0",
        "CREATE TABLE evil (x int)",
        "INSERT INTO bot_logs (timestamp, level, message) VALUES (1, 'INFO', 'x')",
    )
    for statement in statements:
        with pytest.raises(store.db.Error, match="read-only transaction"):
            store.db.connection.execute(statement)
        with (
            pytest.raises(store.db.Error, match="read-only transaction"),
            store.db.snapshot() as conn,
        ):
            conn.execute(statement)
    with pytest.raises(ReadOnlyDatabaseError):
        Ledger(store).deposit(exchange="kraken", asset="USD", amount="1")
    with pytest.raises(ReadOnlyDatabaseError):
        config.set_value(store, "x", "y")
    assert store.row_counts() == counts
    server.close()


@pytest.mark.fault("load")
async def test_a_read_only_server_reads_beside_a_writer_and_never_blocks_it(
    database: str, server: TradedbServer
) -> None:
    with Store.open(database) as writer:
        async with Client(server.mcp) as client:
            before = await call(client, "balances", {"exchange": "kraken"})
            Ledger(writer).deposit(exchange="kraken", asset="BTC", amount="0.5")
            after = await call(client, "balances", {"exchange": "kraken"})
    assert [w["total_balance"] for w in before["items"]] == ["0.00000001"]
    assert [w["total_balance"] for w in after["items"]] == ["0.50000001"]


@pytest.mark.fault("bad input")
def test_a_missing_database_is_refused_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.sqlite"
    for allow_writes in (False, True):
        with pytest.raises(Exception, match="does not exist; create it with `tradedb init"):
            build_server(missing, allow_writes=allow_writes)
    assert not missing.exists()
