"""Read: a year of one market's 1m candles into a DataFrame, tradedb's get_candles against a raw
sqlite3 fetchall and a freqtrade-style feather file.

Run:  .venv/bin/python benchmarks/bench_read.py [--rows N] [--other-rows M] [--repeat K]
          [--dir FOLDER] [--write PATH]

One database is built through `store.write_candles`: N 1m candles of one market (a year is
525,600) and M candles of each of two neighbouring markets (XRP/BTC and XRP/USDT sort just
before and after XRP/ETH, so the index holds other markets' entries on both sides of the
one read). The markets are written a week at a time in turns, as a collector would, so the
read market's rows are not one contiguous run of the table. The same candles are written
as a freqtrade-style feather file: date as datetime64[ms, UTC], the amounts as float64,
lz4 at level 9 as freqtrade's FeatherDataHandler writes it.

Variants, each through a connection or file handle of its own, taking turns (the order
rotates from run to run) so that machine noise hits them alike; median and maximum of K
runs. The get_candles variants share one store kept open, as a bot keeps it, so they read
whatever tradedb cached in the first round; one more times the first read after the write:
a new store on a copy of the database taken before any read.

A first, untimed round checks every result: get_candles' frame must equal both the
fetchall baseline's and the feather file's (built from the source strings, not from
get_candles), and the exact frame must hold the source values as Decimals.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from pandas.testing import assert_frame_equal

from candle_data import EXCHANGE, MINUTE_MS, SYMBOL, TIMEFRAME, fresh_database, make_candles
from results_file import preamble, replace_section
from tradedb.services.marketdata.candles import get_candles
from tradedb.store import Store

try:
    import polars
except ImportError:  # polars is optional for tradedb, so is its row here
    polars = None

SECTION = "## Read (benchmarks/bench_read.py)"
AMOUNTS = ("open", "high", "low", "close", "volume")
NEIGHBOURS = ("XRP/BTC", "XRP/USDT")
WEEK = 7 * 24 * 60  # candles per write, per market
SELECT = (
    "SELECT timestamp, open_price, high_price, low_price, close_price, volume FROM market_data "
    "WHERE symbol = ? AND timeframe = ? AND exchange = ? ORDER BY timestamp"
)
GET_CANDLES = "tradedb get_candles -> pandas, float64 (default)"
FIRST_READ = "tradedb get_candles, first read after the write (new store, nothing cached)"
BASELINE = "baseline: sqlite3 fetchall -> pandas.DataFrame, float64"
FEATHER = "pandas.read_feather, freqtrade-style file"
MAX_SECONDS = 0.3
MIN_SPEEDUP = 3.0
MAX_FEATHER_RATIO = 2.0


# --- building the data -------------------------------------------------------------------------


def build(folder: Path, rows: int, other_rows: int) -> tuple[Path, Path, list[list[object]]]:
    """The database and the feather file; returns them and the read market's source rows.

    The database file is kept as it is after the write (a copy of it, taken before any read,
    is 'pristine.sqlite'), so that the first read after a write can be timed again and again.
    """
    markets = {SYMBOL: make_candles(rows).strings}
    for seed, symbol in enumerate(NEIGHBOURS):
        markets[symbol] = make_candles(other_rows, seed=seed).strings
    path = fresh_database(folder, "read")
    with Store.open(path) as store:
        longest = max(map(len, markets.values()))
        for at in range(0, longest, WEEK):
            for symbol, candles in markets.items():
                if at < len(candles):
                    store.write_candles(
                        candles[at : at + WEEK],
                        exchange=EXCHANGE,
                        symbol=symbol,
                        timeframe=TIMEFRAME,
                    )
            print(
                f"  written {min(at + WEEK, longest):,} of {longest:,} candles per market",
                file=sys.stderr,
            )
    # Closing the last connection checkpointed the WAL into the file and removed it, so
    # the file alone is the whole database.
    assert not Path(f"{path}-wal").exists(), "the WAL outlived the last connection"
    shutil.copyfile(path, folder / "pristine.sqlite")
    source = markets[SYMBOL]
    feather = folder / f"{EXCHANGE}-{SYMBOL.replace('/', '_')}-{TIMEFRAME}.feather"
    freqtrade_frame(source).to_feather(feather, compression_level=9, compression="lz4")
    return path, feather, source


def freqtrade_frame(source: list[list[object]]) -> pd.DataFrame:
    """The candles as freqtrade holds them, made from the source strings (so that the check
    against get_candles compares two independent conversions)."""
    frame = pd.DataFrame(source, columns=["date", *AMOUNTS])
    frame["date"] = pd.to_datetime(frame["date"], unit="ms", utc=True).dt.as_unit("ms")
    for name in AMOUNTS:
        frame[name] = frame[name].map(float).astype("float64")
    return frame


# --- the variants ------------------------------------------------------------------------------


def fetchall_frame(conn: sqlite3.Connection) -> pd.DataFrame:
    rows = conn.execute(SELECT, (SYMBOL, TIMEFRAME, EXCHANGE)).fetchall()
    frame = pd.DataFrame(rows, columns=["date", *AMOUNTS])
    # pandas would make microseconds; get_candles' column is milliseconds, as stored.
    frame["date"] = pd.to_datetime(frame["date"], unit="ms", utc=True).dt.as_unit("ms")
    for name in AMOUNTS:
        frame[name] = frame[name] / 1e8
    return frame


def first_read(folder: Path) -> tuple[float, Any]:
    """Seconds and result of get_candles on a new store over the database as written, with
    nothing cached by earlier reads (in SQLite's page cache or any cache of tradedb's).
    Copying the file is not timed; the copy stays in the OS page cache, as a file just
    written does."""
    copy = folder / "first-read.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(folder / "pristine.sqlite", copy)
    # The copy's dirty pages are flushed now, not by the kernel in the middle of a read.
    with open(copy, "rb+") as handle:
        os.fsync(handle.fileno())
    with Store.open(copy) as store:
        gc.collect()
        start = time.perf_counter()
        frame = get_candles(store, EXCHANGE, SYMBOL, TIMEFRAME)
        return time.perf_counter() - start, frame


def timing(read: Callable[[], Any]) -> Callable[[], tuple[float, Any]]:
    def timed_read() -> tuple[float, Any]:
        # Whatever an earlier variant left for the collector is not this one's cost.
        gc.collect()
        start = time.perf_counter()
        result = read()
        return time.perf_counter() - start, result

    return timed_read


def variants(
    store: Store, conn: sqlite3.Connection, folder: Path, feather: Path
) -> dict[str, Callable[[], tuple[float, Any]]]:
    found: dict[str, Callable[[], Any]] = {
        GET_CANDLES: lambda: get_candles(store, EXCHANGE, SYMBOL, TIMEFRAME),
        "tradedb get_candles exact=True -> pandas, Decimal objects": lambda: get_candles(
            store, EXCHANGE, SYMBOL, TIMEFRAME, exact=True
        ),
        "tradedb get_candles output='arrow', float64": lambda: get_candles(
            store, EXCHANGE, SYMBOL, TIMEFRAME, output="arrow"
        ),
    }
    if polars is not None:
        found["tradedb get_candles output='polars', float64"] = lambda: get_candles(
            store, EXCHANGE, SYMBOL, TIMEFRAME, output="polars"
        )
    found[BASELINE] = lambda: fetchall_frame(conn)
    found[FEATHER] = lambda: pd.read_feather(feather)
    timed_reads = {name: timing(read) for name, read in found.items()}
    first: dict[str, Callable[[], tuple[float, Any]]] = {FIRST_READ: lambda: first_read(folder)}
    # Shown next to the other get_candles row.
    return {GET_CANDLES: timed_reads.pop(GET_CANDLES), **first, **timed_reads}


def check(results: dict[str, Any], source: list[list[object]]) -> None:
    """Every variant read the same candles, and they are the source's."""
    frame = results[GET_CANDLES]
    assert len(frame) == len(source), (len(frame), len(source))
    assert_frame_equal(frame, results[BASELINE])
    assert_frame_equal(frame, results[FIRST_READ])
    assert_frame_equal(frame, results[FEATHER])
    assert_frame_equal(results["tradedb get_candles output='arrow', float64"].to_pandas(), frame)
    if polars is not None:
        assert_frame_equal(
            results["tradedb get_candles output='polars', float64"].to_pandas(), frame
        )
    exact = results["tradedb get_candles exact=True -> pandas, Decimal objects"]
    assert exact["date"].equals(frame["date"])
    for index, name in enumerate(AMOUNTS, start=1):
        assert exact[name].tolist() == [Decimal(row[index]) for row in source], name  # type: ignore[arg-type]
    assert (frame["date"].diff().dropna() == pd.Timedelta(milliseconds=MINUTE_MS)).all()


def bench(
    store: Store,
    conn: sqlite3.Connection,
    *,
    folder: Path,
    feather: Path,
    source: list[list[object]],
    repeat: int,
) -> dict[str, list[float]]:
    reads = variants(store, conn, folder, feather)
    # The first round also pays for imports and cold caches; it is the one that is checked.
    check({name: read()[1] for name, read in reads.items()}, source)
    print("  results checked: all variants read the source candles", file=sys.stderr)
    names = list(reads)
    print("  seconds, in this order: " + "; ".join(names), file=sys.stderr)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for run in range(repeat):
        shift = run % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed, result = reads[name]()
            seconds[name].append(elapsed)
            del result  # freeing a result is not part of reading it
        print(
            f"  run {run + 1}/{repeat}: " + ", ".join(f"{seconds[name][-1]:.3f}" for name in names),
            file=sys.stderr,
        )
    return seconds


# --- report ------------------------------------------------------------------------------------


def report(rows: int, other_rows: int, repeat: int, seconds: dict[str, list[float]]) -> str:
    median = {name: statistics.median(samples) for name, samples in seconds.items()}
    reference = median[GET_CANDLES]
    lines = [
        f"{rows:,} 1m candles of one market ({EXCHANGE} {SYMBOL}) read whole, in a database "
        f"that also holds {len(NEIGHBOURS)} neighbouring markets of {other_rows:,} candles; "
        f"median and maximum of {repeat} runs, the variants taking turns.",
        "",
        "| variant | median s | max s | ratio to get_candles |",
        "|---|---:|---:|---:|",
    ]
    for name, samples in seconds.items():
        lines.append(
            f"| {name} | {median[name]:.3f} | {max(samples):.3f} | "
            f"{median[name] / reference:.2f}x |"
        )
    speedup = median[BASELINE] / reference
    feather_ratio = reference / median[FEATHER]
    lines += [
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        f"| get_candles <= {MAX_SECONDS} s | {reference:.3f} s median, "
        f"{max(seconds[GET_CANDLES]):.3f} s max | {yes(reference <= MAX_SECONDS)} |",
        f"| get_candles >= {MIN_SPEEDUP:g}x faster than fetchall -> DataFrame | "
        f"{speedup:.2f}x | {yes(speedup >= MIN_SPEEDUP)} |",
        f"| get_candles <= {MAX_FEATHER_RATIO:g}x read_feather | {feather_ratio:.2f}x | "
        f"{yes(feather_ratio <= MAX_FEATHER_RATIO)} |",
        f"| first read after the write <= {MAX_SECONDS} s (for information) | "
        f"{median[FIRST_READ]:.3f} s median, {max(seconds[FIRST_READ]):.3f} s max | "
        f"{yes(median[FIRST_READ] <= MAX_SECONDS)} |",
    ]
    return "\n".join(lines)


def yes(met: bool) -> str:
    return "yes" if met else "no"


def results_markdown(command: str, table: str) -> str:
    """The body of this benchmark's section of RESULTS.md (the heading is SECTION)."""
    versions = f"pandas {pd.__version__}"
    if polars is not None:
        versions += f", polars {polars.__version__}"
    return "\n".join(
        [
            *preamble(
                command,
                versions=versions,
                setup="Files in a temporary folder, in the OS page cache after the first round.",
            ),
            table,
            "",
            "How to read it: 'ratio to get_candles' is a variant's median time over",
            "get_candles' (above 1 is slower than get_candles). Every variant gives the same",
            "candles: the default frame (date as datetime64[ms, UTC], amounts float64) equals",
            "the fetchall baseline's and the feather file's exactly, and the exact frame holds",
            "the stored decimals as Decimal objects. The baseline is what a user of plain",
            "sqlite3 writes: the same SELECT through the same index, `fetchall`, a DataFrame",
            "from the row tuples, then the date and the units-to-float conversions. The",
            "feather file holds only this market's candles, as freqtrade keeps one file per",
            "market; the database answers from a table shared with other markets. The",
            "get_candles rows other than the first read use one store kept open, as a bot does,",
            "so they read whatever tradedb cached in the untimed first round; the first read",
            "opens a new store on a copy of the database as written, before any read.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=525_600, help="candles of the read market")
    parser.add_argument(
        "--other-rows", type=int, default=100_000, help="candles of each neighbouring market"
    )
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per variant")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the files")
    parser.add_argument("--write", type=Path, default=None, help="write the results here (.md)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tradedb-bench-", dir=args.dir) as folder:
        print("building the database and the feather file", file=sys.stderr)
        path, feather, source = build(Path(folder), args.rows, args.other_rows)
        conn = sqlite3.connect(path)
        try:
            with Store.open(path) as store:
                seconds = bench(
                    store,
                    conn,
                    folder=Path(folder),
                    feather=feather,
                    source=source,
                    repeat=args.repeat,
                )
        finally:
            conn.close()
    table = report(args.rows, args.other_rows, args.repeat, seconds)
    print(table)
    if args.write:
        command = " ".join([".venv/bin/python", "benchmarks/bench_read.py", *sys.argv[1:]])
        # Only this script's section: the other benchmarks keep theirs.
        replace_section(args.write, SECTION, results_markdown(command, table))
        print(f"\nwritten to {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
