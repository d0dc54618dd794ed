"""Bulk writes of candles and tickers: validated in a tight loop, written in one transaction.

A Pydantic object per row would cost more than SQLite's insert itself, so the bulk paths
apply the same value rules (`tradedb.models.values`, `tradedb.schema.money`) to plain
tuples. The whole batch is checked before anything is written, and it is written in one
transaction: a bad row anywhere leaves the table as it was.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tradedb.errors import ValidationError
from tradedb.models.fields import TimeframeName
from tradedb.models.timeframes import Timeframe, timeframe_of
from tradedb.models.values import (
    AMOUNT,
    CLOCK_SKEW_MS,
    MAX_EPOCH_MS,
    MIN_EPOCH_MS,
    PERCENT,
    VOLUME,
    DecimalSpec,
    check_aligned,
    check_exchange,
    check_not_future,
    check_symbol,
    now_epoch_ms,
    to_epoch_ms,
)
from tradedb.schema.money import to_units
from tradedb.store import columns as columnwise
from tradedb.store.batch import Batch, OnConflict
from tradedb.store.database import Database

__all__ = ["Batch", "BulkResult", "OnConflict", "candle_batch", "rows_batch", "write_batch"]

CANDLE_PRICES = ("open_price", "high_price", "low_price", "close_price")
# The candle columns that differ from row to row; symbol, timeframe and exchange are the
# same for a whole batch. Amounts are in units of 1e-8.
CANDLE_VALUES = ("timestamp", *CANDLE_PRICES, "volume")
CandleUnits = tuple[int, int, int, int, int, int]
CANDLE_KEY = ("symbol", "timestamp", "timeframe", "exchange")

TICKER_AMOUNTS: tuple[tuple[str, DecimalSpec, bool, bool], ...] = (
    # column, spec, required, may be negative
    ("bid_price", AMOUNT, False, False),
    ("ask_price", AMOUNT, False, False),
    ("last_price", AMOUNT, True, False),
    ("volume_24h", VOLUME, False, False),
    ("price_change_24h", AMOUNT, False, True),
    ("price_change_percent_24h", PERCENT, False, True),
    # Extra columns (docs/schema.md): the rest of ccxt's unified ticker.
    ("open_price", AMOUNT, False, False),
    ("high_price", AMOUNT, False, False),
    ("low_price", AMOUNT, False, False),
    ("vwap", AMOUNT, False, False),
    ("quote_volume_24h", VOLUME, False, False),
    ("bid_volume", VOLUME, False, False),
    ("ask_volume", VOLUME, False, False),
    ("previous_close", AMOUNT, False, False),
)
TICKER_COLUMNS = ("symbol", *(name for name, *_ in TICKER_AMOUNTS), "timestamp", "exchange")
TICKER_KEY = ("symbol", "exchange", "timestamp")


@dataclass(frozen=True)
class BulkResult:
    """What a bulk write did: rows received, new rows, rows whose values changed."""

    received: int
    inserted: int
    updated: int

    @property
    def unchanged(self) -> int:
        return self.received - self.inserted - self.updated


def _timestamp(value: object, field: str) -> int:
    if isinstance(value, int) and type(value) is int and MIN_EPOCH_MS <= value <= MAX_EPOCH_MS:
        return value
    return to_epoch_ms(value, field)


def _units(value: object, spec: DecimalSpec, field: str, *, signed: bool) -> int:
    units = to_units(value, spec, field)
    if units < 0 and not signed:
        raise ValidationError(field, value, "must not be negative")
    return units


def candle_batch(
    rows: Iterable[Sequence[object]], *, exchange: str, symbol: str, timeframe: TimeframeName
) -> Batch:
    """Validate ccxt-style OHLCV rows [timestamp_ms, open, high, low, close, volume].

    Large batches are checked column-wise when NumPy and pyarrow are installed
    (`tradedb.store.columns`); the row checks below decide whatever that path does not
    accept, so the rules and the error messages are the same either way.
    """
    check_exchange(exchange)
    check_symbol(symbol)
    frame = timeframe_of(timeframe)
    latest = now_epoch_ms() + CLOCK_SKEW_MS
    rows = rows if isinstance(rows, list) else list(rows)
    checked = columnwise.candle_columns(rows, frame, latest)
    values: list[int] | None = None
    if checked is not None:
        repeat = columnwise.first_repeat(checked[0])
    else:
        values = _checked_candle_values(rows, frame, latest)
        repeat = _first_repeat(values[0 :: len(CANDLE_VALUES)])
    if repeat is not None:
        earlier, later = repeat
        # A silent upsert would keep whichever came last; neither may be the true candle.
        raise ValidationError(
            f"rows[{later}].timestamp",
            rows[later][0],
            f"is also the time of rows[{earlier}]; a batch holds one candle per time",
        )
    return Batch(
        "market_data",
        CANDLE_KEY,
        CANDLE_VALUES,
        values,
        (("symbol", symbol), ("timeframe", timeframe), ("exchange", exchange)),
        checked,
    )


def _checked_candle_values(
    rows: Iterable[Sequence[object]], frame: Timeframe, latest: int
) -> list[int]:
    out: list[int] = []
    for index, row in enumerate(rows):
        try:
            candle = _candle_row(row, frame)
            if candle[0] > latest:
                check_not_future(candle[0])
            out.extend(candle)
        except ValidationError as error:
            raise _at_row(error, index) from None
    return out


def _first_repeat(stamps: Sequence[int]) -> tuple[int, int] | None:
    """The first row whose time an earlier row has, as (earlier, later) indexes."""
    seen: dict[int, int] = {}
    for index, stamp in enumerate(stamps):
        earlier = seen.setdefault(stamp, index)
        if earlier != index:
            return earlier, index
    return None


def _candle_row(row: Sequence[object], frame: Timeframe) -> CandleUnits:
    if len(row) != 6:
        raise ValidationError("row", row, "must be [timestamp_ms, open, high, low, close, volume]")
    ts = _timestamp(row[0], "timestamp")
    check_aligned(ts, frame.name, "timestamp")
    o = to_units(row[1], AMOUNT, "open_price")
    h = to_units(row[2], AMOUNT, "high_price")
    low = to_units(row[3], AMOUNT, "low_price")
    c = to_units(row[4], AMOUNT, "close_price")
    volume = _units(row[5], VOLUME, "volume", signed=False)
    if h < (o if o > c else c):
        raise ValidationError("high_price", row[2], "is below max(open, close)")
    if low > (c if o > c else o):
        raise ValidationError("low_price", row[3], "is above min(open, close)")
    if low <= 0:
        raise ValidationError("low_price", row[3], "must be greater than zero")
    return (ts, o, h, low, c, volume)


def _at_row(error: ValidationError, index: int) -> ValidationError:
    """The same error, its field prefixed with the row it came from."""
    return type(error)(f"rows[{index}].{error.field}", error.value, error.rule)


def ticker_rows(rows: Iterable[Mapping[str, object]], *, exchange: str) -> list[tuple[Any, ...]]:
    """Validate ticker mappings keyed by the tickers columns (symbol, last_price, ...)."""
    check_exchange(exchange)
    out = []
    for index, row in enumerate(rows):
        try:
            out.append(_ticker_row(row, exchange))
        except ValidationError as error:
            raise _at_row(error, index) from None
    return out


_TICKER_FIELDS = frozenset(TICKER_COLUMNS) - {"exchange"}


def _ticker_row(row: Mapping[str, object], exchange: str) -> tuple[Any, ...]:
    extra = row.keys() - _TICKER_FIELDS
    if extra:
        name = sorted(extra)[0]
        raise ValidationError(name, row[name], "is not a column of tickers")
    values: list[Any] = [check_symbol(row.get("symbol"))]  # type: ignore[arg-type]
    for name, spec, required, signed in TICKER_AMOUNTS:
        value = row.get(name)
        if value is None:
            if required:
                raise ValidationError(name, None, "is required")
            values.append(None)
        else:
            values.append(_units(value, spec, name, signed=signed))
    values.append(_timestamp(row.get("timestamp"), "timestamp"))
    values.append(exchange)
    return tuple(values)


def rows_batch(
    table: str, key: tuple[str, ...], columns: tuple[str, ...], rows: Iterable[Sequence[Any]]
) -> Batch:
    return Batch(table, key, columns, list(itertools.chain.from_iterable(rows)))


def write_batch(
    db: Database,
    batch: Batch,
    *,
    on_conflict: OnConflict,
    then: Callable[[Any], object] | None = None,
) -> BulkResult:
    """Upsert checked rows in one transaction; re-delivered rows never double-count.
    `then` runs in the same transaction after the rows are written. How the rows go in
    is the engine's: many-row INSERTs on SQLite, COPY on PostgreSQL."""
    if on_conflict not in ("replace", "keep"):
        raise ValidationError("on_conflict", on_conflict, "must be 'replace' or 'keep'")

    def write() -> tuple[int, int]:
        with db.transaction(durable=False) as conn:
            counts = db.upsert_batch(conn, batch, on_conflict=on_conflict)
            if then is not None:
                then(conn)
        return counts

    # Two writers of overlapping rows in different orders can deadlock on PostgreSQL
    # (each holds a key the other waits for); the loser is run again, never reported.
    inserted, changed = db.retrying(write)
    return BulkResult(received=len(batch), inserted=inserted, updated=changed - inserted)
