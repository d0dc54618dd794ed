"""Readers with and without archives: what a read costs once retention has moved half of
a market's candles to Parquet, against the same read of a database that holds them all.

Run:  .venv/bin/python benchmarks/bench_archive_everywhere.py [--rows N] [--repeat K]
          [--dir FOLDER] [--write PATH]

One market's 1m candles (a year by default) go into a database, which is copied; retention
then archives the older half of the copy. Each reader runs on both, taking turns, median
and maximum of K runs: a month of recent candles (still in the database), a month of old
ones (archived in the copy; cold: the archive's row-group cache emptied first, and warm),
list-data, gaps, and a valuation at an old and a recent time. The first line measures what
a database without any archive pays per read for finding out that it has none.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from candle_data import EXCHANGE, MINUTE_MS, START_MS, SYMBOL, TIMEFRAME, make_candles, timed
from results_file import preamble, replace_section
from tradedb.services.analytics.valuation import Valuer
from tradedb.services.marketdata.candles import get_candles
from tradedb.services.marketdata.quality import gaps, list_data
from tradedb.services.ops import archive, retention
from tradedb.store import Store

YEAR_1M = 525_600
DAY_MS = 1_440 * MINUTE_MS
MONTH_MS = 30 * DAY_MS
HEADING = "## Readers with and without archives (benchmarks/bench_archive_everywhere.py)"


def build(folder: Path, rows: int) -> tuple[Path, Path, int]:
    """The same candles in two databases; the second has its older half archived."""
    plain = folder / "plain.sqlite"
    candles = make_candles(rows)
    with Store.open(plain) as store:
        store.write_candles(candles.strings, exchange=EXCHANGE, symbol=SYMBOL, timeframe=TIMEFRAME)
        store.config.insert(
            {"config_key": "reference_price.ETH", "config_value": "200", "config_type": "number"}
        )
    archived = folder / "archived.sqlite"
    shutil.copy(plain, archived)
    middle = START_MS + (rows // 2) * MINUTE_MS
    with Store.open(archived) as store:
        retention.run(store, retention.Policy({"market_data": 1}), now=middle + DAY_MS)
    return plain, archived, middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=YEAR_1M)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--write", type=Path, default=None)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=options.dir) as scratch:
        plain, archived, middle = build(Path(scratch), options.rows)
        # A month, or an eighth of the candles when they span less than eight months.
        span = min(MONTH_MS, options.rows * MINUTE_MS // 8)
        old = START_MS + span
        recent = middle + span
        stores = {"all in the database": Store.open(plain), "half archived": Store.open(archived)}

        def month(since: int, *, cold: bool) -> Callable[[Store], Any]:
            def read(store: Store) -> Any:
                if cold:
                    archive.clear_cache()
                return get_candles(
                    store, EXCHANGE, SYMBOL, TIMEFRAME, since, since + span, output="arrow"
                )

            return read

        def value(at: int) -> Callable[[Store], Any]:
            def read(store: Store) -> Any:
                archive.clear_cache()
                return Valuer(store).price_usd("XRP", at)

            return read

        readers: dict[str, Callable[[Store], Any]] = {
            "a recent month of candles": month(recent, cold=True),
            "an old month of candles (cold)": month(old, cold=True),
            "an old month of candles (warm)": month(old, cold=False),
            "list-data": list_data,
            "gaps of the whole series": lambda store: gaps(
                store, exchange=EXCHANGE, symbol=SYMBOL, timeframe=TIMEFRAME
            ),
            "valuation at an old time": value(old + span // 2),
            "valuation at a recent time": value(recent + span // 2),
        }
        for label, reader in readers.items():
            answers = [reader(store) for store in stores.values()]
            assert _same(answers[0], answers[1]), label
        times: dict[tuple[str, str], list[float]] = {}
        keys = [(label, name) for label in readers for name in stores]
        for run in range(options.repeat):
            shift = run % len(keys)
            for label, name in keys[shift:] + keys[:shift]:
                store = stores[name]
                times.setdefault((label, name), []).append(
                    timed(lambda r=readers[label], s=store: r(s))  # type: ignore[misc]
                )
        no_archive = _lookup_cost(plain, options.repeat)
        for store in stores.values():
            store.close()

    names = list(stores)
    span = min(MONTH_MS, options.rows * MINUTE_MS // 8)
    lines = [
        f"{options.rows:,} 1m candles of one market; in the second database retention has "
        f"moved the older {options.rows // 2:,} to an archive file. A month is "
        f"{span // MINUTE_MS:,} candles.",
        "",
        f"Finding that a database has no archive (a stat of the config file, of a link and "
        f"of a manifest): {no_archive * 1e6:.0f} µs a read.",
        "",
        f"| read | {names[0]}: median (max) | {names[1]}: median (max) | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for label in readers:
        first, second = (times[(label, name)] for name in names)
        ratio = statistics.median(second) / statistics.median(first)
        lines.append(f"| {label} | {_ms(first)} | {_ms(second)} | {ratio:.2f}x |")
    command = "python benchmarks/bench_archive_everywhere.py"
    if options.rows != YEAR_1M or options.repeat != 7:
        command += f" --rows {options.rows} --repeat {options.repeat}"
    body = "\n".join(preamble(command) + lines)
    print(body)
    if options.write is not None:
        replace_section(options.write, HEADING, body)


def _lookup_cost(database: Path, repeat: int) -> float:
    """Seconds per `archive.catalog` of a database without archives."""
    calls = 1_000
    samples = []
    for _ in range(repeat):
        samples.append(timed(lambda: [archive.catalog(database) for _ in range(calls)]) / calls)
    return statistics.median(samples)


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f} ms ({max(samples) * 1000:.1f})"


def _same(first: Any, second: Any) -> bool:
    if hasattr(first, "equals"):
        return bool(first.equals(second))
    return bool(first == second)


if __name__ == "__main__":
    main()
