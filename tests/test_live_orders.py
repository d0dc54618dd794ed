"""Orders placed through tradedb on a simulated Binance account (tests/sim_binance.py),
through ccxt's real code: stored before they are sent, sent once, settled by their client
order id when the answer is lost, and never sent twice for the same intent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest
from typer.testing import CliRunner

import tradedb
from sim_binance import SimulatedBinance
from test_sync import FUNDS, START, ledger_matches_the_exchange, sync
from tradedb.api import accounts as accounts_api
from tradedb.cli.app import app
from tradedb.services.live import account as account_service
from tradedb.services.live.orders import OrderRejected
from tradedb.services.live.submissions import UNKNOWN_GRACE_MS

CREATE = ("POST", "api/v3/order")


@pytest.fixture
def opened(db_target: str) -> tuple[tradedb.TradeDB, SimulatedBinance]:
    """An account holding FUNDS, and a ledger opened at them by a first sync --apply."""
    sim = SimulatedBinance(balances=FUNDS, start_ms=START)
    db = tradedb.open(db_target)
    assert sync(db, sim, apply=True).applied
    return db, sim


def place(db: tradedb.TradeDB, sim: SimulatedBinance, **order: Any) -> Any:
    order = {
        "symbol": "BTC/USDT",
        "side": "buy",
        "order_type": "limit",
        "amount": "0.5",
        "price": "30000",
        **order,
    }
    return db.accounts.place("binance", client=sim.client(), **order)


def creates(sim: SimulatedBinance) -> int:
    """How many create_order requests reached the exchange."""
    return sum((method, path) == CREATE for method, path, _ in sim.requests)


def exchange_orders(sim: SimulatedBinance) -> list[dict[str, Any]]:
    client = sim.client()
    client.number = str
    return list(client.fetch_orders("BTC/USDT", START))


def test_an_order_placed_fills_in_parts_and_is_canceled(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened

    placed = place(db, sim, strategy="ema")

    assert (placed.outcome, placed.sent) == ("acknowledged", True)
    [at_exchange] = exchange_orders(sim)
    order = placed.order
    assert order.order_id == at_exchange["id"]
    assert order.client_order_id == at_exchange["clientOrderId"]
    assert (order.status, order.submission, order.strategy) == ("open", "acknowledged", "ema")
    ledger_matches_the_exchange(db, sim)  # the ledger locks what the exchange holds
    # The lock made before the answer is found under the exchange's id.
    [lock] = db.tables.wallet_movements.list({"kind": "lock"}, limit=10).items
    assert lock.order_id == order.order_id

    sim.fill(order.order_id, "0.2", fee="0.0002")
    assert sync(db, sim).trades["BTC/USDT"].new == 1
    sim.fill(order.order_id, "0.1", price="29999.5", fee="0.0001")  # not synced yet

    canceled = db.accounts.cancel("binance", str(order.client_order_id), client=sim.client())

    assert canceled.status == "canceled"
    assert canceled.filled_amount == Decimal("0.3")  # the fill before the cancel is in
    assert creates(sim) == 1
    ledger_matches_the_exchange(db, sim)
    db.close()


def test_placing_the_same_intent_again_sends_nothing(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    first = place(db, sim, client_order_id="ema-BTC-1700000300000")

    again = place(db, sim, client_order_id="ema-BTC-1700000300000", amount="0.7")

    assert (again.outcome, again.sent) == ("existing", False)
    assert again.order == first.order
    assert creates(sim) == 1
    assert len(exchange_orders(sim)) == 1
    db.close()


def test_a_timeout_after_the_exchange_took_the_order_finds_it_by_client_order_id(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    sim.fail_next("api/v3/order", "timeout", after_applying=True)

    placed = place(db, sim)

    assert (placed.outcome, placed.sent) == ("acknowledged", True)
    assert "RequestTimeout" in placed.detail
    [at_exchange] = exchange_orders(sim)
    assert placed.order.order_id == at_exchange["id"]
    assert placed.order.submission == "acknowledged"
    lookup = [
        params for method, path, params in sim.requests if method == "GET" and path[-5:] == "order"
    ]
    assert lookup[-1]["origClientOrderId"] == placed.order.client_order_id
    assert creates(sim) == 1
    ledger_matches_the_exchange(db, sim)
    db.close()


def test_an_order_lost_on_the_way_stays_unknown_then_is_rejected_never_resent(
    opened: tuple[tradedb.TradeDB, SimulatedBinance], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, sim = opened
    sim.fail_next("api/v3/order", "timeout")  # the request never reached the exchange

    placed = place(db, sim)
    order = placed.order

    assert placed.outcome == "unknown"
    assert (order.status, order.submission) == ("pending", "unknown")
    assert order.order_id == order.client_order_id  # no exchange id yet
    assert db.accounts.unknown_submissions("binance") == [order]
    # Its funds stay locked while it may exist.
    assert db.ledger.balance("binance", "USDT").locked == Decimal("15000")

    within_grace = sync(db, sim)
    assert [s.outcome for s in within_grace.submissions] == ["unknown"]
    assert within_grace.as_json()["submissions"][0]["client_order_id"] == order.client_order_id
    again = place(db, sim, client_order_id=order.client_order_id)
    assert (again.outcome, again.sent) == ("existing", False)

    later = account_service.now_epoch_ms() + UNKNOWN_GRACE_MS
    monkeypatch.setattr(account_service, "now_epoch_ms", lambda: later)
    settled = sync(db, sim)

    assert [s.outcome for s in settled.submissions] == ["rejected"]
    assert "unknown submissions: 1 rejected" in settled.summary()
    rejected = db.ledger.submitted_order("binance", str(order.client_order_id))
    assert rejected is not None
    assert (rejected.status, rejected.submission) == ("canceled", "rejected")
    assert db.accounts.unknown_submissions("binance") == []
    assert creates(sim) == 1  # the request that was lost; nothing was sent again
    assert exchange_orders(sim) == []
    ledger_matches_the_exchange(db, sim)
    db.close()


def test_a_sync_that_meets_the_fills_of_an_unknown_order_settles_it_not_adopts_it(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    sim.fail_next("api/v3/order", "timeout", after_applying=True)
    # and the lookup that follows fails too
    sim.fail_next("api/v3/order", ccxt.ExchangeError("binance: internal error"))

    placed = place(db, sim)
    assert placed.outcome == "unknown"
    [at_exchange] = exchange_orders(sim)
    sim.fill(at_exchange["id"], "0.5", fee="0.0005")

    report = sync(db, sim)

    assert [s.outcome for s in report.submissions] == ["acknowledged"]
    assert report.adopted_orders == []
    order = db.ledger.order("binance", at_exchange["id"])
    assert order is not None
    assert (order.status, order.client_order_id) == ("filled", placed.order.client_order_id)
    assert db.tables.crypto_orders.count() == 1
    ledger_matches_the_exchange(db, sim)
    db.close()


@pytest.mark.fault("bad input")
def test_an_order_the_exchange_refuses_is_recorded_rejected_and_its_funds_released(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    sim.fail_next("api/v3/order", ccxt.InvalidOrder("binance Filter failure: NOTIONAL"))

    with pytest.raises(OrderRejected, match="NOTIONAL") as refused:
        place(db, sim)

    assert "binance create_order" in str(refused.value)
    [order] = db.tables.crypto_orders.list(limit=10).items
    assert (order.status, order.submission) == ("canceled", "rejected")
    ledger_matches_the_exchange(db, sim)
    db.close()


@pytest.mark.fault("bad input")
def test_an_order_the_ledger_cannot_pay_for_is_neither_stored_nor_sent(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened

    with pytest.raises(tradedb.InsufficientFunds):
        place(db, sim, amount="5")  # 150,000 USDT of 100,000

    assert db.tables.crypto_orders.count() == 0
    assert creates(sim) == 0
    db.close()


@pytest.mark.fault("bad input")
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"client_order_id": "has space"}, "client_order_id"),
        ({"client_order_id": "x" * 37}, "client_order_id"),
        ({"order_type": "stop_loss"}, "order_type"),
        ({"price": None}, "price"),
        ({"amount": "0"}, "amount"),
        ({"symbol": "DOGE/USDT"}, "symbol"),
    ],
)
def test_bad_orders_are_refused_before_anything_is_stored_or_sent(
    opened: tuple[tradedb.TradeDB, SimulatedBinance], change: dict[str, Any], field: str
) -> None:
    db, sim = opened

    with pytest.raises(tradedb.ValidationError) as refused:
        place(db, sim, **change)

    assert refused.value.field == field
    assert db.tables.crypto_orders.count() == 0
    assert creates(sim) == 0
    db.close()


# --- a crash between the write and the answer ---------------------------------------------

CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
import tradedb
from sim_binance import SimulatedBinance
sim = SimulatedBinance(balances={funds!r}, start_ms={start})
answer = sim.handle
def handle(url, method="GET", headers=None, body=None):
    if method == "POST" and "api/v3/order" in url:
        if {applied}:
            answer(url, method, headers, body)
        print("SENT", flush=True)
        time.sleep(60)  # killed here, before the answer comes back
    return answer(url, method, headers, body)
client = sim.client()
client.fetch = handle
with tradedb.open({target!r}) as db:
    db.accounts.place("binance", symbol="BTC/USDT", side="buy", order_type="limit",
                      amount="0.5", price="30000", client=client)
"""


@pytest.mark.fault("kill")
@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("applied", [True, False], ids=["reached", "lost"])
def test_a_kill_between_submit_and_answer_is_settled_by_the_next_sync(
    db_target: str, applied: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tradedb.open(db_target) as db:
        sync(db, SimulatedBinance(balances=FUNDS, start_ms=START), apply=True)
    code = CHILD.format(
        tests=str(Path(__file__).parent),
        funds=FUNDS,
        start=START,
        applied=applied,
        target=db_target,
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "SENT", child.stderr.read() if child.stderr else ""
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    db = tradedb.open(db_target)
    [order] = db.accounts.unknown_submissions("binance")
    assert order.status == "pending"
    # The exchange as the killed process left it: with the order, or without it.
    sim = SimulatedBinance(balances=FUNDS, start_ms=START)
    if applied:
        sim.place("BTC/USDT", "buy", "limit", "0.5", "30000", client_order_id=order.client_order_id)
    else:
        later = account_service.now_epoch_ms() + UNKNOWN_GRACE_MS
        monkeypatch.setattr(account_service, "now_epoch_ms", lambda: later)

    report = sync(db, sim)

    [settled] = report.submissions
    assert settled.outcome == ("acknowledged" if applied else "rejected")
    assert report.adopted_orders == []
    assert db.accounts.unknown_submissions("binance") == []
    assert creates(sim) == 0
    ledger_matches_the_exchange(db, sim)
    db.close()


# --- the command and the MCP server -------------------------------------------------------


def test_cli_places_and_cancels_only_with_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = SimulatedBinance(balances=FUNDS, start_ms=START)
    monkeypatch.setattr(accounts_api, "account_client", lambda exchange: sim.client())
    database = str(tmp_path / "live.sqlite")
    runner = CliRunner()
    opened = runner.invoke(
        app,
        ["sync", "--exchange", "binance", "--symbol", "BTC/USDT", "--apply", "--db", database],
    )
    assert opened.exit_code == 0, opened.output
    order = [
        "order", "place", "--exchange", "binance", "--symbol", "BTC/USDT", "--side", "buy",
        "--amount", "0.5", "--price", "30000", "--client-order-id", "cli-1", "--db", database,
    ]  # fmt: skip

    refused = runner.invoke(app, order)
    placed = runner.invoke(app, [*order, "--live", "--json"])
    again = runner.invoke(app, [*order, "--live"])
    uncanceled = runner.invoke(
        app, ["order", "cancel", "cli-1", "--exchange", "binance", "--db", database]
    )
    canceled = runner.invoke(
        app,
        ["order", "cancel", "cli-1", "--exchange", "binance", "--live", "--db", database, "--json"],
    )

    assert refused.exit_code == 2
    assert "add --live" in refused.stderr
    assert refused.stderr.strip().count("\n") == 0
    assert placed.exit_code == 0, placed.output
    answer = json.loads(placed.stdout)
    assert (answer["outcome"], answer["client_order_id"], answer["status"]) == (
        "acknowledged",
        "cli-1",
        "open",
    )
    assert again.exit_code == 0, again.output
    assert "nothing sent" in again.stdout
    assert uncanceled.exit_code == 2
    assert canceled.exit_code == 0, canceled.output
    assert json.loads(canceled.stdout)["status"] == "canceled"
    assert creates(sim) == 1


def test_cli_exits_1_while_an_order_s_outcome_is_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = SimulatedBinance(balances=FUNDS, start_ms=START)
    monkeypatch.setattr(accounts_api, "account_client", lambda exchange: sim.client())
    database = str(tmp_path / "live.sqlite")
    with tradedb.open(database) as db:
        sync(db, sim, apply=True)
    sim.fail_next("api/v3/order", "timeout")

    result = CliRunner().invoke(
        app,
        [
            "order", "place", "--exchange", "binance", "--symbol", "BTC/USDT", "--side", "sell",
            "--type", "market", "--amount", "0.1", "--live", "--db", database,
        ],
    )  # fmt: skip

    assert result.exit_code == 1, result.output
    assert "tradedb sync" in result.stdout
    listed = CliRunner().invoke(app, ["orders", "--db", database], env={"COLUMNS": "250"})
    assert "pending (submission unknown)" in listed.stdout


@pytest.mark.fault("bad input")
def test_placing_before_the_first_sync_says_how_to_open_the_wallets(tmp_path: Path) -> None:
    sim = SimulatedBinance(balances=FUNDS, start_ms=START)
    with tradedb.open(tmp_path / "live.sqlite") as db:
        with pytest.raises(tradedb.ValidationError, match="apply=True"):
            place(db, sim)

        assert db.tables.crypto_orders.count() == 0
    assert creates(sim) == 0


def test_a_refusal_from_an_exchange_that_has_the_order_already_acknowledges_it(
    opened: tuple[tradedb.TradeDB, SimulatedBinance],
) -> None:
    db, sim = opened
    # The order got through, but the answer says it was refused (as Binance's "Duplicate
    # order sent." does when a first attempt already placed it).
    sim.fail_next(
        "api/v3/order", ccxt.InvalidOrder("binance Duplicate order sent."), after_applying=True
    )

    placed = place(db, sim)

    assert (placed.outcome, placed.sent) == ("acknowledged", True)
    assert "Duplicate order sent" in placed.detail
    [at_exchange] = exchange_orders(sim)
    assert placed.order.order_id == at_exchange["id"]
    assert placed.order.status == "open"
    ledger_matches_the_exchange(db, sim)
    db.close()
