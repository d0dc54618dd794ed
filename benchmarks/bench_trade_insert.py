"""One durable trade insert: `store.trades.insert` against raw sqlite3 on the same schema.

Run:  .venv/bin/python benchmarks/bench_trade_insert.py [--trades N] [--dir FOLDER] [--write PATH]

Everything runs in one process, each side on a database file of its own made by
`Store.open` (not timed). The N inserts interleave a `store.trades.insert` and a raw
BEGIN IMMEDIATE / INSERT / COMMIT of the same trade at synchronous=FULL, so that machine
noise hits both alike.

Bulk candle writes, once measured here too, are measured by bench_ingest.py.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from candle_data import SCALE, fresh_database
from results_file import preamble, replace_section
from tradedb.store import Store

TRADE_INSERT = (
    "INSERT INTO trades (symbol, side, amount, price, total_value, fee, fee_currency, "
    "timestamp, exchange, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
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


def report(trades: tuple[list[float], list[float]]) -> str:
    by_store, by_raw = trades
    lines = [
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


SECTION = "## One durable trade insert (benchmarks/bench_trade_insert.py)"


def results_markdown(command: str, table: str) -> str:
    """The body of this benchmark's section of RESULTS.md (the heading is SECTION)."""
    return "\n".join(
        [
            *preamble(
                command,
                setup="Database files in a temporary folder.",
                compared="inserts made in turn in the same process",
            ),
            table,
            "",
            "How to read it: each insert writes and commits one trade at synchronous=FULL;",
            "tradedb's and raw sqlite3's take turns insert by insert, each on a database file",
            "of its own. The raw insert takes ready-made integer units, so the ratio is what",
            "`store.trades.insert` adds to the durable commit of one row.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades", type=int, default=2000, help="single trade inserts")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the database files")
    parser.add_argument("--write", type=Path, default=None, help="write the results here (.md)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tradedb-bench-", dir=args.dir) as folder:
        trades = bench_trades(Path(folder), args.trades)
    table = report(trades)
    print(table)
    if args.write:
        command = " ".join([".venv/bin/python", "benchmarks/bench_trade_insert.py", *sys.argv[1:]])
        # Only this script's section: the other benchmarks keep theirs.
        replace_section(args.write, SECTION, results_markdown(command, table))
        print(f"\nwritten to {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
