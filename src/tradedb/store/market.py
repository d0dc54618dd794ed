"""The market-data SQL beyond plain rows: candles as integer units, coverage and gaps.

Amounts stay in integer units of 1e-8 here; the market-data service does exact
arithmetic on them (a resampled volume is an integer sum) without a Decimal per value.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from tradedb.models.timeframes import Timeframe, timeframe_of
from tradedb.models.values import AMOUNT, now_epoch_ms
from tradedb.schema.money import INT64_MAX
from tradedb.store import candle_blocks as blocks
from tradedb.store.bulk import (
    CANDLE_KEY,
    CANDLE_VALUES,
    Batch,
    BulkResult,
    CandleUnits,
    OnConflict,
    write_batch,
)
from tradedb.store.database import Database, Dialect


@dataclass(frozen=True)
class Coverage:
    """What is stored for one market and timeframe."""

    exchange: str
    symbol: str
    timeframe: str
    first: int
    last: int
    candles: int


class MarketRecords:
    """Reads and writes of market_data beyond the generic repository."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def candle_units(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        since: int | None = None,
        until: int | None = None,
    ) -> list[CandleUnits]:
        """Candles of one market in time order, `since` inclusive, `until` exclusive."""
        sql, params = _candle_query(
            self.db.dialect, exchange, symbol, timeframe, since=since, until=until
        )
        rows: list[CandleUnits] = self.db.connection.execute(sql, params).fetchall()
        if INT64_MAX in itertools.chain.from_iterable(rows):
            exact_sql, _ = _candle_query(
                self.db.dialect, exchange, symbol, timeframe, since=since, until=until, exact=True
            )
            found = self.db.connection.execute(exact_sql, params).fetchall()
            rows = [(ts, *map(int, values)) for ts, *values in found]
        return rows

    def last_timestamp(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        """The newest stored candle's time, read from the index."""
        row = self.db.connection.execute(_NEWEST, (symbol, timeframe, exchange)).fetchone()
        return None if row is None else int(row[0])

    def first_timestamp(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        """The oldest stored candle's time, read from the index."""
        row = self.db.connection.execute(_OLDEST, (symbol, timeframe, exchange)).fetchone()
        return None if row is None else int(row[0])

    def write_candle_units(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        rows: Sequence[CandleUnits],
        *,
        on_conflict: OnConflict = "replace",
    ) -> BulkResult:
        """Store candles already in units (derived from stored ones, so already checked)."""
        batch = Batch(
            "market_data",
            CANDLE_KEY,
            CANDLE_VALUES,
            list(itertools.chain.from_iterable(rows)),
            (("symbol", symbol), ("timeframe", timeframe), ("exchange", exchange)),
        )
        return write_batch(self.db, batch, on_conflict=on_conflict)

    def seal_written(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        columns: Any,
        conn: Any,
    ) -> int:
        """Build the read-cache blocks made of exactly the candles `columns` just written
        in `conn`'s transaction (see candle_blocks.seal_written)."""
        # Blocks are spans of time: a month's nominal length serves as well as any.
        span = timeframe_of(timeframe).length_ms * blocks.CANDLES_PER_BLOCK
        live_since = now_epoch_ms() - blocks.SETTLED_MS
        market = blocks.Market(symbol, timeframe, exchange)
        return blocks.seal_written(
            conn,
            market,
            columns,
            span,
            live_since=live_since,
            read=partial(_column_rows, self.db, conn, market),
        )

    def coverage(self, exchange: str | None = None) -> list[Coverage]:
        """First and last time and count per market and timeframe. SQLite answers it from
        the UNIQUE (symbol, timestamp, timeframe, exchange) index, never the rows."""
        sql = (
            "SELECT exchange, symbol, timeframe, min(timestamp), max(timestamp), count(*) "
            "FROM market_data"
        )
        params: list[object] = []
        if exchange is not None:
            sql += " WHERE exchange = ?"
            params.append(exchange)
        sql += " GROUP BY exchange, symbol, timeframe ORDER BY exchange, symbol, timeframe"
        return [Coverage(*row) for row in self.db.connection.execute(sql, params)]

    def holes(
        self,
        exchange: str,
        symbol: str,
        frame: Timeframe,
        *,
        since: int | None = None,
        until: int | None = None,
    ) -> list[tuple[int, int]]:
        """Pairs of consecutive stored timestamps with missing candles between them."""
        sql, params = _holes_query(exchange, symbol, frame, since=since, until=until)
        rows = self.db.connection.execute(
            f"SELECT previous, timestamp {sql} ORDER BY timestamp", params
        )
        return [(int(a), int(b)) for a, b in rows]

    def hole_count(self, exchange: str, symbol: str, frame: Timeframe) -> int:
        """How many runs of candles are missing between the first and last stored one."""
        sql, params = _holes_query(exchange, symbol, frame)
        count: int = self.db.connection.execute(f"SELECT count(*) {sql}", params).fetchone()[0]
        return count

    def candle_arrow(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        *,
        since: int | None = None,
        until: int | None = None,
    ) -> Any:
        """One market's candles as an Arrow table of int64 columns (amounts in units), in
        time order.

        Whole blocks of older candles come from the read cache (`candle_blocks`), built
        here on first read; the rest streams from the rows. (ADBC's SQLite driver would
        fill Arrow columns faster, but it carries a second copy of SQLite, and two copies
        in one process break each other's POSIX locks on the same file: in a test it
        crashed the process with a bus error while tradedb's checkpoint thread ran.)
        """
        import numpy as np

        market = blocks.Market(symbol, timeframe, exchange)
        # Blocks are spans of time: a month's nominal length serves as well as any.
        span = timeframe_of(timeframe).length_ms * blocks.CANDLES_PER_BLOCK
        with self.db.snapshot() as conn:
            # Two index lookups. (min() and max() would do on SQLite, but PostgreSQL plans
            # them from statistics, and right after a large write, before autovacuum has
            # analyzed the table, it scanned all of a year's index entries: 0.3 s.)
            oldest, newest = conn.execute(
                f"SELECT ({_OLDEST}), ({_NEWEST})", (*market, *market)
            ).fetchone()
            if newest is None:
                return _arrow_table(_column_rows(self.db, conn, market, since, until))
            live = newest >= now_epoch_ms() - blocks.SETTLED_MS
            overlapped, whole = blocks.block_starts(since, until, oldest, newest, span, live=live)
            if not overlapped:
                return _arrow_table(_column_rows(self.db, conn, market, since, until))
            ready = blocks.built(conn, market, overlapped)
            missing = [start for start in whole if start not in ready]
        token = None
        if missing and not self.db.readonly:
            token = blocks.claim(self.db, market, missing, span)
        built = {}
        with self.db.snapshot() as conn:
            cached = blocks.stored(self.db, conn, market, overlapped)
            # No stored candle lies before the first overlapped block or outside the read.
            pieces = []
            for start in overlapped:
                if start in cached:
                    pieces.append(_within(cached[start], since, until))
                else:
                    first = start if since is None else max(start, since)
                    end = start + span if until is None else min(start + span, until)
                    piece = _column_rows(self.db, conn, market, first, end)
                    if start in missing:
                        built[start] = piece
                    pieces.append(piece)
            pieces.append(_column_rows(self.db, conn, market, overlapped[-1] + span, until))
        if token is not None:
            for start, columns in built.items():
                # A span holding a value past int64 stays uncached: blocks are int64.
                if columns.dtype != object:
                    blocks.keep(self.db, market, start, columns, token)
        return _arrow_table(np.concatenate(pieces, axis=1))


_MARKET = "FROM market_data WHERE symbol = ? AND timeframe = ? AND exchange = ?"
_OLDEST = f"SELECT timestamp {_MARKET} ORDER BY timestamp LIMIT 1"
_NEWEST = f"SELECT timestamp {_MARKET} ORDER BY timestamp DESC LIMIT 1"
CANDLE_FIELDS = ("timestamp", "open", "high", "low", "close", "volume")
_AMOUNT_COLUMNS = ("open_price", "high_price", "low_price", "close_price", "volume")


def candle_columns_sql(dialect: Dialect, *, exact: bool = False) -> str:
    """The candle columns: the timestamp, then the amounts in units of 1e-8, as int64 with
    any value past int64 read as INT64_MAX (the fast form), or `exact`."""
    units_of = dialect.units_of if exact else dialect.clamped_units_of
    units = (units_of(column, AMOUNT.scale) for column in _AMOUNT_COLUMNS)
    return ", ".join(("timestamp", *units))


def candle_columns(db: Database, conn: Any, where: str, params: Sequence[Any]) -> Any:
    """Candles `where` selects, in time order, as NumPy columns of shape (6, candles):
    int64, or where a value passes int64 (a meme coin's volume) Python ints."""
    tail = f"FROM market_data WHERE {where} ORDER BY timestamp"
    sql = f"SELECT {candle_columns_sql(db.dialect)} {tail}"
    columns = db.int64_columns(conn, sql, params, len(CANDLE_FIELDS))
    if not (columns[1:] == INT64_MAX).any():
        return columns
    exact = f"SELECT {candle_columns_sql(db.dialect, exact=True)} {tail}"
    return unit_columns([tuple(map(int, row)) for row in conn.execute(exact, params).fetchall()])


def unit_columns(rows: Sequence[Sequence[int]]) -> Any:
    """Candle rows (timestamp and units) as NumPy columns of shape (6, candles): int64,
    or Python ints when a value passes int64."""
    import numpy as np

    try:
        return np.array(rows, dtype=np.int64).reshape(-1, len(CANDLE_FIELDS)).T
    except OverflowError:
        return np.array(rows, dtype=object).reshape(-1, len(CANDLE_FIELDS)).T


def arrow_columns(columns: Any) -> list[Any]:
    """Candle columns as Arrow arrays: int64, or decimal128(38, 0) units where a value
    passes int64."""
    import pyarrow as pa

    out = []
    for column in columns:
        try:
            out.append(pa.array(column, pa.int64()))
        except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError):
            out.append(pa.array([int(value) for value in column], pa.decimal128(38, 0)))
    return out


def _series(
    exchange: str, symbol: str, timeframe: str, since: int | None, until: int | None
) -> tuple[str, list[object]]:
    """The WHERE clause of one market's candles in a time range, in the order of the
    symbol/timeframe/timestamp index."""
    where = "symbol = ? AND timeframe = ? AND exchange = ?"
    params: list[object] = [symbol, timeframe, exchange]
    if since is not None:
        where += " AND timestamp >= ?"
        params.append(since)
    if until is not None:
        where += " AND timestamp < ?"
        params.append(until)
    return where, params


def _candle_query(
    dialect: Dialect,
    exchange: str,
    symbol: str,
    timeframe: str,
    *,
    since: int | None,
    until: int | None,
    exact: bool = False,
) -> tuple[str, list[object]]:
    where, params = _series(exchange, symbol, timeframe, since, until)
    columns = candle_columns_sql(dialect, exact=exact)
    return f"SELECT {columns} FROM market_data WHERE {where} ORDER BY timestamp", params


def _within(columns: Any, since: int | None, until: int | None) -> Any:
    """The candles of a block (in time order) from `since` to `until`."""
    import numpy as np

    stamps = columns[0]
    first = 0 if since is None else int(np.searchsorted(stamps, since))
    end = len(stamps) if until is None else int(np.searchsorted(stamps, until))
    return columns[:, first:end]


def _column_rows(
    db: Database, conn: Any, market: blocks.Market, since: int | None, until: int | None
) -> Any:
    """Candles read into columns of shape (6, candles) (`candle_columns`)."""
    where, params = _series(market.exchange, market.symbol, market.timeframe, since, until)
    return candle_columns(db, conn, where, params)


def _arrow_table(columns: Any) -> Any:
    import pyarrow as pa

    return pa.table(dict(zip(CANDLE_FIELDS, arrow_columns(columns), strict=True)))


def _holes_query(
    exchange: str,
    symbol: str,
    frame: Timeframe,
    *,
    since: int | None = None,
    until: int | None = None,
) -> tuple[str, list[object]]:
    """FROM and WHERE of the consecutive stored timestamps (previous, timestamp) further
    apart than a candle lasts; the window runs over the symbol/timeframe index."""
    where, params = _series(exchange, symbol, frame.name, since, until)
    sql = (
        "FROM (SELECT timestamp, lag(timestamp) OVER (ORDER BY timestamp) AS previous "
        f"FROM market_data WHERE {where}) AS steps WHERE timestamp - previous > ?"
    )
    return sql, [*params, frame.longest_ms]
