"""The write tools of `tradedb mcp --allow-writes`: each validates what it is given and goes
through tradedb's own services, so what it writes is what the ledger, the config service and
bot_logs would write for any other caller, and a refused call writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from mcp import Client

import mcp_database as data
from mcp_database import READ_TOOLS, anyio_backend, call, refusal, server_store  # noqa: F401
from tradedb.mcp import TradedbServer, build_server
from tradedb.services.ledger.arithmetic import quantize
from tradedb.services.ledger.audit import audit
from tradedb.services.paper.fees import FeeSchedule
from tradedb.store import Store

pytestmark = pytest.mark.anyio

WRITE_TOOLS = {"record_analysis", "set_config", "place_paper_order"}
# The last ticker is of 11:15 UTC, when the 11:10 candle closed with the same price (a tie
# the ticker wins); the 11:15 candle closes at 11:20.
AFTER_LAST_TICKER = "2019-10-13T11:17:00+00:00"
LAST_CANDLE_CLOSED = "2019-10-13T11:20:00+00:00"

TECHNICAL_ANALYSIS = {
    "symbol": "XRP-ETH",
    "current_price": 0.00152787,
    "trend_status": {
        "above_20sma": True,
        "above_50sma": True,
        "above_200sma": False,
        "20_50_bullish": True,
        "50_200_bullish": False,
        "rsi": 61.5,
        "macd_bullish": True,
    },
    "indicators": {
        "sma_20": 0.0015201,
        "sma_50": 0.0015105,
        "sma_200": None,
        "atr": 0.0000042,
        "adrp": 1.9,
        "avg_20d_vol": 5120.0,
        "rsi": 61.5,
        "macd": 0.0000011,
        "macd_signal": 0.0000007,
        "macd_histogram": 0.0000004,
    },
    "analysis_date": "2019-10-13T11:20:00Z",
}
CHART_PATTERN = {
    "type": "Double Bottom",
    "start_date": "2019-10-11",
    "end_date": "2019-10-12",
    "price_level": 0.0014779,
    "confidence": "Medium",
    "additional_info": {"touches": 2},
}


@pytest.fixture
def server(database: str) -> Iterator[TradedbServer]:
    built = build_server(database, allow_writes=True)
    yield built
    built.close()


async def test_allow_writes_adds_the_three_write_tools(server: TradedbServer) -> None:
    async with Client(server.mcp) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == WRITE_TOOLS | READ_TOOLS
    for name in WRITE_TOOLS:
        annotations = tools[name].annotations
        assert annotations is not None
        assert annotations.read_only_hint is False
        assert annotations.destructive_hint is False
        # No tool takes SQL: no argument is named or described as such.
        schema = json.dumps(tools[name].input_schema).lower()
        assert "sql" not in schema
    assert "Writes are enabled" in (server.mcp.instructions or "")


# --- record_analysis ----------------------------------------------------------------------------


async def test_record_analysis_stores_a_technical_analysis_as_a_structured_log(
    server: TradedbServer,
) -> None:
    async with Client(server.mcp) as client:
        stored = await call(
            client,
            "record_analysis",
            {
                "technical_analysis": TECHNICAL_ANALYSIS,
                "symbol": data.SYMBOL,
                "exchange": data.EXCHANGE,
                "strategy": "sma_cross",
            },
        )
        found = await call(client, "search_logs", {"text": "technical analysis"})
    row = server.db.tables.bot_logs.get(stored["id"])
    assert row is not None
    assert (row.level, row.module, row.symbol, row.exchange, row.strategy) == (
        "INFO",
        "tradedb.analysis",
        data.SYMBOL,
        data.EXCHANGE,
        "sma_cross",
    )
    assert row.metadata is not None
    metadata = json.loads(row.metadata)
    assert metadata == {"kind": "technical_analysis", "result": TECHNICAL_ANALYSIS}
    assert stored["metadata"] == metadata
    assert row.message == "technical analysis of XRP-ETH: price 0.00152787, RSI 61.5"
    assert [r["id"] for r in found["items"]] == [row.id]


async def test_record_analysis_stores_a_chart_pattern(server: TradedbServer) -> None:
    async with Client(server.mcp) as client:
        stored = await call(
            client, "record_analysis", {"chart_pattern": CHART_PATTERN, "symbol": data.SYMBOL}
        )
    assert stored["metadata"] == {"kind": "chart_pattern", "result": CHART_PATTERN}
    assert (
        stored["message"]
        == "chart pattern Double Bottom (Medium confidence) at 0.0014779 on XRP/ETH"
    )


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({}, "exactly one of technical_analysis and chart_pattern"),
        (
            {"technical_analysis": TECHNICAL_ANALYSIS, "chart_pattern": CHART_PATTERN},
            "exactly one",
        ),
        ({"chart_pattern": {**CHART_PATTERN, "type": "Cup and Handle"}}, "chart_pattern.type"),
        (
            {"technical_analysis": {**TECHNICAL_ANALYSIS, "current_price": -1}},
            "current_price",
        ),
        ({"chart_pattern": {**CHART_PATTERN, "colour": "red"}}, "colour"),
        ({"chart_pattern": CHART_PATTERN, "symbol": "XRP-ETH"}, "ccxt market symbol"),
    ],
)
@pytest.mark.fault("bad input")
async def test_record_analysis_refuses_what_its_models_refuse_and_writes_nothing(
    server: TradedbServer, arguments: dict[str, Any], says: str
) -> None:
    before = server.db.tables.bot_logs.count()
    async with Client(server.mcp) as client:
        text = await refusal(client, "record_analysis", arguments)
    assert says in text
    assert server.db.tables.bot_logs.count() == before


# --- set_config ---------------------------------------------------------------------------------


async def test_set_config_stores_typed_settings_through_the_config_service(
    server: TradedbServer,
) -> None:
    async with Client(server.mcp) as client:
        number = await call(
            client,
            "set_config",
            {"key": "risk.max_position", "value": "0.00000001", "config_type": "number"},
        )
        own = await call(
            client,
            "set_config",
            {"key": "fast", "value": 10, "strategy": "sma_cross", "description": "fast SMA"},
        )
        flag = await call(client, "set_config", {"key": "trading.enabled", "value": False})
        limits = await call(client, "set_config", {"key": "limits", "value": {"XRP": "0.5"}})
    assert (number["type"], number["value"], number["text"]) == (
        "number",
        "0.00000001",
        "0.00000001",
    )
    assert server.db.config.value("risk.max_position") == Decimal("0.00000001")
    assert own["key"] == "strategy.sma_cross.fast"
    assert own["strategy"] == "sma_cross"
    assert server.db.config.value("fast", strategy="sma_cross") == Decimal(10)
    assert flag["value"] is False
    assert flag["type"] == "boolean"
    assert limits["value"] == {"XRP": "0.5"}
    assert limits["type"] == "json"


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"key": "kraken.api_key", "value": "abc"}, "secrets do not belong in bot_config"),
        ({"key": "binance.secret", "value": "abc"}, "secrets do not belong in bot_config"),
        (
            {"key": "note", "value": "Zk3JqW9pLx7Vb2Nc5Rt8Hy1Md4Fg6Ks0Pq3Wz9Xe7Ty2"},
            "looks like an API key",
        ),
        ({"key": "risk.max", "value": "0.000000001", "config_type": "number"}, "8 decimal"),
        ({"key": "unset.setting"}, "is not set"),
        ({"key": "x", "value": "1", "config_type": "float"}, "config_type"),
    ],
)
@pytest.mark.fault("bad input")
async def test_set_config_refuses_secrets_and_bad_values_and_writes_nothing(
    server: TradedbServer, arguments: dict[str, Any], says: str
) -> None:
    before = server.db.config.entries(include_inactive=True)
    async with Client(server.mcp) as client:
        text = await refusal(client, "set_config", arguments)
    assert says in text
    assert "Zk3JqW9pLx7Vb2Nc5Rt8Hy1Md4Fg6Ks0Pq3Wz9Xe7Ty2" not in text
    assert server.db.config.entries(include_inactive=True) == before


# --- place_paper_order --------------------------------------------------------------------------


def eth_available(store: Store) -> Decimal:
    wallet = store.wallets.list({"exchange": data.EXCHANGE, "asset": "ETH"}).items[0]
    return wallet.available_balance


async def test_a_paper_market_order_fills_at_the_latest_stored_price_through_the_ledger(
    server: TradedbServer,
) -> None:
    store = server_store(server)
    ticker = store.tickers.list({"symbol": data.SYMBOL}, newest_first=True, limit=1).items[0]
    before = eth_available(store)
    order = {
        "exchange": data.EXCHANGE,
        "symbol": data.SYMBOL,
        "side": "buy",
        "amount": "100",
        "client_order_id": "agent-1",
        "at": AFTER_LAST_TICKER,
    }
    async with Client(server.mcp) as client:
        placed = await call(client, "place_paper_order", order)
        again = await refusal(client, "place_paper_order", order)
        trades = await call(client, "list_trades", {"limit": 1})
    value = quantize(Decimal(100) * ticker.last_price)
    fee = FeeSchedule.of(data.EXCHANGE).fee(value, "market")
    assert fee == quantize(value * Decimal("0.001"))
    assert placed["price_used"] == {
        "symbol": data.SYMBOL,
        "exchange": data.EXCHANGE,
        "price": "0.00152787",
        "timestamp": data.LAST_CANDLE,
        "source": "ticker",
    }
    order, trade = placed["order"], placed["trade"]
    assert (order["order_id"], order["status"], order["filled_amount"]) == (
        "paper-agent-1",
        "filled",
        "100.00000000",
    )
    assert (trade["price"], trade["total_value"], trade["fee"]) == (
        "0.00152787",
        str(value),
        str(fee),
    )
    assert placed["position"]["amount"] == "100.00000000"
    assert placed["position"]["strategy"] is None
    assert trades["items"][0] == trade
    assert eth_available(store) == before - value - fee
    assert "already the id of a filled order" in again
    assert audit(store) == []


async def test_a_candle_that_closed_after_the_last_ticker_gives_the_price(
    server: TradedbServer,
) -> None:
    async with Client(server.mcp) as client:
        placed = await call(
            client,
            "place_paper_order",
            {
                "exchange": data.EXCHANGE,
                "symbol": data.SYMBOL,
                "side": "buy",
                "amount": "1",
                "at": LAST_CANDLE_CLOSED,
            },
        )
    last = server.db.tables.market_data.list({"timestamp": data.LAST_CANDLE}).items[0]
    assert placed["price_used"]["source"] == "candle 5m"
    assert placed["price_used"]["timestamp"] == data.LAST_CANDLE + 300_000
    assert placed["trade"]["price"] == str(last.close_price)
    assert placed["order"]["order_id"].startswith("paper-")


async def test_a_paper_limit_order_rests_or_fills_by_the_latest_price(
    server: TradedbServer,
) -> None:
    store = server_store(server)
    order = {
        "exchange": data.EXCHANGE,
        "symbol": data.SYMBOL,
        "side": "buy",
        "amount": "10",
        "order_type": "limit",
        "at": AFTER_LAST_TICKER,
    }
    async with Client(server.mcp) as client:
        resting = await call(client, "place_paper_order", {**order, "price": "0.0015"})
        crossing = await call(client, "place_paper_order", {**order, "price": "0.0016"})
    assert resting["order"]["status"] == "open"
    assert resting["trade"] is None
    # The reservation: amount x price plus Binance's 0.1 % fee reserve, rounded up.
    assert resting["order"]["locked_amount"] == "0.01501500"
    assert crossing["order"]["status"] == "filled"
    assert crossing["trade"]["price"] == "0.00152787"  # the market's, better than the limit
    wallet = store.wallets.list({"exchange": data.EXCHANGE, "asset": "ETH"}).items[0]
    assert wallet.locked_balance == Decimal("0.015015")
    assert audit(store) == []


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"side": "sell", "amount": "1000000"}, "needs 1000000 XRP on binance but"),
        ({"amount": "5000"}, "ETH on binance but 5.15582298 is available"),
        ({"at": "2018-01-01"}, "no ticker or closed candle"),
        ({"symbol": "DOGE/ETH"}, "no ticker or closed candle"),
        ({"order_type": "stop_loss", "price": "0.001"}, "order_type"),
        ({"order_type": "limit"}, "a limit order needs a price"),
        ({"price": "0.0015"}, "a market order has none"),
        ({"amount": "0.000000001"}, "more than 8 decimal places"),
        ({"amount": "-1"}, "greater than zero"),
        ({"at": "2999-01-01"}, "in the future"),
        ({"symbol": "BTC/USDT'; DROP TABLE crypto_trades;--"}, "ccxt market symbol"),
    ],
)
@pytest.mark.fault("bad input")
async def test_a_refused_paper_order_leaves_no_trace(
    server: TradedbServer, changes: dict[str, Any], says: str
) -> None:
    store = server_store(server)
    counts = store.row_counts()
    arguments = {
        "exchange": data.EXCHANGE,
        "symbol": data.SYMBOL,
        "side": "buy",
        "amount": "100",
        "at": AFTER_LAST_TICKER,
        **changes,
    }
    async with Client(server.mcp) as client:
        text = await refusal(client, "place_paper_order", arguments)
    assert says in text
    assert store.row_counts() == counts
    assert audit(store) == []
