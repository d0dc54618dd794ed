"""Bulk candle writes and single ledger writes against what raw sqlite3 does on the same schema.

Run:  .venv/bin/python benchmarks/bench_bulk.py [--rows N] [--repeat K] [--write PATH]

Everything runs in one process on the same data. Each bulk figure is the median of K runs,
each on a fresh database file, and is reported as a ratio to the baseline: a raw
`executemany` of ready-made integer tuples into tradedb's own `market_data` table in one
BEGIN IMMEDIATE transaction at synchronous=NORMAL, which is what SQLite itself can do with
this schema. The single-write figures interleave a `store.trades.insert` and a raw
BEGIN IMMEDIATE / INSERT / COMMIT at synchronous=FULL, so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from results_file import replace_section
from tradedb.store import Store
from tradedb.store.bulk import candle_batch

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
TRADE_INSERT = (
    "INSERT INTO trades (symbol, side, amount, price, total_value, fee, fee_currency, "
    "timestamp, exchange, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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


def count_candles(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM market_data").fetchone()[0])
    finally:
        conn.close()


# --- bulk candles ------------------------------------------------------------------------


def run_baseline(path: Path, candles: Candles) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = NORMAL")

        def write() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(CANDLE_INSERT, candles.units)
            conn.execute("COMMIT")

        return timed(write)
    finally:
        conn.close()


def run_store(path: Path, rows: list[list[object]], *, redeliver: bool = False) -> float:
    with Store.open(path) as store:

        def write() -> object:
            return store.write_candles(rows, exchange=EXCHANGE, symbol=SYMBOL, timeframe=TIMEFRAME)

        if redeliver:
            write()
            elapsed = timed(write)
            result = write()
            assert result.unchanged == len(rows), result  # type: ignore[attr-defined]
            return elapsed
        return timed(write)


def validate(rows: list[list[object]]) -> None:
    prepared = candle_batch(rows, exchange=EXCHANGE, symbol=SYMBOL, timeframe=TIMEFRAME)
    assert len(prepared) == len(rows)


def bench_bulk(folder: Path, candles: Candles, repeat: int) -> dict[str, list[float]]:
    rows = len(candles.units)
    variants: dict[str, Callable[[Path], float]] = {
        "baseline: sqlite3 executemany, int tuples": lambda p: run_baseline(p, candles),
        "store.write_candles, str values": lambda p: run_store(p, candles.strings),
        "store.write_candles, float values": lambda p: run_store(p, candles.floats),
        "re-delivery, all rows unchanged": lambda p: run_store(p, candles.strings, redeliver=True),
    }
    # Where the time goes: the value checks alone, without SQL.
    checks_only: dict[str, Callable[[], object]] = {
        "(checks only, str values, no SQL)": lambda: validate(candles.strings),
        "(checks only, float values, no SQL)": lambda: validate(candles.floats),
    }
    seconds: dict[str, list[float]] = {name: [] for name in [*variants, *checks_only]}
    for run in range(repeat):
        for index, (name, variant) in enumerate(variants.items()):
            path = fresh_database(folder, f"bulk-{index}", spec_only=name.startswith("baseline"))
            seconds[name].append(variant(path))
            assert count_candles(path) == rows, name
        for name, check in checks_only.items():
            seconds[name].append(timed(check))
        print(f"  bulk run {run + 1}/{repeat} done", file=sys.stderr)
    return seconds


# --- one ledger write --------------------------------------------------------------------

TRADE = {
    "symbol": "BTC/USDT",
    "side": "buy",
    "amount": Decimal("0.01234567"),
    "price": Decimal("60123.45678901"),
    "total_value": Decimal("742.26108327"),
    "fee": Decimal("0.74226108"),
    "fee_currency": "USDT",
    "timestamp": 1_700_000_000_000,
    "exchange": "kraken",
    "status": "filled",
}


def trade_units() -> tuple[Any, ...]:
    def units(name: str) -> int:
        return int(TRADE[name] * SCALE)  # type: ignore[operator]

    return (
        TRADE["symbol"],
        TRADE["side"],
        units("amount"),
        units("price"),
        units("total_value"),
        units("fee"),
        TRADE["fee_currency"],
        TRADE["timestamp"],
        TRADE["exchange"],
        TRADE["status"],
    )


def bench_trades(folder: Path, count: int) -> tuple[list[float], list[float]]:
    store = Store.open(fresh_database(folder, "trades-store"))
    raw = sqlite3.connect(fresh_database(folder, "trades-raw"), isolation_level=None)
    raw.execute("PRAGMA synchronous = FULL")
    values = trade_units()
    by_store: list[float] = []
    by_raw: list[float] = []
    try:
        for _ in range(count):
            start = time.perf_counter()
            store.trades.insert(TRADE)
            by_store.append(time.perf_counter() - start)

            start = time.perf_counter()
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(TRADE_INSERT, values)
            raw.execute("COMMIT")
            by_raw.append(time.perf_counter() - start)
        assert store.trades.count() == count
        assert raw.execute("SELECT count(*) FROM trades").fetchone()[0] == count
    finally:
        store.close()
        raw.close()
    return by_store, by_raw


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


# --- report ------------------------------------------------------------------------------


def report(
    rows: int, repeat: int, bulk: dict[str, list[float]], trades: tuple[list[float], list[float]]
) -> str:
    lines = [
        f"Bulk candles: {rows:,} rows of 1m candles, median of {repeat} runs, "
        "each on a fresh database file.",
        "",
        "| write | median s | rows/s | time ÷ baseline |",
        "|---|---:|---:|---:|",
    ]
    baseline = statistics.median(next(iter(bulk.values())))
    for name, samples in bulk.items():
        median = statistics.median(samples)
        lines.append(f"| {name} | {median:.3f} | {rows / median:,.0f} | {median / baseline:.2f}x |")
    by_store, by_raw = trades
    lines += [
        "",
        f"One trade, durable (synchronous=FULL): {len(by_store):,} inserts each, interleaved.",
        "",
        "| write | median µs | p99 µs |",
        "|---|---:|---:|",
        f"| store.trades.insert | {statistics.median(by_store) * 1e6:,.0f} | "
        f"{p99(by_store) * 1e6:,.0f} |",
        f"| raw sqlite3 BEGIN IMMEDIATE; INSERT; COMMIT | {statistics.median(by_raw) * 1e6:,.0f} | "
        f"{p99(by_raw) * 1e6:,.0f} |",
        f"| ratio | {statistics.median(by_store) / statistics.median(by_raw):.2f}x | "
        f"{p99(by_store) / p99(by_raw):.2f}x |",
    ]
    return "\n".join(lines)


SECTION = "## Bulk writes (benchmarks/bench_bulk.py)"


def results_markdown(command: str, table: str) -> str:
    """The body of this benchmark's section of RESULTS.md (the heading is SECTION)."""
    return "\n".join(
        [
            f"Command: `{command}`",
            "",
            f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.machine()}.",
            "",
            "Machine: 2 cores, shared with other work and noisy. Read the medians and above all "
            "the ratios, which compare runs made in the same process on the same data; the "
            "absolute figures move from run to run.",
            "",
            table,
            "",
            "How to read it: the baseline is SQLite's own cost for this schema (the table, its",
            "UNIQUE key and the symbol/timeframe index: three B-trees per row). A store write is",
            "the value checks plus an upsert that also counts inserted and changed rows; the",
            "'checks only' rows time `tradedb.store.bulk.candle_rows` alone, so the rest of a",
            "store write is the SQL. Floats cost more to check than strings because each one",
            "goes through its shortest repr.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="candles per bulk write")
    parser.add_argument("--repeat", type=int, default=5, help="runs per bulk variant")
    parser.add_argument("--trades", type=int, default=2000, help="single trade inserts")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the database files")
    parser.add_argument("--write", type=Path, default=None, help="write the results here (.md)")
    args = parser.parse_args()

    candles = make_candles(args.rows)
    with tempfile.TemporaryDirectory(prefix="tradedb-bench-", dir=args.dir) as folder:
        bulk = bench_bulk(Path(folder), candles, args.repeat)
        trades = bench_trades(Path(folder), args.trades)
    table = report(args.rows, args.repeat, bulk, trades)
    print(table)
    if args.write:
        command = " ".join([".venv/bin/python", "benchmarks/bench_bulk.py", *sys.argv[1:]])
        # Only this script's section: the other benchmarks keep theirs.
        replace_section(args.write, SECTION, results_markdown(command, table))
        print(f"\nwritten to {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
