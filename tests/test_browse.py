"""`tradedb browse`: Datasette over a tradedb file, read-only, through Datasette's own test
client, with the configuration the command serves. What a user found wrong before: the
readable views' amounts were text, so sorting put 999.70078955 above 2042.94682822,
`profit_loss__gt=1` matched losses, min() was a text minimum, and times were epoch ms."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import tradedb
import tradedb.services
from cli_harness import isolated_environ
from conftest import sha256
from records import trade
from tradedb.cli.app import app as cli
from tradedb.schema import derived
from tradedb.schema.tables import ALL_TABLES, CACHE_TABLES
from tradedb.services import browse as browsing
from tradedb.services.catalog import column_description, describe_schema
from tradedb.store import Store

T0 = 1_700_000_000_123  # 2023-11-14T22:13:20.123Z
HOUR = 3_600_000
DAY = 24 * HOUR
CANDLES = {
    # (exchange, symbol, timeframe): candle open times
    ("kraken", "BTC/USDT", "1h"): [1_700_002_800_000 + i * HOUR for i in (0, 1, 2, 5)],
    ("kraken", "DOGE/USDT", "1d"): [1_699_920_000_000, 1_699_920_000_000 + DAY],
    ("binance", "BTC/USDT", "1h"): [1_700_002_800_000],
}


def market_fill(
    db: tradedb.TradeDB,
    name: str,
    side: str,
    amount: str,
    price: str,
    *,
    symbol: str,
    strategy: str,
    at: int,
    **fee: str,
) -> None:
    db.ledger.place_order(
        exchange="kraken",
        order_id=name,
        symbol=symbol,
        side=side,
        order_type="market",
        amount=amount,
        strategy=strategy,
        timestamp=at,
    )
    db.ledger.record_fill(
        exchange="kraken",
        order_id=name,
        exchange_trade_id=f"t-{name}",
        amount=amount,
        price=price,
        timestamp=at,
        **fee,
    )


def build(path: Path) -> None:
    """Round trips that win and lose, P&L and fees of 16 significant digits (more than a
    float holds), an open position and candles of three markets."""
    with tradedb.open(path) as db:
        db.ledger.deposit(exchange="kraken", asset="USDT", amount="13000000", timestamp=T0)
        db.ledger.deposit(exchange="kraken", asset="BNB", amount="10", timestamp=T0)
        doge, btc, eth = "DOGE/USDT", "BTC/USDT", "ETH/USDT"
        usdt, bnb = {"fee_currency": "USDT"}, {"fee_currency": "BNB"}
        fills = [
            ("buy", "2042.94682822", "0.1", doge, "trend", {"fee": "0.2", **usdt}),
            ("sell", "2042.94682822", "0.15", doge, "trend", {"fee": "0.3", **usdt}),
            ("buy", "999.70078955", "0.2", doge, "scalp", {"fee": "0.00012345", **bnb}),
            ("sell", "999.70078955", "0.1", doge, "scalp", {}),
            ("buy", "1234.56789012", "10000", btc, "whale", {"fee": "12.34567891", **usdt}),
            ("sell", "617.28394506", "19876.54321098", btc, "whale", {"fee": "1.23456789", **usdt}),
            ("sell", "617.28394506", "15432.10987654", btc, "whale", {"fee": "3.33333333", **usdt}),
            ("buy", "0.5", "2000.12345678", eth, "hold", {"fee": "0.001", **usdt}),
        ]
        for n, (side, amount, price, symbol, strategy, fee) in enumerate(fills, start=1):
            at = T0 + n * 1_001
            market_fill(
                db, f"o{n}", side, amount, price, symbol=symbol, strategy=strategy, at=at, **fee
            )
        for (exchange, symbol, timeframe), times in CANDLES.items():
            rows = [[at, "100", "110", "90", "105.5", "1.25"] for at in times]
            db.market.write_candles(rows, exchange=exchange, symbol=symbol, timeframe=timeframe)


@dataclass
class Browser:
    """Datasette as `tradedb browse` configures it, asked through its own client on one
    event loop."""

    app: Any
    name: str
    loop: asyncio.AbstractEventLoop

    def get(self, path: str) -> Any:
        response = self.loop.run_until_complete(self.app.client.get(path))
        assert response.status_code == 200, (path, response.text[:500])
        return response

    def rows(self, path: str) -> list[dict[str, Any]]:
        sep = "&" if "?" in path else "?"
        rows: list[dict[str, Any]] = self.get(f"/{self.name}/{path}{sep}_shape=array").json()
        return rows

    def sql(self, sql: str) -> list[dict[str, Any]]:
        query = f"/{self.name}.json?sql={urllib.parse.quote(sql)}&_shape=array"
        rows: list[dict[str, Any]] = self.get(query).json()
        return rows


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browse") / "bot.sqlite"
    build(path)
    return path


@pytest.fixture(scope="module")
def written(database: Path) -> str:
    """The file's digest before Datasette opened it."""
    return sha256(database)


@contextmanager
def browsing_at(path: Path) -> Iterator[Browser]:
    loop = asyncio.new_event_loop()
    app = browsing.datasette(path)
    try:
        yield Browser(app, browsing.database_name(path), loop)
    finally:
        for opened in app.databases.values():
            opened.close()
        loop.close()


@pytest.fixture(scope="module")
def browser(database: Path, written: str) -> Iterator[Browser]:
    with browsing_at(database) as browser:
        yield browser


@pytest.fixture(scope="module")
def stored(database: Path, written: str) -> Iterator[tradedb.TradeDB]:
    """The same database through the public API, to compare with."""
    with tradedb.open(database, readonly=True) as db:
        yield db


def trades(db: tradedb.TradeDB) -> list[Any]:
    return db.tables.trades.list(limit=1000).items


def exact(value: Decimal, places: int = 8) -> str:
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


# --- the readable views --------------------------------------------------------------------


def test_sorting_trades_readable_by_amount_is_numeric(browser: Browser) -> None:
    rows = browser.rows("trades_readable.json?_sort=amount")
    amounts = [Decimal(row["amount_exact"]) for row in rows]
    assert amounts == sorted(amounts)
    order = [row["amount_exact"] for row in rows]
    assert order.index("999.70078955") < order.index("2042.94682822")
    descending = browser.rows("trades_readable.json?_sort_desc=amount")
    assert [Decimal(row["amount_exact"]) for row in descending] == sorted(amounts, reverse=True)


def test_filtering_profit_loss_above_one_leaves_out_losses(
    browser: Browser, stored: tradedb.TradeDB
) -> None:
    pnl = {fill.id: fill.profit_loss for fill in trades(stored)}
    assert any(value is not None and value < 0 for value in pnl.values())

    rows = browser.rows("trades_readable.json?profit_loss__gt=1")
    assert {row["id"] for row in rows} == {
        trade_id for trade_id, value in pnl.items() if value is not None and value > 1
    }
    below = browser.rows("trades_readable.json?profit_loss__lt=0")
    assert {row["id"] for row in below} == {
        trade_id for trade_id, value in pnl.items() if value is not None and value < 0
    }


def test_min_and_max_of_an_amount_are_numeric(browser: Browser, stored: tradedb.TradeDB) -> None:
    values = [t.profit_loss for t in trades(stored) if t.profit_loss is not None]
    (row,) = browser.sql(
        "SELECT min(profit_loss) AS low, max(profit_loss) AS high FROM trades_readable"
    )
    assert row == {"low": float(min(values)), "high": float(max(values))}


def test_each_amount_has_its_exact_text_beside_its_number(
    browser: Browser, stored: tradedb.TradeDB
) -> None:
    rows = {row["id"]: row for row in browser.rows("trades_readable.json")}
    amounts = ("amount", "price", "total_value", "fee", "profit_loss")
    for fill in trades(stored):
        row = rows[fill.id]
        for name in amounts:
            value = getattr(fill, name)
            if value is None:
                assert row[f"{name}_exact"] is None
                assert row[name] is None
            else:
                assert row[f"{name}_exact"] == exact(value), (fill.id, name)
                assert row[name] == float(value), (fill.id, name)


def test_times_have_their_iso_8601_utc_text_beside_them(
    browser: Browser, stored: tradedb.TradeDB
) -> None:
    rows = {row["id"]: row for row in browser.rows("trades_readable.json")}
    for fill in trades(stored):
        row = rows[fill.id]
        assert row["timestamp_utc"] == iso(fill.timestamp)
        assert row["created_at_utc"] == iso(row["created_at"] * 1000)[:-5] + "Z"
    assert rows[min(rows)]["timestamp_utc"] == "2023-11-14T22:13:21.124Z"
    (position,) = browser.rows("positions_readable.json?status=open")
    assert position["opened_at_utc"] == iso(T0 + 8_008)
    assert position["closed_at_utc"] is None


def test_views_sort_and_filter_amounts_as_numbers_on_both_engines(store: Store) -> None:
    """The views are the same on PostgreSQL, where the amount is the NUMERIC itself."""
    for amount in ("2042.94682822", "999.70078955", "-5", "12345678.12345678"):
        store.trades.insert(
            {
                "symbol": "DOGE/USDT",
                "side": "buy",
                "amount": amount.lstrip("-"),
                "price": "1",
                "total_value": "1",
                "profit_loss": amount,
                "timestamp": T0,
                "exchange": "kraken",
            }
        )
    conn = store.db.connection
    ordered = conn.execute("SELECT amount_exact FROM trades_readable ORDER BY amount").fetchall()
    assert [row[0] for row in ordered] == [
        "5.00000000",
        "999.70078955",
        "2042.94682822",
        "12345678.12345678",
    ]
    above = conn.execute(
        "SELECT profit_loss_exact, timestamp_utc FROM trades_readable WHERE profit_loss > 1 "
        "ORDER BY profit_loss"
    ).fetchall()
    assert above == [
        ("999.70078955", iso(T0)),
        ("2042.94682822", iso(T0)),
        ("12345678.12345678", iso(T0)),
    ]
    (low,) = conn.execute("SELECT min(profit_loss) FROM trades_readable").fetchone()
    assert Decimal(str(low)) == Decimal(-5)


def test_every_time_column_gets_its_iso_text() -> None:
    """A new column named like a time but missing from the epoch sets would get no _utc
    column and be described without its unit."""
    timed = derived.EPOCH_MS_COLUMNS | derived.EPOCH_SECONDS_COLUMNS
    for table in ALL_TABLES:
        for column in table.columns:
            name = column.name
            if name == "timestamp" or re.search(r"(_at|_since|_until|_from|_time)$", name):
                assert name in timed, f"{table.name}.{name}: epoch ms or seconds?"


# --- metadata ------------------------------------------------------------------------------


def test_every_column_of_every_table_and_view_is_described(
    browser: Browser, database: Path
) -> None:
    metadata = browser.get("/-/metadata.json").json()
    described = metadata["databases"][browser.name]["tables"]
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        relations = conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
        ).fetchall()
        for (relation,) in relations:
            assert described[relation]["description"], relation
            for column in conn.execute(f"PRAGMA table_info({relation})").fetchall():
                text = described[relation]["columns"].get(column[1])
                assert text, f"{relation}.{column[1]} is not described"
    finally:
        conn.close()
    # Said in one place, tradedb.services.catalog, for every column of every table.
    for table in (*ALL_TABLES, *CACHE_TABLES):
        for column in table.columns:
            assert column_description(table.name, column.name), f"{table.name}.{column.name}"


def test_descriptions_give_each_columns_unit_and_form(browser: Browser) -> None:
    tables = browser.get("/-/metadata.json").json()["databases"][browser.name]["tables"]
    for table in ALL_TABLES:
        stored = tables[table.name]["columns"]
        view = tables[derived.view_name(table)]["columns"]
        for column in derived.readable_columns(table):
            text = view[column.name]
            if column.form == "number":
                assert "sorts and filters" in text
                assert f"{column.name}_exact" in text
                assert "integer units of 1e-" in stored[column.source]
            elif column.form == "exact":
                assert "Exact fixed-point text" in text
            elif column.form == "utc":
                assert text.endswith("ISO 8601 text, UTC.")
            elif column.name in derived.EPOCH_MS_COLUMNS:
                assert text.endswith("Unit: epoch milliseconds, UTC.")
                assert stored[column.name] == text
    assert "in the quote currency" in tables["trades"]["columns"]["profit_loss"]
    # One description serves the MCP schema resource and Datasette.
    catalog = {table["name"]: table for table in describe_schema()["tables"]}
    (profit_loss,) = [c for c in catalog["trades"]["columns"] if c["name"] == "profit_loss"]
    assert tables["trades"]["columns"]["profit_loss"].startswith(profit_loss["description"])
    for hidden in [*(table.name for table in CACHE_TABLES), "alembic_version", "sqlite_sequence"]:
        assert tables[hidden]["hidden"] is True


def test_a_table_page_shows_the_column_descriptions(browser: Browser) -> None:
    page = browser.get(f"/{browser.name}/trades_readable").text
    assert "Exact fixed-point text, 8 decimals." in page
    assert "ISO 8601 text, UTC." in page


# --- canned queries ------------------------------------------------------------------------


def test_pnl_by_strategy_sums_exactly(browser: Browser, stored: tradedb.TradeDB) -> None:
    expected: dict[tuple[str, str, str], list[Decimal]] = defaultdict(list)
    for fill in trades(stored):
        if fill.profit_loss is not None:
            quote = fill.symbol.split("/")[1]
            expected[(fill.strategy, fill.exchange, quote)].append(fill.profit_loss)
    rows = browser.rows("pnl_by_strategy.json")

    found = {(r["strategy"], r["exchange"], r["quote"]): r for r in rows}
    assert set(found) == set(expected)
    for key, values in expected.items():
        total = sum(values, Decimal(0))
        row = found[key]
        assert row["realized_pnl_exact"] == exact(total), key
        assert row["realized_pnl"] == float(total)
        assert row["closing_fills"] == len(values)
        assert (row["winning"], row["losing"]) == (
            sum(v > 0 for v in values),
            sum(v < 0 for v in values),
        )
    # More digits than a float keeps: a sum through floats would be off.
    whale = sum(expected[("whale", "kraken", "USDT")], Decimal(0))
    assert Decimal(float(whale)) != whale
    # Best first: numerically, within the quote currency.
    assert [r["strategy"] for r in rows] == ["whale", "trend", "scalp"]


def test_sums_past_64_bit_integers_stay_exact(tmp_path: Path) -> None:
    """P&L and fees past ±92,233,720,368.54775807 are stored as text (the overflow form),
    which SQL's sum() would add as floats."""
    path = tmp_path / "wide.sqlite"
    values = ["100000000000.12345678", "-0.00000001", "92233720368.54775807"]
    with Store.open(path) as store:
        for n, value in enumerate(values):
            store.trades.insert(
                trade(exchange_trade_id=f"w{n}", profit_loss=value, fee=value.lstrip("-"))
            )
    with browsing_at(path) as browser:
        (pnl,) = browser.rows("pnl_by_strategy.json")
        (fees,) = browser.rows("fees_by_currency.json")
    total = sum(map(Decimal, values), Decimal(0))
    assert pnl["realized_pnl_exact"] == exact(total) == "192233720368.67121484"
    assert (pnl["winning"], pnl["losing"]) == (2, 1)
    assert fees["fees_exact"] == exact(total + Decimal("0.00000002"))


def test_open_positions(browser: Browser, stored: tradedb.TradeDB) -> None:
    (position,) = stored.tables.positions.list({"status": "open"}).items
    (row,) = browser.rows("open_positions.json")
    assert (row["exchange"], row["symbol"], row["strategy"], row["side"]) == (
        "kraken",
        "ETH/USDT",
        "hold",
        "long",
    )
    assert row["amount_exact"] == exact(position.amount) == "0.50000000"
    assert row["entry_price_exact"] == exact(position.entry_price)
    assert row["entry_price"] == float(position.entry_price)
    assert row["open_fees_exact"] == exact(position.open_fees)
    assert row["opened_at_utc"] == iso(position.opened_at)


def test_fees_by_currency_sum_exactly(browser: Browser, stored: tradedb.TradeDB) -> None:
    expected: dict[str, Decimal] = defaultdict(Decimal)
    fills: dict[str, int] = defaultdict(int)
    for fill in trades(stored):
        if fill.fee:
            expected[fill.fee_currency] += fill.fee
            fills[fill.fee_currency] += 1
    rows = browser.rows("fees_by_currency.json")
    assert [(r["currency"], r["fills"], r["fees_exact"]) for r in rows] == [
        (currency, fills[currency], exact(expected[currency])) for currency in sorted(expected)
    ]
    assert expected["USDT"] == Decimal("17.41458013")


def test_candle_coverage(browser: Browser) -> None:
    rows = browser.rows("candle_coverage.json")
    assert [
        (
            r["exchange"],
            r["symbol"],
            r["timeframe"],
            r["first_candle"],
            r["first_candle_utc"],
            r["last_candle"],
            r["last_candle_utc"],
            r["candles"],
        )
        for r in rows
    ] == [
        (*market, min(times), iso(min(times)), max(times), iso(max(times)), len(times))
        for market, times in sorted(CANDLES.items())
    ]


# --- read-only ------------------------------------------------------------------------------


def test_nothing_is_ever_written(browser: Browser, database: Path, written: str) -> None:
    refused = browser.loop.run_until_complete(
        browser.app.client.get(
            f"/{browser.name}.json?sql={urllib.parse.quote('DELETE FROM trades')}"
        )
    )
    assert refused.status_code == 400
    # Even a write Datasette itself asks for (a plugin, a canned write query) is refused.
    opened = browser.app.get_database(browser.name)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        browser.loop.run_until_complete(opened.execute_write("DELETE FROM trades"))
    # Every page and query the tests above asked for left the file as it was.
    assert browser.rows("trades_readable.json?_size=1")
    assert sha256(database) == written
    wal = Path(f"{database}-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_live_bots_commits_are_seen(tmp_path: Path) -> None:
    """Read-only, not immutable: what a bot commits in WAL mode while Datasette serves the
    file shows up on the next request."""
    path = tmp_path / "live.sqlite"
    with tradedb.open(path) as bot, browsing_at(path) as browser:
        assert browser.rows("wallets_readable.json") == []
        bot.ledger.deposit(exchange="kraken", asset="USD", amount="12.5", timestamp=T0)
        (wallet,) = browser.rows("wallets_readable.json")
        assert wallet["total_balance_exact"] == "12.50000000"


# --- the command ----------------------------------------------------------------------------


def one_line(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def test_browse_without_the_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, database: Path
) -> None:
    monkeypatch.setitem(sys.modules, "datasette", None)
    monkeypatch.setitem(sys.modules, "datasette.app", None)
    monkeypatch.delitem(sys.modules, "tradedb.services.browse")
    monkeypatch.delattr(tradedb.services, "browse")
    line = one_line(["browse", "--db", str(database)])
    assert "pip install 'tradedb[browse]'" in line


def test_browse_refuses_a_postgresql_database() -> None:
    line = one_line(["browse", "--db", "postgresql://bot@127.0.0.1:1/trading"])
    assert "is a PostgreSQL database; Datasette serves SQLite files" in line


def test_browse_refuses_a_missing_database_and_creates_none(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    line = one_line(["browse", "--db", str(missing)])
    assert "does not exist" in line
    assert list(tmp_path.iterdir()) == []


def test_browse_refuses_a_port_in_use(database: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        line = one_line(["browse", "--db", str(database), "--port", str(port)])
    assert f"port {port}" in line


def test_browse_serves_the_database_on_localhost(database: Path, tmp_path: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "tradedb", "browse", "--db", str(database), "--port", "0"],
        env=isolated_environ(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/bot)\b", first)
        assert match, first
        query = f"{match[1]}/trades_readable.json?_sort=amount&_shape=array"
        with urllib.request.urlopen(query, timeout=10) as response:
            rows = json.load(response)
        assert [row["amount_exact"] for row in rows][:2] == ["0.50000000", "617.28394506"]
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl+C
        _, stderr = server.communicate(timeout=10)
    assert server.returncode == 0, stderr
    assert "Traceback" not in stderr
