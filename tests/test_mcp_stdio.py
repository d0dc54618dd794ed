"""`tradedb mcp` as an MCP client runs it: a subprocess (`python -m tradedb mcp --db ...`)
spoken to over stdin/stdout by the SDK's stdio client. The answers come through JSON-RPC
as JSON: amounts as fixed-point strings, the same as in process; bad arguments are refused
and the process keeps serving; read-only leaves the file as it was; --allow-writes writes
through the ledger."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

import mcp_database as data
from cli_harness import isolated_environ
from mcp_database import (  # noqa: F401
    READ_TOOLS,
    amounts_in,
    anyio_backend,
    call,
    fixed_point,
    refusal,
)
from tradedb.mcp import build_server
from tradedb.services.ledger.arithmetic import quantize
from tradedb.services.ledger.audit import audit
from tradedb.store import Store

pytestmark = pytest.mark.anyio

CANDLES = {"exchange": data.EXCHANGE, "symbol": data.SYMBOL, "timeframe": data.TIMEFRAME}
INJECTION = "BTC/USDT'; DROP TABLE crypto_trades;--"
READ_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("get_candles", {**CANDLES, "since": data.FIRST_CANDLE, "limit": 1000}),
    ("get_ticker", {"symbol": data.SYMBOL}),
    ("list_positions", {}),
    ("list_orders", {"limit": 5}),
    ("list_trades", {"strategy": "sma_cross"}),
    ("pnl_summary", {"since": "2019-10-12"}),
    ("performance", {}),
    ("balances", {}),
    ("portfolio", {}),
    ("search_logs", {"level": "WARNING"}),
    ("list_data", {}),
]


def subprocess_client(database: str, tmp_path: Path, *options: str) -> Client:
    """A client of `python -m tradedb mcp --db DATABASE`, in an environment of its own
    (no user config), its stderr kept in a file."""
    parameters = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tradedb", "mcp", "--db", str(database), *options],
        env=isolated_environ(tmp_path),
    )
    errlog = (tmp_path / "server-stderr.txt").open("w", encoding="utf-8")
    return Client(stdio_client(parameters, errlog=errlog))


async def test_a_client_over_stdio_gets_the_same_answers_as_in_process(
    database: str, tmp_path: Path, engine: str
) -> None:
    file = Path(database) if engine == "sqlite" else None
    before = hashlib.sha256(file.read_bytes()).hexdigest() if file else None
    in_process = build_server(database)
    try:
        async with Client(in_process.mcp) as client:
            expected = [await call(client, tool, args) for tool, args in READ_CALLS]
    finally:
        in_process.close()
    async with subprocess_client(database, tmp_path) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        answers = [await call(client, tool, args) for tool, args in READ_CALLS]
        refusals = [
            await refusal(client, "get_ticker", {"symbol": "DOGE/USD"}),
            await refusal(client, "list_trades", {"limit": 10**9}),
            await refusal(client, "list_trades", {"limit": -5}),
            await refusal(client, "list_trades", {"symbol": INJECTION}),
            await refusal(client, "get_candles", {**CANDLES, "since": "not a date"}),
            await refusal(client, "set_config", {"key": "x", "value": "1"}),
        ]
        still = await call(client, "balances", {"exchange": "kraken"})
        schema = json.loads(
            (await client.read_resource("tradedb://schema")).contents[0].text  # type: ignore[union-attr]
        )
    assert "place_paper_order" not in tools
    assert tools == READ_TOOLS
    assert answers == expected
    # Checked against the database itself, after the JSON round trip.
    with Store.open(database, readonly=True) as store:
        stored = store.candles.list(CANDLES, limit=1000).items
        candles = answers[0]["candles"]
        assert [c["close_exact"] for c in candles] == [fixed_point(c.close_price) for c in stored]
        assert [c["close"] for c in candles] == [float(c.close_price) for c in stored]
        trades = store.trades.list({"strategy": "sma_cross"}, newest_first=True).items
        assert [t["id"] for t in answers[4]["items"]] == [t.id for t in trades]
        assert [t["fee"] for t in answers[4]["items"]] == [fixed_point(t.fee) for t in trades]
    assert still["items"][0]["total_balance"] == "0.00000001"
    texts = [text for answer in answers for text in amounts_in(answer)]
    assert texts
    assert not [text for text in texts if "E" in text.upper()]
    assert "no ticker is stored" in refusals[0]
    assert "less than or equal to 1000" in refusals[1]
    assert "greater than or equal to 1" in refusals[2]
    assert "must be a ccxt market symbol" in refusals[3]
    assert "since='not a date'" in refusals[4]
    assert refusals[5] == "Unknown tool: set_config"
    assert {table["name"] for table in schema["tables"]} >= {"trades", "crypto_orders"}
    if file is not None:
        assert hashlib.sha256(file.read_bytes()).hexdigest() == before
        wal = Path(f"{file}-wal")
        assert not wal.exists() or wal.stat().st_size == 0
    assert "Traceback" not in (tmp_path / "server-stderr.txt").read_text(encoding="utf-8")


async def test_allow_writes_over_stdio_records_through_the_ledger_and_bot_logs(
    database: str, tmp_path: Path
) -> None:
    async with subprocess_client(database, tmp_path, "--allow-writes") as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        placed = await call(
            client,
            "place_paper_order",
            {
                "exchange": data.EXCHANGE,
                "symbol": data.SYMBOL,
                "side": "sell",
                "amount": "0.5",
                "client_order_id": "stdio-1",
                "at": "2019-10-13T11:17:00+00:00",
            },
        )
        logged = await call(
            client,
            "record_analysis",
            {
                "chart_pattern": {"type": "Flag", "price_level": 0.0015, "confidence": "Low"},
                "symbol": data.SYMBOL,
            },
        )
    assert {"record_analysis", "set_config", "place_paper_order"} <= tools
    with Store.open(database, readonly=True) as store:
        order = store.orders.list({"order_id": "paper-stdio-1"}).items[0]
        (trade,) = store.trades.list({"order_id": "paper-stdio-1"}).items
        row = store.logs.get(logged["id"])
        assert audit(store) == []
    assert order.status == "filled"
    assert placed["trade"]["total_value"] == fixed_point(trade.total_value)
    # 0.000763935 rounded half-even at 8 decimals.
    assert trade.total_value == quantize(Decimal("0.5") * Decimal("0.00152787"))
    assert trade.total_value == Decimal("0.00076394")
    assert row is not None
    assert row.metadata is not None
    assert json.loads(row.metadata)["kind"] == "chart_pattern"


@pytest.mark.fault("bad input")
def test_the_command_refuses_a_missing_database_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "typo.sqlite"
    done = subprocess.run(
        [sys.executable, "-m", "tradedb", "mcp", "--db", str(missing)],
        capture_output=True,
        text=True,
        env=isolated_environ(tmp_path),
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: database {missing} does not exist; create it with `tradedb init --db {missing}`"
    ]
    assert not missing.exists()


async def test_the_readmes_client_config_starts_the_server(database: str, tmp_path: Path) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use with an MCP client", 1)[1].split("\n## ", 1)[0]
    (snippet,) = re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)
    entry = json.loads(snippet)["mcpServers"]["tradedb"]
    assert entry["command"] == "tradedb"
    documented_db = entry["args"][entry["args"].index("--db") + 1]
    # This virtual environment's `tradedb`, and the test's database in place of the example.
    command = str(Path(sys.executable).parent / entry["command"])
    args = [str(database) if arg == documented_db else arg for arg in entry["args"]]
    parameters = StdioServerParameters(command=command, args=args, env=isolated_environ(tmp_path))
    errlog = (tmp_path / "server-stderr.txt").open("w", encoding="utf-8")
    async with Client(stdio_client(parameters, errlog=errlog)) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        balances = await call(client, "balances", {"exchange": "kraken"})
    assert tools == READ_TOOLS
    assert balances["items"][0]["total_balance"] == "0.00000001"
