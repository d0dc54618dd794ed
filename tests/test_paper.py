"""Paper trading: the simulated exchange's fill rules and fees, strategies' separate
accounts, allocation, the ledger it records into, and sessions on real Binance candles.

Fill rules are tested with scripted strategies (they place the orders a test names at the
candles it names) over a handful of made-up hourly candles; the rest runs the shipped
strategies over Binance's real ETH/BTC and LTC/BTC 5m candles of January 2018.
"""

from __future__ import annotations

import itertools
import json
import shutil
import statistics
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pyarrow import feather
from typer.testing import CliRunner

from conftest import DATA
from tradedb.cli.app import app
from tradedb.errors import ValidationError
from tradedb.models import Trade
from tradedb.services.analytics.references import set_reference_price
from tradedb.services.ledger.audit import audit
from tradedb.services.marketdata.importing import import_path
from tradedb.services.paper import SessionResult, Strategy, plan_session, run_session
from tradedb.services.paper.allocation import (
    equal_weights,
    inverse_volatility_weights,
    parse_allocation,
)
from tradedb.services.paper.orders import Action, CancelRequest, OrderRequest
from tradedb.services.paper.strategies import Context
from tradedb.store import Store

HOUR = 3_600_000
USER_ERROR = 2


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


T0 = ms("2024-03-01T00:00:00")
QUIET = ("100", "101", "99", "100")


# --- scripted strategies over made-up candles ---------------------------------------------

Script = Mapping[int, Callable[[Context], Sequence[Action]]]


def scripted(name: str, script: Script, symbol: str = "ETH/USD") -> type[Strategy]:
    """A strategy that, at the close of the `symbol` candle numbered i (from 0), returns
    script[i](context)."""

    class Scripted(Strategy):
        defaults: ClassVar[Mapping[str, Decimal]] = {}

        def on_candle(self, context: Context) -> Sequence[Action]:
            if context.candle.symbol != symbol:
                return []
            index = len(context.history.candles(symbol)) - 1
            act = script.get(index)
            return act(context) if act else []

    Scripted.name = name
    return Scripted


def at(*actions: Action) -> Callable[[Context], Sequence[Action]]:
    return lambda _context: actions


def write(store: Store, candles: Sequence[tuple[str, str, str, str]], **where: str) -> None:
    """Hourly candles (open, high, low, close) from T0 on."""
    store.write_candles(
        [[T0 + i * HOUR, *prices, "10"] for i, prices in enumerate(candles)],
        exchange=where.get("exchange", "kraken"),
        symbol=where.get("symbol", "ETH/USD"),
        timeframe="1h",
    )


def session(
    store: Store,
    strategies: Sequence[str | type[Strategy]],
    *,
    exchange: str = "kraken",
    symbols: Sequence[str] = ("ETH/USD",),
    hours: int = 5,
    **options: Any,
) -> SessionResult:
    plan = plan_session(
        strategies=strategies,
        exchange=exchange,
        symbols=symbols,
        since=T0,
        until=T0 + hours * HOUR,
        timeframe="1h",
        capital=options.pop("capital", "1000"),
        **options,
    )
    return run_session(store, plan)


def trades(store: Store, strategy: str | None = None) -> list[Trade]:
    where = {} if strategy is None else {"strategy": strategy}
    return store.trades.list(where, limit=10_000).items


def buy(amount: str = "1", order_type: str = "market", price: str | None = None) -> OrderRequest:
    return OrderRequest(
        "ETH/USD",
        "buy",
        order_type,  # type: ignore[arg-type]
        amount=Decimal(amount),
        price=None if price is None else Decimal(price),
    )


def sell(amount: str = "1", order_type: str = "market", price: str | None = None) -> OrderRequest:
    return OrderRequest(
        "ETH/USD",
        "sell",
        order_type,  # type: ignore[arg-type]
        amount=Decimal(amount),
        price=None if price is None else Decimal(price),
    )


def test_a_market_order_fills_at_the_next_candles_open(store: Store) -> None:
    write(store, [QUIET, ("102", "103", "101", "102"), QUIET], exchange="binance")
    strategy = scripted("mkt", {0: at(buy())})

    result = session(store, [strategy], exchange="binance", hours=3)

    (fill,) = trades(store)
    # Decided at the close of candle 0, which is the open of candle 1: filled there.
    assert (fill.price, fill.timestamp, fill.amount) == (Decimal(102), T0 + HOUR, Decimal(1))
    assert fill.fee == Decimal("0.102")  # Binance's 0.1 % taker fee, in USD
    order = store.orders.list({"order_id": fill.order_id}).items[0]
    assert (order.order_type, order.status, order.timestamp) == ("market", "filled", T0 + HOUR)
    assert result.strategies[0].fills == 1
    assert audit(store) == []


# side, type, price, the candle that reaches it, the fill price, filled at its open?
TRIGGERS = [
    ("buy", "limit", "95", ("100", "101", "94", "97"), "95", False),
    ("buy", "limit", "95", ("93", "96", "92", "94"), "93", True),
    ("sell", "limit", "105", ("100", "106", "99", "104"), "105", False),
    ("sell", "limit", "105", ("107", "108", "104", "106"), "107", True),
    ("sell", "stop_loss", "95", ("100", "101", "94", "96"), "95", False),
    ("sell", "stop_loss", "95", ("93", "94", "92", "93"), "93", True),
    ("sell", "take_profit", "105", ("100", "106", "99", "104"), "105", False),
    ("sell", "take_profit", "105", ("107", "108", "104", "106"), "107", True),
    ("buy", "stop_loss", "105", ("100", "106", "99", "104"), "105", False),
    ("buy", "stop_loss", "105", ("107", "108", "106", "107"), "107", True),
    ("buy", "take_profit", "95", ("100", "101", "94", "97"), "95", False),
    ("buy", "take_profit", "95", ("93", "96", "92", "94"), "93", True),
]


@pytest.mark.parametrize(
    "case", TRIGGERS, ids=[f"{c[0]}-{c[1]}-{'gap' if c[5] else 'touch'}" for c in TRIGGERS]
)
def test_resting_orders_fill_when_the_price_reaches_them(
    store: Store, case: tuple[str, str, str, tuple[str, str, str, str], str, bool]
) -> None:
    side, order_type, price, reaching, filled, gap = case
    # Candle 1 fills a market buy (coins to sell); the order under test rests from candle
    # 2, which stays between 99 and 101, and candle 3 reaches it.
    write(store, [QUIET, QUIET, QUIET, reaching, QUIET])
    request = OrderRequest(
        "ETH/USD",
        side,  # type: ignore[arg-type]
        order_type,  # type: ignore[arg-type]
        amount=Decimal("0.5"),
        price=Decimal(price),
    )
    strategy = scripted("resting", {0: at(buy()), 1: at(request)})

    session(store, [strategy], exchange="kraken")

    tested = [t for t in trades(store) if t.timestamp >= T0 + 2 * HOUR]
    assert len(tested) == 1, tested
    fill = tested[0]
    candle_time = T0 + 3 * HOUR
    assert fill.price == Decimal(filled)
    assert fill.timestamp == (candle_time if gap else candle_time + HOUR - 1)
    # Kraken: limit orders pay the 0.16 % maker fee; stops and take-profits become market
    # orders when triggered and pay the 0.26 % taker fee.
    rate = Decimal("0.0016") if order_type == "limit" else Decimal("0.0026")
    assert fill.fee == (fill.total_value * rate).quantize(Decimal("1e-8"))
    order = store.orders.list({"order_id": fill.order_id}).items[0]
    assert (order.order_type, order.status, order.timestamp) == (
        order_type,
        "filled",
        T0 + 2 * HOUR,
    )
    assert audit(store) == []


def test_a_resting_order_nothing_reaches_is_canceled_when_the_session_ends(store: Store) -> None:
    write(store, [QUIET, QUIET, QUIET])
    strategy = scripted("patient", {0: at(buy("2", "limit", "90"))})

    result = session(store, [strategy], hours=3)

    (order,) = store.orders.list({}).items
    assert (order.status, order.canceled_at) == ("canceled", T0 + 3 * HOUR)
    assert trades(store) == []
    wallet = store.wallets.list({"exchange": "kraken", "asset": "USD"}).items[0]
    assert (wallet.locked_balance, wallet.available_balance) == (0, Decimal(1000))
    assert (result.strategies[0].orders, result.strategies[0].canceled) == (1, 1)
    assert audit(store) == []


def test_a_strategy_cancels_its_order_and_gets_its_funds_back(store: Store) -> None:
    write(store, [QUIET, QUIET, QUIET, QUIET])

    def cancel_all(context: Context) -> list[Action]:
        return [CancelRequest(o.order_id) for o in context.account.live_orders("ETH/USD")]

    strategy = scripted("fickle", {0: at(buy("2", "limit", "90")), 1: cancel_all})

    result = session(store, [strategy], hours=4)

    (order,) = store.orders.list({}).items
    assert (order.status, order.canceled_at) == ("canceled", T0 + 2 * HOUR)
    assert result.strategies[0].equity == Decimal(1000)
    assert audit(store) == []


@pytest.mark.parametrize(
    ("exchange", "options", "rate"),
    [
        ("kraken", {}, "0.0026"),
        ("binance", {}, "0.001"),
        ("kraken", {"fee_rate": "0.0005"}, "0.0005"),
        ("binance", {"fee_rate": "0"}, "0"),
    ],
)
def test_fees_default_to_the_exchanges_taker_rate_and_can_be_set(
    store: Store, exchange: str, options: dict[str, str], rate: str
) -> None:
    write(store, [QUIET, ("101.5", "102", "101", "101.5"), QUIET], exchange=exchange)
    strategy = scripted("feepayer", {0: at(buy("3")), 1: at(sell("3"))})

    result = session(store, [strategy], exchange=exchange, hours=3, **options)

    bought, sold = trades(store)
    assert bought.fee == (Decimal("304.5") * Decimal(rate)).quantize(Decimal("1e-8"))
    assert sold.fee == (Decimal("300") * Decimal(rate)).quantize(Decimal("1e-8"))
    assert bought.fee_currency in ("USD", None)
    summary = result.strategies[0]
    assert summary.fees == bought.fee + sold.fee
    # Bought 3 at 101.5, sold 3 at 100: the round trip's loss includes both fees.
    assert summary.realized_pnl == sold.profit_loss == Decimal("-4.5") - summary.fees
    assert summary.equity == Decimal(1000) - Decimal("4.5") - summary.fees


def test_a_maker_rate_can_differ_from_the_taker_rate(store: Store) -> None:
    write(store, [QUIET, ("100", "101", "94", "97"), ("98", "99", "97", "98")])
    strategy = scripted("maker", {0: at(buy("1", "limit", "95")), 1: at(sell("1"))})

    session(store, [strategy], hours=3, fee_rate="0.002", maker_fee_rate="0.001")

    limit_fill, market_fill = trades(store)
    assert limit_fill.fee == Decimal("0.095")  # 95 x 0.1 % (maker)
    assert market_fill.fee == Decimal("0.196")  # 98 x 0.2 % (taker)


@pytest.mark.fault("bad input")
def test_orders_a_strategy_cannot_cover_are_rejected_before_the_ledger(store: Store) -> None:
    write(store, [QUIET, QUIET, QUIET])
    strategy = scripted(
        "overreach",
        {0: at(sell("1"), buy("20", "limit", "99")), 1: at(buy("50"))},
    )

    result = session(store, [strategy], hours=3, capital="1000")

    # No coins to sell; 20 x 99 is more than its 1000 USD; a market buy of 50 at 100
    # cannot be paid when it fills.
    assert result.strategies[0].rejected == 3
    assert store.orders.count() == 0
    assert trades(store) == []
    assert audit(store) == []


def test_a_buy_stop_gapping_past_what_the_strategy_can_pay_is_canceled(store: Store) -> None:
    # The stop buy reserves 9 x 105 (+ fee); the candle opens at 120, where 9 coins cost
    # more than the whole 1000 USD.
    write(store, [QUIET, QUIET, ("120", "121", "119", "120")])
    strategy = scripted("stopbuy", {0: at(buy("9", "stop_loss", "105"))})

    result = session(store, [strategy], hours=3, capital="1000")

    (order,) = store.orders.list({}).items
    assert order.status == "canceled"
    assert trades(store) == []
    assert result.strategies[0].equity == Decimal(1000)
    assert audit(store) == []


def test_a_failed_session_keeps_whole_instants_and_a_rerun_completes_it(store: Store) -> None:
    write(store, [QUIET, QUIET, ("103", "104", "102", "103"), QUIET, QUIET])
    crashing = {"now": True}

    def crash(_context: Context) -> list[Action]:
        if crashing["now"]:
            raise RuntimeError("strategy bug")
        return []

    # Bought at candle 1's open; the sell fills at candle 2's open, and at that same
    # instant the strategy crashes.
    strategy = scripted("crashy", {0: at(buy("2")), 1: at(sell("2")), 2: crash})

    with pytest.raises(RuntimeError, match="strategy bug"):
        session(store, [strategy])

    # The instant of the crash is not recorded at all: its sell fill went with it.
    assert [(t.side, t.price) for t in trades(store)] == [("buy", Decimal(100))]
    assert audit(store) == []

    crashing["now"] = False
    result = session(store, [strategy])

    assert result.replayed
    assert [(t.side, t.price) for t in trades(store)] == [
        ("buy", Decimal(100)),
        ("sell", Decimal(103)),
    ]
    assert store.orders.count() == 2
    assert audit(store) == []


# --- strategies side by side ----------------------------------------------------------------


def test_two_strategies_on_one_market_keep_their_own_positions_and_capital(store: Store) -> None:
    write(store, [QUIET, QUIET, ("104", "105", "103", "104"), QUIET, QUIET])
    first = scripted("first", {0: at(buy("4"))})
    # second buys 1 coin, then tries to sell 3: the wallet holds 5, but 4 are first's.
    second = scripted("second", {0: at(buy("1")), 1: at(sell("3"), sell("1"))})

    result = session(store, [first, second], allocation="fixed:0.5,0.3", capital="1000")

    positions = {p.strategy: p for p in store.positions.list({}).items}
    assert positions["first"].amount == Decimal(4)
    assert positions["first"].status == "open"
    assert (positions["second"].status, positions["second"].amount) == ("closed", 0)
    by_name = {s.strategy: s for s in result.strategies}
    assert (by_name["first"].capital, by_name["second"].capital) == (Decimal(500), Decimal(300))
    assert by_name["second"].rejected == 1
    # second bought 1 at 100 and sold it at 104 (Kraken taker fees both ways).
    assert by_name["second"].realized_pnl == Decimal(4) - Decimal("0.26") - Decimal("0.2704")
    # 200 USD of the deposit were allocated to no one and stay free.
    wallet = store.wallets.list({"exchange": "kraken", "asset": "ETH"}).items[0]
    assert wallet.total_balance == Decimal(4)
    assert audit(store) == []


def test_a_strategy_spends_only_its_own_capital(store: Store) -> None:
    write(store, [QUIET, QUIET, QUIET])
    greedy = scripted("greedy", {0: at(buy("7"))})  # 7 x 100 > its 600
    modest = scripted("modest", {0: at(buy("3"))})

    result = session(store, [greedy, modest], allocation="fixed:0.6,0.4", hours=3)

    assert [t.strategy for t in trades(store)] == ["modest"]
    assert [s.rejected for s in result.strategies] == [1, 0]


# --- allocation -------------------------------------------------------------------------------


def test_fixed_weights_may_leave_capital_unallocated_but_never_exceed_it() -> None:
    assert parse_allocation("fixed:0.6,0.4", ["a", "b"]).weights == (Decimal("0.6"), Decimal("0.4"))
    assert parse_allocation("fixed:0.25,0.25", ["a", "b"]).weights == (
        Decimal("0.25"),
        Decimal("0.25"),
    )
    with pytest.raises(ValidationError, match=r"sum to 1\.1 \(110\.0 %\), above 100 %"):
        parse_allocation("fixed:0.6,0.5", ["a", "b"])
    with pytest.raises(ValidationError, match="2 weights for 3 strategies"):
        parse_allocation("fixed:0.5,0.5", ["a", "b", "c"])
    with pytest.raises(ValidationError, match="must be equal, fixed"):
        parse_allocation("kelly", ["a"])


def test_derived_weights_are_exact_and_sum_to_one() -> None:
    assert equal_weights(["a", "b", "c"]) == {
        "a": Decimal("0.33333334"),
        "b": Decimal("0.33333333"),
        "c": Decimal("0.33333333"),
    }
    # 1/sigma of 1, 2 and 4 is 4/7, 2/7 and 1/7: 0.571428571..., 0.285714285..., 0.142857142...
    # Rounded down they sum to 0.99999999; the unit left goes to the largest remainder.
    weights = inverse_volatility_weights({"a": Decimal(1), "b": Decimal(2), "c": Decimal(4)})
    assert weights == {
        "a": Decimal("0.57142857"),
        "b": Decimal("0.28571429"),
        "c": Decimal("0.14285714"),
    }
    assert sum(weights.values()) == 1
    with pytest.raises(ValidationError, match="did not move in the lookback window"):
        inverse_volatility_weights({"a": Decimal(1), "b": Decimal(0)})


# --- real candles: Binance ETH/BTC and LTC/BTC, January 2018 ------------------------------

REAL = ("ETH/BTC", "LTC/BTC")
REAL_FILES = ("ETH_BTC-5m.feather", "LTC_BTC-5m.feather")


def import_real(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "binance"
    folder.mkdir(exist_ok=True)
    for name in REAL_FILES:
        shutil.copyfile(DATA / name, folder / name)
    # These files carry float noise past the 8th decimal; rounding it is the import's job.
    import_path(store, folder)


def real_session(store: Store, **options: Any) -> SessionResult:
    plan = plan_session(
        strategies=options.pop("strategies", ["sma_cross", "rsi_revert"]),
        exchange="binance",
        symbols=REAL,
        since=options.pop("since", "2018-01-11"),
        until=options.pop("until", "2018-01-17"),
        capital="1",
        quote_usd=options.pop("quote_usd", "13500"),
        **options,
    )
    return run_session(store, plan)


@pytest.fixture
def real_store(store: Store, tmp_path: Path) -> Store:
    import_real(store, tmp_path)
    return store


def summary(result: SessionResult) -> list[dict[str, Any]]:
    return [
        {
            "strategy": s.strategy,
            "orders": s.orders,
            "fills": s.fills,
            "fees": str(s.fees),
            "realized": str(s.realized_pnl),
            "unrealized": str(s.unrealized_pnl),
            "equity": str(s.equity),
            "return": str(s.return_percent),
        }
        for s in result.strategies
    ]


def ledger_contents(store: Store) -> list[tuple[Any, ...]]:
    return [
        (t.order_id, t.exchange_trade_id, t.side, t.amount, t.price, t.fee, t.timestamp, t.strategy)
        for t in trades(store)
    ]


def test_a_session_on_real_candles_trades_and_its_numbers_are_stable(
    real_store: Store, tmp_path: Path
) -> None:
    result = real_session(real_store)

    # Pinned: the same candles and rules give these figures to the last 1e-8. A change here
    # changes what users' paper sessions report.
    assert summary(result) == [
        {
            "strategy": "sma_cross",
            "orders": 93,
            "fills": 93,
            "fees": "0.02283219",
            "realized": "-0.00406694",
            "unrealized": "-0.00199866",
            "equity": "0.49393440",
            "return": "-1.2131",
        },
        {
            "strategy": "rsi_revert",
            "orders": 12,
            "fills": 12,
            "fees": "0.00300715",
            "realized": "0.00762977",
            "unrealized": "-0.00121365",
            "equity": "0.50641612",
            "return": "1.2832",
        },
    ]
    # Equity is exactly capital plus realized plus unrealized P&L (tests/
    # test_equity_identity.py checks it over random sessions).
    for s in result.strategies:
        assert s.equity == s.capital + s.realized_pnl + s.unrealized_pnl
    assert audit(real_store) == []
    # Run again in a database of its own: the same orders, fills and figures.
    with Store.open(tmp_path / "again.sqlite") as other:
        import_real(other, tmp_path)
        again = real_session(other)
        assert ledger_contents(other) == ledger_contents(real_store)
    assert summary(again) == summary(result)
    assert again.session_id == result.session_id


def test_a_stop_loss_parameter_protects_each_holding(real_store: Store) -> None:
    result = real_session(
        real_store, strategies=["sma_cross"], parameters={"sma_cross": {"stop_loss": "0.01"}}
    )

    stops = real_store.orders.list({"order_type": "stop_loss"}, limit=10_000).items
    statuses = {o.status for o in stops}
    # Some stops were hit, the others canceled when the strategy sold on its signal.
    assert statuses == {"filled", "canceled"}
    # Each stop sits 1 % below the price of the buy that opened the position it protects.
    entries = {t.timestamp: t.price for t in trades(real_store) if t.side == "buy"}
    for stop in stops:
        entry = max((when, price) for when, price in entries.items() if when < stop.timestamp)[1]
        assert stop.price == (entry * Decimal("0.99")).quantize(Decimal("1e-8"))
    filled = [t for t in trades(real_store) if t.order_id in {o.order_id for o in stops}]
    assert all(t.profit_loss is not None and t.profit_loss < 0 for t in filled)
    assert result.strategies[0].canceled == len([o for o in stops if o.status == "canceled"])
    assert audit(real_store) == []


def test_the_summary_is_what_the_ledger_recorded(real_store: Store) -> None:
    result = real_session(real_store)

    for s in result.strategies:
        recorded = trades(real_store, s.strategy)
        assert s.fills == len(recorded) > 0
        assert s.orders == real_store.orders.count({"strategy": s.strategy})
        assert s.fees == sum((t.fee or 0 for t in recorded), Decimal(0))
        assert s.realized_pnl == sum((t.profit_loss or 0 for t in recorded), Decimal(0))
        positions = real_store.positions.list({"strategy": s.strategy}, limit=10_000).items
        assert s.realized_pnl == sum((p.realized_pnl or 0 for p in positions), Decimal(0))
        open_positions = [p for p in positions if p.status == "open"]
        assert s.unrealized_pnl == sum((p.unrealized_pnl or 0 for p in open_positions), Decimal(0))
        assert {p.symbol: p.amount for p in open_positions} == dict(s.holdings)
    # Every live order was canceled at the end: nothing stays locked.
    assert real_store.orders.count({"status": ["pending", "open"]}) == 0


def test_each_strategys_cash_never_goes_below_zero(real_store: Store) -> None:
    result = real_session(real_store, allocation="fixed:0.7,0.3")

    for s in result.strategies:
        cash = s.capital
        for t in trades(real_store, s.strategy):
            fee = t.fee or Decimal(0)
            cash += -(t.total_value + fee) if t.side == "buy" else t.total_value - fee
            assert cash >= 0, (s.strategy, t)
    assert [s.capital for s in result.strategies] == [Decimal("0.7"), Decimal("0.3")]


def test_running_the_same_session_again_writes_nothing_new(real_store: Store) -> None:
    first = real_session(real_store)
    counts = real_store.row_counts()

    again = real_session(real_store)

    assert again.replayed
    assert not first.replayed
    assert real_store.row_counts() == counts
    assert summary(again) == summary(first)
    assert audit(real_store) == []


def test_another_session_of_the_same_strategies_must_start_flat(real_store: Store) -> None:
    real_session(real_store)
    counts = real_store.row_counts()

    with pytest.raises(ValidationError, match="starts flat") as refused:
        real_session(real_store, since="2018-01-12")

    assert refused.value.field == "strategy"
    assert real_store.row_counts() == counts


def test_capital_is_recorded_in_usd_per_strategy_and_exchange(real_store: Store) -> None:
    result = real_session(real_store, allocation="fixed:0.6,0.4", quote_usd="13500.5")

    stored = {c.config_key: c for c in real_store.config.list({}).items}
    assert stored["capital.sma_cross.binance"].config_value == "8100.30000000"
    assert stored["capital.rsi_revert.binance"].config_value == "5400.20000000"
    assert stored["capital.rsi_revert.binance"].config_type == "number"
    assert [s.capital_usd for s in result.strategies] == [Decimal("8100.3"), Decimal("5400.2")]


def test_the_quote_price_is_the_reference_price_at_the_start_or_is_warned_about(
    real_store: Store,
) -> None:
    no_price = real_session(real_store, quote_usd=None, strategies=["rsi_revert"])
    assert real_store.config.count() == 0
    assert "no USD price for BTC at the session's start" in no_price.warnings[0]
    # A price for another period does not count.
    set_reference_price(real_store, "BTC", "9000", valid_until="2018-01-01", source="test")
    again = real_session(real_store, quote_usd=None, strategies=["rsi_revert"])
    assert real_store.config.count() == 0
    assert "no USD price for BTC at the session's start" in again.warnings[0]

    set_reference_price(real_store, "BTC", "14000", valid_from="2018-01-01", source="test")
    priced = real_session(real_store, quote_usd=None, strategies=["rsi_revert"])
    assert priced.replayed
    assert priced.warnings == []
    (capital,) = real_store.config.list({"config_key": "capital.rsi_revert.binance"}).items
    assert capital.config_value == "14000.00000000"


class Holder(Strategy):
    """Buys one market with everything at its first candle and holds it."""

    symbol: ClassVar[str]
    defaults: ClassVar[Mapping[str, Decimal]] = {}

    def on_candle(self, context: Context) -> Sequence[Action]:
        if context.candle.symbol != self.symbol or len(context.history.candles(self.symbol)) > 1:
            return []
        return [OrderRequest(self.symbol, "buy", spend=context.account.cash)]


class HoldEth(Holder):
    name = "hold_eth"
    symbol = "ETH/BTC"


class HoldLtc(Holder):
    name = "hold_ltc"
    symbol = "LTC/BTC"


def test_inverse_volatility_weights_follow_each_strategys_own_swings(real_store: Store) -> None:
    result = real_session(
        real_store,
        strategies=[HoldEth, HoldLtc],
        allocation="inverse-vol:2d",
        since="2018-01-13",
        until="2018-01-14",
    )

    # Independently: a holder's equity is (almost exactly) its coins at the latest close,
    # bought at the open of the lookback's second candle with 0.1 % taker fee.
    closes = {symbol: read_closes(symbol, ms("2018-01-11"), ms("2018-01-13")) for symbol in REAL}
    times = sorted(set(closes["ETH/BTC"]) | set(closes["LTC/BTC"]))
    sigma = {}
    for name, symbol in (("hold_eth", "ETH/BTC"), ("hold_ltc", "LTC/BTC")):
        series = read_candles(symbol, ms("2018-01-11"), ms("2018-01-13"))
        entry = series[1][1]  # the second candle's open
        equity, last = [], None
        for time in times:
            last = closes[symbol].get(time, last)
            bought = time >= series[1][0]
            equity.append(1.0 if not bought else last / entry / 1.001 if last else 1.0)
        returns = [b / a - 1 for a, b in itertools.pairwise(equity)]
        sigma[name] = statistics.pstdev(returns)
    inverse = {name: 1 / value for name, value in sigma.items()}
    expected = {name: value / sum(inverse.values()) for name, value in inverse.items()}

    weights = {s.strategy: s.weight for s in result.strategies}
    assert sum(weights.values()) == 1
    for name, weight in weights.items():
        assert float(weight) == pytest.approx(expected[name], abs=1e-5)
    assert weights["hold_eth"] != weights["hold_ltc"]
    measured = {s.strategy: float(s.volatility or 0) for s in result.strategies}
    assert measured == pytest.approx(sigma, rel=1e-4)


def read_candles(symbol: str, since: int, until: int) -> list[tuple[int, float, float]]:
    """(time ms, open, close) from the feather file itself, not the database."""
    name = symbol.replace("/", "_") + "-5m.feather"
    frame = feather.read_table(DATA / name).to_pandas()
    rows = []
    for date, open_, close in zip(frame["date"], frame["open"], frame["close"], strict=True):
        time = int(date.timestamp() * 1000)
        if since <= time < until:
            rows.append((time, float(f"{open_:.8f}"), float(f"{close:.8f}")))
    return rows


def read_closes(symbol: str, since: int, until: int) -> dict[int, float]:
    return {time: close for time, _open, close in read_candles(symbol, since, until)}


def test_inverse_volatility_needs_candles_before_the_start(real_store: Store) -> None:
    counts = real_store.row_counts()
    with pytest.raises(ValidationError, match="to measure volatility"):
        real_session(real_store, allocation="inverse-vol", since="2018-01-10")
    assert real_store.row_counts() == counts


# --- the command ------------------------------------------------------------------------


def paper(db: Path | str, *args: str) -> Any:
    return CliRunner().invoke(app, ["paper", "--db", str(db), *args])


BASE = (
    "--exchange",
    "binance",
    "--symbol",
    "ETH/BTC,LTC/BTC",
    "--since",
    "2018-01-11",
    "--until",
    "2018-01-13",
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--strategy", "sma_cross,macd", *BASE), "strategy='macd': is not a paper strategy"),
        (
            (
                "--strategy",
                "sma_cross",
                *BASE[:4],
                "--since",
                "2018-03-01",
                "--until",
                "2018-03-05",
            ),
            "no 5m candles of ETH/BTC, LTC/BTC on binance from 2018-03-01 00:00",
        ),
        (
            ("--strategy", "sma_cross,rsi_revert", *BASE, "--allocation", "fixed:0.7,0.5"),
            "weights sum to 1.2 (120.0 %), above 100 % of the capital",
        ),
    ],
    ids=["unknown-strategy", "no-candles", "allocation-above-100"],
)
@pytest.mark.fault("bad input")
def test_bad_input_is_one_clear_line_and_writes_nothing(
    real_store: Store, db_path: Path, args: tuple[str, ...], message: str
) -> None:
    counts = real_store.row_counts()

    result = paper(db_path, *args)

    assert result.exit_code == USER_ERROR
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert real_store.row_counts() == counts


def test_the_missing_quote_price_warning_names_the_command_line_option(
    real_store: Store, db_target: str
) -> None:
    shown = paper(db_target, "--strategy", "rsi_revert", *BASE)

    assert shown.exit_code == 0, shown.stderr
    assert "warning: no USD price for BTC at the session's start (give `--quote-usd PRICE` or" in (
        shown.stderr
    )
    assert "quote_usd" not in shown.stderr  # the library's spelling is for Python callers


def test_the_command_compares_strategies_in_a_table_and_in_json(
    real_store: Store, db_target: str
) -> None:
    shown = paper(db_target, "--strategy", "sma_cross,rsi_revert", *BASE, "--quote-usd", "13500")
    assert shown.exit_code == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["sma_cross", "rsi_revert"]

    # The same session again, its lists repeated instead of comma-separated and its times
    # as a datetime and epoch ms: replayed, and the same figures as JSON.
    printed = paper(
        db_target,
        *("--strategy", "sma_cross", "--strategy", "rsi_revert", "--exchange", "binance"),
        *("--symbol", "ETH/BTC", "--symbol", "LTC/BTC"),
        *("--since", "2018-01-11T00:00:00+00:00", "--until", "1515801600000", "--json"),
    )
    assert printed.exit_code == 0, printed.stderr
    data = json.loads(printed.stdout)
    assert data["replayed"] is True
    assert data["symbols"] == ["ETH/BTC", "LTC/BTC"]
    first = data["strategies"][0]
    assert first["strategy"] == "sma_cross"
    assert first["capital"] == "0.50000000"
    for key in ("fees", "realized_pnl", "equity", "weight"):
        assert "E" not in first[key]
        assert "." in first[key]
    assert data["fees"] == {"maker": "0.001", "taker": "0.001"}
