"""Large candle batches: checked column-wise, written several rows per statement.

The column-wise checks (tradedb.store.columns) are a fast path only: whatever they accept,
the row checks must accept with the same units, and whatever the row checks refuse, they
must leave to the row checks. The multi-row statements must count inserted and changed
rows exactly, across statement boundaries too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from market_files import ohlcv_rows, read_feather
from test_bulk import (
    EXCHANGE,
    FIVE_MINUTES,
    SYMBOL,
    T0,
    mutated_candles,
    synthetic_rows,
    valid_candles,
    write_5m,
)
from tradedb.errors import ValidationError
from tradedb.models.timeframes import timeframe_of
from tradedb.models.values import CLOCK_SKEW_MS, now_epoch_ms
from tradedb.store import Store, columns
from tradedb.store.bulk import _checked_candle_values
from tradedb.store.engines.sqlite import ROWS_PER_STATEMENT


def row_checks(rows: list[Any], timeframe: str) -> tuple[str, Any]:
    try:
        return "stored", _checked_candle_values(rows, timeframe_of(timeframe), latest())
    except ValidationError:
        return "refused", None


def columnwise(rows: list[Any], timeframe: str) -> list[int] | None:
    """The column-wise verdict, as the flat row-major values the row checks give."""
    checked = columns.candle_columns(rows, timeframe_of(timeframe), latest())
    return None if checked is None else checked.T.ravel().tolist()


def latest() -> int:
    return now_epoch_ms() + CLOCK_SKEW_MS


def real_rows(as_type: type) -> list[list[Any]]:
    """The XRP/ETH 1m candles as ccxt gives them: strings, or Decimals with number=Decimal."""
    rows = ohlcv_rows(read_feather("XRP_ETH-1m.feather"))
    return [[ms, *(as_type(repr(value)) for value in values)] for ms, *values in rows]


@pytest.fixture
def every_batch_columnwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "MIN_ROWS", 1)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.one_of(valid_candles(), mutated_candles()), min_size=1, max_size=4))
def test_columnwise_checks_accept_only_what_the_row_checks_accept(
    every_batch_columnwise: None, cases: list[tuple[list[object], str]]
) -> None:
    timeframe = cases[0][1]
    rows = [row for row, _ in cases]

    fast = columnwise(rows, timeframe)
    verdict, units = row_checks(rows, timeframe)
    event(f"columnwise {'declined' if fast is None else 'accepted'}; rows {verdict}")

    if fast is not None:
        assert verdict == "stored"
        assert fast == units


@pytest.mark.parametrize("as_type", [str, Decimal])
def test_ccxt_shaped_batches_are_checked_columnwise(as_type: type) -> None:
    rows = real_rows(as_type)

    fast = columnwise(rows, "1m")

    assert fast is not None, "a plain ccxt batch fell back to the slow row checks"
    assert fast == row_checks(rows, "1m")[1]


@pytest.mark.parametrize(
    ("position", "value"),
    [(1, "0.123456789"), (5, "-1"), (2, "1e-9"), (4, " 0.5"), (3, None), (0, 1.5e12), (1, b"1")],
)
def test_one_odd_value_sends_the_batch_to_the_row_checks(position: int, value: object) -> None:
    rows = real_rows(str)
    rows[1000][position] = value

    assert columnwise(rows, "1m") is None


@pytest.mark.fault("bad input")
def test_a_bad_row_deep_in_a_large_batch_is_named_and_nothing_is_written(store: Store) -> None:
    rows = synthetic_rows(5_000)
    rows[3217][3] = "3"  # low above the body

    with pytest.raises(ValidationError) as caught:
        write_5m(store, rows)

    assert caught.value.field == "rows[3217].low_price"
    assert store.candles.count() == 0


def test_counts_are_exact_across_statement_boundaries(store: Store) -> None:
    count = 2 * ROWS_PER_STATEMENT + 234
    rows = synthetic_rows(count)
    changed = [0, ROWS_PER_STATEMENT - 1, ROWS_PER_STATEMENT, count - 1]

    first = write_5m(store, rows)
    for index in changed:
        rows[index][5] = "999"
    rows.append([T0 + count * FIVE_MINUTES, "1", "1", "1", "1", "0"])
    second = write_5m(store, rows)

    assert (first.inserted, first.updated) == (count, 0)
    assert (second.inserted, second.updated, second.unchanged) == (1, 4, count - 4)
    assert store.candles.count() == count + 1
    stored = {
        candle.timestamp: candle.volume
        for candle in store.candles.list(
            {"symbol": SYMBOL, "exchange": EXCHANGE, "timeframe": "5m"}, limit=count + 1
        ).items
    }
    assert all(stored[T0 + index * FIVE_MINUTES] == Decimal(999) for index in changed)


def test_keep_leaves_stored_values_across_statement_boundaries(store: Store) -> None:
    rows = synthetic_rows(ROWS_PER_STATEMENT + 7)
    write_5m(store, rows)
    rows[-1][5] = "12345"

    result = write_5m(store, rows, on_conflict="keep")

    assert (result.inserted, result.updated) == (0, 0)
    [last] = store.candles.list({"timestamp": T0 + (ROWS_PER_STATEMENT + 6) * FIVE_MINUTES}).items
    assert last.volume != Decimal(12345)
