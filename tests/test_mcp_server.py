"""The MCP server through the SDK's own client, in process: every read tool answers from the
database exactly (amounts as fixed-point strings), lists are bounded and say when they are
cut, the resources describe the schema and the metrics, and bad arguments get one clear
refusal while the server keeps answering."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

import mcp_database as data
from conftest import ENGINES
from mcp_database import (  # noqa: F401
    READ_TOOLS,
    amounts_in,
    anyio_backend,
    call,
    fixed_point,
    refusal,
)
from tradedb.compat.mcp_trader_models import CandleData
from tradedb.mcp import TradedbServer, build_server
from tradedb.schema.tables import ALL_TABLES, performance_metrics, portfolio_snapshots
from tradedb.services.ledger import listing
from tradedb.services.ops import retention
from tradedb.services.reports import ReportFilters, compare
from tradedb.services.reports.comparison import StrategyRow
from tradedb.services.reports.table import row_json
from tradedb.store import Store

pytestmark = pytest.mark.anyio

LIST_TOOLS = READ_TOOLS - {"get_ticker", "sync_status"}
INJECTION = "BTC/USDT'; DROP TABLE crypto_trades;--"
DAY_MS = 86_400_000


@pytest.fixture(scope="module", params=ENGINES)
def database(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    return data.copy_of_template(
        tmp_path_factory, tmp_path_factory.mktemp("mcp"), request.param, request
    )


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[TradedbServer]:
    built = build_server(database)
    yield built
    built.close()


@pytest.fixture(scope="module")
def store(database: str) -> Iterator[Store]:
    """The database as the tests read it, to check what the tools say."""
    with Store.open(database, readonly=True) as opened:
        yield opened


def as_json(record: Any) -> dict[str, Any]:
    result: dict[str, Any] = record.model_dump(mode="json")
    return result


# --- the tools there are ---------------------------------------------------------------------


async def test_a_read_only_server_lists_the_read_tools_each_with_a_bounded_limit(
    server: TradedbServer,
) -> None:
    async with Client(server.mcp) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == READ_TOOLS
    for name, tool in tools.items():
        assert tool.annotations is not None, name
        assert tool.annotations.read_only_hint, name
        assert tool.output_schema is not None, name
        assert tool.description, name
    for name in LIST_TOOLS:
        limit = tools[name].input_schema["properties"]["limit"]
        assert (limit["default"], limit["minimum"], limit["maximum"]) == (100, 1, 1000), name
    assert "read-only" in (server.mcp.instructions or "")


# --- market data ------------------------------------------------------------------------------


async def test_get_candles_gives_candle_data_and_the_exact_values(
    server: TradedbServer, store: Store
) -> None:
    market = {"exchange": data.EXCHANGE, "symbol": data.SYMBOL, "timeframe": data.TIMEFRAME}
    stored = store.candles.list(market, limit=1000).items
    assert len(stored) == data.CANDLES
    async with Client(server.mcp) as client:
        newest = await call(client, "get_candles", {**market, "limit": 3})
        everything = await call(
            client, "get_candles", {**market, "since": data.FIRST_CANDLE, "limit": 1000}
        )
        middle = await call(
            client,
            "get_candles",
            {**market, "since": "2019-10-12", "until": "2019-10-12T01:00:00+00:00"},
        )
    # Without since: the newest candles, oldest first, and more lie before them.
    assert [c["timestamp"] for c in newest["candles"]] == [c.timestamp for c in stored[-3:]]
    assert newest["truncated"] is True
    assert everything["truncated"] is False
    assert len(everything["candles"]) == data.CANDLES
    for sent, candle in zip(everything["candles"], stored, strict=True):
        assert sent["timestamp"] == candle.timestamp
        assert sent["open_exact"] == fixed_point(candle.open_price)
        assert sent["high_exact"] == fixed_point(candle.high_price)
        assert sent["low_exact"] == fixed_point(candle.low_price)
        assert sent["close_exact"] == fixed_point(candle.close_price)
        assert sent["volume_exact"] == fixed_point(candle.volume)
        # The mcp-trader fields are the doubles nearest the exact values.
        assert sent["close"] == float(candle.close_price)
        assert sent["symbol"] == data.SYMBOL
    # The CandleData part is mcp-trader's shape, as their model reads it.
    first = everything["candles"][0]
    parsed = CandleData.model_validate({k: first[k] for k in CandleData.model_fields})
    assert parsed.date.isoformat() == "2019-10-11T00:00:00+00:00"
    assert [c["date"] for c in middle["candles"]][:2] == [
        "2019-10-12T00:00:00Z",
        "2019-10-12T00:05:00Z",
    ]
    assert len(middle["candles"]) == 12
    assert middle["truncated"] is False


async def test_get_ticker_gives_the_newest_stored_ticker(
    server: TradedbServer, store: Store
) -> None:
    newest = store.tickers.list({"symbol": data.SYMBOL}, newest_first=True, limit=1).items[0]
    async with Client(server.mcp) as client:
        ticker = await call(client, "get_ticker", {"symbol": data.SYMBOL})
        on_binance = await call(
            client, "get_ticker", {"symbol": data.SYMBOL, "exchange": data.EXCHANGE}
        )
    assert ticker == on_binance == as_json(newest)
    assert ticker["timestamp"] == data.LAST_CANDLE
    assert Decimal(ticker["ask_price"]) - Decimal(ticker["bid_price"]) == data.SPREAD


async def test_list_data_gives_each_stored_series_with_its_range(server: TradedbServer) -> None:
    async with Client(server.mcp) as client:
        stored = await call(client, "list_data", {})
        on_kraken = await call(client, "list_data", {"exchange": "kraken"})
    assert stored["items"] == [
        {
            "exchange": data.EXCHANGE,
            "symbol": data.SYMBOL,
            "timeframe": data.TIMEFRAME,
            "first": data.FIRST_CANDLE,
            "last": data.LAST_CANDLE,
            "candles": data.CANDLES,
            # 2019-10-11 00:00 to 2019-10-13 11:15 is 712 five-minute candles.
            "missing": 712 - data.CANDLES,
            "gaps": 6,
        }
    ]
    assert on_kraken == {"items": [], "truncated": False, "next_after": None}


# --- the ledger ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "service"),
    [
        ("list_orders", listing.orders),
        ("list_trades", listing.trades),
        ("list_positions", listing.positions),
    ],
)
async def test_ledger_listings_are_the_ledgers_rows_page_by_page(
    server: TradedbServer, store: Store, tool: str, service: Any
) -> None:
    everything = [as_json(row) for row in service(store, listing.Filters(limit=1000)).items]
    assert len(everything) >= 7
    async with Client(server.mcp) as client:
        whole = await call(client, tool, {})
        pages, after = [], None
        while True:
            page = await call(client, tool, {"limit": 3, "after": after})
            pages += page["items"]
            assert page["truncated"] is (page["next_after"] is not None)
            if not page["truncated"]:
                break
            after = page["next_after"]
        none = await call(client, tool, {"strategy": "rsi_revert"})
        sma = await call(client, tool, {"strategy": "sma_cross", "exchange": data.EXCHANGE})
    assert whole == {"items": everything, "truncated": False, "next_after": None}
    assert pages == everything
    assert none["items"] == []
    assert sma["items"] == everything


async def test_trades_filter_by_time_and_status(server: TradedbServer, store: Store) -> None:
    since, until = "2019-10-12", "2019-10-13"
    expected = listing.trades(store, listing.Filters(since=since, until=until, limit=1000))
    async with Client(server.mcp) as client:
        trades = await call(client, "list_trades", {"since": since, "until": until})
        canceled = await call(client, "list_orders", {"status": "canceled"})
    assert [t["id"] for t in trades["items"]] == [t.id for t in expected.items]
    assert trades["items"]
    assert all(1570838400000 <= t["timestamp"] < 1570924800000 for t in trades["items"])
    assert all(order["status"] == "canceled" for order in canceled["items"])


async def test_balances_are_exact_fixed_point_strings(server: TradedbServer, store: Store) -> None:
    wallets = listing.balances(store)
    async with Client(server.mcp) as client:
        balances = await call(client, "balances", {})
        kraken = await call(client, "balances", {"exchange": "kraken", "asset": "BTC"})
        one = await call(client, "balances", {"limit": 1})
    assert balances["items"] == [as_json(wallet) for wallet in wallets]
    (btc,) = kraken["items"]
    assert btc["available_balance"] == btc["total_balance"] == "0.00000001"
    assert one["truncated"] is True
    assert len(one["items"]) == 1
    texts = amounts_in(balances)
    assert texts
    assert not [text for text in texts if "E" in text.upper()]


# --- analytics ----------------------------------------------------------------------------------


async def test_pnl_summary_is_the_reports_comparison(server: TradedbServer, store: Store) -> None:
    everything = compare(store, ReportFilters.parse())
    one_day = compare(
        store,
        ReportFilters.parse(
            strategies=["sma_cross"], first_date="2019-10-12", last_date="2019-10-12"
        ),
    )
    async with Client(server.mcp) as client:
        summary = await call(client, "pnl_summary", {})
        narrowed = await call(
            client,
            "pnl_summary",
            {"strategy": ["sma_cross"], "since": "2019-10-12", "until": "2019-10-13"},
        )
        by_name = await call(
            client,
            "pnl_summary",
            {"strategy": "sma_cross", "since": "2019-10-12", "until": "2019-10-13"},
        )
        cut = await call(client, "pnl_summary", {"limit": 1})
    # `tradedb report --json` also lists each round trip; the tool keeps the summary.
    assert summary["rows"] == [_summary_of(row) for row in everything.rows]
    assert narrowed["rows"] == [_summary_of(row) for row in one_day.rows]
    assert by_name == narrowed
    assert narrowed["strategy"] == ["sma_cross"]
    assert (narrowed["first_date"], narrowed["last_date"]) == ("2019-10-12", "2019-10-12")
    (row,) = narrowed["rows"]
    assert (row["strategy"], row["days"], row["first_date"]) == ("sma_cross", 1, "2019-10-12")
    assert cut["truncated"] is True
    assert len(cut["rows"]) == 1


async def test_performance_gives_the_daily_rows_newest_first(
    server: TradedbServer, store: Store
) -> None:
    rows = store.performance.list(limit=1000).items
    async with Client(server.mcp) as client:
        everything = await call(client, "performance", {})
        strategy = await call(client, "performance", {"strategy": "sma_cross"})
        day = await call(client, "performance", {"since": "2019-10-12", "until": "2019-10-13"})
    newest_first = sorted(rows, key=lambda row: (row.date, row.id), reverse=True)
    assert everything["items"] == [as_json(row) for row in newest_first]
    assert [r["date"] for r in strategy["items"]] == ["2019-10-13", "2019-10-12", "2019-10-11"]
    assert {r["date"] for r in day["items"]} == {"2019-10-12"}
    assert len(day["items"]) == 4  # sma_cross, binance, kraken and the whole portfolio


async def test_portfolio_is_the_latest_snapshot(server: TradedbServer, store: Store) -> None:
    rows = store.snapshots.list({"timestamp": 1570924800000}, limit=100).items
    async with Client(server.mcp) as client:
        latest = await call(client, "portfolio", {})
        earlier = await call(client, "portfolio", {"at": "2019-10-12T12:00:00+00:00"})
        kraken = await call(client, "portfolio", {"exchange": "kraken"})
    assert latest["timestamp"] == 1570924800000
    assert sorted(r["id"] for r in latest["rows"]) == sorted(row.id for row in rows)
    assert Decimal(latest["total_usd"]) == sum(row.usd_value for row in rows)
    assert earlier["timestamp"] == 1570838400000
    assert [(r["asset"], r["amount"]) for r in kraken["rows"]] == [("BTC", "0.00000001")]


# --- logs ---------------------------------------------------------------------------------------


async def test_search_logs_by_level_context_and_text(server: TradedbServer) -> None:
    async with Client(server.mcp) as client:
        warnings = await call(client, "search_logs", {"level": "warning"})
        timeout = await call(client, "search_logs", {"text": "TIMEOUT"})
        sent = await call(client, "search_logs", {"strategy": "sma_cross", "symbol": data.SYMBOL})
        first = await call(client, "search_logs", {"limit": 1})
        second = await call(client, "search_logs", {"limit": 1, "after": first["next_after"]})
        wildcard = await call(client, "search_logs", {"text": "%"})
    assert [r["level"] for r in warnings["items"]] == ["ERROR", "WARNING"]
    assert [r["message"] for r in timeout["items"]] == ["Timeout talking to kraken"]
    (order,) = sent["items"]
    assert order["metadata"] == {"order_id": "A1"}
    assert first["truncated"] is True
    assert [first["items"][0]["message"], second["items"][0]["message"]] == [
        "tick",
        "Timeout talking to kraken",
    ]
    assert wildcard["items"] == []


# --- resources ----------------------------------------------------------------------------------


async def test_the_schema_resource_describes_every_table_and_column(
    server: TradedbServer,
) -> None:
    async with Client(server.mcp) as client:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        text = (await client.read_resource("tradedb://schema")).contents[0].text  # type: ignore[union-attr]
    assert listed == {"tradedb://schema", "tradedb://metrics"}
    schema = json.loads(text)
    tables = {table["name"]: table for table in schema["tables"]}
    assert set(tables) == {table.name for table in ALL_TABLES}
    for table in ALL_TABLES:
        assert [c["name"] for c in tables[table.name]["columns"]] == [c.name for c in table.columns]
    trades = {c["name"]: c for c in tables["trades"]["columns"]}
    assert trades["price"]["type"] == "DECIMAL(20,8)"
    assert trades["timestamp"]["unit"] == "epoch milliseconds, UTC"
    assert trades["created_at"]["unit"] == "epoch seconds, UTC"
    assert trades["side"]["allowed_values"] == ["buy", "sell"]
    wallets = {c["name"]: c for c in tables["wallets"]["columns"]}
    assert wallets["total_balance"]["generated"] == "available_balance + locked_balance"
    assert ["symbol", "timestamp", "timeframe", "exchange"] in tables["market_data"]["unique"]


async def test_the_metrics_resource_defines_every_figure(server: TradedbServer) -> None:
    async with Client(server.mcp) as client:
        text = (await client.read_resource("tradedb://metrics")).contents[0].text  # type: ignore[union-attr]
        summary = await call(client, "pnl_summary", {})
    metrics = json.loads(text)
    bookkeeping = {"id", "created_at"}
    for table in (performance_metrics, portfolio_snapshots):
        defined = set(metrics[table.name])
        assert defined == {c.name for c in table.columns} - bookkeeping, table.name
    figures = set(summary["rows"][0]) - {"strategy", "exchange", "first_date", "last_date", "note"}
    assert figures == set(metrics["pnl_summary"])


# --- bad arguments ------------------------------------------------------------------------------

CANDLES = {"exchange": data.EXCHANGE, "symbol": data.SYMBOL, "timeframe": data.TIMEFRAME}


@pytest.mark.parametrize(
    ("tool", "arguments", "says"),
    [
        ("get_ticker", {"symbol": "DOGE/USD"}, "no ticker is stored"),
        ("get_candles", {**CANDLES, "symbol": "DOGE/USD"}, "no 5m candles of this market"),
        ("list_trades", {"limit": 10**9}, "less than or equal to 1000"),
        ("list_orders", {"limit": -1}, "greater than or equal to 1"),
        ("get_candles", {**CANDLES, "limit": 0}, "greater than or equal to 1"),
        ("list_trades", {"symbol": INJECTION}, "must be a ccxt market symbol"),
        ("get_candles", {**CANDLES, "symbol": INJECTION}, "must be a ccxt market symbol"),
        ("get_ticker", {"symbol": INJECTION}, "must be a ccxt market symbol"),
        ("list_positions", {"since": "last tuesday"}, "since='last tuesday'"),
        ("get_candles", {**CANDLES, "until": "2019-13-45"}, "is not a calendar date"),
        ("performance", {"since": "12/10/2019"}, "since='12/10/2019'"),
        ("search_logs", {"since": "yesterday"}, "span back from now"),
        ("list_trades", {"status": "lost"}, "status='lost'"),
        ("get_candles", {**CANDLES, "timeframe": "7m"}, "timeframe"),
        ("list_orders", {"after": "page two"}, "not a page token"),
        ("balances", {"exchange": "Kraken"}, "lowercase ccxt exchange id"),
        ("get_ticker", {}, "symbol"),
    ],
)
@pytest.mark.fault("bad input")
async def test_bad_arguments_get_a_clear_refusal_and_the_server_keeps_answering(
    server: TradedbServer, tool: str, arguments: dict[str, Any], says: str
) -> None:
    async with Client(server.mcp) as client:
        text = await refusal(client, tool, arguments)
        assert says in text
        assert text.startswith(f"Error executing tool {tool}")
        assert "Traceback" not in text
        again = await call(client, "list_data", {})
    assert again["items"]


@pytest.mark.fault("bad input")
async def test_an_argument_of_the_wrong_type_is_one_line_naming_it_its_value_and_the_rule(
    server: TradedbServer,
) -> None:
    async with Client(server.mcp) as client:
        huge = await refusal(client, "list_trades", {"limit": 10**9})
        word = await refusal(client, "list_orders", {"limit": "many"})
        listed = await refusal(client, "get_candles", {**CANDLES, "since": [1]})
        long = await refusal(client, "get_ticker", {"symbol": ["x" * 100_000]})
        two = await refusal(client, "performance", {"limit": 0, "strategy": 7})
        missing = await refusal(client, "get_ticker", {})
    assert huge == (
        "Error executing tool list_trades: limit=1000000000: "
        "Input should be less than or equal to 1000"
    )
    assert word == (
        "Error executing tool list_orders: limit='many': "
        "Input should be a valid integer, unable to parse string as an integer"
    )
    assert listed == (
        "Error executing tool get_candles: since=[1]: "
        "Input should be a valid string or a valid integer"
    )
    assert long.startswith("Error executing tool get_ticker: symbol=['xxxxx")
    assert long.endswith("... (100,004 characters): Input should be a valid string")
    assert len(long) < 200
    assert two == (
        "Error executing tool performance: strategy=7: Input should be a valid string; "
        "limit=0: Input should be greater than or equal to 1"
    )
    assert missing == "Error executing tool get_ticker: symbol: is required"
    for text in (huge, word, listed, long, two, missing):
        assert "\n" not in text


async def test_the_tools_share_one_vocabulary(server: TradedbServer) -> None:
    """One strategy filter name, one time range (since, until), one way to page (after)."""
    async with Client(server.mcp) as client:
        tools = {
            tool.name: tool.input_schema["properties"] for tool in (await client.list_tools()).tools
        }
    for name, arguments in tools.items():
        assert not {"strategies", "before", "from_date", "to_date", "start", "end"} & set(
            arguments
        ), name
    assert "strategy" in tools["pnl_summary"]
    assert "strategy" in tools["performance"]
    for name in ("pnl_summary", "performance", "get_candles", "search_logs", "list_trades"):
        assert {"since", "until"} <= set(tools[name]), name
    for name in ("performance", "search_logs", "list_orders", "list_data"):
        assert "after" in tools[name], name


@pytest.mark.fault("bad input")
async def test_injection_in_a_free_text_argument_is_only_text(
    server: TradedbServer, store: Store
) -> None:
    trades = store.trades.count()
    async with Client(server.mcp) as client:
        strategy = await call(client, "list_trades", {"strategy": "x'; DROP TABLE trades;--"})
        text = await call(client, "search_logs", {"text": "'; DELETE FROM bot_logs;--"})
        after = await call(client, "list_trades", {"limit": 1000})
    assert strategy["items"] == []
    assert text["items"] == []
    assert len(after["items"]) == trades == store.trades.count()


# --- archives -----------------------------------------------------------------------------------


@pytest.mark.sqlite_only  # the archive is made on a copy of the file; retention's own tests
# read archives on both engines
async def test_get_candles_reads_the_candles_retention_archived(
    server: TradedbServer,
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRADEDB_CONFIG", str(tmp_path / "no-config.toml"))
    archived = tmp_path / "archived.sqlite"
    shutil.copyfile(database, archived)
    with Store.open(archived) as writer:
        # A year and a half-day after the first candle: the first 429 are past the horizon.
        report = retention.run(
            writer, retention.Policy(), now=data.FIRST_CANDLE + 366 * DAY_MS + DAY_MS // 2
        )
        assert [move.rows for move in report.partitions] == [429]
        assert writer.candles.count() == data.CANDLES - 429
    asked = [
        {**CANDLES, "since": data.FIRST_CANDLE, "limit": 1000},
        {**CANDLES, "since": "2019-10-11", "limit": 3},
        {**CANDLES, "since": "2019-10-12T11:00:00+00:00", "limit": 20},
        {**CANDLES, "limit": 3},
        {**CANDLES, "until": "2019-10-12", "limit": 2},
    ]
    async with Client(server.mcp) as client:
        expected = [await call(client, "get_candles", arguments) for arguments in asked]
    reader = build_server(archived)
    try:
        async with Client(reader.mcp) as client:
            answers = [await call(client, "get_candles", arguments) for arguments in asked]
    finally:
        reader.close()
    assert answers == expected
    assert len(answers[0]["candles"]) == data.CANDLES
    assert [a["truncated"] for a in answers] == [False, True, True, True, True]


async def test_list_data_pages_through_every_series_once(tmp_path: Path) -> None:
    path = tmp_path / "markets.sqlite"
    series = [
        (exchange, symbol, timeframe)
        for exchange in ("binance", "kraken")
        for symbol in ("BTC/EUR", "ETH/BTC")
        for timeframe in ("1h", "5m")
    ]
    with Store.open(path) as store:
        for exchange, symbol, timeframe in series:
            store.write_candles(
                [[1_700_000_000_000 - 1_700_000_000_000 % 3_600_000, "1", "2", "1", "2", "3"]],
                exchange=exchange,
                symbol=symbol,
                timeframe=timeframe,
            )
    listed = build_server(path)
    try:
        seen: list[tuple[str, str, str]] = []
        cursor: dict[str, Any] = {}
        async with Client(listed.mcp) as client:
            for _ in range(len(series)):
                page = await call(client, "list_data", {"limit": 3, **cursor})
                seen += [(i["exchange"], i["symbol"], i["timeframe"]) for i in page["items"]]
                if not page["truncated"]:
                    assert page["next_after"] is None
                    break
                cursor = {"after": page["next_after"]}
            else:
                pytest.fail("list_data never reached its last page")
            bad = await refusal(client, "list_data", {"after": "kraken"})
    finally:
        listed.close()
    assert seen == sorted(series)
    assert "next_after" in bad


def _summary_of(row: StrategyRow) -> dict[str, Any]:
    return {key: value for key, value in row_json(row).items() if key != "round_trip_list"}
