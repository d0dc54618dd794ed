"""Reading candles out fast: pandas, Arrow or polars, as floats or exact decimals.

Columns follow freqtrade's layout: `date` (UTC), `open`, `high`, `low`, `close`, `volume`.
By default amounts are float64, what charting and indicator libraries expect; each is
the double nearest the stored decimal. `exact=True` gives Arrow decimal128 columns
instead (Decimal objects in pandas): (20, 8) for prices and (38, 8) for the volume, as
the columns are declared, built straight from the stored integer units, so not one digit
changes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from tradedb.errors import ValidationError
from tradedb.models.values import AMOUNT, VOLUME
from tradedb.schema.money import from_units
from tradedb.services.marketdata.history import MarketHistory
from tradedb.services.marketdata.resample import check_series
from tradedb.services.ops import archive
from tradedb.store import Store
from tradedb.store.market import arrow_columns

Output = Literal["pandas", "arrow", "polars"]
SCALE = 8
AMOUNTS = ("open", "high", "low", "close", "volume")


def get_candles(  # noqa: PLR0917 - (exchange, symbol, timeframe, start, end) read as a sentence
    store: Store,
    exchange: str,
    symbol: str,
    timeframe: str,
    start: object = None,
    end: object = None,
    *,
    output: Output = "pandas",
    exact: bool = False,
) -> Any:
    """One market's candles from `start` (inclusive) to `end` (exclusive), oldest first."""
    since, until = check_series(exchange, symbol, timeframe, start, end)
    if output not in ("pandas", "arrow", "polars"):
        raise ValidationError("output", output, "must be pandas, arrow or polars")
    pa = _require("pyarrow", "data")
    units = store.market.candle_arrow(exchange, symbol, timeframe, since=since, until=until)
    units = _with_archived(store, (exchange, symbol, timeframe), since, until, units)
    columns = {"date": units.column("timestamp").cast(pa.timestamp("ms", tz="UTC"))}
    for name in AMOUNTS:
        column = units.column(name)
        precision = VOLUME.precision if name == "volume" else AMOUNT.precision
        columns[name] = _decimals(pa, column, precision) if exact else _floats(pa, column)
    table = pa.table(columns)
    if output == "arrow":
        return table
    if output == "polars":
        return _require("polars", "polars").from_arrow(table)
    _require("pandas", "data")
    return table.to_pandas()


def _with_archived(
    store: Store, market: tuple[str, str, str], since: int | None, until: int | None, units: Any
) -> Any:
    """The database's candles plus those retention moved to Parquet archives. The
    database is read first: rows retention deletes after that were archived before."""
    archived = MarketHistory(store).archived_candles(*market, since, until)
    if archived is None:
        return units
    import numpy as np
    import pyarrow as pa

    stored = np.vstack([_unit_values(pa, units.column(name)) for name in units.column_names])
    merged = archive.merge(stored, archived)
    return pa.table(dict(zip(units.column_names, arrow_columns(merged), strict=True)))


def _unit_values(pa: Any, column: Any) -> Any:
    """A units column as NumPy: int64, or Python ints where it holds units past int64."""
    import numpy as np

    if pa.types.is_decimal(column.type):
        return np.array([int(value) for value in column.to_pylist()], dtype=object)
    return column.to_numpy()


def _floats(pa: Any, units: Any) -> Any:
    import pyarrow.compute as pc

    return pc.divide(units.cast(pa.float64()), 10.0**SCALE)


def _decimals(pa: Any, units: Any, precision: int) -> Any:
    """decimal128(precision, 8) from units: the unscaled value is the unit count itself,
    so the 128-bit values are the units, sign-extended, with no arithmetic at all."""
    import numpy as np

    units = units.combine_chunks()
    if pa.types.is_decimal(units.type):  # units past int64, as decimal128(38, 0)
        buffers = units.buffers()
        return pa.Array.from_buffers(
            pa.decimal128(precision, SCALE), len(units), buffers, offset=units.offset
        )
    values = units.to_numpy(zero_copy_only=False)
    words = np.empty((len(values), 2), dtype="<i8")
    words[:, 0] = values
    words[:, 1] = np.where(values < 0, -1, 0)
    buffer = pa.py_buffer(words.tobytes())
    return pa.Array.from_buffers(pa.decimal128(precision, SCALE), len(values), [None, buffer])


def _require(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ValidationError(
            "output", module, f"needs {module}: pip install 'tradedb[{extra}]'"
        ) from None


def exact_rows(
    store: Store,
    exchange: str,
    symbol: str,
    timeframe: str,
    *,
    start: object = None,
    end: object = None,
) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]]:
    """The candles as (epoch ms, open, high, low, close, volume) with exact Decimals, for
    output as text; needs no optional package."""
    since, until = check_series(exchange, symbol, timeframe, start, end)
    rows = MarketHistory(store).candle_units(exchange, symbol, timeframe, since, until)
    return [
        (ts, *(from_units(value, SCALE) for value in values))  # type: ignore[misc]
        for ts, *values in rows
    ]
