"""A database for the MCP server's tests, from real data: Binance's XRP/ETH 5m candles of
11 to 13 October 2019 (tests/data/XRP_ETH-5m.feather), a paper session of two shipped
strategies trading them through the ledger, snapshots and daily metrics of those days,
tickers taken from the candles' closes, a few log records and a 1e-8 BTC deposit on
Kraken (the smallest amount there is, to see it come back as '0.00000001')."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextContent

from conftest import DATA
from tradedb.mcp import TradedbServer
from tradedb.models.values import format_decimal
from tradedb.services.analytics.metrics import compute_metrics
from tradedb.services.analytics.snapshots import snapshot_days
from tradedb.services.analytics.valuation import Valuer
from tradedb.services.ledger import Ledger
from tradedb.services.marketdata.importing import import_path
from tradedb.services.paper import plan_session, run_session
from tradedb.store import Store


def server_store(server: TradedbServer) -> Store:
    """The store under the server's database: its own connections, for the checks that
    go past the public object (raw SQL, the store's row counts)."""
    return server.db._store


EXCHANGE = "binance"
SYMBOL = "XRP/ETH"
TIMEFRAME = "5m"
CANDLES = 706
FIRST_CANDLE = 1570752000000  # 2019-10-11 00:00 UTC
LAST_CANDLE = 1570965300000  # 2019-10-13 11:15 UTC
# Approximate USD prices of those days, configured as reference prices (no USD market is
# in the data): ETH about 180 USD, BTC about 8,300 USD in mid-October 2019.
REFERENCE_PRICES = {"ETH": "180", "BTC": "8300"}
SPREAD = Decimal("0.00000010")
# Tickers at these candle times, each with the candle's close as its last price.
TICKER_TIMES = (1570838400000, 1570924800000, LAST_CANDLE)  # 12 Oct, 13 Oct 00:00, last
LOG_ROWS = (
    (1570838400000, "INFO", "order sent", "sma_cross", EXCHANGE, SYMBOL, {"order_id": "A1"}),
    (1570838460000, "WARNING", "slow reply from the exchange", None, EXCHANGE, None, None),
    (1570838520000, "ERROR", "Timeout talking to kraken", "rsi_revert", "kraken", None, None),
    (1570838580000, "DEBUG", "tick", None, None, None, None),
)


def build(path: Path | str, work: Path) -> None:
    folder = work / EXCHANGE
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DATA / "XRP_ETH-5m.feather", folder / "XRP_ETH-5m.feather")
    with Store.open(path) as store:
        import_path(store, folder)
        candles = {c.timestamp: c for c in store.candles.list(limit=1000).items}
        store.write_tickers(
            [
                {
                    "symbol": SYMBOL,
                    "bid_price": candles[at].close_price,
                    "ask_price": candles[at].close_price + SPREAD,
                    "last_price": candles[at].close_price,
                    "volume_24h": candles[at].volume,
                    "timestamp": at,
                }
                for at in TICKER_TIMES
            ],
            exchange=EXCHANGE,
        )
        run_session(
            store,
            plan_session(
                strategies=["sma_cross", "rsi_revert"],
                exchange=EXCHANGE,
                symbols=[SYMBOL],
                since="2019-10-11",
                until="2019-10-13T11:00:00+00:00",
                capital="10",
                quote_usd=REFERENCE_PRICES["ETH"],
            ),
        )
        Ledger(store).deposit(
            exchange="kraken", asset="BTC", amount="0.00000001", timestamp=FIRST_CANDLE
        )
        valuer = Valuer(store, dict(REFERENCE_PRICES))
        snapshot_days(store, "2019-10-12", "2019-10-13", valuer)
        compute_metrics(store, "2019-10-11", "2019-10-13", Valuer(store, dict(REFERENCE_PRICES)))
        for timestamp, level, message, strategy, exchange, symbol, metadata in LOG_ROWS:
            store.logs.insert(
                {
                    "timestamp": timestamp,
                    "level": level,
                    "message": message,
                    "module": "bot",
                    "strategy": strategy,
                    "exchange": exchange,
                    "symbol": symbol,
                    "metadata": metadata,
                }
            )


# --- the database, for tests ------------------------------------------------------------------

# Built once a session per engine (it takes seconds: a paper session, snapshots, metrics),
# then copied: the SQLite file, or the PostgreSQL database used as a template.
_templates: dict[tuple[Path, str], Path | str] = {}


def copy_of_template(
    tmp_path_factory: pytest.TempPathFactory,
    folder: Path,
    engine: str = "sqlite",
    request: pytest.FixtureRequest | None = None,
) -> str:
    """A copy of the test database: a closed file in `folder` (no -wal or -shm file beside
    it yet), or a new PostgreSQL database made from the template (dropped after the test
    or module that asked for it)."""
    key = (tmp_path_factory.getbasetemp(), engine)
    if engine == "sqlite":
        if key not in _templates:
            work = tmp_path_factory.mktemp("mcp-template")
            build(work / "template.sqlite", work)
            _templates[key] = work / "template.sqlite"
        path = folder / "tradedb.sqlite"
        shutil.copyfile(_templates[key], path)
        return str(path)
    assert request is not None, "a PostgreSQL copy is dropped when its requester ends"
    server = request.getfixturevalue("pg_server")
    if key not in _templates:
        name = server.create_database()
        build(server.url(name), tmp_path_factory.mktemp("mcp-template"))
        _templates[key] = name
    copy = server.create_database(str(_templates[key]))
    request.addfinalizer(lambda: server.drop_database(copy))
    return str(server.url(copy))


# For the test modules to import: the SDK's client on asyncio.
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# The tools of a server without --allow-writes.
READ_TOOLS = {
    "get_candles",
    "get_ticker",
    "list_positions",
    "list_orders",
    "list_trades",
    "pnl_summary",
    "performance",
    "balances",
    "portfolio",
    "search_logs",
    "list_data",
    "sync_status",
}


# --- talking to a server ---------------------------------------------------------------------


async def call(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> Any:
    """A tool's structured result; fails the test if the tool refused."""
    result = await client.call_tool(tool, arguments or {})
    assert not result.is_error, result.content
    return result.structured_content


async def refusal(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    """The text of a tool's refusal; fails the test if the tool answered."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    assert result.structured_content is None
    (content,) = result.content
    assert isinstance(content, TextContent)
    return content.text


def fixed_point(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def amounts_in(data: Any) -> list[str]:
    """Every string in a JSON value that reads as a number (amounts are such strings)."""
    if isinstance(data, dict):
        return [text for value in data.values() for text in amounts_in(value)]
    if isinstance(data, list):
        return [text for value in data for text in amounts_in(value)]
    if isinstance(data, str):
        try:
            Decimal(data)
        except ArithmeticError:
            return []
        return [data]
    return []
