"""`tradedb sync` against a simulated Binance account (tests/sim_binance.py), through ccxt's
real parsing code: fills, orders placed outside tradedb, cancels, transfers and balances
come into the ledger exactly once, and the balances are reconciled."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest
from typer.testing import CliRunner

import tradedb
from conftest import new_pg_database
from faults import FaultFigures
from mcp_database import anyio_backend  # noqa: F401
from sim_binance import SimulatedBinance
from tradedb.api import accounts as accounts_api
from tradedb.cli.app import app
from tradedb.errors import ExchangeUnavailable
from tradedb.models.values import now_epoch_ms as tradedb_now
from tradedb.services.live.account import SyncReport, SyncStopped

START = 1_700_000_000_000
FUNDS = {"USDT": "100000", "BTC": "2"}


def sync(db: tradedb.TradeDB, sim: SimulatedBinance, **options: Any) -> SyncReport:
    options.setdefault("symbols", ["BTC/USDT"])
    options.setdefault("since", START)
    return db.accounts.sync("binance", client=sim.client(), **options)


def ledger_matches_the_exchange(db: tradedb.TradeDB, sim: SimulatedBinance) -> None:
    for wallet in db.ledger.wallets(exchange="binance"):
        free, locked = sim.balance(wallet.asset)
        assert (wallet.available_balance, wallet.locked_balance) == (free, locked), wallet.asset
    assert db.ledger.audit() == []


@pytest.fixture
def opened(db_target: str) -> tuple[tradedb.TradeDB, SimulatedBinance]:
    """An account holding FUNDS, and a ledger opened at them by a first sync --apply."""
    sim = SimulatedBinance(balances=FUNDS, start_ms=START)
    db = tradedb.open(db_target)
    first = sync(db, sim, apply=True)
    assert first.applied
    assert {d.asset: d.total for d in first.opening.differences} == {  # type: ignore[union-attr]
        "BTC": Decimal(2),
        "USDT": Decimal(100000),
    }
    return db, sim


def test_an_order_placed_outside_is_adopted_filled_in_parts_and_canceled(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    order_id = sim.place("BTC/USDT", "buy", "limit", "0.5", "30000")

    placed = sync(db, sim, default_strategy="manual")
    assert placed.adopted_orders == [order_id]
    order = db.ledger.order("binance", order_id)
    assert order is not None
    assert (order.status, order.strategy, order.amount) == ("open", "manual", Decimal("0.5"))
    assert placed.in_sync, placed.reconciliation
    ledger_matches_the_exchange(db, sim)

    first_fill = sim.fill(order_id, "0.2", fee="0.0002")
    partly = sync(db, sim)
    assert partly.trades["BTC/USDT"].new == 1
    assert partly.in_sync, partly.reconciliation

    sim.fill(order_id, "0.1", price="29999.5", fee="0.0001")
    sim.cancel(order_id)
    ended = sync(db, sim)

    assert ended.trades["BTC/USDT"].new == 1
    assert ended.closed_orders == [order_id]
    order = db.ledger.order("binance", order_id)
    assert order is not None
    assert (order.status, order.filled_amount) == ("canceled", Decimal("0.3"))
    trades = db.tables.trades.list({"order_id": order_id}).items
    assert [(t.exchange_trade_id, t.amount, t.price) for t in trades] == [
        (first_fill, Decimal("0.2"), Decimal(30000)),
        (str(int(first_fill) + 1), Decimal("0.1"), Decimal("29999.5")),
    ]
    assert ended.in_sync, ended.reconciliation
    # The position the fills opened, marked to the market's last price.
    assert ended.marked_positions == 1
    [position] = db.tables.positions.list({"status": "open"}).items
    assert position.current_price == Decimal("29999.5")
    ledger_matches_the_exchange(db, sim)
    db.close()


def test_a_fill_of_an_unknown_order_fetches_the_order_first(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    order_id = sim.place("BTC/USDT", "sell", "limit", "1", "31000")
    sim.fill(order_id, "1", fee="31")  # filled before any sync saw it open

    report = sync(db, sim)

    assert report.adopted_orders == [order_id]
    assert ("GET", "api/v3/order") in [(method, path) for method, path, _ in sim.requests]
    order = db.ledger.order("binance", order_id)
    assert order is not None
    assert order.status == "filled"
    assert report.in_sync, report.reconciliation
    ledger_matches_the_exchange(db, sim)
    db.close()


def test_many_pages_and_a_fill_delivered_twice_are_recorded_once_and_a_rerun_adds_nothing(
    db_target: str,
) -> None:
    sim = SimulatedBinance(balances=FUNDS, start_ms=START, page_limit=5)
    with tradedb.open(db_target) as db:
        sync(db, sim, apply=True)
        order_id = sim.place("BTC/USDT", "buy", "limit", "1", "20000")
        fills = [sim.fill(order_id, "0.01", fee="0.00001") for _ in range(23)]
        sim.redeliver(fills[3])

        report = sync(db, sim)

        assert report.trades["BTC/USDT"].new == 23
        assert report.trades["BTC/USDT"].duplicates >= 1
        ledger_matches_the_exchange(db, sim)
    # Another process, later: the cursor in the database says where to go on from.
    with tradedb.open(db_target) as db:
        requests_before = len(sim.requests)
        again = sync(db, sim)
        assert again.trades["BTC/USDT"].new == 0
        assert db.tables.trades.count({"order_id": order_id}) == 23
        [cursor] = [c for c in db.accounts.cursors("binance") if c.stream == "trades"]
        assert cursor.last_id == fills[-1]
        # It asked from the newest fill on, not from the start: one page of trades.
        asked = [p for _, path, p in sim.requests[requests_before:] if path == "api/v3/myTrades"]
        assert len(asked) == 1


def test_deposits_and_withdrawals_come_in_once_under_the_exchanges_ids(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    deposit_id = sim.deposit("USDT", "2500.12345678")
    withdrawal_id = sim.withdraw("BTC", "0.5", fee="0.0005")

    report = sync(db, sim)
    again = sync(db, sim)

    assert (report.deposits.new, report.withdrawals.new) == (1, 1)
    assert (again.deposits.new, again.withdrawals.new) == (0, 0)
    movements = db.tables.wallet_movements.list({"kind": ["deposit", "withdrawal"]}).items
    assert {(m.reference, m.asset, m.available_change) for m in movements} == {
        (deposit_id, "USDT", Decimal("2500.12345678")),
        (withdrawal_id, "BTC", Decimal("-0.5005")),
    }
    assert again.in_sync, again.reconciliation
    ledger_matches_the_exchange(db, sim)
    db.close()


def test_a_balance_that_drifts_is_reported_and_journalled_only_with_apply(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    sim.drift("USDT", "-12.5")

    reported = sync(db, sim)
    wallet = db.ledger.balance("binance", "USDT")

    assert not reported.in_sync
    [difference] = reported.reconciliation.differences  # type: ignore[union-attr]
    assert (difference.asset, difference.total) == ("USDT", Decimal("-12.5"))
    assert wallet.available == Decimal(100000)  # reported, not applied

    applied = sync(db, sim, apply=True)
    assert applied.applied
    ledger_matches_the_exchange(db, sim)
    db.close()


def cut_off_after(sim: SimulatedBinance, requests: int) -> Any:
    """A client of the account whose connection drops after `requests` requests (an
    exchange error, which is not retried)."""
    client = sim.client()
    answer, sent = client.fetch, [0]

    def fetch(*args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        if sent[0] > requests:
            raise ccxt.ExchangeError("the connection dropped")
        return answer(*args, **kwargs)

    client.fetch = fetch
    return client


@pytest.mark.fault("kill")
def test_a_sync_cut_off_at_any_request_and_run_again_records_everything_once(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, fault_figures: FaultFigures
) -> None:
    """The connection drops at each request of a sync in turn (what a crash mid-sync
    leaves: whatever committed before it); the next sync completes, and the ledger is the
    same as that of a sync never cut off."""
    requests_of_a_whole_sync = 0
    cut = 0
    while True:
        sim = SimulatedBinance(balances=FUNDS, start_ms=START, page_limit=3)
        target = (
            str(tmp_path / f"cut-{cut}.sqlite") if engine == "sqlite" else new_pg_database(request)
        )
        with tradedb.open(target) as db:
            sync(db, sim, apply=True)
            order_id = sim.place("BTC/USDT", "buy", "limit", "1", "20000")
            for _ in range(7):
                sim.fill(order_id, "0.1", fee="0.0001")
            sim.deposit("USDT", "10")
            requests_before_the_sync = len(sim.requests)
            if cut:
                client = cut_off_after(sim, cut)
                with pytest.raises(ExchangeUnavailable):
                    db.accounts.sync("binance", symbols=["BTC/USDT"], since=START, client=client)
            report = sync(db, sim)
            assert report.in_sync, (cut, report.reconciliation)
            assert db.tables.trades.count({"order_id": order_id}) == 7
            ledger_matches_the_exchange(db, sim)
            if not cut:
                requests_of_a_whole_sync = len(sim.requests) - requests_before_the_sync
        cut += 1
        fault_figures.killed(1)
        if cut >= requests_of_a_whole_sync:
            break


# --- the command ----------------------------------------------------------------------------


def test_cli_reports_in_json_and_exits_1_while_the_balances_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = SimulatedBinance(balances=FUNDS, start_ms=START)
    monkeypatch.setattr(accounts_api, "account_client", lambda exchange: sim.client())
    database = str(tmp_path / "live.sqlite")
    runner = CliRunner()
    command = ["sync", "--exchange", "binance", "--symbol", "BTC/USDT", "--since", str(START)]

    differ = runner.invoke(app, [*command, "--db", database, "--json"])
    applied = runner.invoke(app, [*command, "--db", database, "--apply", "--json"])
    same = runner.invoke(app, [*command, "--db", database])

    assert differ.exit_code == 1, differ.output
    balances = {row["asset"]: row for row in json.loads(differ.stdout)["balances"]}
    assert balances["USDT"]["exchange_free"] == "100000.00000000"
    assert balances["USDT"]["difference"] == "100000.00000000"
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout)["applied"] is True
    assert same.exit_code == 0, same.output
    assert "the ledger matches the exchange" in same.stdout


@pytest.mark.fault("bad input")
def test_cli_without_credentials_names_the_variables_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TRADEDB_BINANCE_API_KEY", "TRADEDB_BINANCE_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRADEDB_BINANCE_API_KEY", "a-key-that-must-not-show")
    database = tmp_path / "live.sqlite"

    result = CliRunner().invoke(
        app, ["sync", "--exchange", "binance", "--symbol", "BTC/USDT", "--db", str(database)]
    )

    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "TRADEDB_BINANCE_SECRET" in result.stderr
    assert "a-key-that-must-not-show" not in result.stderr
    with tradedb.open(database) as db:
        assert db.tables.sync_cursors.count() == 0
        assert db.tables.wallet_movements.count() == 0


@pytest.mark.fault("bad input")
def test_a_market_the_exchange_does_not_list_is_refused_before_anything_is_recorded(
    db_target: str,
) -> None:
    sim = SimulatedBinance(balances=FUNDS, start_ms=START)
    with tradedb.open(db_target) as db:
        with pytest.raises(tradedb.ValidationError, match="DOGE/USDT"):
            sync(db, sim, symbols=["DOGE/USDT"], apply=True)
        assert db.tables.wallet_movements.count() == 0
        assert db.tables.sync_cursors.count() == 0


def altered(sim: SimulatedBinance, path: str, change: Any) -> Any:
    """A client of the account whose answers on `path` pass through `change` first."""
    client = sim.client()
    answer = client.fetch

    def fetch(url: str, *args: Any, **kwargs: Any) -> Any:
        body = answer(url, *args, **kwargs)
        return change(body) if path in url else body

    client.fetch = fetch
    return client


@pytest.mark.fault("bad input")
def test_a_fill_that_contradicts_the_recorded_one_stops_the_sync_naming_it(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    order_id = sim.place("BTC/USDT", "buy", "limit", "1", "30000")
    trade_id = sim.fill(order_id, "0.4")
    sync(db, sim)
    later = sim.fill(order_id, "0.1")
    kept = db.tables.trades.count(), db.tables.wallet_movements.count()

    def more_than_it_was(trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**t, "qty": "0.5"} if str(t["id"]) == trade_id else t for t in trades]

    client = altered(sim, "myTrades", more_than_it_was)
    with pytest.raises(SyncStopped) as stopped:
        db.accounts.sync("binance", symbols=["BTC/USDT"], since=START, client=client)

    assert f"trade {trade_id}" in str(stopped.value)
    assert (db.tables.trades.count(), db.tables.wallet_movements.count()) == kept
    assert db.tables.trades.count({"exchange_trade_id": later}) == 0
    db.close()


@pytest.mark.fault("bad input")
def test_an_amount_with_more_decimals_than_the_column_holds_is_refused_naming_the_trade(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    order_id = sim.place("BTC/USDT", "buy", "limit", "1", "30000")
    trade_id = sim.fill(order_id, "0.4")
    kept = db.tables.trades.count()

    def ninth_decimal(trades: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**t, "price": "29999.123456789"} for t in trades]

    client = altered(sim, "myTrades", ninth_decimal)
    with pytest.raises(SyncStopped, match=f"trade {trade_id}.*price"):
        db.accounts.sync("binance", symbols=["BTC/USDT"], since=START, client=client)
    assert db.tables.trades.count() == kept
    db.close()


@pytest.mark.fault("bad input")
def test_an_exchange_without_a_needed_capability_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    sim = SimulatedBinance(balances=FUNDS, start_ms=START)
    client = sim.client()
    client.has = {**client.has, "fetchMyTrades": False}
    with tradedb.open(tmp_path / "live.sqlite") as db:
        with pytest.raises(tradedb.ValidationError, match="ccxt has no fetchMyTrades"):
            db.accounts.sync("binance", symbols=["BTC/USDT"], client=client)
        assert sim.requests == []


# --- what is left to read ---------------------------------------------------------------------


def test_each_sync_leaves_its_report_in_bot_logs(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    order_id = sim.place("BTC/USDT", "sell", "limit", "0.5", "40000")
    sim.drift("USDT", "1.5")

    sync(db, sim)

    report = db.accounts.last_report("binance")
    assert report is not None
    assert report["adopted_orders"] == [order_id]
    assert [(b["asset"], b["difference"]) for b in report["balances"]] == [("USDT", "1.50000000")]
    [row] = db.tables.bot_logs.list({"module": "tradedb.sync"}, newest_first=True, limit=1).items
    assert row.level == "WARNING"
    assert row.message.startswith("sync of binance: 0 new fills")
    assert "USDT 1.50000000" in row.message
    assert db.accounts.last_report("kraken") is None
    db.close()


@pytest.mark.anyio
async def test_the_mcp_server_shows_the_last_sync_of_each_stream_and_its_report(
    tmp_path: Path,
) -> None:
    from mcp import Client

    from mcp_database import call
    from tradedb.mcp import build_server

    path = tmp_path / "live.sqlite"
    sim = SimulatedBinance(balances=FUNDS, start_ms=START)
    with tradedb.open(path) as db:
        sync(db, sim, apply=True)
        order_id = sim.place("BTC/USDT", "buy", "limit", "0.1", "25000")
        sim.fill(order_id, "0.1")
        sync(db, sim)
        # An order sent through tradedb whose answer was lost.
        sim.fail_next("api/v3/order", "timeout")
        unknown = db.accounts.place(
            "binance",
            symbol="BTC/USDT",
            side="sell",
            order_type="limit",
            amount="0.1",
            price="40000",
            client_order_id="mcp-1",
            client=sim.client(),
        )
        assert unknown.outcome == "unknown"
    server = build_server(str(path))
    try:
        async with Client(server.mcp) as client:
            status = await call(client, "sync_status", {"exchange": "binance"})
    finally:
        server.close()

    cursors = {(c["stream"], c["scope"]): c for c in status["cursors"]}
    assert set(cursors) >= {("trades", "BTC/USDT"), ("orders", "BTC/USDT")}
    assert cursors[("trades", "BTC/USDT")]["last_id"] is not None
    assert status["last_report"]["trades"]["BTC/USDT"]["new"] == 1
    assert status["last_report"]["adopted_orders"] == [order_id]
    assert status["last_report"]["balances"] == []
    [submitted] = status["unknown_submissions"]
    assert (submitted["client_order_id"], submitted["status"], submitted["amount"]) == (
        "mcp-1",
        "pending",
        "0.10000000",
    )
    assert [order["order_id"] for order in status["adopted_orders"]] == [order_id]
    assert status["adopted_orders"][0]["submission"] == "adopted"


def test_more_transfers_than_a_page_holds_all_come_in_one_sync(db_target: str) -> None:
    """Binance lists a window's transfers newest first, a page at a time: the sync asks
    again up to the oldest it was given until nothing older comes."""
    sim = SimulatedBinance(balances=FUNDS, start_ms=START, page_limit=5)
    with tradedb.open(db_target) as db:
        sync(db, sim, apply=True)
        deposits = []
        for number in range(12):
            deposits.append(sim.deposit("USDT", f"{number + 1}.25"))
            sim.now_ms += 1000  # withdrawal times are whole seconds
            if number % 3 == 0:
                sim.withdraw("BTC", "0.01", fee="0.0001")

        report = sync(db, sim)

        assert (report.deposits.new, report.withdrawals.new) == (12, 4)
        recorded = db.tables.wallet_movements.list({"kind": "deposit"}, limit=100).items
        assert sorted(m.reference for m in recorded) == sorted(deposits)
        assert report.in_sync, report.reconciliation
        ledger_matches_the_exchange(db, sim)


def test_cli_every_outlives_an_exchange_outage_and_stops_at_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradedb.cli import sync as sync_cli

    sim = SimulatedBinance(balances=FUNDS, start_ms=START)
    sim.fail_next("api/v3/account", ccxt.ExchangeError("503 Service Unavailable"))
    monkeypatch.setattr(accounts_api, "account_client", lambda exchange: sim.client())
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(sync_cli.time, "sleep", sleep)
    database = str(tmp_path / "live.sqlite")

    result = CliRunner().invoke(
        app,
        ["sync", "--exchange", "binance", "--symbol", "BTC/USDT", "--since", str(START),
         "--apply", "--every", "30s", "--db", database, "--json"],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert waits == [30.0, 30.0]
    [line] = result.stderr.strip().splitlines()
    assert "binance fetch_balance failed" in line
    assert line.endswith("trying again in 30s")
    assert json.loads(result.stdout)["applied"] is True


def test_a_cancel_of_an_order_older_than_the_last_sync_is_found(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    resting = sim.place("BTC/USDT", "buy", "limit", "0.2", "25000")
    sync(db, sim)
    # Newer orders come and go, and syncs go on, while the first one rests.
    for _ in range(3):
        sim.fill(sim.place("BTC/USDT", "buy", "limit", "0.01", "30000"), "0.01")
        sync(db, sim)
    sim.cancel(resting)

    report = sync(db, sim)

    assert report.closed_orders == [resting]
    order = db.ledger.order("binance", resting)
    assert order is not None
    assert order.status == "canceled"
    assert report.in_sync, report.reconciliation
    ledger_matches_the_exchange(db, sim)
    db.close()


def test_a_sync_fills_the_usd_value_of_wallets_and_balance_history(db_target: str) -> None:
    # The account's clock is now's: prices older than a day value nothing.
    sim = SimulatedBinance(balances=FUNDS, start_ms=tradedb_now())
    with tradedb.open(db_target) as db:
        sync(db, sim, apply=True, since=None)
        sim.now_ms = tradedb_now() + 1000  # after the first sync, which the ledger follows from
        order_id = sim.place("BTC/USDT", "buy", "limit", "0.5", "30000.5")
        sim.fill(order_id, "0.5", fee="0.0005")

        report = sync(db, sim, since=None)

        wallets = {w.asset: w for w in db.ledger.wallets(exchange="binance")}
        btc = wallets["BTC"].total_balance
        assert btc == Decimal("2.4995")
        # BTC at the ticker's last price, which the sync stored; USDT is a USD asset.
        assert wallets["BTC"].usd_value == btc * Decimal("30000.5")
        assert wallets["USDT"].usd_value == wallets["USDT"].total_balance
        assert db.tables.tickers.count() >= 1
        assert report.usd_values is not None
        assert report.usd_values.unvalued == []
        assert report.as_json()["usd_values"]["total_usd"] == str(
            wallets["BTC"].usd_value + wallets["USDT"].usd_value
        )
        # The history rows the fill wrote carry their value too.
        fill_rows = db.tables.balance_history.list(
            {"exchange": "binance", "asset": "BTC"}, newest_first=True, limit=1
        ).items
        assert fill_rows[0].usd_value == fill_rows[0].balance * Decimal("30000.5")


def test_a_spot_sell_of_coins_held_before_opens_no_short_position(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    bought = sim.place("BTC/USDT", "buy", "limit", "0.3", "30000")
    sim.fill(bought, "0.3")
    # 0.5 sold: the 0.3 bought closes its position; 0.2 comes from the opening balance.
    sold = sim.place("BTC/USDT", "sell", "limit", "0.5", "31000")
    sim.fill(sold, "0.5")

    sync(db, sim, default_strategy="manual")

    assert db.tables.positions.count({"status": "open"}) == 0
    [closed] = db.tables.positions.list({"status": "closed"}).items
    assert (closed.side, closed.amount, closed.realized_pnl) == (
        "long",
        Decimal(0),
        Decimal("300"),
    )
    ledger_matches_the_exchange(db, sim)
    db.close()
