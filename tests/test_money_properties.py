"""Money is exact: every DECIMAL(20,8) value comes back as it went in, on both engines.

On SQLite amounts are stored as 64-bit integer units of 1e-8 and, past int64, in the
overflow form (tradedb.schema.money), so the round trip, tradedb's sums and the generated
wallets.total_balance are exact across DECIMAL(20,8)'s whole range. On PostgreSQL they
are NUMERIC(20,8).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from records import TS, trade
from tradedb.errors import AmountOutOfRange, ValidationError
from tradedb.models.values import AMOUNT, PERCENT, to_decimal
from tradedb.schema.money import OVERFLOW_DIGITS, encode, exact_units, stored, to_units
from tradedb.store import Store

INT64_MAX = 2**63 - 1
LARGEST_UNITS = 10**20 - 1  # DECIMAL(20,8)'s 999999999999.99999999


def clear(store: Store, table: str) -> None:
    with store.db.transaction() as conn:
        conn.execute(f"DELETE FROM {table}")


def from_units(units: int) -> Decimal:
    return Decimal(units).scaleb(-8)


def stored_form(store: Store, value: Decimal) -> Any:
    """How the engine keeps an amount: integer units on SQLite, the NUMERIC on PostgreSQL."""
    return store.db.dialect.amount_in(value, 8, "x")


def limit(store: Store) -> Decimal:
    """The largest amount a DECIMAL(20,8) column holds, on either engine."""
    return AMOUNT.largest


def test_units_past_int64_are_stored_as_zero_padded_text() -> None:
    assert stored(INT64_MAX) == INT64_MAX
    assert stored(-INT64_MAX) == -INT64_MAX
    assert stored(INT64_MAX + 1) == str(INT64_MAX + 1).zfill(OVERFLOW_DIGITS)
    assert stored(-LARGEST_UNITS) == "-" + str(LARGEST_UNITS).zfill(OVERFLOW_DIGITS)
    # Zero-padded to one width, the text sorts as the numbers do.
    assert sorted([stored(10**20 - 1), stored(10**19), stored(2**63)]) == [
        stored(2**63),
        stored(10**19),
        stored(10**20 - 1),
    ]


# --- exact round trip over the whole range -----------------------------------------------

EDGE_UNITS = (0, 1, -1, INT64_MAX, -INT64_MAX, INT64_MAX + 1, -INT64_MAX - 1, LARGEST_UNITS)
EDGE_UNITS += (-LARGEST_UNITS, 10**15 + 1, -(10**15) - 1)
units_in_range = st.one_of(
    st.integers(min_value=-INT64_MAX, max_value=INT64_MAX),
    st.integers(min_value=-LARGEST_UNITS, max_value=LARGEST_UNITS),
    st.sampled_from(EDGE_UNITS),
)


@settings(max_examples=300, deadline=None)
@given(units=units_in_range)
def test_every_amount_in_the_decimal_range_round_trips_exactly(
    shared_store: Store, units: int
) -> None:
    value = from_units(units)
    amount = from_units(max(abs(units), 1))
    stored = shared_store.trades.insert(trade(profit_loss=value, amount=amount, total_value=amount))
    assert stored.profit_loss == value
    assert stored.amount == amount

    fetched = shared_store.trades.get(stored.id)
    assert fetched is not None
    assert fetched.profit_loss == value
    assert fetched.amount == amount

    conn = shared_store.db.connection
    raw_pnl, raw_amount = conn.execute(
        "SELECT profit_loss, amount FROM trades WHERE id = ?", (stored.id,)
    ).fetchone()
    assert type(raw_pnl) is type(stored_form(shared_store, value))
    assert raw_pnl == stored_form(shared_store, value)
    assert raw_amount == stored_form(shared_store, amount)

    view_pnl, view_amount = conn.execute(
        "SELECT profit_loss_exact, amount_exact FROM trades_readable WHERE id = ?", (stored.id,)
    ).fetchone()
    assert isinstance(view_pnl, str)
    assert "e" not in view_pnl.lower()
    assert Decimal(view_pnl) == value
    assert Decimal(view_amount) == amount
    assert view_pnl == format(value.quantize(Decimal("1E-8")), "f")


@settings(max_examples=200, deadline=None)
@given(units=units_in_range)
def test_signed_position_pnl_round_trips_through_text_input(
    shared_store: Store, units: int
) -> None:
    # One open position per (exchange, symbol, strategy): start from an empty table.
    clear(shared_store, "positions")
    value = from_units(units)
    position = shared_store.positions.insert(
        {
            "symbol": "BTC/USDT",
            "side": "short",
            "amount": "1",
            "entry_price": "1",
            "realized_pnl": format(value, "f"),
            "unrealized_pnl": str(value),
            "exchange": "kraken",
            "opened_at": TS,
        }
    )
    fetched = shared_store.positions.get(position.id)
    assert fetched is not None
    assert fetched.realized_pnl == value
    assert fetched.unrealized_pnl == value


# --- SQL SUM is exact ------------------------------------------------------------------


def amounts_within_int64() -> st.SearchStrategy[list[int]]:
    """Lists of positive units whose total still fits in int64."""
    return st.integers(min_value=1, max_value=25).flatmap(
        lambda n: st.lists(
            st.one_of(
                st.integers(min_value=1, max_value=INT64_MAX // n),
                st.integers(min_value=1, max_value=1000),
            ),
            min_size=n,
            max_size=n,
        )
    )


@settings(max_examples=200, deadline=None)
@given(units=amounts_within_int64())
def test_sql_sum_of_amounts_within_int64_is_exact(shared_store: Store, units: list[int]) -> None:
    clear(shared_store, "trades")
    values = [from_units(u) for u in units]
    written = shared_store.trades.insert_many(
        trade(amount=value, total_value=value) for value in values
    )
    assert written == len(values)

    (total,) = shared_store.db.connection.execute("SELECT SUM(amount) FROM trades").fetchone()
    assert type(total) is type(stored_form(shared_store, Decimal(1)))
    exact = shared_store.db.dialect.amount_out(total, 8)
    assert exact == from_units(sum(units))
    assert exact == sum(values, Decimal(0))

    read_back = shared_store.trades.list(limit=100).items
    assert sum((t.amount for t in read_back), Decimal(0)) == exact


def test_sum_that_floats_would_get_wrong_is_exact(store: Store) -> None:
    values = [Decimal("12345678901.12345678"), Decimal("0.00000001"), Decimal("0.1")]
    store.trades.insert_many(trade(amount=v, total_value=v) for v in values)
    (total,) = store.db.connection.execute("SELECT SUM(amount) FROM trades").fetchone()
    assert store.db.dialect.amount_out(total, 8) == Decimal("12345678901.22345679")
    assert store.db.dialect.amount_out(total, 8) == sum(values)


# --- the bulk fast path agrees with the general path -----------------------------------


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return ("ok", call())
    except Exception as exc:  # both paths must raise the same type
        return ("error", type(exc))


plain_text = st.from_regex(r"-?[0-9]{1,22}(\.[0-9]{0,12})?", fullmatch=True)
decorated_text = st.one_of(
    plain_text.map(lambda s: " " + s),
    plain_text.map(lambda s: "+" + s),
    st.sampled_from(["", "-", ".", "1.", ".5", "1e-8", "1E+3", "NaN", "inf", "-Infinity", "abc"]),
    st.text(max_size=12),
)
any_input = st.one_of(
    st.integers(min_value=-(10**21), max_value=10**21),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(places=8, min_value=-(10**12), max_value=10**12),
    st.floats(),
    st.floats(min_value=-1e13, max_value=1e13).map(lambda f: round(f, 3)),
    plain_text,
    decorated_text,
    st.booleans(),
    st.none(),
)


@settings(max_examples=500, deadline=None)
@given(value=any_input)
def test_bulk_to_units_matches_the_record_path(value: object) -> None:
    fast = _outcome(lambda: to_units(value, AMOUNT, "x"))
    general = _outcome(lambda: exact_units(to_decimal(value, "x"), 8, "x"))
    assert fast == general
    if fast[0] == "ok":
        assert type(fast[1]) is int
        assert -LARGEST_UNITS <= fast[1] <= LARGEST_UNITS
        assert encode(to_decimal(value, "x"), 8, "x") == stored(fast[1])


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.integers(-(10**11), 10**11), plain_text, st.floats(), decorated_text))
def test_bulk_to_units_matches_the_record_path_for_percent(value: object) -> None:
    fast = _outcome(lambda: to_units(value, PERCENT, "x"))
    general = _outcome(lambda: exact_units(to_decimal(value, "x", PERCENT), 4, "x"))
    assert fast == general


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.1", 10_000_000),
        (0.1, 10_000_000),
        (Decimal("1E-8"), 1),
        (-5, -500_000_000),
        ("92233720368.54775807", INT64_MAX),
        ("-92233720368.54775807", -INT64_MAX),
        ("92233720368.54775808", INT64_MAX + 1),
        ("999999999999.99999999", LARGEST_UNITS),
        ("1.000000000", 100_000_000),
    ],
)
def test_to_units_known_values(value: object, expected: int) -> None:
    assert to_units(value, AMOUNT, "x") == expected


@pytest.mark.parametrize("value", [0.1 + 0.2, "NaN", True, "0.123456789", "1000000000000"])
@pytest.mark.fault("bad input")
def test_to_units_refuses_what_records_refuse(value: object) -> None:
    with pytest.raises(ValidationError) as fast:
        to_units(value, AMOUNT, "amount")
    with pytest.raises(ValidationError) as general:
        to_decimal(value, "amount")
    assert type(fast.value) is type(general.value)
    assert fast.value.rule == general.value.rule


# --- the cap --------------------------------------------------------------------------


@pytest.mark.parametrize("over", ["just over", "just under minus", "ten times"])
@pytest.mark.fault("bad input")
def test_just_over_the_cap_is_refused_naming_the_column(store: Store, over: str) -> None:
    most = limit(store)
    text = format(
        {
            "just over": most + Decimal("1E-8"),
            "just under minus": -most - Decimal("1E-8"),
            "ten times": most * 10,
        }[over],
        "f",
    )
    store.trades.insert(trade())
    before = store.trades.count()
    with pytest.raises(AmountOutOfRange) as info:
        store.trades.insert(trade(profit_loss=Decimal(text)))
    assert info.value.field == "profit_loss"
    assert "profit_loss" in str(info.value)
    assert store.trades.count() == before

    with pytest.raises(AmountOutOfRange) as bulk:
        store.trades.insert_many([trade(), trade(total_value=text.lstrip("-"))])
    assert bulk.value.field == "total_value"
    assert store.trades.count() == before


def test_exactly_the_cap_is_accepted(store: Store) -> None:
    most = limit(store)
    stored = store.trades.insert(trade(profit_loss=most, total_value=most))
    assert store.trades.get(stored.id).profit_loss == most  # type: ignore[union-attr]
    negative = store.trades.insert(trade(profit_loss=-most))
    assert store.trades.get(negative.id).profit_loss == -most  # type: ignore[union-attr]


def test_both_engines_hold_the_whole_decimal_range(store: Store) -> None:
    most = Decimal("999999999999.99999999")
    assert limit(store) == most
    stored = store.trades.insert(trade(amount=most, price=most, total_value=most))
    fetched = store.trades.get(stored.id)
    assert fetched is not None
    assert (fetched.amount, fetched.price, fetched.total_value) == (most, most, most)
    with pytest.raises(AmountOutOfRange, match="profit_loss"):
        store.trades.insert(trade(profit_loss="1000000000000"))


@pytest.mark.fault("bad input")
def test_to_units_refuses_just_over_the_decimal_range() -> None:
    for text in ("1000000000000", "-1000000000000.00000000"):
        with pytest.raises(AmountOutOfRange) as info:
            to_units(text, AMOUNT, "balance")
        assert info.value.field == "balance"


# --- the generated wallets.total_balance ----------------------------------------------


def test_total_balance_of_point_one_and_point_two_is_point_three(store: Store) -> None:
    wallet = store.wallets.insert(
        {
            "exchange": "kraken",
            "asset": "BTC",
            "available_balance": 0.1,
            "locked_balance": 0.2,
            "last_updated": TS,
        }
    )
    assert wallet.total_balance == Decimal("0.3")
    fetched = store.wallets.get(wallet.id)
    assert fetched is not None
    assert fetched.total_balance == Decimal("0.3")
    (raw,) = store.db.connection.execute(
        "SELECT total_balance FROM wallets WHERE id = ?", (wallet.id,)
    ).fetchone()
    assert raw == stored_form(store, Decimal("0.3"))


balance_pairs = st.one_of(
    st.integers(min_value=0, max_value=INT64_MAX),
    st.integers(min_value=INT64_MAX - 10, max_value=LARGEST_UNITS),
).flatmap(lambda total: st.tuples(st.integers(min_value=0, max_value=total), st.just(total)))


@settings(max_examples=200, deadline=None)
@given(pair=balance_pairs)
def test_total_balance_is_exactly_available_plus_locked(
    shared_store: Store, pair: tuple[int, int]
) -> None:
    clear(shared_store, "wallets")
    available_units, total_units = pair
    available = from_units(available_units)
    locked = from_units(total_units - available_units)
    wallet = shared_store.wallets.upsert(
        {
            "exchange": "kraken",
            "asset": "BTC",
            "available_balance": available,
            "locked_balance": str(locked),
            "last_updated": TS,
        }
    )
    assert wallet.total_balance == available + locked
    fetched = shared_store.wallets.get(wallet.id)
    assert fetched is not None
    assert fetched.total_balance == from_units(total_units)
    (raw,) = shared_store.db.connection.execute(
        "SELECT total_balance FROM wallets WHERE id = ?", (wallet.id,)
    ).fetchone()
    assert raw == stored_form(shared_store, from_units(total_units))


def overflowing_wallet(store: Store) -> dict[str, Any]:
    return {
        "exchange": "kraken",
        "asset": "BTC",
        "available_balance": limit(store),
        "locked_balance": Decimal("0.00000001"),
        "last_updated": TS,
    }


@pytest.mark.fault("bad input")
def test_total_balance_over_the_cap_is_refused_and_nothing_written(store: Store) -> None:
    with pytest.raises(ValidationError):
        store.wallets.insert(overflowing_wallet(store))
    assert store.wallets.count() == 0


def test_total_balance_over_the_cap_names_the_column(store: Store) -> None:
    with pytest.raises(AmountOutOfRange) as info:
        store.wallets.insert(overflowing_wallet(store))
    assert info.value.field == "total_balance"
