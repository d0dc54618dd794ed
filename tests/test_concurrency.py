"""Several writers on one database at once: processes, and threads sharing one Ledger.

Each writer trades its own strategy with its own order ids, on the same exchange, the same
symbols and therefore the same wallets (USDT, BTC, ETH), so every fill of every writer
updates wallet rows the others update too. Afterwards:

- every fill a writer was acknowledged is in `trades` exactly once, with its values, and
  nothing else is;
- no writer saw an exception (in particular no "database is locked");
- every wallet's total, available and locked balance is exactly what the deposits and the
  acknowledged fills imply, computed here from the fills, not read back from the ledger
  (a lost update would show as a difference);
- each strategy's open position holds exactly the net amount its fills moved;
- `audit(store) == []`.
"""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import random
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest

import tradedb
from faults import FaultFigures
from tradedb.services.ledger import Ledger
from tradedb.services.ledger.audit import audit
from tradedb.store import Store

pytestmark = pytest.mark.fault("load")

EXCHANGE = "binance"
SYMBOLS = ("BTC/USDT", "ETH/USDT")
REFERENCE = {"BTC/USDT": Decimal("300.00"), "ETH/USDT": Decimal("20.00")}
FUNDS = {"USDT": Decimal(10_000_000), "BTC": Decimal(10_000), "ETH": Decimal(100_000)}
TS = 1_700_000_000_000
LOT = Decimal("0.0001")
CENT = Decimal("0.01")
UNIT = Decimal("0.00000001")
FILLS_PER_ORDER = 10
WORKERS = 4
FILLS_PER_PROCESS = 150
FILLS_PER_THREAD = 100
RESULT_TIMEOUT_S = 240


@dataclass
class Outcome:
    """What one writer did and was told."""

    index: int
    # (exchange_trade_id, order_id, symbol, side, amount, price, fee, fee_currency)
    fills: list[tuple[str, str, str, str, Decimal, Decimal, Decimal, str]] = field(
        default_factory=list
    )
    redelivered: int = 0
    canceled: int = 0
    errors: list[str] = field(default_factory=list)
    # Wall-clock time (time.time()) of the first operation and after the last.
    started: float = 0.0
    ended: float = 0.0


def fill_terms(
    rng: random.Random, symbol: str, side: str, limit: Decimal | None, amount: Decimal
) -> tuple[Decimal, Decimal, str]:
    """A fill's price (a limit buy fills at or below its price, a sell at or above) and
    its fee: 0.1 %, in the quote currency or now and then in the base currency."""
    if limit is None:
        price = REFERENCE[symbol] + rng.randint(-50, 50) * CENT
    elif side == "buy":
        price = limit - rng.randint(0, 20) * CENT
    else:
        price = limit + rng.randint(0, 20) * CENT
    base, quote = symbol.split("/")
    if rng.random() < 0.8:
        return price, (amount * price * Decimal("0.001")).quantize(UNIT, ROUND_DOWN), quote
    return price, (amount * Decimal("0.001")).quantize(UNIT, ROUND_DOWN), base


def trade(ledger: Ledger, index: int, fills: int, pause: float) -> Outcome:
    """Writer `index`: orders of its own strategy, each filled in up to 10 parts; now and
    then a fill is delivered twice, and now and then an order is canceled part-filled.

    `pause`: the most it waits after a fill (uniformly at random), as a bot waits for the
    exchange's next message; 0 writes back to back.
    """
    rng = random.Random(index)
    outcome = Outcome(index, started=time.time())
    strategy = f"writer-{index}"
    serial = 0
    clock = TS + index * 10_000_000

    def tick() -> int:
        nonlocal clock
        clock += 1
        return clock

    try:
        while len(outcome.fills) < fills:
            serial += 1
            order_id = f"w{index}-o{serial}"
            symbol = rng.choice(SYMBOLS)
            side = rng.choice(("buy", "sell"))
            market = rng.random() < 0.2
            price = None if market else REFERENCE[symbol] + rng.randint(-50, 50) * CENT
            part = rng.randint(100, 3000) * LOT
            ledger.place_order(
                exchange=EXCHANGE,
                order_id=order_id,
                symbol=symbol,
                side=side,
                order_type="market" if market else "limit",
                amount=part * FILLS_PER_ORDER,
                price=price,
                strategy=strategy,
                timestamp=tick(),
            )
            cancel_after = rng.randint(2, 8) if rng.random() < 0.15 else None
            for number in range(FILLS_PER_ORDER):
                if number == cancel_after or len(outcome.fills) >= fills:
                    ledger.cancel_order(EXCHANGE, order_id, timestamp=tick())
                    outcome.canceled += 1
                    break
                fill_price, fee, fee_currency = fill_terms(rng, symbol, side, price, part)
                fill = {
                    "exchange": EXCHANGE,
                    "order_id": order_id,
                    "exchange_trade_id": f"w{index}-f{serial}-{number}",
                    "amount": part,
                    "price": fill_price,
                    "fee": fee,
                    "fee_currency": fee_currency,
                    "timestamp": tick(),
                }
                result = ledger.record_fill(**fill)
                if result.duplicate:
                    raise AssertionError(f"a new fill came back as a duplicate: {fill}")
                outcome.fills.append(
                    (
                        fill["exchange_trade_id"],
                        order_id,
                        symbol,
                        side,
                        part,
                        fill_price,
                        fee,
                        fee_currency,
                    )
                )
                if rng.random() < 0.1:
                    again = ledger.record_fill(**fill)
                    if not again.duplicate:
                        raise AssertionError(f"a re-delivered fill was recorded again: {fill}")
                    outcome.redelivered += 1
                if pause:
                    time.sleep(rng.uniform(0, pause))
    except Exception:
        outcome.errors.append(traceback.format_exc())
    outcome.ended = time.time()
    return outcome


def process_writer(
    path: str,
    index: int,
    *,
    fills: int,
    pause: float,
    start: Any,
    results: Any,
) -> None:
    """One writer process: its own Store and Ledger, started with the others at once."""
    outcome = Outcome(index)
    try:
        with Store.open(path) as store:
            start.wait(timeout=120)
            outcome = trade(Ledger(store), index, fills, pause)
    except Exception:
        outcome.errors.append(traceback.format_exc())
    results.put(outcome)


def fund(path: str | Path) -> None:
    with Store.open(path) as store:
        ledger = Ledger(store)
        for asset, amount in FUNDS.items():
            ledger.deposit(exchange=EXCHANGE, asset=asset, amount=amount, timestamp=TS)


def expected_wallets(outcomes: list[Outcome]) -> dict[str, Decimal]:
    """Wallet totals implied by the deposits and the acknowledged fills alone."""
    totals: defaultdict[str, Decimal] = defaultdict(Decimal, FUNDS)
    for outcome in outcomes:
        for _id, _order, symbol, side, amount, price, fee, fee_currency in outcome.fills:
            base, quote = symbol.split("/")
            value = amount * price  # 4 + 2 decimals: exact at the ledger's 8
            sign = 1 if side == "buy" else -1
            totals[base] += sign * amount
            totals[quote] -= sign * value
            totals[fee_currency] -= fee
    return dict(totals)


def expected_positions(outcomes: list[Outcome]) -> dict[tuple[str, str], Decimal]:
    """Per (strategy, symbol): the signed amount held, long positive (a base fee moves it:
    a buy receives amount - fee, a sell gives up amount + fee)."""
    held: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for outcome in outcomes:
        for _id, _order, symbol, side, amount, _price, fee, fee_currency in outcome.fills:
            moved = amount
            if fee_currency == symbol.split("/")[0]:
                moved = amount - fee if side == "buy" else amount + fee
            held[f"writer-{outcome.index}", symbol] += moved if side == "buy" else -moved
    return dict(held)


def check(path: str | Path, outcomes: list[Outcome], fills_each: int, *, interleaved: bool) -> None:
    errors = [error for outcome in outcomes for error in outcome.errors]
    assert errors == [], "\n".join(errors)
    assert sorted(outcome.index for outcome in outcomes) == list(range(WORKERS))
    # All writers were at work at one same moment.
    assert max(o.started for o in outcomes) < min(o.ended for o in outcomes)
    for outcome in outcomes:
        assert len(outcome.fills) == fills_each
    acknowledged = {fill[0]: fill for outcome in outcomes for fill in outcome.fills}
    assert len(acknowledged) == WORKERS * fills_each

    with Store.open(path) as store:
        rows = store.db.connection.execute(
            "SELECT exchange_trade_id FROM trades WHERE exchange = ? ORDER BY id", (EXCHANGE,)
        ).fetchall()
        if interleaved:
            # With pauses between fills the writers' commits alternate, so that a lost
            # update (one writer's wallet change overwriting another's) would show.
            writers = [row[0].split("-")[0] for row in rows]
            switches = sum(1 for a, b in itertools.pairwise(writers) if a != b)
            assert switches >= len(rows) // 4
        counts = Counter(row[0] for row in rows)
        assert [key for key, seen in counts.items() if seen != 1] == []
        assert set(counts) == set(acknowledged)
        for trade_row in store.trades.list({"exchange": EXCHANGE}, limit=len(rows) + 1).items:
            _id, order_id, symbol, side, amount, price, fee, fee_currency = acknowledged[
                trade_row.exchange_trade_id or ""
            ]
            assert (trade_row.order_id, trade_row.symbol, trade_row.side) == (
                order_id,
                symbol,
                side,
            )
            assert (trade_row.amount, trade_row.price, trade_row.fee) == (amount, price, fee)
            assert trade_row.fee_currency == fee_currency
            assert trade_row.total_value == amount * price

        wallets = {
            wallet.asset: wallet
            for wallet in store.wallets.list({"exchange": EXCHANGE}, limit=100).items
        }
        expected = expected_wallets(outcomes)
        assert set(wallets) == set(expected)
        for asset, total in expected.items():
            wallet = wallets[asset]
            # Every order ended (filled or canceled), so nothing may stay locked.
            assert (asset, wallet.locked_balance) == (asset, 0)
            assert (asset, wallet.available_balance) == (asset, total)
            assert (asset, wallet.total_balance) == (asset, total)

        held: dict[tuple[str, str], Decimal] = {}
        for position in store.positions.list({"status": "open"}, limit=1000).items:
            sign = 1 if position.side == "long" else -1
            held[position.strategy or "", position.symbol] = sign * position.amount
        implied = {key: amount for key, amount in expected_positions(outcomes).items() if amount}
        assert held == implied

        live = store.orders.count({"status": ["pending", "open"]})
        assert live == 0
        assert audit(store) == []


# Back to back, one writer tends to keep the write lock for a burst of fills while the
# others wait in SQLite's busy handler (which polls; it is not a queue): the most
# contention. With short pauses, as a bot waiting for the exchange, commits alternate.
PACES = [pytest.param(0.0, id="back-to-back"), pytest.param(0.002, id="paced")]


@pytest.mark.parametrize("pause", PACES)
def test_four_processes_write_one_database_at_once(
    db_target: str, pause: float, fault_figures: FaultFigures
) -> None:
    fund(db_target)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    results = context.Queue()
    workers = [
        context.Process(
            target=process_writer,
            args=(db_target, index),
            kwargs={"fills": FILLS_PER_PROCESS, "pause": pause, "start": start, "results": results},
            name=f"writer-{index}",
        )
        for index in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    outcomes: list[Outcome] = []
    try:
        # Read before joining: a process does not end while its queue still holds data.
        for _ in workers:
            outcomes.append(results.get(timeout=RESULT_TIMEOUT_S))
    except queue.Empty:
        pass
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
                worker.join()
    assert [worker.exitcode for worker in workers] == [0] * WORKERS
    assert len(outcomes) == WORKERS, "a writer sent no result"
    check(db_target, outcomes, FILLS_PER_PROCESS, interleaved=bool(pause))
    fault_figures.writers(at_once=WORKERS)


@pytest.mark.parametrize("pause", PACES)
def test_four_threads_share_one_store_and_ledger(db_target: str, pause: float) -> None:
    fund(db_target)
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    start = threading.Barrier(WORKERS)
    with Store.open(db_target) as store:
        ledger = Ledger(store)

        def run(index: int) -> None:
            start.wait(timeout=60)
            outcome = trade(ledger, index, FILLS_PER_THREAD, pause)
            with lock:
                outcomes.append(outcome)

        threads = [
            threading.Thread(target=run, args=(index,), name=f"writer-{index}")
            for index in range(WORKERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=RESULT_TIMEOUT_S)
        assert not any(thread.is_alive() for thread in threads)
    check(db_target, outcomes, FILLS_PER_THREAD, interleaved=bool(pause))


# --- taking turns ----------------------------------------------------------------------------

HOG_SECONDS = 3.0
VICTIM_FILLS = 4
# Without the writer gate the first of these waited for the whole of the hog's stream
# (6.5 s behind 8 s of back-to-back fills); with it, a few milliseconds.
FAIR_WAIT_S = 1.5


def hog(path: str, seconds: float) -> int:
    with Store.open(path) as store:
        ledger = Ledger(store)
        fills = 0
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            fills += 1
            ledger.record_fill(
                exchange=EXCHANGE,
                order_id="hog-1",
                exchange_trade_id=f"hog-{fills}",
                amount="1",
                price="10",
                timestamp=TS + fills,
            )
        return fills


def test_a_writer_committing_back_to_back_does_not_starve_another(db_target: str) -> None:
    with Store.open(db_target) as store:
        ledger = Ledger(store)
        ledger.deposit(exchange=EXCHANGE, asset="USDT", amount="100000000", timestamp=TS)
        for order_id in ("hog-1", "victim-1"):
            ledger.place_order(
                exchange=EXCHANGE,
                order_id=order_id,
                symbol="BTC/USDT",
                side="buy",
                order_type="limit",
                amount="1000000",
                price="10",
                strategy=order_id,
                timestamp=TS,
            )
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        hogging = pool.apply_async(hog, (db_target, HOG_SECONDS))
        waits = []
        with Store.open(db_target) as store:
            ledger = Ledger(store)
            deadline = time.monotonic() + RESULT_TIMEOUT_S
            # Wait until the hog's stream of commits is in full flow.
            while store.trades.count({"order_id": "hog-1"}) < 50:
                assert time.monotonic() < deadline, "the hog never started writing"
                time.sleep(0.01)
            for number in range(VICTIM_FILLS):
                started = time.monotonic()
                ledger.record_fill(
                    exchange=EXCHANGE,
                    order_id="victim-1",
                    exchange_trade_id=f"victim-{number}",
                    amount="1",
                    price="10",
                    timestamp=TS + number,
                )
                waits.append(time.monotonic() - started)
                time.sleep(0.2)
        hog_fills = hogging.get(timeout=RESULT_TIMEOUT_S)
    assert hog_fills > 100, "the hog must really have been writing all along"
    assert max(waits) < FAIR_WAIT_S, waits
    with Store.open(db_target) as store:
        assert audit(store) == []


# --- the same fills delivered by several processes at once ------------------------------------

DELIVERERS = 3
SHARED_FILLS = 60


def deliver_the_same_fills(path: str, start: Any, results: Any) -> None:
    """One of several processes that each receive the same stream of fills (a bot and its
    standby both listening to the exchange): every fill must be booked once, whoever
    delivers it first, and the others must be told it is a duplicate."""
    duplicates, errors = 0, []
    try:
        with Store.open(path) as store:
            ledger = Ledger(store)
            start.wait(timeout=120)
            for number in range(SHARED_FILLS):
                result = ledger.record_fill(
                    exchange=EXCHANGE,
                    order_id="shared-1",
                    exchange_trade_id=f"shared-{number}",
                    amount="0.01",
                    price="300",
                    fee="0.003",
                    timestamp=TS + number,
                )
                duplicates += result.duplicate
    except Exception:
        errors.append(traceback.format_exc())
    results.put((duplicates, errors))


def test_a_fill_delivered_by_several_processes_at_once_is_booked_once(
    db_target: str, fault_figures: FaultFigures
) -> None:
    with Store.open(db_target) as store:
        ledger = Ledger(store)
        ledger.deposit(exchange=EXCHANGE, asset="USDT", amount="100000", timestamp=TS)
        ledger.place_order(
            exchange=EXCHANGE,
            order_id="shared-1",
            symbol="BTC/USDT",
            side="buy",
            order_type="limit",
            amount="1",
            price="300",
            timestamp=TS,
        )
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(DELIVERERS)
    results = context.Queue()
    workers = [
        context.Process(target=deliver_the_same_fills, args=(db_target, start, results))
        for _ in range(DELIVERERS)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=RESULT_TIMEOUT_S) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert [errors for _, errors in outcomes] == [[]] * DELIVERERS
    # Each fill was new to exactly one deliverer.
    assert sum(duplicates for duplicates, _ in outcomes) == (DELIVERERS - 1) * SHARED_FILLS
    with Store.open(db_target) as store:
        assert store.trades.count({"order_id": "shared-1"}) == SHARED_FILLS
        order = store.ledger.order(EXCHANGE, "shared-1")
        assert order is not None
        assert order.filled_amount == Decimal("0.6")
        usdt = store.ledger.balance(EXCHANGE, "USDT")
        assert usdt is not None
        # 60 fills of 0.01 at 300 with a 0.003 fee each; 0.4 still reserved at 300 plus fees.
        assert usdt.available + usdt.locked == Decimal(100_000) - Decimal(60) * Decimal("3.003")
        assert audit(store) == []
    fault_figures.writers(at_once=DELIVERERS)


CANDLE_WRITERS = 2
CANDLE_ROUNDS = 40
CANDLES_PER_BATCH = 200
CANDLE_START = 1_699_999_980_000  # a minute boundary


def _candle_round(round_number: int) -> list[list[object]]:
    rows: list[list[object]] = []
    for index in range(CANDLES_PER_BATCH):
        price = str(100 + round_number + index)
        rows.append([CANDLE_START + index * 60_000, price, price, price, price, "1"])
    return rows


def write_overlapping_candles(
    target: str, backwards: bool, start: Any, results: multiprocessing.Queue[Any]
) -> None:
    errors: list[str] = []
    try:
        with tradedb.open(target) as db:
            start.wait(timeout=120)
            for round_number in range(CANDLE_ROUNDS):
                rows = _candle_round(round_number)
                if backwards:
                    rows.reverse()
                db.market.write_candles(rows, exchange=EXCHANGE, symbol="BTC/USDT", timeframe="1m")
    except Exception:
        errors.append(traceback.format_exc())
    results.put(errors)


def test_candle_writers_of_the_same_rows_in_opposite_orders_never_see_an_error(
    db_target: str,
) -> None:
    # On PostgreSQL two such upserts deadlock (each holds a key the other waits for); the
    # caller must not see it: the loser is run again.
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(CANDLE_WRITERS)
    results = context.Queue()
    workers = [
        context.Process(
            target=write_overlapping_candles, args=(db_target, index % 2 == 1, start, results)
        )
        for index in range(CANDLE_WRITERS)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=RESULT_TIMEOUT_S) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert outcomes == [[]] * CANDLE_WRITERS
    with tradedb.open(db_target) as db:
        stored = db.tables.market_data.list({"symbol": "BTC/USDT"}, limit=CANDLES_PER_BATCH + 1)
    # Both writers wrote the same last round: whichever committed last, it is that round.
    expected = _candle_round(CANDLE_ROUNDS - 1)
    assert [(row.timestamp, row.close_price) for row in stored.items] == [
        (row[0], Decimal(str(row[4]))) for row in expected
    ]
