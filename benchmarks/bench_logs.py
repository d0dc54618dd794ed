"""BotLogHandler: records per second into bot_logs, and what one logging call costs the caller.

Run:  .venv/bin/python benchmarks/bench_logs.py [--records N] [--repeat K] [--write PATH]

- Insert rate: N records logged back to back through `logger.info(..., extra=...)` with
  strategy, exchange, symbol and one metadata extra, then `flush()`; records per second
  from the first call to the last row committed. Baseline: the same rows (built once,
  untimed) inserted by raw `sqlite3.executemany` in one transaction into the same schema,
  the ceiling for a writer that does nothing else.
- Caller latency: each call timed alone with perf_counter_ns, through the handler, a
  list-appending handler (the least a handler can do) and a NullHandler, in rotating
  blocks of 1000 so that machine noise hits all three alike. p50 and p99 of all calls.

Each is repeated K times on a fresh database file; medians are reported.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from results_file import preamble, replace_section
from tradedb.services.ops.logs import BotLogHandler, record_row
from tradedb.store import Store

HEADING = "## bot_logs handler (benchmarks/bench_logs.py)"
EXTRA = {"strategy": "sma_cross", "exchange": "kraken", "symbol": "BTC/EUR", "order_id": "O-1"}
GOAL_RATE = 50_000
GOAL_CALL_US = 20.0


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def fresh_logger(name: str, handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger(f"bench.{name}.{time.perf_counter_ns()}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger


def handler_rate(folder: Path, records: int) -> float:
    path = folder / f"rate-{time.perf_counter_ns()}.sqlite"
    handler = BotLogHandler(path)
    logger = fresh_logger("rate", handler)
    started = time.perf_counter()
    for number in range(records):
        logger.info("order %d filled at %s", number, "0.5", extra=EXTRA)
    handler.flush()
    elapsed = time.perf_counter() - started
    written = handler.written
    handler.close()
    with Store.open(path, readonly=True) as store:
        stored = store.logs.count()
    if written != records or stored != records:
        raise SystemExit(f"handler wrote {written}, table holds {stored}, expected {records}")
    return records / elapsed


def raw_rate(folder: Path, records: int) -> float:
    path = folder / f"raw-{time.perf_counter_ns()}.sqlite"
    Store.open(path).close()
    template = logging.LogRecord("bench", logging.INFO, __file__, 1, "order %d", (1,), None)
    template.__dict__.update(EXTRA)
    row = record_row(template)
    rows = [(row[0] + n, *row[1:]) for n in range(records)]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO bot_logs (timestamp, level, message, module, strategy, exchange, symbol, "
        "metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return records / elapsed


def call_latencies(folder: Path, calls: int) -> dict[str, list[int]]:
    handler = BotLogHandler(folder / f"calls-{time.perf_counter_ns()}.sqlite")
    list_handler = ListHandler()
    loggers = {
        "BotLogHandler": fresh_logger("bot", handler),
        "list-appending handler": fresh_logger("list", list_handler),
        "NullHandler": fresh_logger("null", logging.NullHandler()),
    }
    times: dict[str, list[int]] = {name: [] for name in loggers}
    clock = time.perf_counter_ns
    block = 1000
    order = list(loggers)
    for start in range(0, calls, block):
        order = order[1:] + order[:1]
        for name in order:
            logger = loggers[name]
            samples = times[name]
            for number in range(start, min(start + block, calls)):
                before = clock()
                logger.info("order %d filled at %s", number, "0.5", extra=EXTRA)
                samples.append(clock() - before)
        list_handler.records.clear()
    handler.close()
    return times


def percentile(samples: list[int], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", type=Path, help="Write the section into this RESULTS.md.")
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"BotLogHandler": [], "raw executemany": []}
    p50: dict[str, list[float]] = {}
    p99: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for _ in range(args.repeat):
            rates["BotLogHandler"].append(handler_rate(folder, args.records))
            rates["raw executemany"].append(raw_rate(folder, args.records))
            for name, samples in call_latencies(folder, args.records // 4).items():
                p50.setdefault(name, []).append(percentile(samples, 0.50))
                p99.setdefault(name, []).append(percentile(samples, 0.99))
    rate = {name: statistics.median(values) for name, values in rates.items()}
    lat50 = {name: statistics.median(values) for name, values in p50.items()}
    lat99 = {name: statistics.median(values) for name, values in p99.items()}
    ours = "BotLogHandler"
    lines = [
        "Into the table (records/s, from the first call to the last commit):",
        "",
        "| writer | records/s | vs raw executemany |",
        "| --- | ---: | ---: |",
    ]
    for name, value in rate.items():
        lines.append(f"| {name} | {value:,.0f} | {value / rate['raw executemany']:.2f}x |")
    lines += [
        "",
        f"Goal: at least {GOAL_RATE:,} records/s: "
        f"{'met' if rate[ours] >= GOAL_RATE else 'NOT met'} ({rate[ours]:,.0f}).",
        "",
        "In the caller (one `logger.info(..., extra=...)` call, µs):",
        "",
        "| handler | p50 | p99 |",
        "| --- | ---: | ---: |",
    ]
    for name, median50 in lat50.items():
        lines.append(f"| {name} | {median50:.1f} | {lat99[name]:.1f} |")
    lines += [
        "",
        f"Goal: under {GOAL_CALL_US:.0f} µs a call: p50 "
        f"{'met' if lat50[ours] < GOAL_CALL_US else 'NOT met'} ({lat50[ours]:.1f} µs), p99 "
        f"{'met' if lat99[ours] < GOAL_CALL_US else 'NOT met'} ({lat99[ours]:.1f} µs). The "
        "list-appending handler is the floor of logging itself (the record, the lock, the "
        "call); the difference is the row BotLogHandler builds in the caller.",
    ]
    command = f"python benchmarks/bench_logs.py --records {args.records} --repeat {args.repeat}"
    opening = preamble(
        command,
        setup="Database files in a temporary folder on the local disk.",
        compared="the handler with raw executemany and with the cheapest handlers",
    )
    body = "\n".join(
        [
            *opening,
            f"{args.records:,} records a run for the rate, {args.records // 4:,} calls per "
            f"handler for the latency, {args.repeat} runs, medians.",
            "",
            *lines,
        ]
    )
    print(body)
    if args.write is not None:
        replace_section(args.write, HEADING, body)
        print(f"wrote {HEADING!r} into {args.write}", file=sys.stderr)


if __name__ == "__main__":
    main()
