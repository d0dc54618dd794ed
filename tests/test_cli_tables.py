"""Numbers as people read them in the commands' tables, and as programs read them in JSON.

Tables: each column of amounts lines up on its decimal point, every stored digit shown;
USD amounts in cents; percentages and ratios at their 4 stored decimals. JSON (`--json`
and the MCP tools): every amount fixed-point at its column's scale, 8 decimals (4 for
percentages and ratios), computed zeros included.

One small database (module scope, only read after it is built) holds two exchanges'
ledgers with prices of several precisions, losses, a pending order's locked funds,
candles whose volume runs to 30 integer digits, tickers that fell, snapshots, metrics and
a paper session that never traded (its P&L a computed zero).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client
from typer.testing import CliRunner

import tradedb
from conftest import ENGINES, new_pg_database
from mcp_database import anyio_backend, call  # noqa: F401
from tradedb.cli import common
from tradedb.cli.app import app
from tradedb.cli.tables import Figure, aligned, exact, percent, usd
from tradedb.mcp import build_server

HOUR = 3_600_000
WIDE_VOLUME = "12345678901234567890123456789.12345678"
REFERENCES = ("--reference-price", "BTC=60500.25", "--reference-price", "ETH=3050.5")
PERIOD = ("--since", "2024-03-02", "--until", "2024-03-06")
MARKET = ("--exchange", "binance", "--symbol", "BTC/USDT")
CANDLES = ("candles", *MARKET, "--timeframe", "1h")
TICKERS = ("ticker-history", *MARKET)
# A day of hourly candles whose prices barely move: the strategy never trades, so its P&L
# is a computed zero.
PAPER = ("paper", "--strategy", "sma_cross", *MARKET, "--since", "2024-03-01", "--until",
         "2024-03-02", "--timeframe", "1h", "--capital", "1000", "--quote-usd", "1")  # fmt: skip


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def build(target: str) -> None:
    with tradedb.open(target) as db:
        ledger = db.ledger
        funds = (("kraken", "USD", "100000"), ("kraken", "BTC", "1"),
                 ("binance", "USDT", "50000"), ("binance", "ETH", "10.12345678"))  # fmt: skip
        for exchange, asset, amount in funds:
            ledger.deposit(
                exchange=exchange, asset=asset, amount=amount, timestamp=ms("2024-03-01T00:00")
            )
        # exchange, order id, symbol, side, type, amount, price, time, fills (amount, price,
        # fee) at the order's time plus a minute each.
        orders = [
            ("kraken", "o1", "BTC/USD", "buy", "limit", "0.004", "60000.5", "2024-03-02T10:00",
             [("0.004", "60000.5", "0.240002")]),
            ("kraken", "o2", "BTC/USD", "sell", "limit", "0.002", "61000", "2024-03-03T09:00",
             [("0.001", "61000", "0.061")]),
            ("kraken", "o3", "BTC/USD", "sell", "market", "0.001", None, "2024-03-03T12:00",
             [("0.001", "59000.12", "0.059")]),
            ("binance", "o4", "ETH/USDT", "sell", "market", "0.25", None, "2024-03-04T06:00",
             [("0.25", "3100.12345678", "0.775")]),
            ("binance", "o5", "ETH/USDT", "buy", "limit", "1.5", "3000", "2024-03-05T00:00", []),
        ]  # fmt: skip
        for exchange, order_id, symbol, side, kind, amount, price, when, fills in orders:
            ledger.place_order(
                exchange=exchange, order_id=order_id, symbol=symbol, side=side,
                order_type=kind, amount=amount, price=price, strategy="grid",
                timestamp=ms(when), fee_reserve_rate="0.001",
            )  # fmt: skip
            for number, (filled, at, fee) in enumerate(fills, 1):
                ledger.record_fill(
                    exchange=exchange, order_id=order_id, exchange_trade_id=f"{order_id}-{number}",
                    amount=filled, price=at, fee=fee, timestamp=ms(when) + number * 60_000,
                )  # fmt: skip
        ledger.mark_to_market({"BTC/USD": "60500.25", "ETH/USDT": "3050.5"})
        db.config.set("capital.grid.kraken", "100000", config_type="number")
        db.config.set("capital.grid.binance", "50000", config_type="number")
        start = ms("2024-03-01T00:00")
        candles = [
            (start, "60000", "60100.5", "59900", "60050.25", WIDE_VOLUME),
            (start + HOUR, "60050.25", "60200", "60000", "60100.12345678", "0.00000001"),
            (start + 2 * HOUR, "60100.12345678", "60150", "59999.99", "60000", "12.5"),
        ]
        candles += [
            (start + hour * HOUR, "60000", "60010", "59990", "60000", "1") for hour in range(3, 30)
        ]
        db.market.write_candles(candles, exchange="binance", symbol="BTC/USDT", timeframe="1h")
        db.market.write_tickers(
            [
                {"symbol": "BTC/USDT", "timestamp": start + hour * HOUR, "bid_price": bid,
                 "ask_price": ask, "last_price": last, "volume_24h": volume,
                 "price_change_24h": change, "price_change_percent_24h": percent}
                for hour, bid, ask, last, volume, change, percent in (
                    (1, "60000.1", "60000.2", "60000.15", WIDE_VOLUME, "-123.45", "-0.2051"),
                    (2, "59999", "60001", "60000", "0.5", "12", "0.02"),
                )
            ],
            exchange="binance",
        )  # fmt: skip


@pytest.fixture(scope="module", params=ENGINES)
def database(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    """The database on each engine: PostgreSQL gives NUMERIC back, SQLite integer units."""
    if request.param == "sqlite":
        target = str(tmp_path_factory.mktemp("tables") / "tables.sqlite")
    else:
        target = new_pg_database(request)
    build(target)
    for command in (
        ["snapshot", "--daily", *PERIOD, *REFERENCES],
        ["metrics", *PERIOD, *REFERENCES],
        list(PAPER),
    ):
        result = CliRunner().invoke(app, [*command, "--db", target])
        assert result.exit_code == 0, (command, result.stdout, result.stderr)
    return target


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide enough that no table is squeezed: these tests read whole cells."""
    monkeypatch.setattr(common.out, "width", 400)


def run(database: str, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--db", database])
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result.stdout


def as_json(database: str, *args: str) -> Any:
    return json.loads(run(database, *args, "--json"))


# --- reading a rich table ----------------------------------------------------------------------


def columns(text: str) -> dict[str, list[str]]:
    """The cells of rich tables by header, each cell as printed (its blanks kept). Of
    tables printed one after the other, a header that recurs keeps the first's cells."""
    found: dict[str, list[str]] = {}
    names: list[str] = []
    for line in text.splitlines():
        if line.startswith("┃"):
            names = [name.strip() for name in line.strip("┃").split("┃")]
            names = [name if name not in found else "" for name in names]
            found.update((name, []) for name in names if name)
        elif line.startswith("│"):
            for name, cell in zip(names, line[1:-1].split("│"), strict=True):
                if name:
                    found[name].append(cell)
    assert found, text
    return found


NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def point(cell: str) -> int:
    """Where the cell's decimal point is, or would be after a whole number."""
    match = NUMBER.search(cell)
    assert match is not None, cell
    return match.start() + len(match.group().partition(".")[0])


def number(cell: str) -> Decimal:
    match = NUMBER.search(cell)
    assert match is not None, cell
    return Decimal(match.group())


def assert_aligned(cells: list[str]) -> list[Decimal]:
    """The cells' decimal points are in one column of characters; their numbers."""
    filled = [cell for cell in cells if cell.strip()]
    assert filled, cells
    assert len({point(cell) for cell in filled}) == 1, cells
    return [number(cell) for cell in filled]


def decimals_of(cell: str) -> int:
    return len(NUMBER.search(cell).group().partition(".")[2])  # type: ignore[union-attr]


def cents(text: str) -> Decimal:
    # A context wide enough for 30 integer digits: the default one holds 28.
    return Decimal(text).quantize(Decimal("0.01"), ROUND_HALF_EVEN, Context(prec=60))


def assert_exact_column(shown: list[str], exact_values: list[str | None]) -> None:
    """Aligned, and each cell is the stored value, every digit of it."""
    assert_aligned(shown)
    for cell, value in zip(shown, exact_values, strict=True):
        if value is None:
            assert cell.strip() == ""
        else:
            assert number(cell) == Decimal(value), (cell, value)


def assert_usd_column(shown: list[str], exact_values: list[str]) -> None:
    assert_aligned(shown)
    for cell, value in zip(shown, exact_values, strict=True):
        assert decimals_of(cell) == 2, cell
        assert number(cell) == cents(value), (cell, value)


def assert_percent_column(shown: list[str], exact_values: list[str | None]) -> None:
    if any(value is not None for value in exact_values):
        assert_aligned(shown)
    for cell, value in zip(shown, exact_values, strict=True):
        if value is None:
            assert cell.strip() == ""
            continue
        assert decimals_of(cell) == 4, cell
        assert number(cell) == Decimal(value), (cell, value)


# --- the tables ---------------------------------------------------------------------------------


def test_trades_line_up_and_show_every_stored_digit(database: str) -> None:
    table = columns(run(database, "trades"))
    items = as_json(database, "trades")["items"]
    assert len(table["price"]) == len(items) == 4
    for header, key in (("amount", "amount"), ("price", "price"), ("value", "total_value"),
                        ("fee", "fee"), ("P&L", "profit_loss")):  # fmt: skip
        assert_exact_column(table[header], [item[key] for item in items])
    # A loss lines up with the gains.
    assert any(number(cell) < 0 for cell in table["P&L"] if cell.strip())
    # BTC/USD prices at their own precision, ETH/USDT's at its own: 8 decimals for one
    # does not pad the other.
    by_symbol = dict(zip(table["symbol"], table["price"], strict=True))
    assert decimals_of(by_symbol[" ETH/USDT "]) == 8
    assert {decimals_of(cell) for symbol, cell in zip(table["symbol"], table["price"], strict=True)
            if symbol.strip() == "BTC/USD"} == {2}  # fmt: skip
    assert [cell.split()[-1] for cell in table["fee"]] == ["USDT", "USD", "USD", "USD"]


ORDER_COLUMNS = {"amount": "amount", "price": "price", "filled": "filled_amount",
                 "remaining": "remaining_amount", "locked": "locked_amount"}  # fmt: skip
POSITION_COLUMNS = {"amount": "amount", "entry": "entry_price", "mark": "current_price",
                    "unrealized": "unrealized_pnl", "realized": "realized_pnl"}  # fmt: skip


def test_orders_and_positions_line_up(database: str) -> None:
    orders = columns(run(database, "orders"))
    items = as_json(database, "orders")["items"]
    for header, key in ORDER_COLUMNS.items():
        assert_exact_column(orders[header], [item[key] for item in items])

    positions = columns(run(database, "positions"))
    items = as_json(database, "positions")["items"]
    for header, key in POSITION_COLUMNS.items():
        assert_exact_column(positions[header], [item[key] for item in items])


def test_balances_line_up(database: str) -> None:
    table = columns(run(database, "balances"))
    wallets = as_json(database, "balances")
    for header, key in (("available", "available_balance"), ("locked", "locked_balance"),
                        ("total", "total_balance")):  # fmt: skip
        assert_exact_column(table[header], [wallet[key] for wallet in wallets])


def test_candles_keep_a_wide_volume_whole_and_in_line(database: str) -> None:
    table = columns(run(database, *CANDLES, "--limit", "30"))
    rows = as_json(database, *CANDLES, "--limit", "30")
    for name in ("open", "high", "low", "close", "volume"):
        assert_exact_column(table[name], [row[name] for row in rows])
    # 37 digits: more than Decimal's default context keeps.
    assert rows[0]["volume"] == WIDE_VOLUME
    assert table["volume"][0].strip() == WIDE_VOLUME


def test_ticker_history_lines_up_falls_and_rises(database: str) -> None:
    table = columns(run(database, *TICKERS))
    rows = as_json(database, *TICKERS)
    headers = {"bid": "bid_price", "ask": "ask_price", "last": "last_price",
               "24h volume": "volume_24h", "24h change": "price_change_24h"}  # fmt: skip
    for header, key in headers.items():
        assert_exact_column(table[header], [row[key] for row in rows])
    assert_percent_column(table["24h change %"], [row["price_change_percent_24h"] for row in rows])


def test_snapshot_values_in_cents_and_holdings_exact(database: str) -> None:
    args = ("snapshot", "--at", "2024-03-06", *REFERENCES)
    table = columns(run(database, *args))
    [snapshot] = as_json(database, *args)
    rows = snapshot["rows"]
    assert_exact_column(table["amount"][:-1], [row["amount"] for row in rows])
    assert_exact_column(table["price (USD)"][:-1], [row["price_per_unit"] for row in rows])
    # The total is a USD amount too: in line with the rows' values.
    assert_usd_column(
        table["value (USD)"], [*(row["usd_value"] for row in rows), snapshot["total_usd"]]
    )


def test_metrics_in_cents_and_percentages_at_four_decimals(database: str) -> None:
    table = columns(run(database, "metrics", *PERIOD, *REFERENCES))
    rows = as_json(database, "metrics", *PERIOD, *REFERENCES)["rows"]
    assert len(rows) == len(table["date"]) > 4
    assert_usd_column(table["equity"], [row["total_portfolio_value"] for row in rows])
    assert_usd_column(table["P&L"], [row["daily_pnl"] for row in rows])
    for header, key in (("P&L %", "daily_pnl_percent"), ("win %", "win_rate"),
                        ("Sharpe", "sharpe_ratio"), ("max DD %", "max_drawdown")):  # fmt: skip
        assert_percent_column(table[header], [row[key] for row in rows])


def test_report_in_cents_and_percentages_at_four_decimals(database: str) -> None:
    table = columns(run(database, "report", *PERIOD))
    rows = as_json(database, "report", *PERIOD)["rows"]
    known = [row for row in rows if row["final_equity"] is not None]
    assert known
    for header, key in {"final equity": "final_equity", "P&L": "total_pnl"}.items():
        assert_usd_column(
            [table[header][rows.index(row)] for row in known], [row[key] for row in known]
        )
    for header, key in {
        "return": "total_return_percent",
        "max drawdown": "max_drawdown_percent",
    }.items():
        cells = [table[header][rows.index(row)] for row in rows if row[key] is not None]
        assert_percent_column(cells, [row[key] for row in rows if row[key] is not None])
        assert all(cell.rstrip().endswith(" %") for cell in cells)


def test_paper_table_lines_up_a_zero_pnl(database: str) -> None:
    table = columns(run(database, *PAPER))
    assert [number(cell) for cell in table["unrealized USDT"]] == [Decimal(0)]
    assert number(table["capital USDT"][0]) == Decimal(1000)


# --- JSON ---------------------------------------------------------------------------------------

AMOUNT_KEYS = {
    # the ledger's records
    "amount", "price", "filled_amount", "remaining_amount", "locked_amount", "total_value",
    "fee", "profit_loss", "entry_price", "current_price", "unrealized_pnl", "realized_pnl",
    "open_fees", "cost_basis", "available_balance", "locked_balance", "total_balance", "usd_value",
    "available_change", "locked_change", "balance",
    # market data
    "open", "high", "low", "close", "volume", "bid_price", "ask_price", "last_price",
    "volume_24h", "price_change_24h", "open_exact", "high_exact", "low_exact", "close_exact",
    "volume_exact",
    # analytics and reports (maps by currency or market included)
    "total_portfolio_value", "daily_pnl", "price_per_unit", "total_usd", "price_usd",
    "final_equity", "total_pnl", "fees", "expectancy", "average_win", "average_loss",
    # paper sessions
    "weight", "capital", "capital_usd", "equity", "profit", "holdings", "quote_usd",
}  # fmt: skip
# Percentages and ratios: these, and every key ending in _percent or _ratio.
PERCENT_KEYS = {"win_rate", "max_drawdown", "percent", "profit_factor", "price_change_percent_24h"}
# Numbers that are no amounts: fee rates and a volatility (fractions as given or computed),
# strategy parameters, ids.
NOT_AMOUNTS = {"maker", "taker", "volatility", "parameters", "session_id", "next_after"}
AT_SCALE = {8: re.compile(r"-?\d+\.\d{8}"), 4: re.compile(r"-?\d+\.\d{4}")}
NUMERIC = re.compile(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?")


UNKNOWN_KEY = -1


def scale_of(key: str) -> int | None:
    """The decimals of the numbers under `key` (None: no amount, UNKNOWN_KEY: unknown)."""
    if key in NOT_AMOUNTS:
        return None
    if key in PERCENT_KEYS or key.endswith(("_percent", "_ratio")):
        return 4
    return 8 if key in AMOUNT_KEYS else UNKNOWN_KEY


def numbers_in(data: Any, key: str | None = None) -> Iterator[tuple[str, str]]:
    """Every string in `data` that reads as a number, with the key that names it: its
    own, or for a map keyed by currency or market (realized_pnl, holdings), the map's."""
    if isinstance(data, dict):
        for name, value in data.items():
            named = name if scale_of(name) != UNKNOWN_KEY else key
            yield from numbers_in(value, named if key not in NOT_AMOUNTS else key)
    elif isinstance(data, list):
        for value in data:
            yield from numbers_in(value, key)
    elif isinstance(data, str) and NUMERIC.fullmatch(data):
        yield key or "", data


def assert_fixed_point(data: Any) -> int:
    """Every number in `data` is an amount at 8 decimals, a percentage at 4, or a
    known non-amount; how many amounts there were."""
    amounts = 0
    for key, text in numbers_in(data):
        scale = scale_of(key)
        assert scale != UNKNOWN_KEY, f"{key}={text!r} is not a known amount"
        if scale is not None:
            assert AT_SCALE[scale].fullmatch(text), f"{key}={text!r} is not at {scale} decimals"
            amounts += 1
    return amounts


@pytest.mark.parametrize(
    "command",
    [
        ("balances",),
        ("orders",),
        ("trades",),
        ("positions",),
        CANDLES,
        TICKERS,
        ("snapshot", "--at", "2024-03-06", *REFERENCES),
        ("metrics", *PERIOD, *REFERENCES),
        ("report", *PERIOD),
        ("value", "BTC", "--at", "2024-03-06", *REFERENCES),
    ],
    ids=lambda command: command[0],
)
def test_every_json_amount_is_at_its_scale(database: str, command: tuple[str, ...]) -> None:
    assert assert_fixed_point(as_json(database, *command)) > 0


def test_a_paper_session_that_never_traded_gives_its_zeros_at_scale(database: str) -> None:
    data = as_json(database, *PAPER)
    [strategy] = data["strategies"]
    assert (strategy["fills"], strategy["unrealized_pnl"], strategy["realized_pnl"]) == (
        0,
        "0.00000000",
        "0.00000000",
    )
    assert strategy["return_percent"] == "0.0000"
    assert assert_fixed_point(data) > 0


@pytest.mark.anyio
async def test_mcp_tools_give_every_amount_at_its_scale(database: str) -> None:
    server = build_server(database)
    try:
        async with Client(server.mcp) as client:
            results = [
                await call(client, tool, arguments)
                for tool, arguments in (
                    ("list_positions", {}),
                    ("list_trades", {}),
                    ("list_orders", {}),
                    ("balances", {}),
                    ("portfolio", {}),
                    ("performance", {}),
                    ("pnl_summary", {}),
                    ("get_ticker", {"symbol": "BTC/USDT"}),
                    ("get_candles", {"exchange": "binance", "symbol": "BTC/USDT",
                                     "timeframe": "1h"}),
                )
            ]  # fmt: skip
    finally:
        server.close()
    for result in results:
        assert assert_fixed_point(result) > 0, result
    positions = results[0]["items"]
    assert "0.00000000" in {position["realized_pnl"] for position in positions}


# --- the alignment itself -----------------------------------------------------------------------

amounts = st.decimals(
    min_value=Decimal("-1e30") + 1, max_value=Decimal("1e30") - 1, places=8,
    allow_nan=False, allow_infinity=False,
)  # fmt: skip
markets = st.sampled_from([None, "BTC/USDT", "ETH/BTC"])


@given(st.lists(st.tuples(st.none() | amounts, markets, st.sampled_from(["", "BTC", "USDT"]))))
def test_exact_cells_are_equal_width_aligned_and_read_back_exactly(
    given_cells: list[tuple[Decimal | None, str | None, str]],
) -> None:
    cells = aligned([exact(value, market, unit) for value, market, unit in given_cells])
    filled = [cell for cell in cells if cell]
    assert len({len(cell) for cell in filled}) <= 1
    assert len({point(cell) for cell in filled}) <= 1
    precision: dict[str | None, set[int]] = {}
    needed: dict[str | None, int] = {}
    for cell, (value, market, unit) in zip(cells, given_cells, strict=True):
        if value is None:
            assert cell == ""
            continue
        assert number(cell) == value
        if unit:
            assert cell.split()[-1] == unit
        precision.setdefault(market, set()).add(decimals_of(cell))
        places = len(format(value, "f").partition(".")[2].rstrip("0"))
        needed[market] = max(needed.get(market, 0), places)
    # A market's values show one precision: the most decimals one of them needs.
    assert precision == {market: {places} for market, places in needed.items()}


@given(st.lists(st.none() | amounts, min_size=1))
def test_usd_cells_are_cents_rounded_half_even_and_aligned(values: list[Decimal | None]) -> None:
    cells = aligned([usd(value) for value in values], width=12)
    filled = [cell for cell in cells if cell]
    assert len({len(cell) for cell in filled}) <= 1
    assert all(len(cell) >= 12 for cell in filled)
    assert len({point(cell) for cell in filled}) <= 1
    for cell, value in zip(cells, values, strict=True):
        if value is not None:
            assert decimals_of(cell) == 2
            assert number(cell) == cents(str(value))
            assert not cell.strip().startswith("-0.00")


@given(st.lists(st.decimals(min_value=-100000, max_value=100000, places=4, allow_nan=False)))
def test_percent_cells_keep_their_four_decimals(values: list[Decimal]) -> None:
    cells = aligned([percent(value) for value in values])
    assert len({point(cell) for cell in cells}) <= 1
    for cell, value in zip(cells, values, strict=True):
        assert decimals_of(cell) == 4
        assert number(cell) == value


def test_a_figure_is_never_rounded_past_its_own_digits() -> None:
    # A computed value finer than 8 decimals (none is stored) keeps every digit.
    [cell] = aligned([Figure(Decimal("0.123456789012"))])
    assert cell == "0.123456789012"
