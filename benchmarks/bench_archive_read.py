"""Archive reads: a range of candles from a retention archive (a year of one market's 1m
candles in one zstd Parquet file), with the time range pushed down to the file's row groups
against the baseline of reading the whole file and cutting the range out.

Run:  .venv/bin/python benchmarks/bench_archive_read.py [--rows N] [--repeat K]
          [--dir FOLDER] [--write PATH]

The same candles are written twice through retention's own writer (`write_partition`):
once in row groups of `archive.ROWS_PER_GROUP` rows, once as one row group, which is how
the file was laid out before row groups existed and so reads whole. Each variant reads the
same ranges through `archived_columns`, the function `get_candles` uses; the variants take
turns (the order rotates from run to run), median and maximum of K runs. A first, untimed
round checks that both give the same columns, and the right ones.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from candle_data import EXCHANGE, MINUTE_MS, START_MS, SYMBOL, TIMEFRAME, make_candles, timed
from results_file import preamble, replace_section
from tradedb.services.ops import archive

YEAR_1M = 525_600
JAN_1_2019 = 1_546_300_800_000
DAY_MS = 1_440 * MINUTE_MS
RANGES = {"a day": DAY_MS, "a week": 7 * DAY_MS, "a month": 30 * DAY_MS}
HEADING = "## Archive reads (benchmarks/bench_archive_read.py)"


def write_archive(folder: Path, columns: Any, rows_per_group: int) -> Path:
    """One partition file in `folder`, as retention writes it, with the given row groups."""
    database = folder / "bench.sqlite"
    relative = archive.partition_path(EXCHANGE, SYMBOL, TIMEFRAME, 2019)
    market = {
        "exchange": EXCHANGE,
        "symbol": SYMBOL,
        "timeframe": TIMEFRAME,
        "year": "2019",
    }
    saved = archive.ROWS_PER_GROUP
    archive.ROWS_PER_GROUP = rows_per_group
    try:
        folder = archive.archive_folder(database)
        entry = archive.write_partition(folder, relative, columns, market)
        # Readers find files through the manifest, as retention records them.
        archive.write_manifest(folder, {relative: entry})
    finally:
        archive.ROWS_PER_GROUP = saved
    return database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=YEAR_1M)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--write", type=Path, default=None)
    options = parser.parse_args()

    candles = make_candles(options.rows)
    columns = np.array([row[1:7] for row in candles.units], dtype=np.int64).T.copy()
    # Archives are partitioned by year: the year of candles starts on 2019-01-01.
    columns[0] += JAN_1_2019 - START_MS
    with tempfile.TemporaryDirectory(dir=options.dir) as scratch:
        grouped = write_archive(Path(scratch) / "grouped", columns, archive.ROWS_PER_GROUP)
        whole = write_archive(Path(scratch) / "whole", columns, options.rows)
        # A range in the middle of the year, away from the file's ends.
        middle = JAN_1_2019 + (options.rows // 2) * MINUTE_MS

        def reader(database: Path, span: int) -> Callable[[], Any]:
            def read() -> Any:
                # Cold: readers keep decoded row groups, and a repeat would time the cache.
                archive.clear_cache()
                return archive.archived_columns(
                    database, EXCHANGE, SYMBOL, TIMEFRAME, since=middle, until=middle + span
                )

            return read

        variants = {
            (name, label): reader(database, span)
            for label, span in RANGES.items()
            for name, database in (("row groups", grouped), ("whole file", whole))
        }
        for label, span in RANGES.items():
            first = int(np.searchsorted(columns[0], middle))
            expected = columns[:, first : first + span // MINUTE_MS]
            for name in ("row groups", "whole file"):
                got = variants[(name, label)]()
                assert np.array_equal(got, expected), (name, label)

        times: dict[tuple[str, str], list[float]] = {key: [] for key in variants}
        keys = list(variants)
        for run in range(options.repeat):
            shift = run % len(keys)
            for key in keys[shift:] + keys[:shift]:
                times[key].append(timed(variants[key]))

        sizes = {
            name: sum(path.stat().st_size for path in Path(scratch, name).rglob("*.parquet"))
            for name in ("grouped", "whole")
        }

    lines = [
        f"{options.rows:,} 1m candles of one market in one archive file: "
        f"{sizes['grouped'] / 1e6:.1f} MB in row groups of {archive.ROWS_PER_GROUP:,} rows, "
        f"{sizes['whole'] / 1e6:.1f} MB as one row group.",
        "",
        "| range read | row groups: median (max) | whole file: median (max) | ratio |",
        "| --- | --- | --- | --- |",
    ]
    for label in RANGES:
        grouped_times = times[("row groups", label)]
        whole_times = times[("whole file", label)]
        ratio = statistics.median(whole_times) / statistics.median(grouped_times)
        lines.append(
            f"| {label} | {statistics.median(grouped_times) * 1000:.1f} ms "
            f"({max(grouped_times) * 1000:.1f}) | {statistics.median(whole_times) * 1000:.1f} ms "
            f"({max(whole_times) * 1000:.1f}) | {ratio:.1f}x faster |"
        )
    command = "python benchmarks/bench_archive_read.py"
    if options.rows != YEAR_1M or options.repeat != 7:
        command += f" --rows {options.rows} --repeat {options.repeat}"
    body = "\n".join(preamble(command, versions=f"pyarrow {_pyarrow_version()}") + lines)
    print(body)
    if options.write is not None:
        replace_section(options.write, HEADING, body)


def _pyarrow_version() -> str:
    import pyarrow

    return str(pyarrow.__version__)


if __name__ == "__main__":
    main()
