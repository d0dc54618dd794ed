"""Parquet archives of candles: where they live, how they are written and read back.

Layout (Hive-style, readable by pyarrow.dataset, DuckDB, polars and Spark):

    <archive dir>/market_data/exchange=<e>/symbol=<s>/timeframe=<t>/year=<y>/candles.parquet
    <archive dir>/manifest.json

Partition values are percent-encoded (BTC/USDT is `BTC%2FUSDT`), as Hive readers decode
them. One file per partition: a later run that archives more candles of the same market
and year rewrites the file with the old and new candles together, to a temporary name,
fsynced and verified, then renamed over the old one, so a reader sees the old file or the
new one, never a mix, and a kill at any moment leaves one good file.

Columns: `timestamp` (timestamp[ms, UTC]) and `open_price`, `high_price`, `low_price`,
`close_price`, `volume` as decimal128(20, 8): any Parquet reader shows the exact decimal,
and the 128-bit unscaled value is the database's integer units, so writing and reading
back does no arithmetic and is bit-exact. Each file carries in its key-value metadata
the market, its row count and `rows_sha256`, a SHA-256 of its rows (the six int64 columns
of units, little-endian, one column after the other), so a file checks itself even
without the manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tradedb import owner_only
from tradedb.errors import TradeDBError, ValidationError
from tradedb.services.location import config_section

CANDLES_FILE = "candles.parquet"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "tradedb-archive"
MANIFEST_VERSION = 1
SCALE = 8
AMOUNT_COLUMNS = ("open_price", "high_price", "low_price", "close_price", "volume")
ZSTD_LEVEL = 9
# Rows per Parquet row group: a week of 1m candles, 35 days of 5m. A read of a day or a
# month then decompresses only the row groups whose timestamp range it touches (their
# min/max statistics), not the whole year. Dictionary encoding is off: prices barely
# repeat, and per-group dictionaries made a year of 1m candles 47% larger (11.6 MB against
# 7.8 MB as one group); without them it is 8.0 MB (benchmarks/bench_archive_read.py).
ROWS_PER_GROUP = 10_080


class ArchiveError(TradeDBError):
    """An archive file or manifest is damaged or cannot be written; nothing was deleted."""


@dataclass(frozen=True)
class ArchiveFile:
    """One manifest entry: a partition's file, its rows and checksums."""

    path: str  # relative to the archive folder, with '/' separators
    table: str
    exchange: str
    symbol: str
    timeframe: str
    year: int
    rows: int
    first_timestamp: int
    last_timestamp: int
    sha256: str
    rows_sha256: str


def archive_folder(database: Path, env: Mapping[str, str] | None = None) -> Path:
    """The archive folder of a database: `[retention] archive_dir` of the config file,
    else `<database stem>-archives/` beside the database. Backups include this folder."""
    configured = config_section("retention", env).get("archive_dir")
    if configured is not None:
        if not isinstance(configured, str) or not configured:
            raise ValidationError("retention.archive_dir", configured, "must be a folder path")
        return Path(configured).expanduser()
    return database.parent / f"{database.stem}-archives"


def partition_path(exchange: str, symbol: str, timeframe: str, year: int) -> str:
    parts = (
        "market_data",
        f"exchange={quote(exchange, safe='')}",
        f"symbol={quote(symbol, safe='')}",
        f"timeframe={quote(timeframe, safe='')}",
        f"year={year}",
        CANDLES_FILE,
    )
    return "/".join(parts)


def year_of(millis: int) -> int:
    return datetime.fromtimestamp(millis / 1000, UTC).year


def year_start(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp() * 1000)


# --- rows and checksums --------------------------------------------------------------------


def rows_sha256(columns: Any) -> str:
    """SHA-256 of candles as int64 columns (6, rows), little-endian, column by column."""
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(columns, dtype="<i8").tobytes()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def merge(newer: Any, older: Any) -> Any:
    """Candles of one market from two sources as one time-ordered set: where both hold a
    timestamp, `newer`'s candle is kept (the database's, over an archive's)."""
    import numpy as np

    if older.shape[1] == 0:
        return newer
    if newer.shape[1] == 0:
        return older
    if older[0, -1] < newer[0, 0]:
        return np.concatenate((older, newer), axis=1)
    kept = older[:, ~np.isin(older[0], newer[0])]
    both = np.concatenate((kept, newer), axis=1)
    return both[:, np.argsort(both[0], kind="stable")]


def empty_columns() -> Any:
    import numpy as np

    return np.empty((6, 0), dtype=np.int64)


# --- Parquet ---------------------------------------------------------------------------------


def _to_table(columns: Any, metadata: dict[str, str]) -> Any:
    import numpy as np
    import pyarrow as pa

    arrays = [pa.array(columns[0], type=pa.int64()).cast(pa.timestamp("ms", tz="UTC"))]
    for index in range(1, 6):
        values = np.ascontiguousarray(columns[index], dtype="<i8")
        words = np.empty((len(values), 2), dtype="<i8")
        words[:, 0] = values
        words[:, 1] = np.where(values < 0, -1, 0)
        buffer = pa.py_buffer(words.tobytes())
        arrays.append(pa.Array.from_buffers(pa.decimal128(20, SCALE), len(values), [None, buffer]))
    schema = pa.schema(
        [pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False)]
        + [pa.field(name, pa.decimal128(20, SCALE), nullable=False) for name in AMOUNT_COLUMNS],
        metadata={key.encode(): value.encode() for key, value in metadata.items()},
    )
    return pa.Table.from_arrays(arrays, schema=schema)


def _units(column: Any) -> Any:
    """int64 units from a decimal128(20, 8) column: the low word of each 128-bit value
    (every stored amount fits in 64 bits)."""
    import numpy as np
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.type != pa.decimal128(20, SCALE) or array.null_count:
        raise ArchiveError(f"archive column has type {array.type}, expected decimal128(20, 8)")
    words = np.frombuffer(array.buffers()[1], dtype="<i8")
    pairs = words[2 * array.offset : 2 * (array.offset + len(array))].reshape(-1, 2)
    low, high = pairs[:, 0], pairs[:, 1]
    if not np.array_equal(high, np.where(low < 0, -1, 0)):
        raise ArchiveError("archive holds an amount beyond the 64-bit units tradedb stores")
    return low.copy()


def read_columns(
    path: Path, *, since: int | None = None, until: int | None = None
) -> tuple[Any, dict[str, str]]:
    """A candle archive file as int64 columns (6, rows) and its key-value metadata; with
    `since`/`until`, only the row groups that may hold candles in [since, until), so the
    columns may hold some candles outside the range but every one inside it."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        groups = _groups_touching(parquet.metadata, since, until)
        table = parquet.read_row_groups(groups) if groups is not None else parquet.read()
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"archive {path} cannot be read: {exc}") from None
    metadata = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    stamps = table.column("timestamp").cast(pa.int64()).to_numpy()
    columns = np.empty((6, table.num_rows), dtype=np.int64)
    columns[0] = stamps
    for index, name in enumerate(AMOUNT_COLUMNS, start=1):
        columns[index] = _units(table.column(name))
    return columns, metadata


def _groups_touching(metadata: Any, since: int | None, until: int | None) -> list[int] | None:
    """The row groups whose timestamps may fall in [since, until); None for all of them
    (no range asked, or a group without statistics, so nothing can be ruled out)."""
    if since is None and until is None:
        return None
    timestamp = metadata.schema.names.index("timestamp")
    wanted = []
    for index in range(metadata.num_row_groups):
        statistics = metadata.row_group(index).column(timestamp).statistics
        if statistics is None or not statistics.has_min_max:
            return None
        # The raw values are the stored int64 epoch milliseconds.
        first, last = statistics.min_raw, statistics.max_raw
        if (until is None or first < until) and (since is None or last >= since):
            wanted.append(index)
    return wanted


def check_file(path: Path, entry: ArchiveFile | None = None) -> Any:
    """Read a file back and check it against its own metadata (and the manifest entry
    when given): row count, rows checksum, file checksum. Returns its columns."""
    columns, metadata = read_columns(path)
    problems = []
    if str(columns.shape[1]) != metadata.get("rows"):
        problems.append(f"{columns.shape[1]} rows, its metadata says {metadata.get('rows')}")
    if rows_sha256(columns) != metadata.get("rows_sha256"):
        problems.append("its rows do not match their checksum")
    if entry is not None:
        if columns.shape[1] != entry.rows:
            problems.append(f"{columns.shape[1]} rows, the manifest says {entry.rows}")
        if file_sha256(path) != entry.sha256:
            problems.append("its SHA-256 is not the manifest's")
    if problems:
        raise ArchiveError(f"archive {path} is damaged: {'; '.join(problems)}")
    return columns


def write_partition(
    folder: Path, relative: str, columns: Any, market: dict[str, str], fault: Any = None
) -> ArchiveFile:
    """Write a partition's candles to its file: a temporary file, fsynced, read back and
    compared, then renamed over the old file and the folder fsynced. Returns the manifest
    entry of the new file."""
    import pyarrow.parquet as pq

    target = folder / relative
    owner_only.make_folders(target.parent)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.unlink(missing_ok=True)
    checksum = rows_sha256(columns)
    metadata = {
        **market,
        "rows": str(columns.shape[1]),
        "rows_sha256": checksum,
        "scale": str(SCALE),
        "writer": "tradedb retention",
    }
    try:
        with owner_only.new_file(temporary) as handle:
            pq.write_table(
                _to_table(columns, metadata),
                handle,
                compression="zstd",
                compression_level=ZSTD_LEVEL,
                row_group_size=ROWS_PER_GROUP,
                use_dictionary=False,
            )
        if fault is not None:
            fault("written")
        back = check_file(temporary)
        if back.shape != columns.shape or rows_sha256(back) != checksum:
            raise ArchiveError(f"archive {temporary} did not read back as written")
        os.replace(temporary, target)
    except BaseException:
        # A full disk or a failed check must not leave a half-written file behind (a
        # killed run does, and the next run removes it: leftover_temporaries).
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)
    return ArchiveFile(
        path=relative,
        table="market_data",
        exchange=market["exchange"],
        symbol=market["symbol"],
        timeframe=market["timeframe"],
        year=int(market["year"]),
        rows=int(columns.shape[1]),
        first_timestamp=int(columns[0, 0]),
        last_timestamp=int(columns[0, -1]),
        sha256=file_sha256(target),
        rows_sha256=checksum,
    )


# --- the manifest ----------------------------------------------------------------------------


def read_manifest(folder: Path) -> dict[str, ArchiveFile]:
    """The manifest's entries by path; empty when there is no manifest yet."""
    path = folder / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format is {data.get('format')!r}")
        entries = [ArchiveFile(**entry) for entry in data["files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArchiveError(f"archive manifest {path} cannot be read: {exc}") from None
    return {entry.path: entry for entry in entries}


def write_manifest(folder: Path, entries: dict[str, ArchiveFile]) -> None:
    """Replace the manifest atomically (temporary file, fsync, rename, fsync folder)."""
    data = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "amounts": "decimal128(20, 8)",
        "rows_sha256": "SHA-256 of the int64 columns timestamp, open, high, low, close, "
        "volume (amounts in units of 1e-8), little-endian, one column after the other",
        "files": [asdict(entries[key]) for key in sorted(entries)],
    }
    owner_only.make_folders(folder)
    temporary = folder / f".{MANIFEST}.tmp"
    try:
        owner_only.write_bytes(temporary, (json.dumps(data, indent=2) + "\n").encode())
        os.replace(temporary, folder / MANIFEST)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(folder)


def partition_files(folder: Path) -> Iterator[Path]:
    yield from sorted((folder / "market_data").glob(f"*/*/*/*/{CANDLES_FILE}"))


def leftover_temporaries(folder: Path) -> list[Path]:
    """Temporary files of a run that was killed before it renamed them."""
    found = list(folder.glob(f".{MANIFEST}.tmp"))
    found += (folder / "market_data").glob(f"*/*/*/*/.{CANDLES_FILE}.tmp")
    return sorted(found)


# --- reading across the archive --------------------------------------------------------------


def archived_columns(
    database: Path,
    exchange: str,
    symbol: str,
    timeframe: str,
    *,
    since: int | None,
    until: int | None,
) -> Any | None:
    """One market's archived candles in [since, until) as int64 columns (6, rows), in
    time order; None when nothing of the market is archived (the common case, one stat)."""
    market = (
        archive_folder(database)
        / "market_data"
        / f"exchange={quote(exchange, safe='')}"
        / f"symbol={quote(symbol, safe='')}"
        / f"timeframe={quote(timeframe, safe='')}"
    )
    if not market.is_dir():
        return None
    try:
        import numpy as np
        import pyarrow  # noqa: F401
    except ImportError:
        raise ValidationError(
            "archive",
            str(market),
            "reading archived candles needs pyarrow: pip install 'tradedb[ops]'",
        ) from None
    first_year = None if since is None else year_of(since)
    last_year = None if until is None else year_of(until - 1)
    pieces = []
    for path in sorted(market.glob(f"year=*/{CANDLES_FILE}")):
        year = int(path.parent.name.removeprefix("year="))
        if (first_year is not None and year < first_year) or (
            last_year is not None and year > last_year
        ):
            continue
        columns, _ = read_columns(path, since=since, until=until)
        low = 0 if since is None else int(np.searchsorted(columns[0], since))
        high = columns.shape[1] if until is None else int(np.searchsorted(columns[0], until))
        pieces.append(columns[:, low:high])
    if not pieces:
        return None
    return np.concatenate(pieces, axis=1)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """One retention run at a time per archive folder (a POSIX lock; none on Windows)."""
    owner_only.make_folders(folder)
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    descriptor = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, owner_only.FILE_MODE)
    try:
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ArchiveError(f"another retention run is using {folder}") from None
        yield
    finally:
        os.close(descriptor)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_folder(folder: Path) -> None:
    if os.name == "nt":  # folders cannot be opened for fsync on Windows
        return
    _fsync(folder)
