"""migrate-db: a million candles from SQLite to PostgreSQL and back, against each target
engine's own ceiling.

Run:  .venv/bin/python benchmarks/bench_migrate_db.py [--rows N] [--repeat K] [--dir FOLDER]
          [--write PATH]

A SQLite source of N 1m candles (candle_data.make_candles: an XRP/ETH-like random walk,
stored as market_data holds it) is made once, not timed. A PostgreSQL server is started
for the run as the tests start theirs (tests/pg_server.py: initdb in a temporary folder,
loopback), here with fsync on. Each repeat, in turn:

- migrate-db SQLite -> a new PostgreSQL database (`migrate_database`, default page size);
- migrate-db from that database -> a new SQLite file;
- PostgreSQL ceiling: the same rows, pre-built as COPY text in memory, copied into a new
  database with tradedb's schema, one COPY and transaction per page of 20,000 rows: the
  server's own cost (four B-trees and the candle-cache trigger), with nothing read and
  nothing converted;
- SQLite ceiling: the same int tuples written by executemany of 500-row INSERTs into a
  new tradedb file (candle-cache triggers kept, as migrate-db pays for them), one
  transaction per page of 20,000 rows, ids included.

Reported: medians of K runs. 'copy' is what MigrationReport.seconds measures (the pages
and the id counters); 'command' is the whole call (checks, source and target figures,
the audit with SQLite's integrity_check, the progress record). Every migrate-db run must
verify equal and audit clean.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from candle_data import CANDLE_INSERT, fresh_database, make_candles
from results_file import preamble, replace_section
from tradedb.services.ops.migrate_db import DEFAULT_PAGE_ROWS, migrate_database
from tradedb.store import Store

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
import pg_server

SECTION = "## migrate-db (benchmarks/bench_migrate_db.py)"
CEILING_PAGE = 20_000
COLUMNS = (
    "id, symbol, timestamp, open_price, high_price, low_price, close_price, volume, "
    "timeframe, exchange, created_at"
)


def make_source(folder: Path, rows: int) -> tuple[Path, list[tuple[Any, ...]]]:
    path = fresh_database(folder, "source")
    units = make_candles(rows).units
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(CANDLE_INSERT, units)
        conn.execute("COMMIT")
        stored = conn.execute(f"SELECT {COLUMNS} FROM market_data ORDER BY id").fetchall()
    finally:
        conn.close()
    return path, stored


class Server:
    def __init__(self) -> None:
        self.server = pg_server.start_server(fsync=True)
        self.names = 0

    def new_database(self, *, schema: bool) -> str:
        self.names += 1
        name = f"bench{self.names}"
        with self.server.admin() as conn:
            conn.execute(f"CREATE DATABASE {name}")
        url = str(self.server.url(name))
        if schema:
            Store.open(url).close()
        return url

    def close(self) -> None:
        pg_server.remove(self.server)


def fixed(units: int) -> str:
    sign, magnitude = ("-", -units) if units < 0 else ("", units)
    return f"{sign}{magnitude // 10**8}.{magnitude % 10**8:08d}"


def copy_text(stored: list[tuple[Any, ...]]) -> list[bytes]:
    pages = []
    for start in range(0, len(stored), CEILING_PAGE):
        lines = [
            "\t".join(
                (
                    str(row[0]),
                    row[1],
                    str(row[2]),
                    *(fixed(value) for value in row[3:8]),
                    row[8],
                    row[9],
                    str(row[10]),
                )
            )
            for row in stored[start : start + CEILING_PAGE]
        ]
        pages.append(("\n".join(lines) + "\n").encode())
    return pages


def pg_ceiling(url: str, pages: list[bytes]) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        start = time.perf_counter()
        for data in pages:
            with (
                conn.transaction(),
                conn.cursor().copy(f"COPY market_data ({COLUMNS}) FROM STDIN") as copy,
            ):
                copy.write(data)
        return time.perf_counter() - start


def sqlite_ceiling(path: Path, stored: list[tuple[Any, ...]]) -> float:
    one = "(" + ", ".join("?" * 11) + ")"
    chunk = 500
    statement = f"INSERT INTO market_data ({COLUMNS}) VALUES " + ", ".join([one] * chunk)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = NORMAL")
        start = time.perf_counter()
        for at in range(0, len(stored), CEILING_PAGE):
            page = stored[at : at + CEILING_PAGE]
            whole = len(page) - len(page) % chunk
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                statement,
                ([v for row in page[i : i + chunk] for v in row] for i in range(0, whole, chunk)),
            )
            conn.executemany(f"INSERT INTO market_data ({COLUMNS}) VALUES {one}", page[whole:])
            conn.execute("COMMIT")
        return time.perf_counter() - start
    finally:
        conn.close()


def timed_migration(source: str, target: str) -> tuple[float, float]:
    start = time.perf_counter()
    report = migrate_database(source, target)
    whole = time.perf_counter() - start
    assert report.ok, (report.equal, report.audit_problems)
    assert report.rows_copied == sum(table.source.rows for table in report.tables)
    return report.seconds, whole


def bench(folder: Path, rows: int, repeat: int) -> dict[str, list[float]]:
    print(f"making a source of {rows:,} candles", file=sys.stderr)
    source, stored = make_source(folder, rows)
    pages = copy_text(stored)
    seconds: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        seconds.setdefault(name, []).append(value)

    server = Server()
    try:
        for run in range(repeat):
            print(f"run {run + 1} of {repeat}", file=sys.stderr)
            url = server.new_database(schema=False)
            copy, whole = timed_migration(str(source), url)
            record("sqlite_to_pg_copy", copy)
            record("sqlite_to_pg_command", whole)
            back = folder / f"back{run}.sqlite"
            copy, whole = timed_migration(url, str(back))
            record("pg_to_sqlite_copy", copy)
            record("pg_to_sqlite_command", whole)
            record("pg_ceiling", pg_ceiling(server.new_database(schema=True), pages))
            record("sqlite_ceiling", sqlite_ceiling(fresh_database(folder, f"c{run}"), stored))
    finally:
        server.close()
    return seconds


def report(rows: int, repeat: int, seconds: dict[str, list[float]]) -> str:
    def median(name: str) -> float:
        return statistics.median(seconds[name])

    lines = [
        f"{rows:,} 1m candles (market_data), median of {repeat} runs; default page of "
        f"{DEFAULT_PAGE_ROWS:,} rows, one target transaction each.",
        "",
        "| direction | copy s | copy rows/s | command s | ceiling s | ceiling rows/s "
        "| copy ÷ ceiling |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, prefix, ceiling in (
        ("SQLite → PostgreSQL", "sqlite_to_pg", "pg_ceiling"),
        ("PostgreSQL → SQLite", "pg_to_sqlite", "sqlite_ceiling"),
    ):
        copy, whole, limit = median(f"{prefix}_copy"), median(f"{prefix}_command"), median(ceiling)
        lines.append(
            f"| {label} | {copy:.2f} | {rows / copy:,.0f} | {whole:.2f} | {limit:.2f} | "
            f"{rows / limit:,.0f} | {limit / copy:.2f}x |"
        )
    return "\n".join(lines)


def results_markdown(command: str, table: str) -> str:
    return "\n".join(
        [
            *preamble(
                command,
                versions=f"psycopg {psycopg.__version__}",
                setup="SQLite files in a temporary folder on local disk; PostgreSQL "
                "started for the run on loopback (fsync on).",
                compared="the copy with its target engine's ceiling in the same process",
                caveat=f"The load average (1 min) was {os.getloadavg()[0]:.1f} as the runs ended.",
            ),
            table,
            "",
            "How to read it: 'copy' is the pages and the id counters (what the command's "
            "rows/s shows); 'command' adds the checks, the figures of both databases (row "
            "counts and exact sums of every amount column), the audit of the target (on "
            "SQLite with `PRAGMA integrity_check`, most of the difference) and the progress "
            "record. A ceiling writes the same rows into the same schema with nothing read "
            "and nothing converted: on PostgreSQL COPY of text prepared in memory, on SQLite "
            "500-row INSERTs of ready tuples; 'copy ÷ ceiling' is the share of it the copy "
            "reaches. The copy reads the source page by page (a thread reads and prepares "
            "the next page while the last is written) and converts amounts exactly (integer "
            "units, sent to PostgreSQL as '12345e-8' text; read from it as units by the "
            "server).",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="candles in the source")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the database files")
    parser.add_argument("--write", type=Path, default=None, help="write the results here (.md)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tradedb-bench-", dir=args.dir) as folder:
        seconds = bench(Path(folder), args.rows, args.repeat)
    table = report(args.rows, args.repeat, seconds)
    print(table)
    if args.write:
        command = " ".join([".venv/bin/python", "benchmarks/bench_migrate_db.py", *sys.argv[1:]])
        replace_section(args.write, SECTION, results_markdown(command, table))
        print(f"\nwritten to {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
