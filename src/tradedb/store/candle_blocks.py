"""The candle read cache: spans of one market's candles kept as compressed Arrow streams.

Python's sqlite3 builds a tuple and six ints for every candle it returns, about 1 µs a
row, so a year of 1m candles takes over half a second however fast SQLite scans. A
block holds CANDLES_PER_BLOCK candles' worth of time as one zstd-compressed Arrow IPC
stream; a year of 1m candles is then 64 blobs.

Why it stays true to market_data:
- Triggers (tradedb.schema.derived) delete a block in the same transaction as any
  write to a candle in its span, whoever writes it: tradedb, retention or ad-hoc SQL.
- Only spans wholly before the span of the market's newest candle are cached, so a
  bot appending candles never invalidates a block.
- A reader never holds the write lock while it reads rows. It claims the missing blocks
  with a token of its own in one short write transaction, reads in a snapshot that
  begins after that commit, then stores each block only where its own claim is still
  there. A write to the span in between deleted the claim (and any later claim carries
  another token), so no block is ever stored from rows older than a write to its span.
- Read-only stores never build blocks; they use those that exist.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

from tradedb.store.database import Database

CANDLES_PER_BLOCK = 8192


class Market(NamedTuple):
    symbol: str
    timeframe: str
    exchange: str


def block_starts(
    since: int | None, until: int | None, oldest: int, newest: int, span: int
) -> tuple[list[int], list[int]]:
    """The blocks a read of [since, until) can use: those it overlaps, and among them
    those it covers whole, which it may build. Both leave out the newest candle's block.

    Only whole blocks are built, so a short read never builds a block bigger than itself;
    a block built earlier also serves the reads that cover it in part.
    """
    low = max(oldest if since is None else since, oldest)
    high = newest + 1 if until is None else min(until, newest + 1)
    newest_block = newest - newest % span
    overlapped = list(range(low - low % span, min(high, newest_block), span))
    # With no bound on one side, every stored candle of the edge block is wanted.
    covered_from = low - low % span if since is None else since
    whole = [start for start in overlapped if start >= covered_from and start + span <= high]
    return overlapped, whole


_BUILT = (
    "FROM candle_blocks WHERE symbol = ? AND timeframe = ? AND exchange = ? "
    "AND first_ts >= ? AND first_ts <= ? AND data IS NOT NULL"
)


def built(conn: sqlite3.Connection, market: Market, starts: Sequence[int]) -> set[int]:
    """The starts among `starts` whose block is built."""
    rows = conn.execute(f"SELECT first_ts {_BUILT}", (*market, starts[0], starts[-1]))
    return {first for (first,) in rows}


def stored(conn: sqlite3.Connection, market: Market, starts: Sequence[int]) -> dict[int, Any]:
    """The built blocks among `starts`, decoded to Arrow tables."""
    import pyarrow as pa

    rows = conn.execute(f"SELECT first_ts, data {_BUILT}", (*market, starts[0], starts[-1]))
    return {first: pa.ipc.open_stream(pa.py_buffer(data)).read_all() for first, data in rows}


def claim(db: Database, market: Market, starts: Sequence[int], span: int) -> int:
    """Mark blocks as being built by this reader; returns the reader's token."""
    token = secrets.randbits(62) + 1
    with db.transaction(durable=False) as conn:
        conn.executemany(
            "INSERT INTO candle_blocks (symbol, timeframe, exchange, first_ts, end_ts, "
            "builder) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (symbol, timeframe, exchange, first_ts) "
            "DO UPDATE SET builder = excluded.builder WHERE data IS NULL",
            [(*market, start, start + span, token) for start in starts],
        )
    return token


def keep(db: Database, market: Market, start: int, table: Any, token: int) -> bool:
    """Store a block read after the claim `token`, if that claim still stands."""
    data = encode(table)
    with db.transaction(durable=False) as conn:
        cursor = conn.execute(
            "UPDATE candle_blocks SET data = ?, candles = ?, builder = NULL "
            "WHERE symbol = ? AND timeframe = ? AND exchange = ? AND first_ts = ? "
            "AND builder = ? AND data IS NULL",
            (data, table.num_rows, *market, start, token),
        )
        return cursor.rowcount == 1


def encode(table: Any) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data
