"""Portfolio snapshots: balances at a time rebuilt from the wallet journal, valued in USD,
written once per timestamp however often they are run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tradedb.cli.app import app
from tradedb.services.analytics.snapshots import snapshot_days, snapshot_portfolio
from tradedb.services.analytics.valuation import Valuer
from tradedb.services.ledger import Ledger
from tradedb.store import Store

HOUR = 3_600_000


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


DEPOSIT = ms("2024-03-01T10:00:00")
FILL = ms("2024-03-02T10:00:00")
WITHDRAWAL = ms("2024-03-03T10:00:00")


@pytest.fixture
def ledger(store: Store) -> Ledger:
    """1 BTC deposited, 2 ETH bought for BTC (fee in BTC), 1 ETH locked by a sell order,
    0.5 ETH withdrawn; BTC/USD and ETH/BTC tickers every hour over those days."""
    ledger = Ledger(store)
    ledger.deposit(exchange="kraken", asset="BTC", amount="1", timestamp=DEPOSIT)
    ledger.place_order(
        exchange="kraken",
        order_id="B-1",
        symbol="ETH/BTC",
        side="buy",
        order_type="market",
        amount="2",
        timestamp=FILL - 1000,
    )
    ledger.record_fill(
        exchange="kraken",
        order_id="B-1",
        exchange_trade_id="T-1",
        amount="2",
        price="0.05",
        fee="0.0001",
        timestamp=FILL,
    )
    ledger.place_order(
        exchange="kraken",
        order_id="S-1",
        symbol="ETH/BTC",
        side="sell",
        order_type="limit",
        amount="1",
        price="0.07",
        timestamp=FILL + HOUR,
    )
    ledger.withdraw(exchange="kraken", asset="ETH", amount="0.5", timestamp=WITHDRAWAL)
    rows = []
    for hour in range(0, 4 * 24):
        at = ms("2024-03-01T00:00:00") + hour * HOUR
        rows.append({"symbol": "BTC/USD", "last_price": str(60000 + hour), "timestamp": at})
        rows.append({"symbol": "ETH/BTC", "last_price": "0.05", "timestamp": at})
    store.write_tickers(rows, exchange="kraken")
    return ledger


def holdings(snapshot_rows: list) -> dict[str, Decimal]:  # type: ignore[type-arg]
    return {row.asset: row.amount for row in snapshot_rows}


def test_balances_at_t_come_from_the_journal(store: Store, ledger: Ledger) -> None:
    # The wallets table holds only the balance of now: 0.8999 BTC and 1.5 ETH.
    now = {w.asset: w.total_balance for w in store.wallets.list().items}
    assert now == {"BTC": Decimal("0.8999"), "ETH": Decimal("1.5")}
    assert snapshot_portfolio(store, DEPOSIT - 1).rows == []
    assert holdings(snapshot_portfolio(store, DEPOSIT).rows) == {"BTC": 1}  # at t: included
    between = snapshot_portfolio(store, FILL + 2 * HOUR)
    # locked funds (1 ETH held by the sell order) are part of what is held
    assert holdings(between.rows) == {"BTC": Decimal("0.8999"), "ETH": 2}
    after = snapshot_portfolio(store, WITHDRAWAL + HOUR)
    assert holdings(after.rows) == {"BTC": Decimal("0.8999"), "ETH": Decimal("1.5")}


def test_each_row_is_amount_times_price_in_usd(store: Store, ledger: Ledger) -> None:
    at = FILL + 2 * HOUR
    snapshot = snapshot_portfolio(store, at)
    btc_usd = Decimal(60000 + 24 + 12)  # the ticker of 2024-03-02 12:00
    rows = {row.asset: row for row in snapshot.rows}
    assert rows["BTC"].price_per_unit == btc_usd
    assert rows["BTC"].usd_value == Decimal("0.8999") * btc_usd
    assert rows["ETH"].price_per_unit == Decimal("0.05") * btc_usd
    assert rows["ETH"].usd_value == 2 * Decimal("0.05") * btc_usd
    assert snapshot.valuations[("kraken", "ETH")].path == ("ETH/BTC", "BTC/USD")
    assert {row.exchange for row in snapshot.rows} == {"kraken"}
    assert snapshot.total_usd == rows["BTC"].usd_value + rows["ETH"].usd_value


def test_running_a_snapshot_again_replaces_it(store: Store, ledger: Ledger) -> None:
    at = FILL + 2 * HOUR
    first = snapshot_portfolio(store, at)
    again = snapshot_portfolio(store, at)
    assert store.snapshots.count() == 2
    assert [(r.asset, r.amount, r.usd_value) for r in again.rows] == [
        (r.asset, r.amount, r.usd_value) for r in first.rows
    ]
    # with other prices, the rows of that time are replaced, not added to
    store.write_tickers(
        [{"symbol": "BTC/USD", "last_price": "70000", "timestamp": at}], exchange="kraken"
    )
    replaced = snapshot_portfolio(store, at)
    assert store.snapshots.count() == 2
    assert {r.price_per_unit for r in replaced.rows if r.asset == "BTC"} == {Decimal(70000)}
    other_time = snapshot_portfolio(store, at + HOUR)
    assert store.snapshots.count() == 4
    assert len(other_time.rows) == 2


def test_a_holding_without_a_price_gets_no_row_and_is_reported(
    store: Store, ledger: Ledger
) -> None:
    ledger.deposit(exchange="kraken", asset="DOGE", amount="1000", timestamp=DEPOSIT)
    snapshot = snapshot_portfolio(store, DEPOSIT + HOUR)
    assert holdings(snapshot.rows) == {"BTC": 1}
    (missing,) = snapshot.unvalued
    assert (missing.exchange, missing.asset, missing.amount) == ("kraken", "DOGE", 1000)
    assert "no USD price" in missing.reason
    assert not snapshot.complete
    # a reference price makes it whole
    priced = snapshot_portfolio(store, DEPOSIT + HOUR, Valuer(store, {"DOGE": "0.1"}))
    assert holdings(priced.rows) == {"BTC": 1, "DOGE": 1000}
    assert store.snapshots.count() == 2


def test_daily_snapshots_at_midnight_utc(store: Store, ledger: Ledger) -> None:
    snapshots = snapshot_days(store, "2024-03-01", "2024-03-04")
    assert [s.timestamp for s in snapshots] == [
        ms(f"2024-03-0{day}T00:00:00") for day in range(1, 5)
    ]
    assert [holdings(s.rows) for s in snapshots] == [
        {},
        {"BTC": 1},
        {"BTC": Decimal("0.8999"), "ETH": 2},
        {"BTC": Decimal("0.8999"), "ETH": Decimal("1.5")},
    ]
    snapshot_days(store, "2024-03-03", "2024-03-04")
    assert store.snapshots.count() == 5


# --- the command -----------------------------------------------------------------------------


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_snapshot_command_json_has_fixed_point_amounts(
    store: Store, ledger: Ledger, db_target: str
) -> None:
    ledger.deposit(exchange="kraken", asset="DOGE", amount="1000", timestamp=DEPOSIT)
    result = invoke(
        "snapshot", "--at", "2024-03-02T12:00:00+00:00", "--reference-price", "DOGE=0.00000001",
        "--db", db_target, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (snapshot,) = json.loads(result.stdout)
    rows = {row["asset"]: row for row in snapshot["rows"]}
    assert rows["DOGE"]["price_per_unit"] == "0.00000001"
    assert rows["DOGE"]["usd_value"] == "0.00001000"
    assert rows["ETH"]["path"] == ["ETH/BTC", "BTC/USD"]
    assert snapshot["unvalued"] == []


def test_snapshot_command_reports_what_it_could_not_value(
    store: Store, ledger: Ledger, db_target: str
) -> None:
    ledger.deposit(exchange="kraken", asset="DOGE", amount="1000", timestamp=DEPOSIT)
    result = invoke("snapshot", "--daily", "--since", "2024-03-02", "--until", "2024-03-04",
                    "--db", db_target)  # fmt: skip
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert all("DOGE" in line and "--reference-price DOGE=" in line for line in lines)
    assert "BTC" in result.stdout
    assert store.snapshots.count() == 3  # BTC, then BTC and ETH


@pytest.mark.parametrize(
    "args",
    [
        ("--reference-price", "BTC=cheap"),
        ("--reference-price", "BTC"),
        ("--daily", "--at", "2024-03-01"),
        ("--since", "2024-03-01"),
        ("--max-age", "soon"),
        ("--at", "1700000000"),
    ],
)
@pytest.mark.fault("bad input")
def test_snapshot_command_refuses_bad_input_in_one_line(db_path: Path, args: tuple[str]) -> None:
    result = invoke("snapshot", *args, "--db", str(db_path))
    assert result.exit_code == 2, result.stdout
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not db_path.exists()


def test_the_portfolio_holds_each_exchanges_latest_snapshot_with_its_own_time(
    store: Store,
) -> None:
    from tradedb.services.analytics.reading import latest_snapshot

    def row(exchange: str, asset: str, at: int, usd: str) -> dict[str, object]:
        return {
            "timestamp": at,
            "asset": asset,
            "amount": "1",
            "usd_value": usd,
            "price_per_unit": usd,
            "exchange": exchange,
        }

    early, late = ms("2024-01-01T00:00"), ms("2024-03-01T00:00")
    store.snapshots.insert(row("binance", "BTC", early - HOUR, "40000"))
    store.snapshots.insert(row("binance", "BTC", early, "42000"))
    store.snapshots.insert(row("kraken", "ETH", late, "3000.5"))

    view = latest_snapshot(store)
    before_kraken = latest_snapshot(store, at=late - 1)

    # Binance's latest snapshot is older than Kraken's: it is still the portfolio's.
    assert [(r.exchange, r.timestamp, r.usd_value) for r in view.rows] == [
        ("binance", early, Decimal("42000")),
        ("kraken", late, Decimal("3000.5")),
    ]
    assert (view.timestamp, view.total_usd) == (late, Decimal("45000.5"))
    assert [r.exchange for r in before_kraken.rows] == ["binance"]
    assert [r.exchange for r in latest_snapshot(store, exchange="kraken").rows] == ["kraken"]
