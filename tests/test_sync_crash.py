"""A sync killed with SIGKILL at random moments, again and again, records nothing twice and
misses nothing.

The account's history is made the same way in every process (tests/sim_binance.py, from
fixed steps): a child syncs it into the database and is killed 50-600 ms after it starts
working; the next child goes on from what the database holds. After the kills, one sync
runs to the end, and the ledger must hold exactly the account's fills, adopted orders and
transfers, once each, with balances equal to the exchange's and a clean audit.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import tradedb
from faults import FaultFigures
from sim_binance import SimulatedBinance
from tradedb.services.live.account import SyncReport

pytestmark = [
    pytest.mark.fault("kill"),
    pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX"),
]

START = 1_700_000_000_000
KILLS = {"sqlite": 12, "postgresql": 6}
ORDERS = 100
FILLS_PER_ORDER = 8


def account(orders: int = ORDERS) -> tuple[SimulatedBinance, list[str]]:
    """The account after its first `orders` orders, with the same history in every
    process (a later one extends an earlier one); the ids of its fills."""
    sim = SimulatedBinance(
        balances={"USDT": "10000000", "BTC": "100", "ETH": "1000"}, start_ms=START, page_limit=7
    )
    fills = []
    for number in range(orders):
        symbol = ("BTC/USDT", "ETH/USDT")[number % 2]
        price = ("30000", "2000")[number % 2]
        order_id = sim.place(symbol, ("buy", "sell")[number % 3 == 0], "limit", "0.8", price)
        fills += [sim.fill(order_id, "0.1", fee="0.0001") for _ in range(FILLS_PER_ORDER)]
        if number % 4 == 1:
            sim.deposit("USDT", f"{100 + number}.5")
        if number % 5 == 2:
            sim.withdraw("ETH", "1.25", fee="0.01")
        # A second between orders: Binance gives withdrawal times in whole seconds, and
        # lists a window's transfers newest first, so many in one second past a page's
        # limit could not all be asked for (tradedb assumes fewer than 1000 a second).
        sim.now_ms += 1000
    return sim, fills


def transfers(orders: int = ORDERS) -> int:
    """How many deposits and withdrawals the account's first `orders` orders come with."""
    return sum(n % 4 == 1 for n in range(orders)) + sum(n % 5 == 2 for n in range(orders))


def open_ledger(target: str) -> None:
    """The ledger opens at the account's balances before any of its history."""
    opening = SimulatedBinance(
        balances={"USDT": "10000000", "BTC": "100", "ETH": "1000"}, start_ms=START
    )
    with tradedb.open(target) as db:
        db.accounts.sync(
            "binance", symbols=["BTC/USDT"], since=START, apply=True, client=opening.client()
        )


def sync_once(target: str, *, sim: SimulatedBinance | None = None) -> SyncReport:
    """One sync of the account (the whole history, unless `sim` is a part of it)."""
    client = (sim or account()[0]).client()
    with tradedb.open(target) as db:
        return db.accounts.sync(
            "binance", symbols=["BTC/USDT", "ETH/USDT"], since=START, client=client
        )


def killed_sync(target: str, orders: int, delay_s: float) -> None:
    """Sync the account's first `orders` orders, again and again, until SIGKILL comes
    `delay_s` after the first sync began."""
    sim, _ = account(orders)  # made before the clock starts, so that the delay is all sync
    killer = threading.Timer(delay_s, os.kill, (os.getpid(), signal.SIGKILL))
    killer.start()
    while True:
        sync_once(target, sim=sim)


CHILD = """
import sys
sys.path.insert(0, {tests!r})
import test_sync_crash
test_sync_crash.killed_sync({target!r}, {orders}, {delay})
"""


@pytest.mark.slow  # 28 s on both engines: tests/test_sync.py cuts a sync off quickly
def test_a_sync_killed_again_and_again_records_everything_once(
    db_target: str, engine: str, fault_figures: FaultFigures
) -> None:
    open_ledger(db_target)
    generator = random.Random(11)
    killed = mid_work = 0
    for kill in range(KILLS[engine]):
        # Each child finds more of the account's history to record, and dies inside it.
        orders = ORDERS * (kill + 1) // KILLS[engine]
        code = CHILD.format(
            tests=str(Path(__file__).parent),
            target=db_target,
            orders=orders,
            delay=generator.uniform(0.001, 0.12),
        )
        child = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
        )
        assert child.returncode == -signal.SIGKILL, child.stderr
        killed += 1
        if engine == "postgresql":
            time.sleep(0.2)  # the server ends the killed session's transaction
        with tradedb.open(db_target) as db:
            mid_work += db.tables.trades.count() < len(account(orders)[1])
    # Kills must land while there is work, not only in a child that has nothing left to do.
    assert mid_work >= KILLS[engine] // 3, mid_work
    fault_figures.killed(killed)

    final = sync_once(db_target)

    sim, fills = account()
    assert final.in_sync, [
        (d.asset, d.ledger, d.exchange) for d in final.reconciliation.differences
    ]  # type: ignore[union-attr]
    with tradedb.open(db_target) as db:
        recorded = [t.exchange_trade_id for t in db.tables.trades.list(limit=1000).items]
        assert sorted(recorded) == sorted(fills)
        assert db.tables.crypto_orders.count() == ORDERS
        references = [
            m.reference
            for m in db.tables.wallet_movements.list(
                {"kind": ["deposit", "withdrawal"]}, limit=1000
            ).items
        ]
        assert len(references) == len(set(references)) == transfers()
        for wallet in db.ledger.wallets(exchange="binance"):
            assert (wallet.available_balance, wallet.locked_balance) == sim.balance(wallet.asset)
        assert db.ledger.audit() == []
