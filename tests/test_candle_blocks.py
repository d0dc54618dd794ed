"""The candle read cache never changes what a read returns.

Whatever is written, by tradedb or by a user's own SQL, a read through the cache equals
a read of the rows. Blocks are made small here (16 candles) so that a few hundred
candles span many blocks.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradedb.store import Store, candle_blocks, columns
from tradedb.store.candle_blocks import Market

EXCHANGE, SYMBOL, TIMEFRAME = "kraken", "BTC/USD", "1m"
MARKET = Market(SYMBOL, TIMEFRAME, EXCHANGE)
MINUTE = 60_000
BLOCK = 16
SPAN = BLOCK * MINUTE
T0 = 1_700_000_000_000 - 1_700_000_000_000 % SPAN


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(candle_blocks, "CANDLES_PER_BLOCK", BLOCK)


@pytest.fixture
def columnwise_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "MIN_ROWS", 1)


@pytest.fixture(autouse=True)
def live_market(monkeypatch: pytest.MonkeyPatch) -> None:
    """The candles here are from 2023; unless a test says otherwise, treat their market as
    live, still receiving candles."""
    monkeypatch.setattr(candle_blocks, "SETTLED_MS", 10**13)


def candles(first: int, count: int, price: int = 100) -> list[list[object]]:
    """`count` 1m candles from minute `first` after T0; `price` tells versions apart."""
    return [
        [T0 + (first + index) * MINUTE, str(price), str(price + 2), "1", str(price + 1), "5"]
        for index in range(count)
    ]


def write(store: Store, rows: list[list[object]]) -> None:
    store.write_candles(rows, exchange=EXCHANGE, symbol=SYMBOL, timeframe=TIMEFRAME)


def cached_read(store: Store, since: int | None = None, until: int | None = None) -> list[Any]:
    table = store.market.candle_arrow(EXCHANGE, SYMBOL, TIMEFRAME, since=since, until=until)
    return [tuple(row.values()) for row in table.to_pylist()]


def row_read(store: Store, since: int | None = None, until: int | None = None) -> list[Any]:
    return store.market.candle_units(EXCHANGE, SYMBOL, TIMEFRAME, since, until)


def built_blocks(store: Store) -> list[int]:
    return [
        first
        for (first,) in store.db.connection.execute(
            "SELECT first_ts FROM candle_blocks WHERE data IS NOT NULL ORDER BY first_ts"
        )
    ]


def test_a_whole_read_builds_every_block_but_the_newest(store: Store) -> None:
    write(store, candles(0, 5 * BLOCK + 3))

    first = cached_read(store)

    assert first == row_read(store)
    assert built_blocks(store) == [T0 + index * SPAN for index in range(5)]
    assert cached_read(store) == first


def test_a_settled_market_caches_its_last_block_too(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(candle_blocks, "SETTLED_MS", 86_400_000)
    write(store, candles(0, 5 * BLOCK + 3))

    first = cached_read(store)

    assert first == row_read(store)
    assert built_blocks(store) == [T0 + index * SPAN for index in range(6)]
    assert cached_read(store) == first
    assert cached_read(store, T0 + 5 * SPAN + MINUTE) == row_read(store, T0 + 5 * SPAN + MINUTE)


def test_a_read_shorter_than_a_block_builds_nothing(store: Store) -> None:
    write(store, candles(0, 5 * BLOCK))

    assert cached_read(store, T0 + 3 * MINUTE, T0 + 10 * MINUTE) == row_read(
        store, T0 + 3 * MINUTE, T0 + 10 * MINUTE
    )
    assert built_blocks(store) == []


def test_built_blocks_serve_reads_that_cover_them_in_part(store: Store) -> None:
    write(store, candles(0, 5 * BLOCK))
    cached_read(store)
    since, until = T0 + 5 * MINUTE, T0 + 2 * SPAN + 7 * MINUTE

    assert cached_read(store, since, until) == row_read(store, since, until)


INSIDE = T0 + SPAN + 4 * MINUTE  # a minute of the second block, left empty at first
WHERE = "symbol = ? AND timeframe = ? AND exchange = ? AND timestamp = ?"
STORED = (SYMBOL, TIMEFRAME, EXCHANGE, INSIDE + MINUTE)
USER_SQL = {
    "update": (f"UPDATE market_data SET volume = 777 WHERE {WHERE}", STORED),
    "delete": (f"DELETE FROM market_data WHERE {WHERE}", STORED),
    "insert": (
        "INSERT INTO market_data (symbol, timestamp, open_price, high_price, low_price, "
        "close_price, volume, timeframe, exchange) VALUES (?, ?, 1, 1, 1, 1, 1, ?, ?)",
        (SYMBOL, INSIDE, TIMEFRAME, EXCHANGE),
    ),
    # Moves a candle from the second block into the third: both blocks go.
    "move": (f"UPDATE market_data SET timestamp = timestamp + {SPAN + 30} WHERE {WHERE}", STORED),
}


@pytest.mark.parametrize("change", ["tradedb insert", "tradedb upsert", *USER_SQL])
def test_any_write_to_a_span_drops_its_block(store: Store, change: str) -> None:
    write(store, [row for row in candles(0, 4 * BLOCK) if row[0] != INSIDE])
    cached_read(store)
    assert T0 + SPAN in built_blocks(store)

    if change == "tradedb insert":
        write(store, [[INSIDE, "9", "9", "9", "9", "9"]])
    elif change == "tradedb upsert":
        write(store, [[INSIDE + MINUTE, "9", "9", "9", "9", "9"]])
    else:
        with store.db.transaction() as conn:
            conn.execute(*USER_SQL[change])

    assert T0 + SPAN not in built_blocks(store)
    if change == "move":
        assert T0 + 2 * SPAN not in built_blocks(store)
    assert cached_read(store) == row_read(store)


@pytest.mark.postgresql_only
def test_truncate_drops_every_block(store: Store) -> None:
    # TRUNCATE fires no DELETE trigger; without its own, the blocks of the candles it
    # removed would still be read once candles are written into other spans again.
    write(store, candles(0, 4 * BLOCK))
    cached_read(store)
    assert built_blocks(store) == [T0, T0 + SPAN, T0 + 2 * SPAN]

    with store.db.transaction() as conn:
        conn.execute("TRUNCATE market_data")
    write(store, [row for row in candles(0, 4 * BLOCK, price=7) if row[0] in (T0, T0 + 3 * SPAN)])

    assert built_blocks(store) == []
    assert cached_read(store) == row_read(store)
    assert len(cached_read(store)) == 2


def test_appending_new_candles_keeps_the_built_blocks(store: Store) -> None:
    write(store, candles(0, 3 * BLOCK + 2))
    cached_read(store)
    before = built_blocks(store)

    write(store, candles(3 * BLOCK + 2, 5))

    assert built_blocks(store) == before
    assert cached_read(store) == row_read(store)


def test_a_write_after_the_claim_keeps_the_block_from_being_stored(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(store, candles(0, 3 * BLOCK))
    claim = candle_blocks.claim

    def claim_then_someone_writes(*args: Any) -> int:
        token = claim(*args)
        write(store, [[T0 + 3 * MINUTE, "50", "52", "1", "51", "5"]])
        return token

    monkeypatch.setattr(candle_blocks, "claim", claim_then_someone_writes)
    read = cached_read(store)

    assert read == row_read(store)
    assert T0 not in built_blocks(store)


def test_a_claim_taken_over_by_another_reader_is_not_stored_by_the_first(store: Store) -> None:
    write(store, candles(0, 2 * BLOCK))
    table = store.market.candle_arrow(EXCHANGE, SYMBOL, TIMEFRAME, since=T0, until=T0 + SPAN)
    columns = np.array([table.column(index).to_numpy() for index in range(6)])
    store.db.connection.execute("DELETE FROM candle_blocks")
    first = candle_blocks.claim(store.db, MARKET, [T0], SPAN)
    second = candle_blocks.claim(store.db, MARKET, [T0], SPAN)

    assert not candle_blocks.keep(store.db, MARKET, T0, columns, first)
    assert candle_blocks.keep(store.db, MARKET, T0, columns, second)
    assert (candle_blocks.stored(store.db, store.db.connection, MARKET, [T0])[T0] == columns).all()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_read_only_store_reads_correctly_and_builds_nothing(db_path: Path) -> None:
    with Store.open(db_path) as writer:
        write(writer, candles(0, 4 * BLOCK))
        expected = row_read(writer)
        writer.db.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = file_digest(db_path)

    with Store.open(db_path, readonly=True) as reader:
        assert cached_read(reader) == expected
        assert built_blocks(reader) == []

    assert file_digest(db_path) == before


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("write"), st.integers(0, 6 * BLOCK), st.integers(1, 40), st.integers(1, 9)
        ),
        st.tuples(st.just("delete"), st.integers(0, 6 * BLOCK), st.integers(1, 20), st.just(0)),
        st.tuples(
            st.just("read"), st.integers(-5, 7 * BLOCK), st.integers(0, 7 * BLOCK), st.just(0)
        ),
    ),
    max_size=25,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations)
def test_reads_equal_the_rows_after_any_writes(
    shared_store: Store, columnwise_batches: None, script: list[tuple[str, int, int, int]]
) -> None:
    """Writes build blocks (column-wise batches), reads build and use them, deletes by
    user SQL drop them: whatever the order, a read equals the rows."""
    with shared_store.db.transaction() as conn:
        conn.execute("DELETE FROM market_data")
    for action, first, count, price in script:
        if action == "write":
            write(shared_store, candles(first, count, 10 * price))
        elif action == "delete":
            with shared_store.db.transaction() as conn:
                conn.execute(
                    "DELETE FROM market_data WHERE timestamp >= ? AND timestamp < ?",
                    (T0 + first * MINUTE, T0 + (first + count) * MINUTE),
                )
        else:
            since, until = T0 + first * MINUTE, T0 + (first + count) * MINUTE
            assert cached_read(shared_store, since, until) == row_read(shared_store, since, until)
        assert cached_read(shared_store) == row_read(shared_store)


@given(
    st.lists(
        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=6, max_size=6), min_size=0, max_size=50
    )
)
def test_a_block_decodes_to_exactly_what_was_encoded(rows: list[list[int]]) -> None:
    """Differences of extreme int64 values wrap around; the running sum wraps them back."""
    columns = np.array(rows, dtype=np.int64).reshape(-1, 6).T.copy()

    decoded = candle_blocks.decode(candle_blocks.encode(columns), columns.shape[1])

    assert decoded.dtype == np.int64
    assert decoded.tolist() == columns.tolist()


# --- blocks built as candles are written -------------------------------------------------


def test_a_bulk_write_builds_its_blocks_at_once(store: Store, columnwise_batches: None) -> None:
    write(store, candles(0, 4 * BLOCK + 5))

    assert built_blocks(store) == [T0 + index * SPAN for index in range(4)]
    assert cached_read(store) == row_read(store)


def test_a_span_the_write_went_past_is_built_from_its_stored_candles(
    store: Store, columnwise_batches: None
) -> None:
    write(store, [row for row in candles(0, 3 * BLOCK) if row[0] < T0 + SPAN + 3 * MINUTE])
    store.db.connection.execute("DELETE FROM candle_blocks")

    write(store, candles(BLOCK + 5, 2 * BLOCK + 2))  # the second span also holds 3 older ones

    assert built_blocks(store) == [T0 + SPAN, T0 + 2 * SPAN]
    assert cached_read(store) == row_read(store)


def test_a_correction_inside_a_span_leaves_its_block_to_the_next_read(
    store: Store, columnwise_batches: None
) -> None:
    write(store, candles(0, 4 * BLOCK))
    assert T0 + SPAN in built_blocks(store)

    write(store, candles(BLOCK + 3, 5, price=500))

    assert T0 + SPAN not in built_blocks(store)
    assert cached_read(store) == row_read(store)
    assert T0 + SPAN in built_blocks(store)


def test_a_download_page_by_page_seals_each_span_as_it_moves_on(
    store: Store, columnwise_batches: None
) -> None:
    for first in range(0, 5 * BLOCK, 5):
        write(store, candles(first, 5))

    assert built_blocks(store) == [T0 + index * SPAN for index in range(4)]
    assert cached_read(store) == row_read(store)


def test_a_write_that_keeps_stored_values_builds_no_block(
    store: Store, columnwise_batches: None
) -> None:
    write(store, candles(0, 3 * BLOCK, price=100))
    store.db.connection.execute("DELETE FROM candle_blocks")

    store.write_candles(
        candles(0, 3 * BLOCK, price=200),
        exchange=EXCHANGE,
        symbol=SYMBOL,
        timeframe=TIMEFRAME,
        on_conflict="keep",
    )

    assert built_blocks(store) == []
    assert cached_read(store) == row_read(store)


def test_a_write_out_of_order_builds_what_was_stored(
    store: Store, columnwise_batches: None
) -> None:
    rows = candles(0, 3 * BLOCK, price=100)[::-1]

    write(store, rows)

    assert built_blocks(store) == [T0, T0 + SPAN]
    assert cached_read(store) == row_read(store)
