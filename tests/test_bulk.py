"""Bulk writes of candles and tickers: exact, all-or-nothing, idempotent.

The real data is freqtrade's XRP/ETH candles from Binance (tests/data/README.md). Its values
are float64, whose exact meaning is their shortest repr, so every stored value must equal
Decimal(repr(x)).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from market_files import ohlcv_rows, read_feather
from tradedb.errors import AmountOutOfRange, ValidationError
from tradedb.models import CandleCreate
from tradedb.models.base import validate_record
from tradedb.models.timeframes import TIMEFRAME_NAMES, timeframe_of
from tradedb.models.values import AMOUNT, MIN_EPOCH_MS
from tradedb.schema.money import encode
from tradedb.store import Store, columns

EXCHANGE = "binance"
SYMBOL = "XRP/ETH"
PRICE_FIELDS = ("open_price", "high_price", "low_price", "close_price")
CANDLE_FIELDS = (*PRICE_FIELDS, "volume")
T0 = 1_570_752_000_000  # 2019-10-11 00:00 UTC, aligned to every timeframe up to 1d
FIVE_MINUTES = 300_000
RECENT_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def read_all_candles(store: Store, timeframe: str, page_size: int = 500) -> list[Any]:
    where = {"symbol": SYMBOL, "exchange": EXCHANGE, "timeframe": timeframe}
    items: list[Any] = []
    after = None
    while True:
        page = store.candles.list(where, after=after, limit=page_size)
        items += page.items
        if page.next_after is None:
            return items
        after = page.next_after


def candle_values(candle: Any) -> tuple[Any, ...]:
    return (candle.timestamp, *(getattr(candle, name) for name in CANDLE_FIELDS))


def as_stored(row: Sequence[Any]) -> tuple[Any, ...]:
    """What a float row means: its timestamp and each value by its shortest repr."""
    return (row[0], *(Decimal(repr(value)) for value in row[1:]))


def synthetic_rows(count: int, start: int = T0, step: int = FIVE_MINUTES) -> list[list[Any]]:
    return [
        [start + index * step, "1.5", "2.25", "1.00000001", f"1.{index + 1}", str(10 + index)]
        for index in range(count)
    ]


def write_5m(store: Store, rows: Sequence[Sequence[object]], **options: Any) -> Any:
    return store.write_candles(rows, exchange=EXCHANGE, symbol=SYMBOL, timeframe="5m", **options)


# --- real data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "timeframe", "expected_rows"),
    [("XRP_ETH-1m.feather", "1m", 2469), ("XRP_ETH-5m.feather", "5m", 706)],
)
def test_real_candles_are_stored_exactly(
    store: Store, name: str, timeframe: str, expected_rows: int
) -> None:
    table = read_feather(name)
    rows = ohlcv_rows(table)
    assert len(rows) == table.num_rows == expected_rows

    result = store.write_candles(rows, exchange=EXCHANGE, symbol=SYMBOL, timeframe=timeframe)

    assert (result.received, result.inserted, result.updated) == (expected_rows, expected_rows, 0)
    stored = read_all_candles(store, timeframe)
    assert len(stored) == expected_rows
    assert store.candles.count({"timeframe": timeframe}) == expected_rows
    # Pages come in time order, and the file is in time order too.
    assert [candle_values(candle) for candle in stored] == [as_stored(row) for row in rows]
    assert all(type(candle.close_price) is Decimal for candle in stored)


def test_real_candles_fit_eight_decimals() -> None:
    """The import above relies on this: no freqtrade float needs more than 8 decimals."""
    for name in ("XRP_ETH-1m.feather", "XRP_ETH-5m.feather"):
        for row in ohlcv_rows(read_feather(name)):
            for value in row[1:]:
                exponent = Decimal(repr(value)).as_tuple().exponent
                assert isinstance(exponent, int)
                assert exponent >= -8, (name, row)


def test_real_candles_with_aware_datetimes(store: Store) -> None:
    """Timestamps may come as timezone-aware datetimes, as pyarrow gives them."""
    table = read_feather("XRP_ETH-5m.feather")
    rows = [
        [record["date"], record["open"], record["high"], record["low"], record["close"], v]
        for record, v in zip(table.to_pylist(), table.column("volume").to_pylist(), strict=True)
    ]

    write_5m(store, rows)

    stored = read_all_candles(store, "5m")
    assert [candle.timestamp for candle in stored] == [row[0] for row in ohlcv_rows(table)]
    assert stored[0].timestamp == T0


def test_real_candles_redelivered_change_nothing(store: Store) -> None:
    rows = ohlcv_rows(read_feather("XRP_ETH-5m.feather"))
    write_5m(store, rows)
    before = [candle_values(candle) for candle in read_all_candles(store, "5m")]

    again = write_5m(store, rows)

    assert (again.inserted, again.updated, again.unchanged) == (0, 0, len(rows))
    assert store.candles.count() == len(rows)
    assert [candle_values(candle) for candle in read_all_candles(store, "5m")] == before


# --- idempotency -------------------------------------------------------------------------


def test_first_write_inserts_every_row(store: Store) -> None:
    result = write_5m(store, synthetic_rows(4))

    assert (result.received, result.inserted, result.updated, result.unchanged) == (4, 4, 0, 0)
    assert store.candles.count() == 4


def test_same_rows_again_are_unchanged(store: Store) -> None:
    rows = synthetic_rows(4)
    write_5m(store, rows)

    result = write_5m(store, rows)

    assert (result.received, result.inserted, result.updated, result.unchanged) == (4, 0, 0, 4)
    assert store.candles.count() == 4


def test_same_values_in_another_form_are_unchanged(store: Store) -> None:
    """'1.5', Decimal('1.50') and 1.5 are one value: re-delivering it changes nothing."""
    write_5m(store, [[T0, "1.5", "2", "1", "1.5", "3"]])

    result = write_5m(store, [[T0, Decimal("1.50"), 2.0, 1, 1.5, Decimal("3.00000000")]])

    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 1)


def test_changed_close_replaces_by_default(store: Store) -> None:
    rows = synthetic_rows(3)
    write_5m(store, rows)
    rows[1] = [*rows[1][:4], "1.99", rows[1][5]]

    result = write_5m(store, rows, on_conflict="replace")

    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 2)
    assert store.candles.count() == 3
    changed = store.candles.list({"timestamp": rows[1][0]}).items
    assert [candle.close_price for candle in changed] == [Decimal("1.99")]


def test_changed_close_is_kept_with_keep(store: Store) -> None:
    rows = synthetic_rows(3)
    write_5m(store, rows)
    original = rows[1][4]
    rows[1] = [*rows[1][:4], "1.99", rows[1][5]]

    result = write_5m(store, rows, on_conflict="keep")

    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 3)
    kept = store.candles.list({"timestamp": rows[1][0]}).items
    assert [candle.close_price for candle in kept] == [Decimal(original)]


def test_mixed_batch_counts_new_changed_and_unchanged(store: Store) -> None:
    rows = synthetic_rows(3)
    write_5m(store, rows)
    rows[0] = [*rows[0][:5], "999"]  # new volume
    rows += synthetic_rows(2, start=T0 + 3 * FIVE_MINUTES)

    result = write_5m(store, rows)

    assert (result.received, result.inserted, result.updated, result.unchanged) == (5, 2, 1, 2)
    assert store.candles.count() == 5


def test_same_candle_other_timeframe_or_exchange_is_a_new_row(store: Store) -> None:
    row = [T0, "1.5", "2", "1", "1.5", "3"]
    write_5m(store, [row])

    other_timeframe = store.write_candles([row], exchange=EXCHANGE, symbol=SYMBOL, timeframe="1m")
    other_exchange = store.write_candles([row], exchange="kraken", symbol=SYMBOL, timeframe="5m")

    assert other_timeframe.inserted == other_exchange.inserted == 1
    assert store.candles.count() == 3


@pytest.mark.fault("bad input")
def test_unknown_on_conflict_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError) as caught:
        write_5m(store, synthetic_rows(1), on_conflict="ignore")

    assert caught.value.field == "on_conflict"
    assert store.candles.count() == 0


# --- bad input leaves nothing written ----------------------------------------------------

GOOD = [T0 + 2 * FIVE_MINUTES, "1.5", "2", "1", "1.8", "10"]


def bad(index: int, value: object) -> list[object]:
    row: list[object] = list(GOOD)
    row[index] = value
    return row


BAD_ROWS = [
    pytest.param(bad(3, "2.5"), "low_price", ValidationError, id="low above high"),
    pytest.param(bad(3, "1.6"), "low_price", ValidationError, id="low above open"),
    pytest.param(bad(2, "1.7"), "high_price", ValidationError, id="high below close"),
    pytest.param(bad(0, T0 + 2 * FIVE_MINUTES + 60_000), "timestamp", ValidationError,
                 id="unaligned for 5m"),
    pytest.param(bad(0, (T0 + 2 * FIVE_MINUTES) // 1000), "timestamp", ValidationError,
                 id="seconds"),
    pytest.param(bad(0, (T0 + 2 * FIVE_MINUTES) * 1000), "timestamp", ValidationError,
                 id="microseconds"),
    pytest.param(bad(0, datetime(2019, 10, 11, 0, 10)), "timestamp", ValidationError,
                 id="naive datetime"),
    pytest.param(bad(1, "1.500000001"), "open_price", ValidationError, id="9 decimals"),
    pytest.param(bad(4, 0.1 + 0.2), "close_price", ValidationError, id="float 0.1+0.2"),
    pytest.param(bad(4, float("nan")), "close_price", ValidationError, id="NaN"),
    pytest.param(bad(2, float("inf")), "high_price", ValidationError, id="infinity"),
    pytest.param(bad(1, Decimal("NaN")), "open_price", ValidationError, id="Decimal NaN"),
    pytest.param(bad(5, "-0.00000001"), "volume", ValidationError, id="negative volume"),
    pytest.param(bad(3, "0"), "low_price", ValidationError, id="zero low"),
    pytest.param(bad(2, 1e12), "high_price", AmountOutOfRange, id="1e12 price"),
    pytest.param(bad(5, Decimal("1E+30")), "volume", AmountOutOfRange,
                 id="above DECIMAL(38,8)"),
    pytest.param(bad(1, "one"), "open_price", ValidationError, id="not a number"),
    pytest.param(bad(1, True), "open_price", ValidationError, id="boolean"),
    pytest.param(bad(1, None), "open_price", ValidationError, id="None"),
    pytest.param(GOOD[:5], "row", ValidationError, id="five columns"),
    pytest.param([*GOOD, "1"], "row", ValidationError, id="seven columns"),
]  # fmt: skip


@pytest.mark.parametrize(("row", "field", "error"), BAD_ROWS)
@pytest.mark.fault("bad input")
def test_bad_row_refuses_the_whole_batch(
    store: Store, row: list[object], field: str, error: type[ValidationError]
) -> None:
    write_5m(store, synthetic_rows(2))
    before = store.candles.count()
    # Rows 0 and 1 would update, row 3 would be new: none of it may happen.
    batch = [
        [T0, "1.1", "3", "1", "2", "5"],
        [T0 + FIVE_MINUTES, "1.1", "3", "1", "2", "5"],
        row,
        [T0 + 3 * FIVE_MINUTES, "1", "1", "1", "1", "1"],
    ]

    with pytest.raises(error) as caught:
        write_5m(store, batch)

    assert caught.value.field == f"rows[2].{field}"
    assert str(caught.value).startswith(f"rows[2].{field}=")
    assert store.candles.count() == before
    assert [candle_values(c) for c in read_all_candles(store, "5m")] == [
        (r[0], *(Decimal(v) for v in r[1:])) for r in synthetic_rows(2)
    ]


@pytest.mark.fault("bad input")
def test_error_names_the_first_bad_row(store: Store) -> None:
    rows = synthetic_rows(6)
    rows[4][3] = "9"  # low above high
    rows[5][1] = "x"

    with pytest.raises(ValidationError) as caught:
        write_5m(store, rows)

    assert caught.value.field == "rows[4].low_price"
    assert caught.value.value == "9"
    assert store.candles.count() == 0


@pytest.mark.parametrize("count", [8, 1000], ids=["row-checks", "column-checks"])
@pytest.mark.fault("bad input")
def test_two_rows_at_one_time_are_refused_naming_both_and_the_time(
    store: Store, count: int
) -> None:
    # 1000 rows take the column-wise checks (NumPy), 8 the row checks; both must refuse.
    write_5m(store, synthetic_rows(3))
    stored = [candle_values(c) for c in read_all_candles(store, "5m")]
    rows = synthetic_rows(count)[::-1]  # out of time order, which is allowed
    rows[count - 2][4] = "1.5"  # the candle of T0 + 1 step, its close corrected ...
    rows.append(list(rows[count - 2]))
    rows[-1][4] = "1.75"  # ... and given again with another close
    column_checked = columns.candle_columns(rows, timeframe_of("5m"), RECENT_MS) is not None
    assert column_checked == (count >= columns.MIN_ROWS)

    with pytest.raises(ValidationError) as caught:
        write_5m(store, rows)

    assert caught.value.field == f"rows[{count}].timestamp"
    assert caught.value.value == T0 + FIVE_MINUTES
    assert (
        caught.value.rule
        == f"is also the time of rows[{count - 2}]; a batch holds one candle per time"
    )
    assert [candle_values(c) for c in read_all_candles(store, "5m")] == stored


@pytest.mark.fault("bad input")
def test_the_same_row_twice_is_refused_too(store: Store) -> None:
    rows = synthetic_rows(3)
    with pytest.raises(ValidationError, match=r"is also the time of rows\[1\]"):
        write_5m(store, [*rows, rows[1]])
    assert store.candles.count() == 0


def test_rows_may_be_any_iterable(store: Store) -> None:
    def generate() -> Iterator[tuple[object, ...]]:
        yield from (tuple(row) for row in synthetic_rows(3))

    assert write_5m(store, generate()).inserted == 3


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"symbol": "xrp/eth"}, "symbol"),
        ({"symbol": "XRPETH"}, "symbol"),
        ({"exchange": "Binance"}, "exchange"),
        ({"exchange": ""}, "exchange"),
        ({"timeframe": "2m"}, "timeframe"),
        ({"timeframe": "1y"}, "timeframe"),
    ],
)
@pytest.mark.fault("bad input")
def test_bad_symbol_exchange_or_timeframe_is_refused(
    store: Store, options: dict[str, str], field: str
) -> None:
    arguments = {"exchange": EXCHANGE, "symbol": SYMBOL, "timeframe": "5m", **options}

    with pytest.raises(ValidationError) as caught:
        store.write_candles(synthetic_rows(2), **arguments)  # type: ignore[arg-type]

    assert caught.value.field == field
    assert store.candles.count() == 0


# --- tickers -----------------------------------------------------------------------------


def ticker(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "symbol": "BTC/USDT",
        "bid_price": "60000.1",
        "ask_price": "60000.2",
        "last_price": "60000.15",
        "volume_24h": "1234.56789012",
        "price_change_24h": "-150.5",
        "price_change_percent_24h": "-0.2502",
        "timestamp": T0 + 1234,
    }
    row.update(changes)
    return row


TICKER_AMOUNTS = (
    "bid_price",
    "ask_price",
    "last_price",
    "volume_24h",
    "price_change_24h",
    "price_change_percent_24h",
)


def ticker_values(stored: Any) -> dict[str, object]:
    return {name: getattr(stored, name) for name in ("symbol", *TICKER_AMOUNTS, "timestamp")}


def expected_ticker(row: Mapping[str, object]) -> dict[str, object]:
    return {
        name: None if row.get(name) is None else Decimal(str(row[name])) for name in TICKER_AMOUNTS
    } | {"symbol": row["symbol"], "timestamp": row["timestamp"]}


def test_tickers_are_stored_exactly(store: Store) -> None:
    rows = [
        ticker(),
        ticker(symbol="ETH/USDT", timestamp=T0 + 5000, price_change_percent_24h="12.3456"),
        ticker(
            symbol="XRP/ETH",
            bid_price=None,
            ask_price=None,
            volume_24h=None,
            price_change_24h=None,
            price_change_percent_24h=None,
            last_price="0.00141342",
        ),
    ]

    result = store.write_tickers(rows, exchange=EXCHANGE)

    assert (result.received, result.inserted, result.updated) == (3, 3, 0)
    stored = store.tickers.list({"exchange": EXCHANGE}, limit=10).items
    by_symbol = {item.symbol: ticker_values(item) for item in stored}
    assert by_symbol == {str(row["symbol"]): expected_ticker(row) for row in rows}
    assert by_symbol["BTC/USDT"]["price_change_24h"] == Decimal("-150.5")
    assert by_symbol["BTC/USDT"]["price_change_percent_24h"] == Decimal("-0.2502")


def test_ticker_optional_fields_may_be_left_out(store: Store) -> None:
    row = {"symbol": "BTC/USDT", "last_price": 60000, "timestamp": T0}

    store.write_tickers([row], exchange="kraken")

    [stored] = store.tickers.list().items
    assert stored.last_price == Decimal(60000)
    assert stored.bid_price is None
    assert stored.exchange == "kraken"


def test_tickers_redelivered_are_unchanged(store: Store) -> None:
    rows = [ticker(), ticker(timestamp=T0 + 60_000)]
    store.write_tickers(rows, exchange=EXCHANGE)

    again = store.write_tickers(rows, exchange=EXCHANGE)

    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert store.tickers.count() == 2


def test_ticker_correction_replaces_or_is_kept(store: Store) -> None:
    store.write_tickers([ticker()], exchange=EXCHANGE)

    kept = store.write_tickers([ticker(last_price="1")], exchange=EXCHANGE, on_conflict="keep")
    assert (kept.inserted, kept.updated) == (0, 0)
    assert store.tickers.list().items[0].last_price == Decimal("60000.15")

    replaced = store.write_tickers([ticker(last_price="1")], exchange=EXCHANGE)
    assert (replaced.inserted, replaced.updated) == (0, 1)
    assert store.tickers.list().items[0].last_price == Decimal(1)
    assert store.tickers.count() == 1


@pytest.mark.parametrize(
    ("row", "field", "error"),
    [
        pytest.param(ticker(price_change_percent_24h="1.23456"), "price_change_percent_24h",
                     ValidationError, id="percent with 5 decimals"),
        pytest.param(ticker(price_change_percent_24h="1000000"), "price_change_percent_24h",
                     AmountOutOfRange, id="percent beyond DECIMAL(10,4)"),
        pytest.param(ticker(last_price=None), "last_price", ValidationError, id="no last price"),
        pytest.param({k: v for k, v in ticker().items() if k != "last_price"}, "last_price",
                     ValidationError, id="last price missing"),
        pytest.param(ticker(close_price="1"), "close_price", ValidationError, id="unknown key"),
        pytest.param(ticker(exchange="kraken"), "exchange", ValidationError,
                     id="exchange inside the row"),
        pytest.param(ticker(bid_price="-1"), "bid_price", ValidationError, id="negative bid"),
        pytest.param(ticker(volume_24h="0.000000001"), "volume_24h", ValidationError,
                     id="9 decimals"),
        pytest.param(ticker(last_price=0.1 + 0.2), "last_price", ValidationError,
                     id="inexact float"),
        pytest.param(ticker(symbol="btcusdt"), "symbol", ValidationError, id="bad symbol"),
        pytest.param(ticker(timestamp=1_570_752_000), "timestamp", ValidationError,
                     id="seconds"),
        pytest.param({k: v for k, v in ticker().items() if k != "timestamp"}, "timestamp",
                     ValidationError, id="no timestamp"),
    ],
)  # fmt: skip
@pytest.mark.fault("bad input")
def test_bad_ticker_refuses_the_whole_batch(
    store: Store, row: dict[str, object], field: str, error: type[ValidationError]
) -> None:
    store.write_tickers([ticker()], exchange=EXCHANGE)

    with pytest.raises(error) as caught:
        store.write_tickers(
            [ticker(last_price="1"), ticker(timestamp=T0 + 9_000), row], exchange=EXCHANGE
        )

    assert caught.value.field == f"rows[2].{field}"
    assert store.tickers.count() == 1
    assert store.tickers.list().items[0].last_price == Decimal("60000.15")


@pytest.mark.fault("bad input")
def test_ticker_bad_exchange_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError) as caught:
        store.write_tickers([ticker()], exchange="Binance US")

    assert caught.value.field == "exchange"
    assert store.tickers.count() == 0


# --- the bulk path and the record path accept the same rows ------------------------------

TIMEFRAMES = TIMEFRAME_NAMES
# Past int64 units (92,233,720,368.54775807), in the overflow form on SQLite.
LARGEST = Decimal("999999999999.99999999")  # DECIMAL(20,8)


def through_record_path(row: Sequence[object], timeframe: str) -> tuple[Any, ...]:
    """What the record path stores: CandleCreate validation, then the column encoding."""
    record = validate_record(
        CandleCreate,
        {
            "symbol": SYMBOL,
            "timestamp": row[0],
            **dict(zip(CANDLE_FIELDS, row[1:], strict=True)),
            "timeframe": timeframe,
            "exchange": EXCHANGE,
        },
    )
    for name in CANDLE_FIELDS:
        encode(getattr(record, name), AMOUNT.scale, name)
    return (record.timestamp, *(getattr(record, name) for name in CANDLE_FIELDS))


def through_bulk_path(store: Store, row: Sequence[object], timeframe: str) -> tuple[Any, ...]:
    store.write_candles([row], exchange=EXCHANGE, symbol=SYMBOL, timeframe=timeframe)
    where = {"symbol": SYMBOL, "exchange": EXCHANGE, "timeframe": timeframe}
    [stored] = store.candles.list({**where, "timestamp": row[0]}).items
    return candle_values(stored)


exact_amounts = st.decimals(
    min_value=Decimal("0.00000001"), max_value=LARGEST, places=8, allow_nan=False
)


@st.composite
def any_form(draw: st.DrawFn, value: Decimal) -> object:
    """The same exact value as a Decimal, a str, an int or a float that is exact."""
    forms: list[object] = [value, format(value, "f"), format(value.normalize(), "f")]
    if value == value.to_integral_value():
        forms.append(int(value))
    as_float = float(value)
    if Decimal(repr(as_float)) == value:
        forms.append(as_float)
    return draw(st.sampled_from(forms))


@st.composite
def valid_candles(draw: st.DrawFn) -> tuple[list[object], str]:
    timeframe = draw(st.sampled_from(TIMEFRAMES))
    frame = timeframe_of(timeframe)
    # Candles are past events: anything up to a fixed recent date.
    timestamp = frame.floor(draw(st.integers(frame.ceil(MIN_EPOCH_MS), RECENT_MS)))
    low, a, b, high = sorted(draw(st.lists(exact_amounts, min_size=4, max_size=4)))
    open_, close = draw(st.permutations([a, b]))
    volume = draw(st.one_of(st.just(Decimal(0)), exact_amounts))
    values = [draw(any_form(v)) for v in (open_, high, low, close, volume)]
    return [timestamp, *values], timeframe


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(valid_candles())
def test_valid_rows_are_stored_as_the_records_validate_them(
    shared_store: Store, case: tuple[list[object], str]
) -> None:
    row, timeframe = case

    expected = through_record_path(row, timeframe)

    assert through_bulk_path(shared_store, row, timeframe) == expected
    assert expected[1:] == tuple(Decimal(str(value)) for value in row[1:])


wild_amounts = st.one_of(
    exact_amounts.flatmap(any_form),
    st.decimals(min_value=0, max_value=10**4, places=8).map(str),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.decimals(min_value=-LARGEST * 20, max_value=LARGEST * 20, places=9),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**21), max_value=10**21),
    st.text(alphabet="0123456789.-+eE_ ", max_size=14),
    st.sampled_from([True, False, None, "NaN", "1,5", "0x10", b"1", [1]]),
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
IST = timezone(timedelta(hours=5, minutes=30))
wild_timestamps = st.one_of(
    st.integers(min_value=-(10**15), max_value=10**17),
    st.floats(allow_nan=True),
    st.datetimes(timezones=st.sampled_from([UTC, IST])),
    st.datetimes(),
    st.sampled_from([None, True, "2019-10-11T00:00:00+00:00", "yesterday"]),
)


@st.composite
def mutated_candles(draw: st.DrawFn) -> tuple[list[object], str]:
    """A valid candle with one to three values replaced by anything at all."""
    row, timeframe = draw(valid_candles())
    millis = int(str(row[0]))
    as_datetime = EPOCH + timedelta(milliseconds=millis)
    same_time = st.sampled_from(
        [float(millis), as_datetime, as_datetime.astimezone(IST), as_datetime.isoformat()]
    )
    for position in draw(st.sets(st.integers(0, 5), min_size=1, max_size=3)):
        row[position] = draw(
            st.one_of(same_time, wild_timestamps) if position == 0 else wild_amounts
        )
    return row, timeframe


def verdict(run: Any) -> tuple[str, Any]:
    try:
        return "stored", run()
    except ValidationError as error:
        return "refused", type(error).__name__


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutated_candles())
@pytest.mark.fault("bad input")
def test_bulk_and_record_paths_accept_and_refuse_the_same_rows(
    shared_store: Store, case: tuple[list[object], str]
) -> None:
    row, timeframe = case

    by_record = verdict(lambda: through_record_path(row, timeframe))
    by_bulk = verdict(lambda: through_bulk_path(shared_store, row, timeframe))
    event(f"{by_record[0]}: {by_record[1] if by_record[0] == 'refused' else ''}")

    assert by_bulk[0] == by_record[0], (by_bulk, by_record)
    if by_record[0] == "stored":
        assert by_bulk[1] == by_record[1]


@st.composite
def invalid_candles(draw: st.DrawFn) -> tuple[list[object], str]:
    """A valid candle broken in one way that every path must refuse."""
    row, timeframe = draw(valid_candles())
    step = timeframe_of(timeframe).length_ms
    price = draw(st.integers(1, 4))
    breakage = draw(
        st.sampled_from(
            [
                "nine decimals",
                "negative",
                "nan",
                "too large",
                "unaligned",
                "seconds",
                "low above body",
                "high below body",
            ]
        )
    )
    if breakage == "nine decimals":
        row[price] = format(Decimal(str(row[price])) + Decimal("0.000000001"), "f")
    elif breakage == "negative":
        row[draw(st.integers(1, 5))] = -draw(exact_amounts)
    elif breakage == "nan":
        row[draw(st.integers(1, 5))] = draw(st.sampled_from([math.nan, "NaN", Decimal("sNaN")]))
    elif breakage == "too large":
        # Prices are DECIMAL(20,8), the volume DECIMAL(38,8).
        column = draw(st.integers(1, 5))
        least = 10**30 if column == 5 else 10**12
        row[column] = draw(
            st.decimals(min_value=Decimal(least), max_value=Decimal(least) * 10**6, places=0)
        )
    elif breakage == "unaligned":
        row[0] = int(str(row[0])) + draw(st.integers(1, step - 1))
    elif breakage == "seconds":
        row[0] = int(str(row[0])) // 1000
    elif breakage == "low above body":
        row[3] = Decimal(str(max(Decimal(str(row[1])), Decimal(str(row[4]))))) + 1
        row[2] = Decimal(str(row[3])) + 1  # keep high above, so only low is wrong
    else:
        row[2] = min(Decimal(str(row[1])), Decimal(str(row[4]))) - Decimal("0.00000001")
    return row, timeframe


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(invalid_candles())
@pytest.mark.fault("bad input")
def test_invalid_rows_are_refused_by_both_paths(
    shared_store: Store, case: tuple[list[object], str]
) -> None:
    row, timeframe = case
    before = shared_store.candles.count()

    with pytest.raises(ValidationError):
        through_record_path(row, timeframe)
    with pytest.raises(ValidationError) as caught:
        shared_store.write_candles([row], exchange=EXCHANGE, symbol=SYMBOL, timeframe=timeframe)

    assert caught.value.field.startswith("rows[0].")
    assert shared_store.candles.count() == before


@pytest.mark.fault("bad input")
def test_a_candle_from_the_future_is_refused_and_nothing_is_written(store: Store) -> None:
    from tradedb.models.values import now_epoch_ms

    hour = 3_600_000
    later = (now_epoch_ms() // hour + 2) * hour  # the hour after next: not yet begun
    rows = [*synthetic_rows(3, step=hour), [later, "1", "1", "1", "1", "1"]]
    with pytest.raises(ValidationError) as caught:
        store.write_candles(rows, exchange=EXCHANGE, symbol=SYMBOL, timeframe="1h")
    assert caught.value.field == "rows[3].timestamp"
    assert "future" in caught.value.rule
    assert store.candles.count() == 0
    with pytest.raises(ValidationError, match="future"):
        store.candles.insert(
            {
                "symbol": SYMBOL,
                "timestamp": later,
                "open_price": "1",
                "high_price": "1",
                "low_price": "1",
                "close_price": "1",
                "volume": "1",
                "timeframe": "1h",
                "exchange": EXCHANGE,
            }
        )
