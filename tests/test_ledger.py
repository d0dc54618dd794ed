"""The ledger service: orders, fills, positions, wallets, reconciliation and the audit.

Every expected amount is exact and worked out by hand in the comments. Each refused
operation is checked to have written nothing, by comparing every table's rows, read on a
separate connection to the database file, before and after.
"""

from __future__ import annotations

import decimal
import sqlite3
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradedb.errors import (
    DuplicateRecord,
    InsufficientFunds,
    InvalidTransition,
    UnknownRecord,
    ValidationError,
)
from tradedb.models import Order, Position
from tradedb.services.ledger import FillResult, Ledger
from tradedb.services.ledger.audit import audit
from tradedb.store import Store
from tradedb.store.ledger import Balance

D = Decimal
TS = 1_700_000_000_000  # epoch milliseconds


# --- helpers -----------------------------------------------------------------------------


@pytest.fixture
def ledger(store: Store) -> Ledger:
    return Ledger(store)


def table_contents(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read on a connection of its own: what is committed."""
    conn = sqlite3.connect(db_path)
    try:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            table: conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
            for table in tables
        }
    finally:
        conn.close()


def deposit(ledger: Ledger, exchange: str = "kraken", ts: int = TS, **assets: str) -> None:
    for asset, amount in assets.items():
        ledger.deposit(exchange=exchange, asset=asset, amount=amount, timestamp=ts)


def place(
    ledger: Ledger,
    order_id: str,
    side: str = "buy",
    amount: object = "1",
    price: object = "100",
    *,
    order_type: str = "limit",
    exchange: str = "kraken",
    symbol: str = "BTC/USD",
    ts: int = TS,
    **options: Any,
) -> Order:
    return ledger.place_order(
        exchange=exchange,
        order_id=order_id,
        symbol=symbol,
        side=side,
        order_type=order_type,
        amount=amount,
        price=None if order_type == "market" else price,
        timestamp=ts,
        **options,
    )


def fill(
    ledger: Ledger,
    trade_id: str,
    order_id: str,
    amount: object = "1",
    price: object = "100",
    *,
    exchange: str = "kraken",
    ts: int = TS + 1,
    **options: Any,
) -> FillResult:
    return ledger.record_fill(
        exchange=exchange,
        order_id=order_id,
        exchange_trade_id=trade_id,
        amount=amount,
        price=price,
        timestamp=ts,
        **options,
    )


def trade_at(
    ledger: Ledger,
    name: str,
    side: str,
    amount: object,
    price: object,
    *,
    ts: int = TS + 1,
    exchange: str = "kraken",
    symbol: str = "BTC/USD",
    strategy: str | None = None,
    **fee: Any,
) -> FillResult:
    """A market order filled at once: the quickest way to move a position."""
    place(
        ledger,
        name,
        side,
        amount,
        order_type="market",
        exchange=exchange,
        symbol=symbol,
        strategy=strategy,
        ts=ts,
    )
    return fill(ledger, f"t-{name}", name, amount, price, exchange=exchange, ts=ts, **fee)


def balance(store: Store, asset: str, exchange: str = "kraken") -> Balance | None:
    return store.ledger.balance(exchange, asset)


def order_row(store: Store, order_id: str) -> Order:
    order = store.orders.select_one("order_id = ?", (order_id,))
    assert order is not None
    return order


def positions(store: Store, where: str = "1 = 1", params: tuple[Any, ...] = ()) -> list[Position]:
    return store.positions.select_all(where, params)


def open_position(
    store: Store, exchange: str = "kraken", symbol: str = "BTC/USD", strategy: str | None = None
) -> Position | None:
    return store.ledger.open_position(exchange, symbol, strategy)


def assert_clean(store: Store) -> None:
    assert audit(store) == []
    assert not store.db.in_transaction


def refused(
    db_path: Path,
    action: Callable[[], object],
    error: type[ValidationError],
    field: str,
    shown: str,
) -> ValidationError:
    """Run `action`, which must raise exactly `error` about `field`, naming `shown`, and
    must write nothing."""
    before = table_contents(db_path)
    with pytest.raises(error) as caught:
        action()
    assert type(caught.value) is error
    assert caught.value.field == field
    assert shown in str(caught.value)
    assert table_contents(db_path) == before
    return caught.value


# --- order lifecycle ---------------------------------------------------------------------


def test_order_goes_pending_open_filled(store: Store, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    placed = place(ledger, "o1", status="pending")
    assert placed.status == "pending"
    assert placed.filled_amount == 0
    assert placed.remaining_amount == 1

    opened = ledger.open_order("kraken", "o1", timestamp=TS + 1)
    assert opened.status == "open"
    assert order_row(store, "o1").status == "open"

    result = fill(ledger, "t1", "o1", "1", "100", ts=TS + 2)
    order = order_row(store, "o1")
    assert result.order == order
    assert order.status == "filled"
    assert order.filled_amount == 1
    assert order.remaining_amount == 0
    assert order.locked_amount == 0
    assert order.filled_at == TS + 2
    assert order.canceled_at is None
    assert result.trade.status == "filled"
    assert_clean(store)


def test_partial_fill_keeps_the_order_open_with_exact_amounts(store: Store, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1", amount="1.5")
    first = fill(ledger, "t1", "o1", "0.33333333", "100")
    order = order_row(store, "o1")
    assert first.trade.status == "partial"
    assert order.status == "open"
    assert order.filled_amount == D("0.33333333")
    # 1.5 - 0.33333333
    assert order.remaining_amount == D("1.16666667")
    assert order.filled_at is None

    second = fill(ledger, "t2", "o1", "1.16666667", "100", ts=TS + 5)
    order = order_row(store, "o1")
    assert second.trade.status == "filled"
    assert order.status == "filled"
    assert order.filled_amount == D("1.5")
    assert order.remaining_amount == 0
    assert order.filled_at == TS + 5
    assert_clean(store)


def test_a_pending_order_can_be_filled_directly(store: Store, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "whole", status="pending")
    place(ledger, "part", status="pending")

    fill(ledger, "t1", "whole", "1")
    assert order_row(store, "whole").status == "filled"
    # A partial fill of a pending order makes it open.
    fill(ledger, "t2", "part", "0.25")
    assert order_row(store, "part").status == "open"
    assert_clean(store)


@pytest.mark.parametrize("end", ["cancel_order", "expire_order"])
@pytest.mark.parametrize("status", ["pending", "open"])
def test_cancel_and_expiry_set_status_and_canceled_at(
    store: Store, ledger: Ledger, end: str, status: str
) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1", status=status)
    ended = getattr(ledger, end)("kraken", "o1", timestamp=TS + 7)
    expected = "canceled" if end == "cancel_order" else "expired"
    assert ended.status == expected
    assert ended.canceled_at == TS + 7
    assert ended.filled_at is None
    assert order_row(store, "o1") == ended
    assert_clean(store)


def _end_in(ledger: Ledger, status: str) -> None:
    """Bring order o1 (placed and open) to a final status."""
    if status == "filled":
        fill(ledger, "t-final", "o1", "1")
    elif status == "canceled":
        ledger.cancel_order("kraken", "o1", timestamp=TS + 1)
    else:
        ledger.expire_order("kraken", "o1", timestamp=TS + 1)


ACTIONS: dict[str, Callable[[Ledger], object]] = {
    "open": lambda ledger: ledger.open_order("kraken", "o1", timestamp=TS + 9),
    "cancel": lambda ledger: ledger.cancel_order("kraken", "o1", timestamp=TS + 9),
    "expire": lambda ledger: ledger.expire_order("kraken", "o1", timestamp=TS + 9),
    "fill": lambda ledger: fill(ledger, "t-late", "o1", "0.1", ts=TS + 9),
}


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("final", ["filled", "canceled", "expired"])
@pytest.mark.fault("bad input")
def test_final_states_refuse_every_transition(
    store: Store, db_path: Path, ledger: Ledger, final: str, action: str
) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1")
    _end_in(ledger, final)

    field = "order_id" if action == "fill" else "status"
    error = refused(db_path, lambda: ACTIONS[action](ledger), InvalidTransition, field, final)
    assert error.value == ("o1" if action == "fill" else final)
    assert order_row(store, "o1").status == final
    assert_clean(store)


def test_an_open_order_cannot_be_opened_again(db_path: Path, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1")
    refused(db_path, lambda: ledger.open_order("kraken", "o1"), InvalidTransition, "status", "open")


@pytest.mark.parametrize("status", ["filled", "canceled", "expired", "partial"])
def test_a_new_order_must_start_live(db_path: Path, ledger: Ledger, status: str) -> None:
    deposit(ledger, USD="1000")
    refused(
        db_path, lambda: place(ledger, "o1", status=status), InvalidTransition, "status", status
    )


@pytest.mark.parametrize("order_type", ["market", "limit", "stop_loss", "take_profit"])
def test_every_order_type_is_placed_and_filled(
    store: Store, ledger: Ledger, order_type: str
) -> None:
    deposit(ledger, USD="1000", BTC="2")
    buy = place(ledger, "b1", "buy", "1", "100", order_type=order_type)
    sell = place(ledger, "s1", "sell", "1", "100", order_type=order_type)
    assert (buy.order_type, sell.order_type) == (order_type, order_type)
    # A market buy has no price to reserve by; the others lock 100 * 1.0026 = 100.26 USD.
    assert buy.locked_amount == (0 if order_type == "market" else D("100.26"))
    assert sell.locked_amount == 1
    assert (sell.locked_asset, buy.locked_asset) == ("BTC", "USD")

    fill(ledger, "tb", "b1", "1", "100")
    fill(ledger, "ts", "s1", "1", "100")
    assert order_row(store, "b1").status == order_row(store, "s1").status == "filled"
    # Bought and sold 1 BTC at 100, no fees: back where we started.
    assert balance(store, "USD") == Balance(D("1000"), D(0))
    assert balance(store, "BTC") == Balance(D("2"), D(0))
    assert_clean(store)


def test_a_priced_order_type_needs_a_price(db_path: Path, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    refused(
        db_path,
        lambda: place(ledger, "o1", price=None, order_type="stop_loss"),
        ValidationError,
        "price",
        "stop_loss",
    )


def test_order_ids_are_unique_across_exchanges(store: Store, db_path: Path, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    deposit(ledger, "binance", USD="1000")
    place(ledger, "shared-id")
    error = refused(
        db_path,
        lambda: place(ledger, "shared-id", exchange="binance"),
        DuplicateRecord,
        "order_id",
        "shared-id",
    )
    assert "kraken" in str(error)
    refused(db_path, lambda: place(ledger, "shared-id"), DuplicateRecord, "order_id", "kraken")
    assert_clean(store)


# --- fills -------------------------------------------------------------------------------


def test_total_value_is_rounded_half_even(store: Store, ledger: Ledger) -> None:
    deposit(ledger, USD="1")
    place(ledger, "o1", amount="0.00000003", order_type="market")
    # 0.00000001 x 0.5 = 0.000000005: the tie goes to the even 0.00000000 (half-up: ...01)
    # 0.00000001 x 1.5 = 0.000000015: to the even 0.00000002
    # 0.00000001 x 2.5 = 0.000000025: to the even 0.00000002 (half-up: ...03)
    values = [
        fill(ledger, f"t{i}", "o1", "0.00000001", price).trade.total_value
        for i, price in enumerate(["0.5", "1.5", "2.5"])
    ]
    assert values == [D("0E-8"), D("0.00000002"), D("0.00000002")]
    stored = [t.total_value for t in store.trades.select_all("1 = 1", ())]
    assert stored == values
    # The wallet pays the rounded values: 1 - 0.00000004.
    assert balance(store, "USD") == Balance(D("0.99999996"), D(0))
    assert balance(store, "BTC") == Balance(D("0.00000003"), D(0))
    # (0.5 + 1.5 + 2.5) / 3 = 1.5 exactly
    position = open_position(store)
    assert position is not None
    assert (position.amount, position.entry_price) == (D("0.00000003"), D("1.5"))
    assert_clean(store)


def test_total_value_does_not_depend_on_the_callers_decimal_context(
    store: Store, ledger: Ledger
) -> None:
    deposit(ledger, USD="1000000")
    place(ledger, "o1", amount="1.23456789", order_type="market")
    with decimal.localcontext() as context:
        context.prec = 12
        result = fill(ledger, "t1", "o1", "1.23456789", "98765.4321")
    # 1.23456789 x 98765.4321 = 121932.631112635269 exactly, 121932.63111264 at 8 decimals
    # (with 12 digits of precision the product is first cut to 121932.631113).
    assert result.trade.total_value == D("121932.63111264")


def test_a_fill_records_the_trade_with_the_order_strategy(store: Store, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1", amount="2", strategy="momentum")
    result = fill(ledger, "t1", "o1", "0.5", "99.99", fee="0.13", ts=TS + 3)
    trade = result.trade
    assert trade == store.trades.get(trade.id)
    assert trade.strategy == "momentum"
    assert (trade.symbol, trade.side, trade.exchange) == ("BTC/USD", "buy", "kraken")
    assert (trade.amount, trade.price) == (D("0.5"), D("99.99"))
    assert trade.total_value == D("49.995")
    assert (trade.fee, trade.fee_currency) == (D("0.13"), "USD")
    assert (trade.order_id, trade.exchange_trade_id) == ("o1", "t1")
    assert trade.timestamp == TS + 3
    assert trade.status == "partial"
    # Opening a position realizes nothing.
    assert trade.profit_loss is None
    assert result.position is not None
    assert trade.position_id == result.position.id
    assert result.position.strategy == "momentum"
    assert result.closed_position is None
    assert not result.duplicate
    assert_clean(store)


def test_a_redelivered_fill_changes_nothing(store: Store, db_path: Path, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1", amount="2")
    first = fill(ledger, "t1", "o1", "0.5", "100", fee="0.1")
    before = table_contents(db_path)

    again = fill(ledger, "t1", "o1", "0.50", "100.0", fee="0.10000000", ts=TS + 99)
    assert again.duplicate
    assert again.trade == first.trade
    assert again.position == first.position
    assert again.order == order_row(store, "o1")
    assert table_contents(db_path) == before
    assert_clean(store)


@pytest.mark.parametrize(
    ("changed", "shown"),
    [
        ({"amount": "0.4"}, "0.4"),
        ({"price": "101"}, "101"),
        ({"fee": "0.2"}, "0.2"),
        ({"order_id": "o2"}, "o2"),
    ],
)
@pytest.mark.fault("bad input")
def test_a_different_fill_under_a_recorded_id_is_refused(
    store: Store, db_path: Path, ledger: Ledger, changed: dict[str, str], shown: str
) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1", amount="2")
    place(ledger, "o2", amount="2")
    fill(ledger, "t1", "o1", "0.5", "100", fee="0.1")
    given = {"order_id": "o1", "amount": "0.5", "price": "100", "fee": "0.1", **changed}
    error = refused(
        db_path,
        lambda: ledger.record_fill(
            exchange="kraken", exchange_trade_id="t1", timestamp=TS + 2, **given
        ),
        DuplicateRecord,
        "exchange_trade_id",
        "t1",
    )
    assert shown in str(error)
    assert_clean(store)


def test_a_redelivered_fill_may_name_the_quote_fee_currency(
    store: Store, db_path: Path, ledger: Ledger
) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1", amount="2")
    fill(ledger, "t1", "o1", "0.5", "100", fee="0.1")  # fee currency left out: USD
    before = table_contents(db_path)
    assert fill(ledger, "t1", "o1", "0.5", "100", fee="0.1", fee_currency="USD").duplicate
    assert table_contents(db_path) == before
    assert_clean(store)


@pytest.mark.fault("bad input")
def test_a_fill_redelivered_with_another_fee_currency_is_refused(
    store: Store, db_path: Path, ledger: Ledger
) -> None:
    deposit(ledger, USD="1000", BNB="1")
    place(ledger, "o1", amount="2")
    fill(ledger, "t1", "o1", "0.5", "100", fee="0.1", fee_currency="USD")
    refused(
        db_path,
        lambda: fill(ledger, "t1", "o1", "0.5", "100", fee="0.1", fee_currency="BNB"),
        DuplicateRecord,
        "exchange_trade_id",
        "BNB",
    )


def test_the_same_trade_id_on_another_exchange_is_another_fill(
    store: Store, ledger: Ledger
) -> None:
    deposit(ledger, USD="1000")
    deposit(ledger, "binance", USD="1000")
    place(ledger, "k1")
    place(ledger, "b1", exchange="binance")
    first = fill(ledger, "42", "k1", "1", "100")
    second = fill(ledger, "42", "b1", "1", "100", exchange="binance")
    assert not second.duplicate
    assert first.trade.id != second.trade.id
    assert store.trades.count() == 2
    assert (
        balance(store, "BTC", "kraken") == balance(store, "BTC", "binance") == Balance(D(1), D(0))
    )
    assert_clean(store)


# --- positions ---------------------------------------------------------------------------


def test_entry_price_is_the_weighted_average_quantized(store: Store, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    trade_at(ledger, "b1", "buy", "1", "100")
    result = trade_at(ledger, "b2", "buy", "2", "101")
    position = result.position
    assert position is not None
    # (1 x 100 + 2 x 101) / 3 = 100.666666666...
    assert (position.amount, position.entry_price) == (D(3), D("100.66666667"))
    # Marked at the fill: 3 x 101 less the cost basis 100 + 202, exactly 1 (against the
    # rounded average entry price it would be (101 - 100.66666667) x 3 = 0.99999999)
    assert (position.current_price, position.unrealized_pnl) == (D(101), D(1))
    assert position.cost_basis == D(302)
    assert result.trade.profit_loss is None
    assert positions(store) == [position]
    assert_clean(store)


def test_entry_price_ties_round_half_even(store: Store, ledger: Ledger) -> None:
    deposit(ledger, USD="1")
    trade_at(ledger, "b1", "buy", "1", "0.00000002")
    position = trade_at(ledger, "b2", "buy", "1", "0.00000003").position
    assert position is not None
    # (0.00000002 + 0.00000003) / 2 = 0.000000025, a tie: to the even 0.00000002
    assert position.entry_price == D("0.00000002")
    assert_clean(store)


def test_partial_close_realizes_pnl_net_of_fees(store: Store, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    opened = trade_at(ledger, "b1", "buy", "2", "100", fee="0.4").position
    assert opened is not None
    assert (opened.amount, opened.entry_price, opened.open_fees) == (D(2), D(100), D("0.4"))
    # Open fees wait: marked at 100, unrealized is 0 - 0.4.
    assert opened.unrealized_pnl == D("-0.4")

    result = trade_at(ledger, "s1", "sell", "0.5", "110", fee="0.11", ts=TS + 2)
    # (110 - 100) x 0.5 = 5, less its own fee 0.11, less 0.5/2 of the open fees (0.1)
    assert result.trade.profit_loss == D("4.79")
    position = result.position
    assert position is not None
    assert position.id == opened.id
    assert result.trade.position_id == opened.id
    assert position.status == "open"
    assert (position.amount, position.open_fees, position.realized_pnl) == (
        D("1.5"),
        D("0.3"),
        D("4.79"),
    )
    # At 110: 10 x 1.5 - 0.3
    assert position.unrealized_pnl == D("14.7")

    closing = trade_at(ledger, "s2", "sell", "1.5", "100", fee="0.3", ts=TS + 3)
    # 0 x 1.5 - 0.3 own fee - 0.3 remaining open fees
    assert closing.trade.profit_loss == D("-0.6")
    assert closing.position is None
    closed = closing.closed_position
    assert closed is not None
    assert closed.id == opened.id
    assert (closed.status, closed.closed_at, closed.amount) == ("closed", TS + 3, D(0))
    assert (closed.realized_pnl, closed.open_fees) == (D("4.19"), D(0))
    assert positions(store) == [closed]
    # The wallet agrees: 1000 - 200.4 + (55 - 0.11) + (150 - 0.3) = 1000 + 4.19
    assert balance(store, "USD") == Balance(D("1004.19"), D(0))
    assert balance(store, "BTC") == Balance(D(0), D(0))
    assert_clean(store)


def test_a_sell_bigger_than_the_long_flips_to_a_short_and_back(
    store: Store, ledger: Ledger
) -> None:
    deposit(ledger, USD="1000", BTC="0.5")
    long = trade_at(ledger, "b1", "buy", "1", "100").position
    assert long is not None

    flip = trade_at(ledger, "s1", "sell", "1.5", "90", fee="0.3", ts=TS + 2)
    # Closes the long 1: (90 - 100) x 1 less 1/1.5 of the fee (0.2) = -10.2
    assert flip.trade.profit_loss == D("-10.2")
    closed = flip.closed_position
    assert closed is not None
    assert closed.id == long.id
    assert flip.trade.position_id == long.id
    assert (closed.status, closed.closed_at, closed.realized_pnl) == ("closed", TS + 2, D("-10.2"))
    # ...and opens a short of the remaining 0.5 at the fill price, with the rest of the fee.
    short = flip.position
    assert short is not None
    assert short.id != long.id
    assert (short.side, short.amount, short.entry_price) == ("short", D("0.5"), D(90))
    assert (short.open_fees, short.realized_pnl, short.status) == (D("0.1"), D(0), "open")
    assert short.opened_at == TS + 2

    back = trade_at(ledger, "b2", "buy", "1", "80", ts=TS + 3)
    # Closes the short 0.5: (90 - 80) x 0.5 - 0.1 open fees = 4.9; opens a long 0.5 at 80.
    assert back.trade.profit_loss == D("4.9")
    assert back.closed_position is not None
    assert back.closed_position.id == short.id
    assert back.position is not None
    assert (back.position.side, back.position.amount, back.position.entry_price) == (
        "long",
        D("0.5"),
        D(80),
    )
    assert [p.status for p in positions(store)] == ["closed", "closed", "open"]
    # BTC: 0.5 + 1 - 1.5 + 1; USD: 1000 - 100 + (135 - 0.3) - 80
    assert balance(store, "BTC") == Balance(D(1), D(0))
    assert balance(store, "USD") == Balance(D("954.7"), D(0))
    assert_clean(store)


def test_open_positions_are_keyed_by_exchange_symbol_and_strategy(
    store: Store, ledger: Ledger
) -> None:
    deposit(ledger, USD="1000", BTC="1")
    deposit(ledger, "binance", USD="1000")
    trade_at(ledger, "a1", "buy", "1", "100", strategy="alpha")
    trade_at(ledger, "b1", "buy", "2", "100", strategy="beta")
    trade_at(ledger, "n1", "sell", "0.5", "100")
    trade_at(ledger, "x1", "buy", "3", "100", exchange="binance", strategy="alpha")
    trade_at(ledger, "e1", "buy", "4", "0.05", symbol="ETH/BTC", strategy="alpha")

    # Selling alpha's BTC/USD on kraken touches nothing else.
    result = trade_at(ledger, "a2", "sell", "1", "120", strategy="alpha", ts=TS + 2)
    assert result.trade.profit_loss == 20
    assert result.closed_position is not None
    assert result.closed_position.strategy == "alpha"

    open_now = {
        (p.exchange, p.symbol, p.strategy): (p.side, p.amount)
        for p in positions(store, "status = 'open'")
    }
    assert open_now == {
        ("kraken", "BTC/USD", "beta"): ("long", D(2)),
        ("kraken", "BTC/USD", None): ("short", D("0.5")),
        ("binance", "BTC/USD", "alpha"): ("long", D(3)),
        ("kraken", "ETH/BTC", "alpha"): ("long", D(4)),
    }
    assert_clean(store)


def test_a_base_currency_fee_on_a_buy_shrinks_the_position_like_the_wallet(
    store: Store, ledger: Ledger
) -> None:
    deposit(ledger, USD="1000")
    bought = trade_at(ledger, "b1", "buy", "1", "100", fee="0.001", fee_currency="BTC")
    assert (bought.trade.fee, bought.trade.fee_currency) == (D("0.001"), "BTC")
    assert bought.trade.total_value == 100
    position = bought.position
    assert position is not None
    # 1 bought less the 0.001 fee; the fee counts at the fill price, 0.001 x 100 = 0.1.
    assert (position.amount, position.entry_price, position.open_fees) == (
        D("0.999"),
        D(100),
        D("0.1"),
    )
    assert balance(store, "BTC") == Balance(D("0.999"), D(0))
    assert balance(store, "USD") == Balance(D(900), D(0))

    sold = trade_at(ledger, "s1", "sell", "0.999", "110", ts=TS + 2)
    # (110 - 100) x 0.999 - 0.1 = 9.89, just what the wallet made: 109.89 - 100
    assert sold.trade.profit_loss == D("9.89")
    assert sold.closed_position is not None
    assert sold.closed_position.status == "closed"
    assert balance(store, "USD") == Balance(D("1009.89"), D(0))
    assert balance(store, "BTC") == Balance(D(0), D(0))
    assert_clean(store)


def test_a_base_currency_fee_on_a_sell_counts_at_the_fill_price(
    store: Store, ledger: Ledger
) -> None:
    deposit(ledger, USD="1000")
    trade_at(ledger, "b1", "buy", "1.01", "100")
    sold = trade_at(ledger, "s1", "sell", "1", "110", fee="0.01", fee_currency="BTC", ts=TS + 2)
    # The sell gives up 1 + 0.01 BTC, closing the 1.01 long:
    # (110 - 100) x 1.01 - 0.01 x 110 = 10.1 - 1.1 = 9; the wallet: 110 - 101 = 9.
    assert sold.trade.profit_loss == D(9)
    assert sold.position is None
    assert sold.closed_position is not None
    assert sold.closed_position.realized_pnl == D(9)
    assert balance(store, "BTC") == Balance(D(0), D(0))
    assert balance(store, "USD") == Balance(D(1009), D(0))
    assert_clean(store)


@pytest.mark.fault("bad input")
def test_a_base_fee_as_large_as_the_buy_is_refused(db_path: Path, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1", order_type="market")
    refused(
        db_path,
        lambda: fill(ledger, "t1", "o1", "1", "100", fee="1", fee_currency="BTC"),
        ValidationError,
        "fee",
        "1",
    )


def test_a_third_currency_fee_is_debited_but_not_counted_in_pnl(
    store: Store, db_path: Path, ledger: Ledger
) -> None:
    deposit(ledger, USD="1000", BNB="1")
    bought = trade_at(ledger, "b1", "buy", "1", "100", fee="0.05", fee_currency="BNB")
    assert (bought.trade.fee, bought.trade.fee_currency) == (D("0.05"), "BNB")
    assert bought.position is not None
    assert (bought.position.amount, bought.position.open_fees) == (D(1), D(0))
    assert balance(store, "BNB") == Balance(D("0.95"), D(0))

    sold = trade_at(ledger, "s1", "sell", "1", "110", fee="0.05", fee_currency="BNB", ts=TS + 2)
    assert sold.trade.profit_loss == D(10)
    assert balance(store, "BNB") == Balance(D("0.9"), D(0))
    assert balance(store, "USD") == Balance(D(1010), D(0))

    # Not enough BNB for the fee: refused, nothing written.
    place(ledger, "b2", amount="1", order_type="market", ts=TS + 3)
    error = refused(
        db_path,
        lambda: fill(ledger, "t-b2", "b2", "1", "100", fee="2", fee_currency="BNB"),
        InsufficientFunds,
        "amount",
        "BNB",
    )
    assert "0.9" in str(error)
    assert_clean(store)


def _positions_to_mark(ledger: Ledger) -> None:
    deposit(ledger, USD="1000", BTC="1")
    deposit(ledger, "binance", USD="1000")
    trade_at(ledger, "k-long", "buy", "1", "100", fee="0.26")
    trade_at(ledger, "b-long", "buy", "2", "100", exchange="binance")
    trade_at(ledger, "k-short", "sell", "0.5", "100", strategy="s")
    trade_at(ledger, "k-eth", "buy", "10", "0.05", symbol="ETH/BTC")


def test_mark_to_market_prices_by_symbol_and_by_exchange_pair(store: Store, ledger: Ledger) -> None:
    _positions_to_mark(ledger)
    eth_before = open_position(store, symbol="ETH/BTC")
    statements: list[str] = []
    sqlite = store.db.engine == "sqlite"
    if sqlite:
        store.db.connection.set_trace_callback(statements.append)
    try:
        result = ledger.mark_to_market(
            {"BTC/USD": "110", ("binance", "BTC/USD"): D("120")}, timestamp=TS + 5
        )
    finally:
        if sqlite:
            store.db.connection.set_trace_callback(None)

    marks = {(p.exchange, p.strategy): (p.current_price, p.unrealized_pnl) for p in result.updated}
    assert marks == {
        # (110 - 100) x 1 - 0.26 open fees
        ("kraken", None): (D(110), D("9.74")),
        # the (exchange, symbol) key wins: (120 - 100) x 2
        ("binance", None): (D(120), D(40)),
        # a short loses as the price rises: -(110 - 100) x 0.5
        ("kraken", "s"): (D(110), D(-5)),
    }
    assert result.unpriced == [eth_before]
    assert open_position(store, symbol="ETH/BTC") == eth_before
    for position in result.updated:
        assert store.positions.get(position.id) == position
    if sqlite:  # one transaction for the whole map
        begins = [s for s in statements if s.upper().startswith("BEGIN")]
        commits = [s for s in statements if s.upper().startswith("COMMIT")]
        assert (len(begins), len(commits)) == (1, 1)
    assert_clean(store)


@pytest.mark.fault("bad input")
def test_mark_to_market_with_a_bad_price_writes_nothing(db_path: Path, ledger: Ledger) -> None:
    _positions_to_mark(ledger)
    refused(
        db_path,
        lambda: ledger.mark_to_market({"BTC/USD": "110", "ETH/BTC": "-1"}),
        ValidationError,
        "prices['ETH/BTC']",
        "-1",
    )


# --- wallets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange", "options", "locked"),
    [
        # 1 x 100 x 1.0026 (kraken's default reserve, 0.26%)
        ("kraken", {}, "100.26"),
        # 1 x 100 x 1.001 (binance's 0.1%)
        ("binance", {}, "100.1"),
        # an exchange without a default gets 0.26% too
        ("bitstamp", {}, "100.26"),
        ("kraken", {"fee_reserve_rate": "0.005"}, "100.5"),
        ("binance", {"fee_reserve_rate": 0}, "100"),
    ],
)
def test_a_limit_buy_locks_its_value_plus_the_fee_reserve(
    store: Store, ledger: Ledger, exchange: str, options: dict[str, Any], locked: str
) -> None:
    deposit(ledger, exchange, USD="1000")
    order = place(ledger, "o1", exchange=exchange, **options)
    assert (order.locked_amount, order.locked_asset) == (D(locked), "USD")
    assert order_row(store, "o1").locked_amount == D(locked)
    assert balance(store, "USD", exchange) == Balance(D(1000) - D(locked), D(locked))
    assert_clean(store)


def test_a_reservation_rounds_up(store: Store, ledger: Ledger) -> None:
    deposit(ledger, USD="1")
    # 0.001 x 12.34 x 1.0026 = 0.012372084: up to 0.01237209 (half-even would give ...08)
    order = place(ledger, "o1", amount="0.001", price="12.34")
    assert order.locked_amount == D("0.01237209")
    assert_clean(store)


def test_a_limit_sell_locks_its_base_amount(store: Store, ledger: Ledger) -> None:
    deposit(ledger, BTC="2")
    order = place(ledger, "s1", "sell", "0.75", "100")
    assert (order.locked_amount, order.locked_asset) == (D("0.75"), "BTC")
    assert balance(store, "BTC") == Balance(D("1.25"), D("0.75"))
    assert balance(store, "USD") is None
    assert_clean(store)


def test_fills_move_locked_funds_and_cancel_unlocks_the_rest(store: Store, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1")  # locks 100.26
    fill(ledger, "t1", "o1", "0.3", "100", fee="0.078")
    # Releases 0.3/1 of 100.26 = 30.078, pays 30 and the fee 0.078: available unchanged.
    assert order_row(store, "o1").locked_amount == D("70.182")
    assert balance(store, "USD") == Balance(D("899.74"), D("70.182"))
    assert balance(store, "BTC") == Balance(D("0.3"), D(0))

    fill(ledger, "t2", "o1", "0.2", "99", fee="0.05")
    # Releases 0.2/0.7 of 70.182 = 20.052, pays 19.8 + 0.05: available + 0.202
    assert order_row(store, "o1").locked_amount == D("50.13")
    assert balance(store, "USD") == Balance(D("899.942"), D("50.13"))

    canceled = ledger.cancel_order("kraken", "o1", timestamp=TS + 2)
    assert canceled.locked_amount == 0
    # 1000 - 30.078 - 19.85, all available again
    assert balance(store, "USD") == Balance(D("950.072"), D(0))
    assert_clean(store)


def test_the_last_fill_releases_all_that_is_locked(store: Store, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1", amount="3", price="33.33")
    # 3 x 33.33 x 1.0026 = 100.249974
    assert order_row(store, "o1").locked_amount == D("100.249974")
    for i in range(3):
        fill(ledger, f"t{i}", "o1", "1", "33.33")
    # 1/3 shares do not divide evenly, but the last fill takes exactly what is left.
    assert order_row(store, "o1").locked_amount == 0
    # 1000 - 3 x 33.33
    assert balance(store, "USD") == Balance(D("900.01"), D(0))
    assert_clean(store)


def test_expiry_of_a_partly_filled_sell_unlocks_what_is_left(store: Store, ledger: Ledger) -> None:
    deposit(ledger, BTC="1")
    place(ledger, "s1", "sell", "0.8", "100")
    fill(ledger, "t1", "s1", "0.3", "100")
    assert balance(store, "BTC") == Balance(D("0.2"), D("0.5"))
    ledger.expire_order("kraken", "s1", timestamp=TS + 2)
    assert balance(store, "BTC") == Balance(D("0.7"), D(0))
    assert balance(store, "USD") == Balance(D(30), D(0))
    assert_clean(store)


def test_insufficient_funds_for_an_order_writes_nothing(
    store: Store, db_path: Path, ledger: Ledger
) -> None:
    deposit(ledger, USD="100", BTC="0.5")
    # 1 x 100 x 1.0026 = 100.26 > 100
    error = refused(db_path, lambda: place(ledger, "o1"), InsufficientFunds, "amount", "1")
    assert "100.26" in str(error)
    assert "USD" in str(error)
    refused(db_path, lambda: place(ledger, "o2", "sell", "0.6"), InsufficientFunds, "amount", "0.6")
    # An order on an exchange without funds at all.
    refused(
        db_path, lambda: place(ledger, "o3", exchange="binance"), InsufficientFunds, "amount", "1"
    )
    # Exactly what is available is fine.
    place(ledger, "o4", fee_reserve_rate=0)
    assert balance(store, "USD") == Balance(D(0), D(100))
    assert_clean(store)


def test_insufficient_funds_for_a_fill_writes_nothing(
    store: Store, db_path: Path, ledger: Ledger
) -> None:
    deposit(ledger, USD="100")
    place(ledger, "m1", amount="2", order_type="market")
    refused(
        db_path,
        lambda: fill(ledger, "t1", "m1", "1.01", "100"),
        InsufficientFunds,
        "amount",
        "1.01",
    )
    # The value fits, the quote fee on top does not.
    refused(
        db_path,
        lambda: fill(ledger, "t1", "m1", "1", "100", fee="0.01"),
        InsufficientFunds,
        "amount",
        "USD",
    )
    fill(ledger, "t1", "m1", "1", "100")
    assert balance(store, "USD") == Balance(D(0), D(0))
    assert_clean(store)


def test_a_withdrawal_beyond_the_available_balance_writes_nothing(
    store: Store, db_path: Path, ledger: Ledger
) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1")  # 100.26 locked, 899.74 available
    error = refused(
        db_path,
        lambda: ledger.withdraw(exchange="kraken", asset="USD", amount="899.75"),
        InsufficientFunds,
        "amount",
        "899.75",
    )
    assert "899.74" in str(error)
    refused(
        db_path,
        lambda: ledger.withdraw(exchange="kraken", asset="ETH", amount="0.1"),
        InsufficientFunds,
        "amount",
        "0.1",
    )
    done = ledger.withdraw(exchange="kraken", asset="USD", amount="899.74", timestamp=TS + 1)
    assert (done.wallet.available_balance, done.wallet.locked_balance) == (D(0), D("100.26"))
    assert_clean(store)


def test_transfers_with_a_reference_are_idempotent(
    store: Store, db_path: Path, ledger: Ledger
) -> None:
    first = ledger.deposit(
        exchange="kraken", asset="USD", amount="500", timestamp=TS, reference="0xabc"
    )
    assert not first.duplicate
    assert first.movement.kind == "deposit"
    assert first.movement.available_change == 500
    assert first.wallet.available_balance == 500
    before = table_contents(db_path)

    again = ledger.deposit(
        exchange="kraken", asset="USD", amount="500.00", timestamp=TS + 5, reference="0xabc"
    )
    assert again.duplicate
    assert again.movement == first.movement
    assert again.wallet.available_balance == 500
    assert table_contents(db_path) == before

    refused(
        db_path,
        lambda: ledger.deposit(exchange="kraken", asset="USD", amount="501", reference="0xabc"),
        DuplicateRecord,
        "reference",
        "0xabc",
    )

    out = ledger.withdraw(
        exchange="kraken", asset="USD", amount="200", timestamp=TS + 1, reference="w-1"
    )
    assert out.movement.available_change == -200
    before = table_contents(db_path)
    assert ledger.withdraw(
        exchange="kraken", asset="USD", amount="200", timestamp=TS + 2, reference="w-1"
    ).duplicate
    assert table_contents(db_path) == before
    # Without a reference every call is a new transfer.
    ledger.deposit(exchange="kraken", asset="USD", amount="1", timestamp=TS + 3)
    ledger.deposit(exchange="kraken", asset="USD", amount="1", timestamp=TS + 3)
    assert balance(store, "USD") == Balance(D(302), D(0))
    assert_clean(store)


def test_balance_history_gets_a_row_per_changed_balance_type(store: Store, ledger: Ledger) -> None:
    def history() -> list[tuple[str, str, Decimal, int]]:
        return [
            (row.asset, row.balance_type, row.balance, row.timestamp)
            for row in store.balance_history.select_all("1 = 1", ())
        ]

    deposit(ledger, USD="1000", ts=TS)
    assert history() == [("USD", "available", D(1000), TS), ("USD", "total", D(1000), TS)]

    place(ledger, "o1", ts=TS + 1)
    # Locking moves funds between available and locked; the total stays.
    assert history()[2:] == [
        ("USD", "available", D("899.74"), TS + 1),
        ("USD", "locked", D("100.26"), TS + 1),
    ]

    fill(ledger, "t1", "o1", "1", "100", fee="0.26", ts=TS + 2)
    # USD available gets back 100.26 and pays 100 + 0.26: unchanged, so no row.
    assert history()[4:] == [
        ("USD", "locked", D(0), TS + 2),
        ("USD", "total", D("899.74"), TS + 2),
        ("BTC", "available", D(1), TS + 2),
        ("BTC", "total", D(1), TS + 2),
    ]
    assert store.balance_history.count() == 8
    assert_clean(store)


# --- sync with the exchange --------------------------------------------------------------


def _exchange_balance() -> dict[str, Any]:
    """ccxt's fetch_balance() as the exchange reports it (numbers in several forms)."""
    return {
        "info": {"result": {"ZUSD": "999.76", "XXBT": "0.5"}},
        "timestamp": None,
        "datetime": None,
        "USD": {"free": 899.5, "used": "100.26", "total": D("999.76")},
        "BTC": {"free": "0.5", "used": 0.0, "total": "0.5"},
        "BNB": {"free": D("1.5"), "used": D(0), "total": 1.5},
        "free": {"USD": 899.5, "BTC": 0.5, "BNB": 1.5},
        "used": {"USD": 100.26, "BTC": 0.0, "BNB": 0.0},
        "total": {"USD": 999.76, "BTC": 0.5, "BNB": 1.5},
    }


def test_sync_brings_the_wallets_to_the_exchange_figures(
    store: Store, db_path: Path, ledger: Ledger
) -> None:
    deposit(ledger, USD="1000", BTC="0.5", ETH="2")
    deposit(ledger, "binance", USD="7")
    place(ledger, "o1")  # USD: 899.74 available, 100.26 locked

    result = ledger.sync_balances("kraken", _exchange_balance(), timestamp=TS + 10)
    assert not result.in_sync
    assert (result.exchange, result.timestamp) == ("kraken", TS + 10)
    assert result.matched == ["BTC"]
    differences = {
        d.asset: (d.available, d.locked, d.total, d.ledger, d.exchange) for d in result.differences
    }
    assert differences == {
        # exchange minus ledger
        "BNB": (D("1.5"), D(0), D("1.5"), Balance(D(0), D(0)), Balance(D("1.5"), D(0))),
        # not reported: zero
        "ETH": (D(-2), D(0), D(-2), Balance(D(2), D(0)), Balance(D(0), D(0))),
        "USD": (
            D("-0.24"),
            D(0),
            D("-0.24"),
            Balance(D("899.74"), D("100.26")),
            Balance(D("899.5"), D("100.26")),
        ),
    }
    assert [d.asset for d in result.differences] == ["BNB", "ETH", "USD"]
    assert store.ledger.balances("kraken") == {
        "USD": Balance(D("899.5"), D("100.26")),
        "BTC": Balance(D("0.5"), D(0)),
        "ETH": Balance(D(0), D(0)),
        "BNB": Balance(D("1.5"), D(0)),
    }
    assert store.ledger.balances("binance") == {"USD": Balance(D(7), D(0))}
    syncs = store.movements.select_all("kind = 'sync'", ())
    assert [(m.asset, m.available_change, m.locked_change, m.timestamp) for m in syncs] == [
        ("BNB", D("1.5"), D(0), TS + 10),
        ("ETH", D(-2), D(0), TS + 10),
        ("USD", D("-0.24"), D(0), TS + 10),
    ]
    assert_clean(store)

    before = table_contents(db_path)
    again = ledger.sync_balances("kraken", _exchange_balance(), timestamp=TS + 11)
    assert again.in_sync
    assert again.differences == []
    assert again.matched == ["BNB", "BTC", "ETH", "USD"]
    assert table_contents(db_path) == before
    # The order placed before the sync still fills and releases its lock.
    fill(ledger, "t1", "o1", "1", "100", fee="0.26", ts=TS + 12)
    assert balance(store, "USD") == Balance(D("899.5"), D(0))
    assert_clean(store)


def test_an_order_filled_after_a_sync_lowered_its_lock_holds_nothing(
    store: Store, ledger: Ledger
) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1")  # locks 100.26
    # The exchange reports only 50 USD in use (it holds the order for less).
    ledger.sync_balances(
        "kraken", {"USD": {"free": "899.74", "used": "50", "total": "949.74"}}, timestamp=TS + 1
    )
    fill(ledger, "t1", "o1", "1", "100", fee="0.26", ts=TS + 2)
    order = order_row(store, "o1")
    assert order.status == "filled"
    # 899.74 + 50 released - 100 - 0.26
    assert balance(store, "USD") == Balance(D("849.48"), D(0))
    # The order gives up its whole reservation though the wallet only had 50 to release.
    assert order.locked_amount == 0
    assert audit(store) == []


@pytest.mark.fault("bad input")
def test_a_balance_whose_total_is_not_free_plus_used_is_refused(
    store: Store, db_path: Path, ledger: Ledger
) -> None:
    deposit(ledger, USD="1000")
    balance_ = _exchange_balance()
    balance_["USD"] = {"free": "899.5", "used": "100.26", "total": "1000"}
    error = refused(
        db_path,
        lambda: ledger.sync_balances("kraken", balance_, timestamp=TS + 1),
        ValidationError,
        "USD.total",
        "1000",
    )
    assert error.value == D(1000)
    assert "999.76" in str(error)
    assert_clean(store)


# --- ccxt trades -------------------------------------------------------------------------


def _ccxt_trade(**changes: Any) -> dict[str, Any]:
    return {
        "info": {"ordertxid": "o1"},
        "id": "T-1",
        "order": "o1",
        "timestamp": TS + 5,
        "datetime": "2023-11-14T22:13:20.005Z",
        "symbol": "BTC/USD",
        "type": "limit",
        "side": "buy",
        "takerOrMaker": "taker",
        "price": 100.0,
        "amount": 0.5,
        "cost": 50.0,
        "fee": {"cost": 0.13, "currency": "USD"},
        "fees": [{"cost": 0.13, "currency": "USD"}],
        **changes,
    }


def test_record_ccxt_trade(store: Store, db_path: Path, ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o1", amount="0.5")  # locks 0.5 x 100 x 1.0026 = 50.13
    result = ledger.record_ccxt_trade("kraken", _ccxt_trade())
    trade = result.trade
    assert (trade.exchange_trade_id, trade.order_id, trade.exchange) == ("T-1", "o1", "kraken")
    assert (trade.amount, trade.price, trade.total_value) == (D("0.5"), D(100), D(50))
    assert (trade.fee, trade.fee_currency, trade.timestamp) == (D("0.13"), "USD", TS + 5)
    assert result.order.status == "filled"
    # 1000 - 50 - 0.13
    assert balance(store, "USD") == Balance(D("949.87"), D(0))
    assert balance(store, "BTC") == Balance(D("0.5"), D(0))

    before = table_contents(db_path)
    assert ledger.record_ccxt_trade("kraken", _ccxt_trade()).duplicate
    assert table_contents(db_path) == before
    assert_clean(store)


@pytest.mark.parametrize(
    ("fees", "expected"),
    [
        ({"fee": None, "fees": []}, (D(0), None)),
        ({"fee": {"cost": None, "currency": None}, "fees": []}, (D(0), None)),
        ({"fee": {"cost": "0.13", "currency": "USD"}, "fees": []}, (D("0.13"), "USD")),
        (
            {
                "fee": {"cost": 0.13, "currency": "USD"},
                "fees": [{"cost": 0.1, "currency": "USD"}, {"cost": 0.03, "currency": "USD"}],
            },
            (D("0.13"), "USD"),
        ),
        ({"fees": [{"cost": "0.0001", "currency": "BNB"}]}, (D("0.0001"), "BNB")),
    ],
)
def test_ccxt_trade_fees(
    store: Store, ledger: Ledger, fees: dict[str, Any], expected: tuple[Decimal, str | None]
) -> None:
    deposit(ledger, USD="1000", BNB="1")
    place(ledger, "o1", amount="0.5")
    trade = ledger.record_ccxt_trade("kraken", _ccxt_trade(**fees)).trade
    assert (trade.fee, trade.fee_currency) == expected
    assert_clean(store)


@pytest.mark.fault("bad input")
def test_ccxt_fees_in_two_currencies_are_refused(db_path: Path, ledger: Ledger) -> None:
    deposit(ledger, USD="1000", BNB="1")
    place(ledger, "o1", amount="0.5")
    two = [{"cost": 0.1, "currency": "USD"}, {"cost": 0.001, "currency": "BNB"}]
    refused(
        db_path,
        lambda: ledger.record_ccxt_trade("kraken", _ccxt_trade(fees=two)),
        ValidationError,
        "fees",
        "BNB",
    )


# --- bad input ---------------------------------------------------------------------------


def _bad_input_scenario(ledger: Ledger) -> None:
    deposit(ledger, USD="1000")
    place(ledger, "o-open")  # 1 BTC at 100, 100.26 locked, 899.74 available
    trade_at(ledger, "o-done", "buy", "0.1", "100")  # 10 more spent: 889.74 available


BAD_INPUT: dict[str, tuple[Callable[[Ledger], object], type[ValidationError], str, str]] = {
    "fill of an unknown order": (
        lambda ledger: fill(ledger, "t1", "no-such-order", "0.1"),
        UnknownRecord,
        "order_id",
        "no-such-order",
    ),
    "fill of an order on another exchange": (
        lambda ledger: fill(ledger, "t1", "o-open", "0.1", exchange="binance"),
        UnknownRecord,
        "order_id",
        "o-open",
    ),
    "fill larger than the remaining amount": (
        lambda ledger: fill(ledger, "t1", "o-open", "1.00000001"),
        InvalidTransition,
        "amount",
        "1.00000001",
    ),
    "fill of a filled order": (
        lambda ledger: fill(ledger, "t1", "o-done", "0.1"),
        InvalidTransition,
        "order_id",
        "o-done",
    ),
    "negative price": (
        lambda ledger: fill(ledger, "t1", "o-open", "0.1", "-100"),
        ValidationError,
        "price",
        "-100",
    ),
    "zero amount": (
        lambda ledger: fill(ledger, "t1", "o-open", "0"),
        ValidationError,
        "amount",
        "'0'",
    ),
    "negative fee": (
        lambda ledger: fill(ledger, "t1", "o-open", "0.1", fee="-0.01"),
        ValidationError,
        "fee",
        "-0.01",
    ),
    "fee currency in lowercase": (
        lambda ledger: fill(ledger, "t1", "o-open", "0.1", fee="0.01", fee_currency="usdt"),
        ValidationError,
        "fee_currency",
        "usdt",
    ),
    "fee currency with a blank": (
        lambda ledger: fill(ledger, "t1", "o-open", "0.1", fee="0.01", fee_currency="US D"),
        ValidationError,
        "fee_currency",
        "US D",
    ),
    "withdrawal beyond the available balance": (
        lambda ledger: ledger.withdraw(exchange="kraken", asset="USD", amount="889.75"),
        InsufficientFunds,
        "amount",
        "889.75",
    ),
    "cancelling a filled order": (
        lambda ledger: ledger.cancel_order("kraken", "o-done"),
        InvalidTransition,
        "status",
        "filled",
    ),
    "cancelling an unknown order": (
        lambda ledger: ledger.cancel_order("kraken", "nope"),
        UnknownRecord,
        "order_id",
        "nope",
    ),
    "ccxt balance whose total is not free + used": (
        lambda ledger: ledger.sync_balances(
            "kraken", {"USD": {"free": 10.0, "used": 1.0, "total": 12.0}}
        ),
        ValidationError,
        "USD.total",
        "12.0",
    ),
    "ccxt balance with a lowercase currency": (
        lambda ledger: ledger.sync_balances("kraken", {"usd": {"free": 1, "used": 0, "total": 1}}),
        ValidationError,
        "ccxt_balance currency",
        "usd",
    ),
    "fill timestamp in seconds": (
        lambda ledger: fill(ledger, "t1", "o-open", "0.1", ts=1_700_000_000),
        ValidationError,
        "timestamp",
        "1700000000",
    ),
    "ccxt trade timestamp in seconds": (
        lambda ledger: ledger.record_ccxt_trade(
            "kraken", _ccxt_trade(order="o-open", timestamp=1_700_000_005)
        ),
        ValidationError,
        "timestamp",
        "1700000005",
    ),
    "deposit timestamp in seconds": (
        lambda ledger: ledger.deposit(
            exchange="kraken", asset="USD", amount="1", timestamp=1_700_000_000
        ),
        ValidationError,
        "timestamp",
        "1700000000",
    ),
    "float amount with too many decimals": (
        lambda ledger: fill(ledger, "t1", "o-open", 0.123456789),
        ValidationError,
        "amount",
        "0.123456789",
    ),
    "float price of an inexact sum": (
        lambda ledger: fill(ledger, "t1", "o-open", "0.1", 0.1 + 0.2),
        ValidationError,
        "price",
        "0.30000000000000004",
    ),
    "ccxt trade amount with too many decimals": (
        lambda ledger: ledger.record_ccxt_trade(
            "kraken", _ccxt_trade(order="o-open", amount=0.123456789)
        ),
        ValidationError,
        "amount",
        "0.123456789",
    ),
    "deposit of a float with too many decimals": (
        lambda ledger: ledger.deposit(exchange="kraken", asset="USD", amount=1.000000001),
        ValidationError,
        "amount",
        "1.000000001",
    ),
    "order with an unknown side": (
        lambda ledger: place(ledger, "o-new", "hold"),
        ValidationError,
        "side",
        "hold",
    ),
    "order on a lowercase symbol": (
        lambda ledger: place(ledger, "o-new", symbol="btc/usd"),
        ValidationError,
        "symbol",
        "btc/usd",
    ),
    "negative fee reserve rate": (
        lambda ledger: place(ledger, "o-new", fee_reserve_rate="-0.1"),
        ValidationError,
        "fee_reserve_rate",
        "-0.1",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
@pytest.mark.fault("bad input")
def test_bad_input_is_refused_clearly_and_nothing_is_written(
    store: Store, db_path: Path, ledger: Ledger, case: str
) -> None:
    _bad_input_scenario(ledger)
    action, error, field, shown = BAD_INPUT[case]
    refused(db_path, lambda: action(ledger), error, field, shown)
    assert_clean(store)


# --- the audit ---------------------------------------------------------------------------


def _legit_history(ledger: Ledger) -> None:
    """A bit of everything the ledger does, on two exchanges."""
    deposit(ledger, USD="5000", BTC="1", BNB="2")
    deposit(ledger, "binance", USD="1000")
    ledger.deposit(exchange="kraken", asset="ETH", amount="3", timestamp=TS, reference="tx-eth")
    place(ledger, "L1", amount="2", price="100", strategy="grid")
    fill(ledger, "t1", "L1", "0.5", "99.5", fee="0.1", ts=TS + 1)
    fill(ledger, "t2", "L1", "1.5", "100", fee="0.001", fee_currency="BTC", ts=TS + 2)
    place(ledger, "S1", "sell", "2.9", "110", strategy="grid", ts=TS + 3)
    fill(ledger, "t3", "S1", "2.5", "111", fee="0.01", fee_currency="BNB", ts=TS + 4)
    ledger.cancel_order("kraken", "S1", timestamp=TS + 5)
    place(ledger, "E1", "buy", "1", "0.05", symbol="ETH/BTC", ts=TS + 6)
    fill(ledger, "t4", "E1", "1", "0.049", ts=TS + 7)
    place(ledger, "B1", exchange="binance", status="pending", ts=TS + 6)
    ledger.open_order("binance", "B1")
    fill(ledger, "t5", "B1", "0.4", "100", exchange="binance", ts=TS + 7)
    place(ledger, "X1", exchange="binance", ts=TS + 8)
    ledger.expire_order("binance", "X1", timestamp=TS + 9)
    ledger.withdraw(exchange="kraken", asset="USD", amount="100", timestamp=TS + 9, reference="w")
    ledger.mark_to_market({"BTC/USD": "105", "ETH/BTC": "0.051"})


def test_audit_finds_nothing_wrong_after_legit_operations(store: Store, ledger: Ledger) -> None:
    _legit_history(ledger)
    assert len(positions(store)) == 4
    assert audit(store) == []
    ledger.sync_balances("kraken", {"USD": {"free": 1, "used": 0, "total": 1}})
    assert audit(store) == []


CORRUPTIONS: dict[str, tuple[str, str]] = {
    "a wallet balance": (
        "UPDATE wallets SET available_balance = available_balance + 1 "
        "WHERE exchange = 'kraken' AND asset = 'USD'",
        "wallet kraken:USD",
    ),
    "a wallet's locked balance": (
        "UPDATE wallets SET locked_balance = locked_balance + 100000000, "
        "available_balance = available_balance - 100000000 "
        "WHERE exchange = 'binance' AND asset = 'USD'",
        "wallet binance:USD: locked",
    ),
    "an order's filled amount": (
        "UPDATE crypto_orders SET filled_amount = filled_amount - 1 WHERE order_id = 'S1'",
        "order kraken:S1",
    ),
    "an order's remaining amount": (
        "UPDATE crypto_orders SET remaining_amount = remaining_amount + 1 WHERE order_id = 'B1'",
        "order binance:B1: remaining_amount",
    ),
    "a final order still holding funds": (
        "UPDATE crypto_orders SET locked_amount = 5 WHERE order_id = 'X1'",
        "order binance:X1 is final",
    ),
    "a position's realized pnl": (
        "UPDATE positions SET realized_pnl = realized_pnl + 1 WHERE symbol = 'BTC/USD' "
        "AND exchange = 'kraken'",
        "realized_pnl",
    ),
    "a trade's amount": (
        "UPDATE trades SET amount = amount + 1 WHERE exchange_trade_id = 't4'",
        "order kraken:E1",
    ),
    "a trade's fee": (
        "UPDATE trades SET fee = fee + 1 WHERE exchange_trade_id = 't3'",
        "wallet kraken:BNB: total",
    ),
    "a journal line": (
        "UPDATE wallet_movements SET available_change = available_change + 1 "
        "WHERE reference = 'tx-eth'",
        "wallet kraken:ETH",
    ),
    "a dangling foreign key": (
        "UPDATE wallet_movements SET trade_id = 999 WHERE trade_id IS NOT NULL",
        "foreign key",
    ),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
@pytest.mark.fault("damage")
def test_audit_reports_a_corrupted_row(store: Store, ledger: Ledger, case: str) -> None:
    _legit_history(ledger)
    assert audit(store) == []
    sql, expected = CORRUPTIONS[case]
    dangling = case == "a dangling foreign key"
    sqlite = store.db.engine == "sqlite"
    if dangling and sqlite:
        store.db.connection.execute("PRAGMA foreign_keys = OFF")
    with store.db.transaction() as conn:
        if dangling and not sqlite:
            # PostgreSQL checks foreign keys in triggers, which a replica session skips.
            conn.execute("SET LOCAL session_replication_role = replica")
        assert conn.execute(sql).rowcount >= 1
    if dangling and sqlite:
        store.db.connection.execute("PRAGMA foreign_keys = ON")
    problems = audit(store)
    assert problems, case
    assert any(expected in problem for problem in problems), problems


@pytest.fixture(autouse=True)
def _no_connection_left_in_a_transaction(store: Store) -> Iterator[None]:
    yield
    assert not store.db.in_transaction
