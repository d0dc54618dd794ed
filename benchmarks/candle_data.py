"""Candles and database files for the benchmarks (bench_ingest.py, bench_read.py and
bench_trade_insert.py).

`make_candles` makes one market's 1m candles (a random walk of XRP/ETH-like prices) as
market_data stores them, as ccxt-shaped str rows and as float rows; `fresh_database` makes
a database file at tradedb's newest schema; `run_baseline` times the issue's baseline: a
raw `executemany` of the integer tuples, one row per INSERT, in one BEGIN IMMEDIATE
transaction at synchronous=NORMAL.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradedb.store import Store

EXCHANGE = "binance"
SYMBOL = "XRP/ETH"
TIMEFRAME = "1m"
START_MS = 1_570_752_000_000  # 2019-10-11 00:00 UTC
MINUTE_MS = 60_000
SCALE = 10**8

CANDLE_INSERT = (
    "INSERT INTO market_data (symbol, timestamp, open_price, high_price, low_price, "
    "close_price, volume, timeframe, exchange) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class Candles:
    units: list[tuple[Any, ...]]  # rows as market_data stores them
    strings: list[list[object]]  # [ms, '0.00141342', ...]
    floats: list[list[object]]  # [ms, 0.00141342, ...]


def make_candles(count: int, seed: int = 20191011) -> Candles:
    """A random walk of 1m candles with XRP/ETH-like prices (8 decimals, as Binance gives)."""
    rng = random.Random(seed)
    price = 141_342  # 0.00141342 in units of 1e-8
    units, strings, floats = [], [], []
    for index in range(count):
        open_ = price
        close = max(1_000, open_ + rng.randint(-300, 300))
        high = max(open_, close) + rng.randint(0, 200)
        low = max(1, min(open_, close) - rng.randint(0, 200))
        volume = rng.randint(0, 5_000) * SCALE + rng.choice((0, 0, 50_000_000, 12_345_678))
        price = close
        ms = START_MS + index * MINUTE_MS
        values = (open_, high, low, close, volume)
        units.append((SYMBOL, ms, *values, TIMEFRAME, EXCHANGE))
        text = [format(Decimal(value).scaleb(-8).normalize(), "f") for value in values]
        strings.append([ms, *text])
        floats.append([ms, *(float(value) for value in text)])
    # The float rows must mean exactly what the string rows mean.
    for float_row, text_row in zip(floats, strings, strict=True):
        for value, text in zip(float_row[1:], text_row[1:], strict=True):
            assert Decimal(repr(value)) == Decimal(text), (value, text)
    return Candles(units, strings, floats)


def fresh_database(folder: Path, name: str, *, spec_only: bool = False) -> Path:
    """A new tradedb database at the newest schema; creating it is not timed.

    `spec_only` drops tradedb's candle-cache triggers, leaving market_data exactly as the
    specification defines it (table and indexes), for the raw baselines: SQLite's own
    cost for the spec's table, not for tradedb's additions.
    """
    path = folder / f"{name}.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    Store.open(path).close()
    if spec_only:
        conn = sqlite3.connect(path)
        try:
            for (trigger,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'market_data'"
            ).fetchall():
                conn.execute(f"DROP TRIGGER {trigger}")
            conn.commit()
        finally:
            conn.close()
    return path


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def raw_connection(path: Path, *, checkpoint_in_commit: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    if not checkpoint_in_commit:
        # SQLite's automatic checkpoint runs inside the commit that crosses 1000 WAL pages;
        # tradedb's store runs it from a thread after the commit, outside its timed call.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    return conn


def run_baseline(path: Path, candles: Candles, *, checkpoint_in_commit: bool = True) -> float:
    """Seconds to write the candles as the issue's baseline does.

    With `checkpoint_in_commit=False`, SQLite's automatic checkpoint is off, so the commit
    does not include it (tradedb's store checkpoints from a thread after its commit).
    """
    conn = raw_connection(path, checkpoint_in_commit=checkpoint_in_commit)
    try:

        def write() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(CANDLE_INSERT, candles.units)
            conn.execute("COMMIT")

        return timed(write)
    finally:
        conn.close()
