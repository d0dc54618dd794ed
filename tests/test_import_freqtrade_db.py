"""`tradedb import tradesv3.sqlite`: a freqtrade bot's database into the ledger.

The fixture is made by freqtrade's own persistence code (tests/data/freqtrade/
make_tradesv3.py says how and what it holds), so its close_profit_abs is what freqtrade
computes with its floats. The import records its orders and fills through the ledger,
exactly once, all or nothing, and compares each trade's exact P&L with freqtrade's."""

from __future__ import annotations

import json
import shutil
import sqlite3
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest

import tradedb
from cli_harness import run_cli
from conftest import DATA, sha256
from tradedb.errors import DuplicateRecord, ValidationError

FIXTURE = DATA / "freqtrade" / "tradesv3.sqlite"
LEDGER_TABLES = (
    "crypto_orders",
    "trades",
    "positions",
    "wallets",
    "balance_history",
    "wallet_movements",
)
UNIT = Decimal("0.00000001")
CLOSED_SPOT = (1, 2, 3, 4, 5, 9)
OPEN_SPOT = (7, 8)
FUTURES = 6


def q(value: Decimal) -> Decimal:
    return value.quantize(UNIT, rounding=ROUND_HALF_EVEN)


def ledger_rows(target: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the ledger's tables, to compare before and after."""
    with tradedb.open(target, readonly=True) as db:
        return {
            name: [row.model_dump() for row in db.tables[name].list(limit=100_000).items]
            for name in LEDGER_TABLES
        }


def file_rows(path: Path, sql: str) -> list[sqlite3.Row]:
    """Rows of a freqtrade file, read here on their own terms."""
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def exact(value: float) -> Decimal:
    """A float of the file as tradedb takes it: its shortest repr, half-even to 8 places."""
    return q(Decimal(repr(value)))


@pytest.fixture
def imported(db_target: str) -> tradedb.TradeDB:
    db = tradedb.open(db_target)
    db.ledger.import_freqtrade(FIXTURE)
    return db


# --- what lands in the ledger --------------------------------------------------------------


def test_every_spot_order_fill_and_position_of_the_file_lands(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        result = db.ledger.import_freqtrade(FIXTURE)
        assert (result.trades_in_file, result.trades) == (9, 8)
        # 20 orders, of which the futures trade's 2 are skipped with it; 2 of the 18 never
        # filled (an exit canceled on timeout, an exit still on the book).
        assert (result.orders, result.fills, result.ended_orders) == (18, 16, 2)
        # Trades 1 and 9 are one pair and strategy at different times: two positions.
        assert result.positions == 8
        assert result.unchanged_orders == 0
        # ccxt's float averages: 2401.2553097345135 and 2210.3785714285714.
        assert result.rounded == 2
        assert [s.item for s in result.skipped] == ["trade 6 (binance BTC/USDT:USDT)"]
        assert "futures" in result.skipped[0].reason
        assert db.tables["crypto_orders"].count() == 18
        assert db.tables["trades"].count() == 16
        assert db.tables["positions"].count() == 8
        orders = db.tables["crypto_orders"].list(limit=100).items
        assert {o.strategy for o in orders} == {"SampleStrategy", "DCAStrategy", "KrakenSwing"}
        assert {o.exchange for o in orders} == {"binance", "kraken"}
        assert not any(o.symbol.endswith(":USDT") for o in orders)
        statuses = {o.order_id: o.status for o in orders if o.status != "filled"}
        assert statuses == {
            "OQCLML-BW3P3-BUCMWZ": "canceled",  # timed out after 0.0017 of 0.0025
            "OGTT3Y-C6I3P-XRI6HX": "canceled",  # the first exit, never filled
            "OR5C2M-A7YQ3-QW6K8J": "open",  # the DOT exit on the book
            "8823310457": "open",  # the XRP buy, 150 of 400 filled
        }
        assert db.ledger.audit() == []


def test_amounts_prices_and_fees_are_exact(imported: tradedb.TradeDB) -> None:
    with imported as db:
        fills = {t.exchange_trade_id: t for t in db.tables["trades"].list(limit=100).items}
        # freqtrade noted the market buy's fee in ETH (ft_fee_base); the price is ccxt's
        # float average 2401.2553097345135, rounded half-even.
        eth = fills["19736402251@0.0452"]
        assert (eth.amount, eth.price, eth.fee, eth.fee_currency) == (
            Decimal("0.0452"),
            Decimal("2401.25530973"),
            Decimal("0.0000452"),
            "ETH",
        )
        # Elsewhere the fee is the trade's rate times the fill's value, in the quote.
        btc = fills["28457193841@0.00329"]
        assert btc.fee == q(Decimal("0.001") * Decimal("0.00329") * Decimal("65062.66"))
        assert btc.fee == Decimal("0.21405615")
        assert btc.fee_currency == "USDT"
        partial = db.ledger.order("kraken", "OQCLML-BW3P3-BUCMWZ")
        assert partial is not None
        assert (partial.amount, partial.filled_amount, partial.remaining_amount) == (
            Decimal("0.0025"),
            Decimal("0.0017"),
            Decimal("0.0008"),
        )
        assert partial.locked_amount == 0
        stop = db.ledger.order("kraken", "OSJVN7-K4Q2E-TQ3HPA")
        assert stop is not None
        assert (stop.order_type, stop.price) == ("stop_loss", Decimal("56500"))
        assert fills["OSJVN7-K4Q2E-TQ3HPA@0.0017"].price == Decimal("56489.9")
        xrp = db.ledger.order("binance", "8823310457")
        assert xrp is not None
        assert (xrp.filled_amount, xrp.remaining_amount) == (Decimal(150), Decimal(250))
        # What the open orders still reserve: the XRP buy's rest with its fee, the DOT sell.
        assert db.ledger.balance("binance", "USDT").locked == q(
            Decimal(250) * Decimal("0.5213") * Decimal("1.001")
        )
        assert db.ledger.balance("kraken", "DOT").locked == Decimal("12.5")
        positions = {
            (p.exchange, p.symbol, p.status): p for p in db.ledger.positions(limit=100).items
        }
        sol = positions["binance", "SOL/USDT", "closed"]
        # Two entries (0.71 at 141.23, 0.75 at 133.87), amount-weighted, half-even.
        assert sol.entry_price == q(
            (Decimal("0.71") * Decimal("141.23") + Decimal("0.75") * Decimal("133.87"))
            / Decimal("1.46")
        )
        # Binance took the fee in ETH and freqtrade sold what its 0.0001 step allowed:
        # the dust stays open, as it stays in the wallet.
        dust = positions["binance", "ETH/USDT", "open"]
        assert dust.amount == Decimal("0.0452") - Decimal("0.0000452") - Decimal("0.0451")
        assert db.ledger.balance("binance", "ETH").available == dust.amount


def test_funds_freqtrade_does_not_record_are_deposited_and_reported(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        result = db.ledger.import_freqtrade(FIXTURE)
        funded = {(f.exchange, f.asset): f.amount for f in result.deposits}
        assert set(funded) == {("binance", "USDT"), ("kraken", "EUR")}
        deposits = db.tables["wallet_movements"].list({"kind": "deposit"}, limit=100).items
        assert all(d.reference and d.reference.startswith("freqtrade:") for d in deposits)
        for (exchange, asset), amount in funded.items():
            assert amount == sum(
                (
                    d.available_change
                    for d in deposits
                    if (d.exchange, d.asset) == (exchange, asset)
                ),
                Decimal(0),
            )


# --- the P&L comparison ---------------------------------------------------------------------


def test_each_closed_trade_is_compared_with_freqtrades_close_profit_abs(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        result = db.ledger.import_freqtrade(FIXTURE)
    by_trade = {c.trade_id: c for c in result.comparisons}
    assert sorted(by_trade) == sorted(CLOSED_SPOT + OPEN_SPOT)
    reported = {
        row["id"]: exact(row["close_profit_abs"])
        for row in file_rows(FIXTURE, "SELECT id, close_profit_abs FROM trades WHERE is_open = 0")
    }
    for trade_id in CLOSED_SPOT:
        assert by_trade[trade_id].freqtrade_pnl == reported[trade_id]
    for trade_id in OPEN_SPOT:
        assert by_trade[trade_id].is_open
        assert by_trade[trade_id].difference is None
    assert {t: by_trade[t].difference for t in CLOSED_SPOT} == {
        1: Decimal("0.00000001"),
        2: Decimal("-0.00010841"),
        3: 0,
        4: 0,
        5: 0,
        9: Decimal("0.00000001"),
    }


def test_the_differences_in_the_last_decimal_are_freqtrades_floats(db_target: str) -> None:
    """Trades 1 and 9 (one limit buy, one limit sell, fees in USDT): freqtrade's formula,
    amount x sell x (1 - fee) - amount x buy x (1 + fee), computed exactly and rounded
    half-even, is tradedb's P&L; freqtrade's floats end one unit of the 8th decimal off."""
    with tradedb.open(db_target) as db:
        result = db.ledger.import_freqtrade(FIXTURE)
    by_trade = {c.trade_id: c for c in result.comparisons}
    orders = file_rows(FIXTURE, "SELECT ft_trade_id, side, filled, average FROM orders ORDER BY id")
    fees = {row["id"]: row for row in file_rows(FIXTURE, "SELECT * FROM trades")}
    for trade_id in (1, 9):
        [buy] = [o for o in orders if o["ft_trade_id"] == trade_id and o["side"] == "buy"]
        [sell] = [o for o in orders if o["ft_trade_id"] == trade_id and o["side"] == "sell"]
        amount, rate = exact(buy["filled"]), exact(fees[trade_id]["fee_open"])
        formula = q(
            amount * exact(sell["average"]) * (1 - rate)
            - amount * exact(buy["average"]) * (1 + rate)
        )
        assert by_trade[trade_id].tradedb_pnl == formula
        assert by_trade[trade_id].freqtrade_pnl == formula - UNIT


def test_a_fee_taken_in_the_base_currency_is_where_freqtrade_differs_most(
    db_target: str,
) -> None:
    """Trade 2 paid its buy's fee in ETH (rate r). tradedb charges the sale its share of
    that fee; freqtrade charges the rate again on the amount left after the fee, which is
    short by the sale's value x r^2 / (1 - r): 0.00010841 USDT here."""
    with tradedb.open(db_target) as db:
        [trade] = [c for c in db.ledger.import_freqtrade(FIXTURE).comparisons if c.trade_id == 2]
    rate, sold, price = Decimal("0.001"), Decimal("0.0451"), Decimal("2401.25530973")
    assert trade.difference == -q(sold * price * rate * rate / (1 - rate))


# --- exactly once, all or nothing -----------------------------------------------------------


def test_importing_the_same_file_again_records_nothing(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        first = db.ledger.import_freqtrade(FIXTURE)
    before = ledger_rows(db_target)
    with tradedb.open(db_target) as db:
        again = db.ledger.import_freqtrade(FIXTURE)
    assert ledger_rows(db_target) == before
    assert (again.orders, again.fills, again.ended_orders, again.positions) == (0, 0, 0, 0)
    assert again.deposits == []
    assert again.unchanged_orders == 18
    assert not again.changed
    assert again.comparisons == first.comparisons


def test_a_later_copy_of_the_file_records_only_what_happened_since(
    db_target: str, tmp_path: Path
) -> None:
    with tradedb.open(db_target) as db:
        db.ledger.import_freqtrade(FIXTURE)
    later = tmp_path / "tradesv3.sqlite"
    shutil.copy(FIXTURE, later)
    connection = sqlite3.connect(later)
    with connection:
        # The bot ran on: the XRP buy filled the rest of its 400, the DOT sell filled.
        connection.execute(
            "UPDATE orders SET status = 'closed', ft_is_open = 0, filled = 400.0, "
            "remaining = 0.0, cost = 208.52, order_filled_date = '2025-03-05 04:00:00.000000', "
            "order_update_date = '2025-03-05 04:00:00.000000' WHERE order_id = '8823310457'"
        )
        connection.execute(
            "UPDATE orders SET status = 'closed', ft_is_open = 0, filled = 12.5, "
            "remaining = 0.0, average = 4.1502, cost = 51.8775, "
            "order_filled_date = '2025-03-05 06:00:00.000000', "
            "order_update_date = '2025-03-05 06:00:00.000000' "
            "WHERE order_id = 'OR5C2M-A7YQ3-QW6K8J'"
        )
        connection.execute(
            "UPDATE trades SET is_open = 0, close_rate = 4.1502, close_profit_abs = 1.77164218 "
            "WHERE id = 7"
        )
    connection.close()
    with tradedb.open(db_target) as db:
        result = db.ledger.import_freqtrade(later)
        assert (result.orders, result.fills, result.positions) == (0, 2, 0)
        rest = db.tables["trades"].list({"exchange_trade_id": "8823310457@400"}).items
        assert [(t.amount, t.price) for t in rest] == [(Decimal(250), Decimal("0.5213"))]
        xrp = db.ledger.order("binance", "8823310457")
        assert xrp is not None
        assert (xrp.status, xrp.filled_amount) == ("filled", Decimal(400))
        dot = {c.trade_id: c for c in result.comparisons}[7]
        assert dot.tradedb_pnl == q((Decimal("4.1502") - Decimal("3.9871")) * Decimal("12.5")) - q(
            Decimal("0.0025") * Decimal("12.5") * Decimal("3.9871")
        ) - q(Decimal("0.0025") * Decimal("12.5") * Decimal("4.1502"))
        assert db.ledger.audit() == []
        assert not db.ledger.import_freqtrade(later).changed


def test_an_import_that_fails_midway_leaves_nothing_behind(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        # The id of trade 5's last exit, taken on another exchange: only recording that
        # order, late in the file, can find it out.
        db.ledger.place_order(
            exchange="binance",
            order_id="OZ7NDV-2H5KQ-LMFX4E",
            symbol="ETH/USDT",
            side="buy",
            order_type="market",
            amount="1",
        )
    before = ledger_rows(db_target)
    with tradedb.open(db_target) as db, pytest.raises(DuplicateRecord, match="OZ7NDV"):
        db.ledger.import_freqtrade(FIXTURE)
    assert ledger_rows(db_target) == before


def test_the_file_is_only_read(db_target: str, tmp_path: Path) -> None:
    """freqtrade keeps its database in WAL mode; the import reads it, even so, read-only."""
    live = tmp_path / "tradesv3.sqlite"
    shutil.copy(FIXTURE, live)
    connection = sqlite3.connect(live)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    fingerprint = sha256(live)
    with tradedb.open(db_target) as db:
        result = db.ledger.import_freqtrade(live)
    assert (result.orders, result.fills) == (18, 16)
    assert sha256(live) == fingerprint


def test_strict_refuses_float_noise_naming_the_value(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        with pytest.raises(ValidationError, match=r"orders\[3\]\.average.*tradesv3"):
            db.ledger.import_freqtrade(FIXTURE, strict=True)
        assert db.tables["crypto_orders"].count() == 0


# --- the command line -----------------------------------------------------------------------


def test_the_command_shows_each_trades_pnl_beside_freqtrades(
    db_target: str, tmp_path: Path
) -> None:
    shown = run_cli(tmp_path, "import", str(FIXTURE), "--db", db_target)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any("tradedb P&L" in line and "freqtrade P&L" in line for line in lines)
    [trade_two] = [line for line in lines if " ETH/USDT " in line]
    cells = [cell for cell in trade_two.split() if cell != "│"]
    assert cells[-3:] == ["2.78551767", "2.78562608", "-0.00010841"]
    assert any(line.startswith("skipped trade 6 (binance BTC/USDT:USDT)") for line in lines)
    assert lines[-1].startswith("8 of 9 trades imported: 18 orders, 16 fills")
    assert "3 differ, most in trade 2 (-0.00010841)" in lines[-1]

    again = run_cli(tmp_path, "import", str(FIXTURE), "--db", db_target, "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["orders"], report["fills"], report["unchanged_orders"]) == (0, 0, 18)
    differences = {c["trade_id"]: c["difference"] for c in report["comparisons"]}
    assert differences == {
        1: "0.00000001",
        2: "-0.00010841",
        3: "0.00000000",
        4: "0.00000000",
        5: "0.00000000",
        7: None,
        8: None,
        9: "0.00000001",
    }


def refused(tmp_path: Path, target: str, source: Path, *options: str) -> str:
    """The one line of a refused import, after checking that nothing was written."""
    before = ledger_rows(target)
    result = run_cli(tmp_path, "import", str(source), "--db", target, *options)
    assert result.returncode == 2, result.stdout
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert ledger_rows(target) == before
    return line


def test_files_that_are_not_a_known_freqtrade_database_are_refused(
    db_target: str, tmp_path: Path
) -> None:
    with tradedb.open(db_target) as db:
        db.ledger.deposit(exchange="kraken", asset="EUR", amount="100")

    other = tmp_path / "other.db"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE trades (id INTEGER PRIMARY KEY, pair TEXT)")
    connection.close()
    assert "is not a freqtrade database: it has no orders table" in refused(
        tmp_path, db_target, other
    )

    older = tmp_path / "tradesv3.sqlite"
    shutil.copy(FIXTURE, older)
    connection = sqlite3.connect(older)
    connection.execute("ALTER TABLE orders DROP COLUMN ft_fee_base")
    connection.close()
    line = refused(tmp_path, db_target, older)
    assert "of a schema tradedb does not know" in line
    assert "orders table has no ft_fee_base" in line

    text = tmp_path / "notes.sqlite"
    text.write_text("not a database\n")
    assert "is not a SQLite database" in refused(tmp_path, db_target, text)

    line = refused(tmp_path, db_target, FIXTURE, "--strict")
    assert "orders[3].average=2401.2553097345135" in line
    assert "`--strict`" in line

    line = refused(tmp_path, db_target, FIXTURE, "--exchange", "kraken")
    assert "applies to market-data files" in line


def test_a_refused_file_creates_no_database(tmp_path: Path) -> None:
    database = tmp_path / "new.sqlite"
    result = run_cli(tmp_path, "import", str(tmp_path / "missing.sqlite"), "--db", str(database))
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert not database.exists()
