"""The candle read cache: spans of one market's candles kept as compressed column blocks.

Python's sqlite3 builds a tuple and six ints for every candle it returns, about 1 µs a
row, so a year of 1m candles takes over half a second however fast SQLite scans. A
block holds CANDLES_PER_BLOCK candles' worth of time; a year of 1m candles is 64 blobs.

The blob is the six int64 columns (timestamp and the amounts in units), each stored as
differences from the value before it, one column after the other, compressed with LZ4
(frame format). Consecutive candles differ by little, so the differences compress to
about 40% of the plain columns, and LZ4 plus a running sum decodes a year of 1m candles
in about 10 ms; zstd made blobs a third smaller but decoded three times slower.

Why it stays true to market_data:
- Triggers (tradedb.schema.derived) delete a block in the same transaction as any
  write to a candle in its span, whoever writes it: tradedb, retention or ad-hoc SQL.
- While a market is live (its newest candle less than a day old), the span holding its
  newest candle is not cached, so a bot appending candles never invalidates a block.
- A reader never holds the write lock while it reads rows. It claims the missing blocks
  with a token of its own in one short write transaction, reads in a snapshot that
  begins after that commit, then stores each block only where its own claim is still
  there. A write to the span in between deleted the claim (and any later claim carries
  another token), so no block is ever stored from rows older than a write to its span.
- Read-only stores never build blocks; they use those that exist.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from tradedb.store.database import Database

CANDLES_PER_BLOCK = 8192

# A market whose newest candle is older than this is settled: its last span is cached too.
SETTLED_MS = 86_400_000
COLUMNS = 6


class Market(NamedTuple):
    symbol: str
    timeframe: str
    exchange: str


def block_starts(
    since: int | None, until: int | None, oldest: int, newest: int, span: int, *, live: bool
) -> tuple[list[int], list[int]]:
    """The blocks a read of [since, until) can use: those it overlaps, and among them
    those it covers whole, which it may build. While the market is `live`, both leave out
    the newest candle's block.

    Only whole blocks are built, so a short read never builds a block bigger than itself;
    a block built earlier also serves the reads that cover it in part.
    """
    low = max(oldest if since is None else since, oldest)
    high = newest + 1 if until is None else min(until, newest + 1)
    last = newest - newest % span if live else newest + 1
    overlapped = list(range(low - low % span, min(high, last), span))
    # Without a bound on a side, or with one beyond the stored candles, every stored candle
    # of the edge block on that side is wanted.
    covered_from = low - low % span if since is None else since
    covered_to = newest + span if until is None or until > newest else until
    whole = [start for start in overlapped if start >= covered_from and start + span <= covered_to]
    return overlapped, whole


_BUILT = (
    "FROM candle_blocks WHERE symbol = ? AND timeframe = ? AND exchange = ? "
    "AND first_ts >= ? AND first_ts <= ? AND data IS NOT NULL"
)


def built(conn: Any, market: Market, starts: Sequence[int]) -> set[int]:
    """The starts among `starts` whose block is built."""
    rows = conn.execute(f"SELECT first_ts {_BUILT}", (*market, starts[0], starts[-1]))
    return {first for (first,) in rows}


def stored(db: Database, conn: Any, market: Market, starts: Sequence[int]) -> dict[int, Any]:
    """The built blocks among `starts`, decoded to int64 arrays of shape (6, candles)."""
    rows = db.rows_with_blobs(
        conn, f"SELECT first_ts, candles, data {_BUILT}", (*market, starts[0], starts[-1])
    )
    return {first: decode(data, candles) for first, candles, data in rows}


def claim(db: Database, market: Market, starts: Sequence[int], span: int) -> int:
    """Mark blocks as being built by this reader; returns the reader's token."""
    token = secrets.randbits(62) + 1
    with db.transaction(durable=False) as conn:
        conn.executemany(
            "INSERT INTO candle_blocks (symbol, timeframe, exchange, first_ts, end_ts, "
            "builder) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (symbol, timeframe, exchange, first_ts) "
            "DO UPDATE SET builder = excluded.builder WHERE candle_blocks.data IS NULL",
            [(*market, start, start + span, token) for start in starts],
        )
    return token


def keep(db: Database, market: Market, start: int, columns: Any, token: int) -> bool:
    """Store a block read after the claim `token`, if that claim still stands."""
    data = encode(columns)
    with db.transaction(durable=False) as conn:
        cursor = conn.execute(
            "UPDATE candle_blocks SET data = ?, candles = ?, builder = NULL "
            "WHERE symbol = ? AND timeframe = ? AND exchange = ? AND first_ts = ? "
            "AND builder = ? AND data IS NULL",
            (data, columns.shape[1], *market, start, token),
        )
        return int(cursor.rowcount) == 1


def seal_written(
    conn: Any,
    market: Market,
    columns: Any,
    span: int,
    *,
    live_since: int,
    read: Callable[[int, int], Any],
) -> int:
    """Build, in the writing transaction, the blocks of the spans a write of candles
    (int64 columns of shape (6, rows), upserted with replace) filled or passed, so that
    the first read after an import or a download is as fast as the next. Returns the
    blocks built.

    - A span holding as many stored candles as written ones is built from the written
      ones: each is stored with the written values, so equal counts mean equal sets.
    - A span the write went past (it also wrote a later span) but did not fill alone is
      built from its stored candles, read by `read(since, until)`: a download writing
      page after page seals each span once, as it moves on.
    - Any other span the write touched, and the span of a live market's newest candle
      (newer than `live_since`), are left to be built by the first read that covers them.
    """
    import numpy as np

    stamps = columns[0]
    # A batch holds each time once (bulk.candle_batch), in any order; blocks are cut
    # from it in time order.
    in_order = bool(np.all(stamps[1:] > stamps[:-1]))
    written = columns if in_order else columns[:, np.argsort(stamps)]
    starts, firsts, counts = np.unique(
        written[0] - written[0] % span, return_index=True, return_counts=True
    )
    where = "symbol = ? AND timeframe = ? AND exchange = ?"
    # A span the write filled holds no other candle (times are aligned to the timeframe),
    # so only the others are counted: counting a year of 1m candles took 0.4 s on
    # PostgreSQL, its two partly written spans a few ms.
    stored = {
        start: conn.execute(
            f"SELECT count(*) FROM market_data WHERE {where} AND timestamp >= ? AND timestamp < ?",
            (*market, start, start + span),
        ).fetchone()[0]
        for start, count in zip(starts.tolist(), counts.tolist(), strict=True)
        if count < CANDLES_PER_BLOCK
    }
    newest = conn.execute(
        f"SELECT timestamp FROM market_data WHERE {where} ORDER BY timestamp DESC LIMIT 1", market
    )
    latest = newest.fetchone()[0]
    live_block = latest - latest % span if latest >= live_since else None
    passed = int(starts[-1])
    blocks = []
    for start, first, count in zip(starts.tolist(), firsts.tolist(), counts.tolist(), strict=True):
        if start == live_block:
            continue
        if stored.get(start, CANDLES_PER_BLOCK) == count:
            block = written[:, first : first + count]
        elif start < passed:
            block = read(start, start + span)
        else:
            continue
        blocks.append((*market, start, start + span, block.shape[1], encode(block)))
    conn.executemany(
        "INSERT INTO candle_blocks (symbol, timeframe, exchange, first_ts, end_ts, candles, "
        "data) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (symbol, timeframe, exchange, first_ts) DO UPDATE SET "
        "end_ts = excluded.end_ts, candles = excluded.candles, data = excluded.data, "
        "builder = NULL",
        blocks,
    )
    return len(blocks)


def encode(columns: Any) -> bytes:
    """int64 columns of shape (6, candles) as one compressed blob."""
    import numpy as np
    import pyarrow as pa

    differences = np.diff(columns, axis=1, prepend=0)
    data: bytes = pa.Codec("lz4").compress(differences.tobytes(), asbytes=True)
    return data


def decode(data: bytes, candles: int) -> Any:
    import numpy as np
    import pyarrow as pa

    raw = pa.Codec("lz4").decompress(data, decompressed_size=COLUMNS * candles * 8)
    differences = np.frombuffer(raw, dtype=np.int64).reshape(COLUMNS, candles)
    return np.cumsum(differences, axis=1)
