"""The market-data SQL beyond plain rows: candles as integer units, coverage and gaps.

Amounts stay in integer units of 1e-8 here; the market-data service does exact
arithmetic on them (a resampled volume is an integer sum) without a Decimal per value.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tradedb.store.bulk import CANDLE_COLUMNS, CANDLE_KEY, BulkResult, OnConflict, write_rows
from tradedb.store.database import Database

# timestamp, open, high, low, close, volume: the candle columns, amounts in units of 1e-8.
CandleUnits = tuple[int, int, int, int, int, int]


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
        sql, params = _candle_query(exchange, symbol, timeframe, since, until)
        rows: list[CandleUnits] = self.db.connection.execute(sql, params).fetchall()
        return rows

    def last_timestamp(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        """The newest stored candle's time, read from the index."""
        row = self.db.connection.execute(
            "SELECT max(timestamp) FROM market_data "
            "WHERE symbol = ? AND timeframe = ? AND exchange = ?",
            (symbol, timeframe, exchange),
        ).fetchone()
        return None if row[0] is None else int(row[0])

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
        prepared = [
            (symbol, ts, o, h, low, c, v, timeframe, exchange) for ts, o, h, low, c, v in rows
        ]
        return write_rows(
            self.db, "market_data", CANDLE_COLUMNS, CANDLE_KEY, prepared, on_conflict=on_conflict
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
        timeframe: str,
        step: int,
        *,
        since: int | None = None,
        until: int | None = None,
    ) -> list[tuple[int, int]]:
        """Pairs of consecutive stored timestamps more than `step` apart."""
        where, params = _series(exchange, symbol, timeframe, since, until)
        sql = (
            "SELECT previous, timestamp FROM (SELECT timestamp, lag(timestamp) OVER "
            f"(ORDER BY timestamp) AS previous FROM market_data WHERE {where}) "
            "WHERE timestamp - previous > ? ORDER BY timestamp"
        )
        params.append(step)
        return [(int(a), int(b)) for a, b in self.db.connection.execute(sql, params)]

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

        The rows stream from sqlite3 into one preallocated int64 array, with no list of
        row tuples in between. (ADBC's SQLite driver fills Arrow columns faster, but it
        carries a second copy of SQLite, and two copies in one process break each other's
        POSIX locks on the same file: in a test it crashed the process with a bus error
        while tradedb's checkpoint thread was running.)
        """
        import numpy as np
        import pyarrow as pa

        sql, params = _candle_query(exchange, symbol, timeframe, since, until)
        with self.db.snapshot() as conn:
            count = conn.execute(sql.replace(_CANDLE_COLUMNS, "count(*)", 1), params).fetchone()[0]
            flat = np.fromiter(
                itertools.chain.from_iterable(conn.execute(sql, params)),
                dtype=np.int64,
                count=count * len(CANDLE_FIELDS),
            )
        grid = flat.reshape(count, len(CANDLE_FIELDS))
        return pa.table(
            {name: pa.array(grid[:, index]) for index, name in enumerate(CANDLE_FIELDS)}
        )


CANDLE_FIELDS = ("timestamp", "open", "high", "low", "close", "volume")
_CANDLE_COLUMNS = "timestamp, open_price, high_price, low_price, close_price, volume"


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
    exchange: str, symbol: str, timeframe: str, since: int | None, until: int | None
) -> tuple[str, list[object]]:
    where, params = _series(exchange, symbol, timeframe, since, until)
    return f"SELECT {_CANDLE_COLUMNS} FROM market_data WHERE {where} ORDER BY timestamp", params
