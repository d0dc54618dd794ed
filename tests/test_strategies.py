"""The shipped strategies: their indicators checked against independent computations on
Binance's real ETH/BTC candles, their parameters, their registry, and proof that a
strategy cannot look ahead."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import pytest
from pyarrow import feather

from conftest import DATA
from tradedb.errors import ValidationError
from tradedb.models import Order
from tradedb.services.marketdata.importing import import_path
from tradedb.services.paper import Strategy, plan_session, register, run_session
from tradedb.services.paper.account import Account
from tradedb.services.paper.candles import Candle
from tradedb.services.paper.indicators import WilderRsi
from tradedb.services.paper.orders import Action
from tradedb.services.paper.strategies import (
    STRATEGIES,
    AccountView,
    Context,
    History,
    LongOnlyStrategy,
    RsiRevert,
    SmaCross,
    create,
)
from tradedb.store import Store

SYMBOL = "ETH/BTC"
STEP = 300_000


@pytest.fixture(scope="module")
def candles() -> list[Candle]:
    """Binance's ETH/BTC 5m candles of January 2018, the float noise of the file rounded
    half-even to 8 decimals as `tradedb import` does."""
    frame = feather.read_table(DATA / "ETH_BTC-5m.feather").to_pandas()
    rows = []
    for date, *values in zip(
        *(frame[c] for c in ("date", "open", "high", "low", "close", "volume")), strict=True
    ):
        amounts = [Decimal(repr(float(v))).quantize(Decimal("1e-8")) for v in values]
        rows.append(Candle(SYMBOL, int(date.timestamp() * 1000), *amounts))
    return rows


def signals(strategy: LongOnlyStrategy, candles: Sequence[Candle]) -> list[tuple[int, str]]:
    """Feed candles one by one; the (time, signal) pairs the strategy gives."""
    history = History([SYMBOL])
    view = AccountView(Account.funded(strategy.name, Decimal(1)), [SYMBOL], lambda _s, _m: [])
    found = []
    for candle in candles:
        history.append(candle)
        signal = strategy.signal(Context(candle, candle.timestamp + STEP, history, view))
        if signal is not None:
            found.append((candle.timestamp, signal))
    return found


# --- indicators against independent computations ----------------------------------------


def float_rsi(closes: Sequence[float], period: int = 14) -> list[float | None]:
    """Wilder's RSI, written out in floats from its definition."""
    values: list[float | None] = [None] * len(closes)
    changes = [b - a for a, b in itertools.pairwise(closes)]
    gain = sum(max(c, 0.0) for c in changes[:period]) / period
    loss = sum(max(-c, 0.0) for c in changes[:period]) / period
    values[period] = 100 - 100 / (1 + gain / loss)
    for index in range(period, len(changes)):
        change = changes[index]
        gain = (gain * (period - 1) + max(change, 0.0)) / period
        loss = (loss * (period - 1) + max(-change, 0.0)) / period
        values[index + 1] = 100 - 100 / (1 + gain / loss)
    return values


def test_rsi_matches_wilders_definition_on_real_closes(candles: list[Candle]) -> None:
    closes = [c.close for c in candles[:2000]]
    expected = float_rsi([float(c) for c in closes])
    rsi = WilderRsi(14)
    got = [rsi.push(close) for close in closes]

    assert got[:14] == [None] * 14
    for ours, theirs in zip(got[14:], expected[14:], strict=True):
        assert ours is not None
        assert theirs is not None
        assert float(ours) == pytest.approx(theirs, abs=1e-9)


def test_rsi_is_100_with_only_gains_and_50_when_flat() -> None:
    rising, flat = WilderRsi(3), WilderRsi(3)
    for price in ("1", "2", "3", "4"):
        last = rising.push(Decimal(price))
        still = flat.push(Decimal("1"))
    assert (last, still) == (Decimal(100), Decimal(50))


def test_sma_cross_signals_where_the_averages_cross(candles: list[Candle]) -> None:
    strategy = SmaCross(fast=5, slow=20)
    got = signals(strategy, candles[:3000])

    # Independently: exact means recomputed from each window as fractions.
    closes = [Fraction(c.close) for c in candles[:3000]]
    expected = []
    previous = None
    for index in range(19, len(closes)):
        fast = sum(closes[index - 4 : index + 1]) / 5
        slow = sum(closes[index - 19 : index + 1]) / 20
        now = fast > slow
        if previous is not None and now != previous:
            expected.append((candles[index].timestamp, "buy" if now else "sell"))
        previous = now
    assert got == expected
    assert len(got) > 50


def test_rsi_revert_buys_below_30_and_sells_above_70(candles: list[Candle]) -> None:
    got = signals(RsiRevert(), candles[:3000])

    rsi = float_rsi([float(c.close) for c in candles[:3000]])
    expected = []
    for candle, value in zip(candles[:3000], rsi, strict=True):
        if value is not None and value < 30:
            expected.append((candle.timestamp, "buy"))
        elif value is not None and value > 70:
            expected.append((candle.timestamp, "sell"))
    assert got == expected
    assert {signal for _, signal in got} == {"buy", "sell"}


# --- parameters and the registry -------------------------------------------------------------


def test_parameters_have_defaults_and_are_checked() -> None:
    assert SmaCross().parameters == {
        "fast": Decimal(12),
        "slow": Decimal(48),
        "stop_loss": Decimal(0),
    }
    assert RsiRevert(period="10").parameters["period"] == Decimal(10)
    with pytest.raises(ValidationError, match="must be shorter than slow"):
        SmaCross(fast=50, slow=20)
    with pytest.raises(ValidationError, match="whole number of candles"):
        SmaCross(fast="2.5")
    with pytest.raises(ValidationError, match="must be below sell_above"):
        RsiRevert(buy_below=80)
    with pytest.raises(ValidationError, match=r"has no such parameter \(it has: period"):
        RsiRevert(window=5)
    with pytest.raises(ValidationError, match="stop_loss"):
        SmaCross(stop_loss=1)


def test_strategies_are_found_by_name_and_new_ones_can_be_registered() -> None:
    assert isinstance(create("sma_cross", {"fast": 3, "slow": 9}), SmaCross)
    with pytest.raises(ValidationError, match=r"is not a paper strategy \(known: .*rsi_revert"):
        create("macd")

    @register
    class Idle(Strategy):
        name = "idle_for_test"

        def on_candle(self, context: Context) -> Sequence[Action]:
            return []

    try:
        assert create("idle_for_test").parameters == {}
    finally:
        del STRATEGIES["idle_for_test"]


# --- no look-ahead ---------------------------------------------------------------------------


def import_eth(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "binance"
    folder.mkdir(exist_ok=True)
    shutil.copyfile(DATA / "ETH_BTC-5m.feather", folder / "ETH_BTC-5m.feather")
    import_path(store, folder)


class Spy(Strategy):
    """Checks, at every call, that nothing after the candle just closed is visible."""

    name = "spy"
    defaults: ClassVar[Mapping[str, Decimal]] = {}
    calls: ClassVar[list[int]] = []

    def on_candle(self, context: Context) -> Sequence[Action]:
        seen = context.history.candles(context.candle.symbol)
        assert seen[-1] is context.candle
        assert all(c.timestamp <= context.candle.timestamp for c in seen)
        assert context.now == context.candle.timestamp + STEP
        Spy.calls.append(context.candle.timestamp)
        return []


def test_a_strategy_sees_only_candles_that_have_closed(store: Store, tmp_path: Path) -> None:
    import_eth(store, tmp_path)
    Spy.calls.clear()
    plan = plan_session(
        strategies=[Spy],
        exchange="binance",
        symbols=[SYMBOL],
        since="2018-01-11",
        until="2018-01-12",
    )
    run_session(store, plan)
    assert len(Spy.calls) == 288
    assert Spy.calls == sorted(Spy.calls)


def orders_until(store: Store, until: int) -> list[tuple[object, ...]]:
    items: list[Order] = store.orders.list({}, until=until, limit=10_000).items
    return [
        (o.strategy, o.side, o.order_type, o.amount, o.price, o.timestamp, o.status) for o in items
    ]


def test_decisions_do_not_depend_on_later_candles(store: Store, tmp_path: Path) -> None:
    """The same session cut short on 14 January decides exactly what the full session
    decided up to then: nothing after a candle shapes what a strategy does at it."""
    import_eth(store, tmp_path)
    with Store.open(tmp_path / "short.sqlite") as short:
        import_eth(short, tmp_path)
        for target, end in ((store, "2018-01-18"), (short, "2018-01-14")):
            plan = plan_session(
                strategies=["sma_cross", "rsi_revert"],
                exchange="binance",
                symbols=[SYMBOL],
                since="2018-01-11",
                until=end,
            )
            run_session(target, plan)
        cut = 1_515_888_000_000  # 2018-01-14 00:00 UTC
        # Orders still live at the cut were canceled by the short session's end; compare
        # everything decided before its last candle closed.
        decided = orders_until(short, cut - STEP)
        assert len(decided) > 20
        full = orders_until(store, cut - STEP)
        assert [o[:6] for o in decided] == [o[:6] for o in full]
