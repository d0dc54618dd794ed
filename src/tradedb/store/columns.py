"""Column-wise checks of candle batches, used when NumPy and pyarrow are installed.

Checking candles row by row in Python costs more than SQLite's insert itself. Here each
column is parsed at once by Arrow's decimal parser and the candle rules run as NumPy
array comparisons.

This path only ever accepts. Whenever it cannot vouch for a batch (an unusual type, a
value outside the plain decimal grammar, a value too large, any broken rule), it returns
None and the row checks in `tradedb.store.bulk` decide: they accept the batch or raise
the error that names the row, the field and the value. Both paths therefore accept the
same input and produce the same units; tests/test_bulk_columns.py holds them to that.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from operator import itemgetter
from typing import Any

from tradedb.models.timeframes import Timeframe
from tradedb.models.values import AMOUNT, MAX_EPOCH_MS, MIN_EPOCH_MS

try:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # the 'data' extra is not installed: the row checks do everything
    INSTALLED = False
else:
    INSTALLED = True

# Below this many rows the row checks are as fast as building arrays.
MIN_ROWS = 256

# Every string in this grammar is a number `decimal.Decimal` reads the same way; Arrow
# refuses some of them, which only sends the batch to the row checks.
_PLAIN_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"

# Types whose str() is what the row checks parse: a float's str is its shortest repr.
_TEXT_AS_IS = frozenset({Decimal, int, float})


def candle_columns(rows: Sequence[Sequence[object]], frame: Timeframe, latest: int) -> Any:
    """Checked candles as int64 columns of shape (6, rows): timestamp, open, high, low,
    close, volume in integer units; or None when the row checks must decide."""
    # Months have no fixed length to check alignment with; their series are short anyway.
    if not INSTALLED or frame.monthly or len(rows) < MIN_ROWS or set(map(len, rows)) != {6}:
        return None
    timestamps = _timestamps(list(map(itemgetter(0), rows)), frame, latest)
    if timestamps is None:
        return None
    columns = [timestamps]
    for index in range(1, 6):
        units = _units(list(map(itemgetter(index), rows)))
        if units is None:
            return None
        columns.append(units)
    _, open_, high, low, close, volume = columns
    valid = (
        (low > 0)
        & (volume >= 0)
        & (high >= np.maximum(open_, close))
        & (low <= np.minimum(open_, close))
    )
    if not valid.all():
        return None
    return np.stack(columns)


def first_repeat(stamps: Any) -> tuple[int, int] | None:
    """The first row whose time an earlier row has, as (earlier, later) indexes."""
    if bool(np.all(stamps[1:] > stamps[:-1])):
        return None  # in time order, as candles usually come
    order = np.argsort(stamps, kind="stable")
    same = np.flatnonzero(stamps[order][1:] == stamps[order][:-1])
    if not len(same):
        return None
    # A stable sort keeps equal times in row order, so each pair is (earlier, later).
    later = order[same + 1]
    first = int(np.argmin(later))
    return int(order[same][first]), int(later[first])


def _timestamps(column: list[object], frame: Timeframe, latest: int) -> Any:
    if set(map(type, column)) != {int}:
        return None
    try:
        stamps = np.array(column, dtype=np.int64)
    except OverflowError:
        return None
    if not (
        (stamps >= MIN_EPOCH_MS).all()
        and (stamps <= min(MAX_EPOCH_MS, latest)).all()
        and not ((stamps - frame.offset_ms) % frame.length_ms).any()
    ):
        return None
    return stamps


def _units(column: list[object]) -> Any:
    """A column of amounts as int64 units of 1e-8, or None."""
    # Arrow would also take bytes as text; the row checks refuse them.
    kinds = set(map(type, column))
    exact = pa.decimal128(AMOUNT.precision, AMOUNT.scale)
    try:
        # Arrow refuses a value with non-zero digits past the 8th decimal, or too many
        # digits in all, rather than rounding it; and NaN and infinities.
        if kinds == {Decimal}:
            # Straight from the Decimals: four times faster than through their text.
            decimals = pa.array(column, type=exact)
        else:
            if kinds == {str}:
                text = pa.array(column, type=pa.string())
            elif kinds <= _TEXT_AS_IS:
                text = pa.array(list(map(str, column)), type=pa.string())
            else:
                return None
            plain = pc.all(pc.match_substring_regex(text, _PLAIN_NUMBER)).as_py()
            if text.null_count or not plain:
                return None
            decimals = pc.cast(text, exact)
    except pa.ArrowInvalid:
        return None
    words = np.frombuffer(
        decimals.buffers()[1], dtype=np.int64, count=2 * len(decimals), offset=16 * decimals.offset
    )
    low_words, high_words = words[0::2], words[1::2]
    # Candle amounts are never negative; a non-zero high word or a negative low word means
    # more than int64 units hold, which the row checks refuse with the right message.
    if high_words.any() or (low_words < 0).any():
        return None
    return low_words
