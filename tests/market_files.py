"""Reading the real candle files in tests/data (freqtrade's feather layout)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pyarrow import feather

from conftest import DATA


def read_feather(name: str) -> pa.Table:
    return feather.read_table(DATA / name)


def ohlcv_rows(table: pa.Table) -> list[list[Any]]:
    """ccxt-style rows [epoch_ms, open, high, low, close, volume] with the floats as they are."""
    millis = table.column("date").cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist()
    columns = [
        table.column(name).to_pylist() for name in ("open", "high", "low", "close", "volume")
    ]
    return [[ms, *values] for ms, *values in zip(millis, *columns, strict=True)]
