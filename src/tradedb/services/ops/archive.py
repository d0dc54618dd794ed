"""Parquet archives: the candles and tickers retention moved out of the database, how they
are written and checked, and how readers find and read them back.

Layout (Hive-style, readable by pyarrow.dataset, DuckDB, polars and Spark):

    <archive>/market_data/exchange=<e>/symbol=<s>/timeframe=<t>/year=<y>/candles.parquet
    <archive>/tickers/exchange=<e>/symbol=<s>/year=<y>/tickers.parquet
    <archive>/manifest.json

Where <archive> is, see archive_location (a local folder or an object store). Partition
values are percent-encoded (BTC/USDT is `BTC%2FUSDT`), as Hive readers decode them. One
file per partition: a later run that archives more rows of the same market and year
rewrites the file with the old and new rows together, checked before it replaces the old
one (see archive_location for how a replacement is atomic), so a reader sees the old file
or the new one, never a mix, and a kill at any moment leaves one good file.

Columns: `timestamp` (timestamp[ms, UTC]); candles' `open_price`, `high_price`,
`low_price`, `close_price`, `volume` and tickers' `bid_price`, `ask_price`, `last_price`,
`volume_24h`, `price_change_24h`, `open_price`, `high_price`, `low_price`, `vwap`,
`quote_volume_24h`, `bid_volume`, `ask_volume`, `previous_close` as decimal128(38, 8),
tickers' `price_change_percent_24h` as decimal128(38, 4); a ticker's missing value is NULL.
Ticker files written before the columns from `open_price` on existed lack them; their
tickers read back without those values. Any Parquet reader shows the exact
decimal, and the unscaled 128-bit value is the database's integer units, so writing and
reading back does no arithmetic and is bit-exact; 38 digits hold any amount tradedb can
store, beyond 64-bit units too. Files written before tickers were archived hold
decimal128(20, 8) candles and are read as they are.

Each file carries in its key-value metadata the market, its row count and `rows_sha256`,
a SHA-256 of its rows, so a file checks itself even without the manifest. Files with
`rows_sha256_of` = `decimal128` hash the columns one after the other: the timestamps as
int64, then each amount column as its 16-byte little-endian decimal128 values (the
unscaled integers, two's complement), a column that may be NULL preceded by one byte per
row (1 present, 0 NULL; a NULL's 16 bytes are zero). Older files (no such key) hash the six
candle columns as int64 units, little-endian, one column after the other; they still check.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tradedb import owner_only
from tradedb.errors import ValidationError
from tradedb.services.ops.archive_location import ArchiveError, Folder, locate
from tradedb.services.ops.archive_location import locked as locked_folder
from tradedb.store.bulk import TICKER_AMOUNTS as STORED_TICKER_AMOUNTS

__all__ = ["ArchiveError"]

CANDLES = "market_data"
TICKERS = "tickers"
CANDLES_FILE = "candles.parquet"
TICKERS_FILE = "tickers.parquet"
FILE_OF = {CANDLES: CANDLES_FILE, TICKERS: TICKERS_FILE}
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "tradedb-archive"
MANIFEST_VERSION = 2
SCALE = 8
PRECISION = 38
AMOUNT_COLUMNS = ("open_price", "high_price", "low_price", "close_price", "volume")
# Tickers' amount columns, their scale, and whether a ticker may lack the value: the
# database's, in the order retention reads them (tradedb.store.retention). A file written
# before a column existed lacks it, and its tickers read as having no such value.
TICKER_COLUMNS: tuple[tuple[str, int, bool], ...] = tuple(
    (name, spec.scale, not required) for name, spec, required, _ in STORED_TICKER_AMOUNTS
)
HASH_OF_DECIMALS = "decimal128"
ZSTD_LEVEL = 9
# Rows per Parquet row group: a week of 1m candles, 35 days of 5m. A read of a day or a
# month then decompresses only the row groups whose timestamp range it touches (their
# min/max statistics), not the whole year. Dictionary encoding is off: prices barely
# repeat, and per-group dictionaries made a year of 1m candles 47% larger (11.6 MB against
# 7.8 MB as one group); without them it is 8.0 MB (benchmarks/bench_archive_read.py).
ROWS_PER_GROUP = 10_080
# Row groups read recently, decoded, kept for readers that come back to the same ones (a
# valuation steps day by day through the same week of candles): at most this many bytes.
CACHE_BYTES = 32 << 20

# (exchange, symbol, timeframe) of a candle series; (exchange, symbol) of tickers.
CandleKey = tuple[str, str, str]
TickerKey = tuple[str, str]
# A ticker as stored: (timestamp, then each of TICKER_COLUMNS), amounts in integer units of
# their column's scale, None where the ticker had none.
TickerUnits = tuple[Any, ...]


@dataclass(frozen=True)
class ArchiveFile:
    """One manifest entry: a partition's file, its rows and checksums. Tickers' files have
    no timeframe (empty)."""

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
    bytes: int | None = None  # None in manifests written before object stores were served


def archive_folder(database: Path, env: Any = None) -> Path:
    """The local archive folder of a database (see archive_location for the rule); an
    object-store archive is refused here: use `archive_location.locate`."""
    return locate(database, env).path


def locked(folder: Folder | Path) -> Any:
    """One retention run at a time per archive folder (see archive_location.locked)."""
    return locked_folder(as_folder(folder))


def as_folder(folder: Folder | Path) -> Folder:
    return folder if isinstance(folder, Folder) else Folder.local(folder)


def _part(name: str, value: str) -> str:
    return f"{name}={quote(value, safe='')}"


def partition_path(exchange: str, symbol: str, timeframe: str, year: int) -> str:
    parts = (
        CANDLES,
        _part("exchange", exchange),
        _part("symbol", symbol),
        _part("timeframe", timeframe),
        f"year={year}",
        CANDLES_FILE,
    )
    return "/".join(parts)


def ticker_partition_path(exchange: str, symbol: str, year: int) -> str:
    parts = (TICKERS, _part("exchange", exchange), _part("symbol", symbol), f"year={year}")
    return "/".join((*parts, TICKERS_FILE))


def year_of(millis: int) -> int:
    return datetime.fromtimestamp(millis / 1000, UTC).year


def year_start(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp() * 1000)


# --- rows and checksums --------------------------------------------------------------------


def rows_sha256(columns: Any) -> str:
    """SHA-256 of candles as int64 columns (6, rows), little-endian, column by column: the
    checksum of files written before amounts were hashed as decimal128."""
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(columns, dtype="<i8").tobytes()).hexdigest()


def table_sha256(table: Any) -> str:
    """SHA-256 of an archive table's rows as its metadata's `rows_sha256_of` =
    `decimal128` defines it (see the module's docstring)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    digest = hashlib.sha256()
    for field in table.schema:
        column = table.column(field.name).combine_chunks()
        if field.name == "timestamp":
            digest.update(column.cast(pa.int64()).to_numpy().astype("<i8").tobytes())
            continue
        if field.nullable:
            present = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8)
            digest.update(present.tobytes())
            if column.null_count:
                column = pc.fill_null(column, pa.scalar(0, pa.int64()).cast(column.type))
        digest.update(_sixteen_bytes(column))
    return digest.hexdigest()


def _sixteen_bytes(array: Any) -> bytes:
    import numpy as np

    data = np.frombuffer(array.buffers()[1], dtype=np.uint8)
    return data[16 * array.offset : 16 * (array.offset + len(array))].tobytes()


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


def merge_rows(newer: Sequence[TickerUnits], older: Sequence[TickerUnits]) -> list[TickerUnits]:
    """Tickers of one market from two sources in time order; `newer` wins a timestamp."""
    if not older:
        return list(newer)
    if not newer or older[-1][0] < newer[0][0]:
        return [*older, *newer]
    taken = {row[0] for row in newer}
    return sorted([*(row for row in older if row[0] not in taken), *newer], key=lambda r: r[0])


def empty_columns() -> Any:
    import numpy as np

    return np.empty((6, 0), dtype=np.int64)


# --- Arrow tables ------------------------------------------------------------------------------


def _decimals(values: Any, scale: int) -> Any:
    """decimal128(38, scale) from integer units: an int64 array (its words, sign-extended,
    no arithmetic), or any sequence of Python ints and None (NULL)."""
    import numpy as np
    import pyarrow as pa

    kind = pa.decimal128(PRECISION, scale)
    if not isinstance(values, np.ndarray) or values.dtype != np.int64:
        try:
            if not any(value is None for value in values):
                values = np.array(values, dtype=np.int64)
        except OverflowError:
            pass
    if isinstance(values, np.ndarray) and values.dtype == np.int64:
        words = np.empty((len(values), 2), dtype="<i8")
        words[:, 0] = values
        words[:, 1] = np.where(values < 0, -1, 0)
        return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(words.tobytes())])
    present = [value is not None for value in values]
    data = b"".join(
        (0 if value is None else int(value)).to_bytes(16, "little", signed=True) for value in values
    )
    nulls = present.count(False)
    mask = pa.array(present, pa.bool_()).buffers()[1] if nulls else None
    return pa.Array.from_buffers(kind, len(present), [mask, pa.py_buffer(data)], null_count=nulls)


def _units(column: Any, scale: int, name: str) -> Any:
    """Integer units from a decimal column: an int64 array when every value fits in 64
    bits and none is NULL (the common case, read as the low words), else an object array
    of Python ints and None."""
    import numpy as np
    import pyarrow as pa

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_decimal128(array.type) or array.type.scale != scale:
        raise ArchiveError(
            f"archive column {name} has type {array.type}, expected decimal128 with scale {scale}"
        )
    words = np.frombuffer(array.buffers()[1], dtype="<i8")
    pairs = words[2 * array.offset : 2 * (array.offset + len(array))].reshape(-1, 2)
    low, high = pairs[:, 0], pairs[:, 1]
    if not array.null_count and np.array_equal(high, np.where(low < 0, -1, 0)):
        return low.copy()
    raw = _sixteen_bytes(array)
    present = array.is_valid().to_pylist()
    return np.array(
        [
            int.from_bytes(raw[16 * i : 16 * i + 16], "little", signed=True) if ok else None
            for i, ok in enumerate(present)
        ],
        dtype=object,
    )


def _timestamps(column: Any) -> Any:
    import pyarrow as pa

    return column.cast(pa.int64()).to_numpy()


def _schema(table: str, metadata: dict[str, str]) -> Any:
    import pyarrow as pa

    fields = [pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False)]
    if table == CANDLES:
        fields += [
            pa.field(name, pa.decimal128(PRECISION, SCALE), nullable=False)
            for name in AMOUNT_COLUMNS
        ]
    else:
        fields += [
            pa.field(name, pa.decimal128(PRECISION, scale), nullable=nullable)
            for name, scale, nullable in TICKER_COLUMNS
        ]
    encoded = {key.encode(): value.encode() for key, value in metadata.items()}
    return pa.schema(fields, metadata=encoded)


def candle_table(columns: Any, metadata: dict[str, str]) -> Any:
    """Candles as int64 (or Python int) columns (6, rows) as an archive table."""
    import numpy as np
    import pyarrow as pa

    stamps = pa.array(np.asarray(columns[0], dtype=np.int64), type=pa.int64())
    arrays = [stamps.cast(pa.timestamp("ms", tz="UTC"))]
    arrays += [_decimals(columns[index], SCALE) for index in range(1, 6)]
    return pa.Table.from_arrays(arrays, schema=_schema(CANDLES, metadata))


def ticker_table(rows: Sequence[TickerUnits], metadata: dict[str, str]) -> Any:
    """Tickers (as the database gives them, in units) as an archive table."""
    import numpy as np
    import pyarrow as pa

    stamps = pa.array(np.array([row[0] for row in rows], dtype=np.int64), type=pa.int64())
    arrays = [stamps.cast(pa.timestamp("ms", tz="UTC"))]
    for index, (_, scale, _) in enumerate(TICKER_COLUMNS, start=1):
        arrays.append(_decimals([row[index] for row in rows], scale))
    return pa.Table.from_arrays(arrays, schema=_schema(TICKERS, metadata))


def candle_columns_of(table: Any) -> Any:
    """An archive table's candles as columns (6, rows): int64, or objects beyond 64 bits."""
    import numpy as np

    amounts = [_units(table.column(name), SCALE, name) for name in AMOUNT_COLUMNS]
    kind = np.int64 if all(a.dtype == np.int64 for a in amounts) else object
    columns = np.empty((6, table.num_rows), dtype=kind)
    columns[0] = _timestamps(table.column("timestamp"))
    for index, values in enumerate(amounts, start=1):
        columns[index] = values
    return columns


def ticker_rows_of(table: Any) -> list[TickerUnits]:
    stamps = _timestamps(table.column("timestamp")).tolist()
    present = set(table.column_names)
    columns = [
        _units(table.column(name), scale, name).tolist()
        if name in present
        else [None] * table.num_rows
        for name, scale, _ in TICKER_COLUMNS
    ]
    return list(zip(stamps, *columns, strict=True))


# --- files -------------------------------------------------------------------------------------


def _parquet(folder: Folder, relative: str, metadata: Any = None) -> Any:
    import pyarrow.parquet as pq

    if folder.is_local:
        return pq.ParquetFile(folder.path / relative, metadata=metadata)
    return pq.ParquetFile(folder.open(relative), metadata=metadata)


def read_table(
    folder: Folder | Path,
    relative: str,
    *,
    since: int | None = None,
    until: int | None = None,
    columns: Sequence[str] | None = None,
) -> Any:
    """An archive file as an Arrow table; with `since`/`until`, only the row groups that
    may hold rows in [since, until) (so some rows outside the range, but every one
    inside it)."""
    import pyarrow as pa

    folder = as_folder(folder)
    try:
        parquet = _parquet(folder, relative)
        groups = _groups_touching(parquet.metadata, since, until)
        wanted = None if columns is None else list(columns)
        if groups is None:
            return parquet.read(columns=wanted)
        return parquet.read_row_groups(groups, columns=wanted)
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"archive {folder}/{relative} cannot be read: {exc}") from None


def metadata_of(table: Any) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}


def read_columns(
    path: Path, *, since: int | None = None, until: int | None = None
) -> tuple[Any, dict[str, str]]:
    """A candle archive file as columns (6, rows) and its key-value metadata; with
    `since`/`until`, only the row groups that may hold candles in [since, until)."""
    table = read_table(path.parent, path.name, since=since, until=until)
    return candle_columns_of(table), metadata_of(table)


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


def checked_table(folder: Folder | Path, relative: str, entry: ArchiveFile | None = None) -> Any:
    """Read a whole file back and check it against its own metadata (and the manifest
    entry when given): row count, rows checksum, file checksum. Returns its table."""
    folder = as_folder(folder)
    data = folder.read_bytes(relative)
    if data is None:
        raise ArchiveError(f"archive {folder}/{relative} is missing")
    table = _table_of_bytes(data, f"{folder}/{relative}")
    problems = _problems(table)
    if entry is not None:
        if table.num_rows != entry.rows:
            problems.append(f"{table.num_rows} rows, the manifest says {entry.rows}")
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            problems.append("its SHA-256 is not the manifest's")
    if problems:
        raise ArchiveError(f"archive {folder}/{relative} is damaged: {'; '.join(problems)}")
    return table


def _table_of_bytes(data: bytes, name: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(pa.BufferReader(data))
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"archive {name} cannot be read: {exc}") from None


def _problems(table: Any) -> list[str]:
    metadata = metadata_of(table)
    problems = []
    if str(table.num_rows) != metadata.get("rows"):
        problems.append(f"{table.num_rows} rows, its metadata says {metadata.get('rows')}")
    if metadata.get("rows_sha256_of") == HASH_OF_DECIMALS:
        rows_hash = table_sha256(table)
    else:
        rows_hash = rows_sha256(candle_columns_of(table))
    if rows_hash != metadata.get("rows_sha256"):
        problems.append("its rows do not match their checksum")
    return problems


def check_file(path: Path, entry: ArchiveFile | None = None) -> Any:
    """A local candle file, checked (see `checked_table`), as columns (6, rows)."""
    return candle_columns_of(checked_table(path.parent, path.name, entry))


def write_partition(
    folder: Folder | Path, relative: str, columns: Any, market: dict[str, str], fault: Any = None
) -> ArchiveFile:
    """Write a candle partition's file (see `write_table`). Returns its manifest entry."""
    metadata = {**market, "rows": str(columns.shape[1]), "scale": str(SCALE)}
    return write_table(folder, relative, CANDLES, candle_table(columns, metadata), fault)


def write_ticker_partition(
    folder: Folder | Path,
    relative: str,
    rows: Sequence[TickerUnits],
    market: dict[str, str],
    fault: Any = None,
) -> ArchiveFile:
    """Write a ticker partition's file (see `write_table`). Returns its manifest entry."""
    metadata = {**market, "rows": str(len(rows)), "scale": str(SCALE)}
    return write_table(folder, relative, TICKERS, ticker_table(rows, metadata), fault)


def write_table(
    folder: Folder | Path, relative: str, table_name: str, table: Any, fault: Any = None
) -> ArchiveFile:
    """Write an archive file and replace the old one only once the new one has been read
    back and compared: locally a temporary file, fsynced, renamed over the old file and
    the folder fsynced; in an object store the checked bytes in one PUT."""
    import pyarrow.parquet as pq

    folder = as_folder(folder)
    checksum = table_sha256(table)
    metadata = {
        **metadata_of(table),
        "rows_sha256": checksum,
        "rows_sha256_of": HASH_OF_DECIMALS,
        "writer": "tradedb retention",
    }
    table = table.replace_schema_metadata(metadata)
    options = {
        "compression": "zstd",
        "compression_level": ZSTD_LEVEL,
        "row_group_size": ROWS_PER_GROUP,
        "use_dictionary": False,
    }
    if folder.is_local:
        data = _write_locally(folder.path / relative, table, checksum, options, fault)
    else:
        buffer = io.BytesIO()
        pq.write_table(table, buffer, **options)
        if fault is not None:
            fault("written")
        data = buffer.getvalue()
        _check_written(_table_of_bytes(data, relative), table, checksum, relative)
        try:
            folder.put(relative, data)
        except OSError as exc:
            raise ArchiveError(f"archive {folder}/{relative} cannot be written: {exc}") from None
    return _entry_of(relative, table_name, table, hashlib.sha256(data).hexdigest(), len(data))


def _write_locally(
    target: Path, table: Any, checksum: str, options: dict[str, Any], fault: Any
) -> bytes:
    import pyarrow.parquet as pq

    owner_only.make_folders(target.parent)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        with owner_only.new_file(temporary) as handle:
            pq.write_table(table, handle, **options)
        if fault is not None:
            fault("written")
        data = temporary.read_bytes()
        _check_written(_table_of_bytes(data, str(temporary)), table, checksum, str(temporary))
        os.replace(temporary, target)
    except BaseException:
        # A full disk or a failed check must not leave a half-written file behind (a
        # killed run does, and the next run removes it: leftover_temporaries).
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)
    return data


def _check_written(back: Any, table: Any, checksum: str, name: str) -> None:
    if back.num_rows != table.num_rows or _problems(back) or table_sha256(back) != checksum:
        raise ArchiveError(f"archive {name} did not read back as written")


def _entry_of(relative: str, table_name: str, table: Any, sha256: str, size: int) -> ArchiveFile:
    metadata = metadata_of(table)
    stamps = _timestamps(table.column("timestamp"))
    return ArchiveFile(
        path=relative,
        table=table_name,
        exchange=metadata["exchange"],
        symbol=metadata["symbol"],
        timeframe=metadata.get("timeframe", "") if table_name == CANDLES else "",
        year=int(metadata["year"]),
        rows=table.num_rows,
        first_timestamp=int(stamps[0]),
        last_timestamp=int(stamps[-1]),
        sha256=sha256,
        rows_sha256=metadata["rows_sha256"],
        bytes=size,
    )


def entry_of_file(folder: Folder | Path, relative: str) -> ArchiveFile:
    """The manifest entry of a file that checks against its own metadata (a file a killed
    run renamed into place before it could record it)."""
    folder = as_folder(folder)
    table = checked_table(folder, relative)
    data = folder.read_bytes(relative) or b""
    table_name = TICKERS if relative.startswith(f"{TICKERS}/") else CANDLES
    return _entry_of(relative, table_name, table, hashlib.sha256(data).hexdigest(), len(data))


# --- the manifest ----------------------------------------------------------------------------


def read_manifest(folder: Folder | Path) -> dict[str, ArchiveFile]:
    """The manifest's entries by path; empty when there is no manifest yet."""
    folder = as_folder(folder)
    try:
        data = folder.read_bytes(MANIFEST)
    except OSError as exc:
        raise ArchiveError(f"archive manifest {folder}/{MANIFEST} cannot be read: {exc}") from None
    return {} if data is None else _parse_manifest(data, folder)


def _parse_manifest(data: bytes, folder: Folder) -> dict[str, ArchiveFile]:
    try:
        parsed = json.loads(data)
        if parsed.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format is {parsed.get('format')!r}")
        entries = [ArchiveFile(**entry) for entry in parsed["files"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ArchiveError(f"archive manifest {folder}/{MANIFEST} cannot be read: {exc}") from None
    return {entry.path: entry for entry in entries}


def write_manifest(folder: Folder | Path, entries: dict[str, ArchiveFile]) -> None:
    """Replace the manifest atomically (locally: temporary file, fsync, rename, fsync of
    the folder; in an object store: one PUT)."""
    folder = as_folder(folder)
    data = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "amounts": "decimal128(38, 8) (files written before version 2: decimal128(20, 8))",
        "rows_sha256": "SHA-256 of the timestamps as int64, then each amount column as "
        "16-byte little-endian decimal128 values, a column that may be NULL preceded by one "
        "byte per row (1 present, 0 NULL); files without rows_sha256_of in their metadata: "
        "the six candle columns as int64 units, little-endian, one column after the other",
        "files": [asdict(entries[key]) for key in sorted(entries)],
    }
    encoded = (json.dumps(data, indent=2) + "\n").encode()
    if not folder.is_local:
        try:
            folder.put(MANIFEST, encoded)
        except OSError as exc:
            raise ArchiveError(
                f"archive manifest {folder}/{MANIFEST} cannot be written: {exc}"
            ) from None
        return
    local = folder.path
    owner_only.make_folders(local)
    temporary = local / f".{MANIFEST}.tmp"
    try:
        owner_only.write_bytes(temporary, encoded)
        os.replace(temporary, local / MANIFEST)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(local)


def partition_files(folder: Path) -> Iterator[Path]:
    """A local folder's candle files."""
    yield from sorted((folder / CANDLES).glob(f"*/*/*/*/{CANDLES_FILE}"))


def archive_files(folder: Folder | Path) -> dict[str, int]:
    """Every candle and ticker file of the folder (relative path: size in bytes)."""
    folder = as_folder(folder)
    found = {}
    for table, name in FILE_OF.items():
        for relative, size in folder.sizes(table).items():
            if relative.endswith(f"/{name}"):
                found[relative] = size
    return dict(sorted(found.items()))


def leftover_temporaries(folder: Path) -> list[Path]:
    """Temporary files of a run that was killed before it renamed them."""
    found = list(folder.glob(f".{MANIFEST}.tmp"))
    found += (folder / CANDLES).glob(f"*/*/*/*/.{CANDLES_FILE}.tmp")
    found += (folder / TICKERS).glob(f"*/*/*/.{TICKERS_FILE}.tmp")
    return sorted(found)


# --- reading: what is archived, and the rows ---------------------------------------------------


class Catalog:
    """An archive folder's manifest indexed by market, and reads of its files. Readers
    load it after reading the database: a row retention deletes was recorded in the
    manifest before it was deleted, so every row is in one or the other."""

    def __init__(self, folder: Folder, entries: dict[str, ArchiveFile]) -> None:
        self.folder = folder
        self.candles: dict[CandleKey, list[ArchiveFile]] = {}
        self.tickers: dict[TickerKey, list[ArchiveFile]] = {}
        for entry in sorted(entries.values(), key=lambda e: e.first_timestamp):
            if entry.table == TICKERS:
                self.tickers.setdefault((entry.exchange, entry.symbol), []).append(entry)
            else:
                key = (entry.exchange, entry.symbol, entry.timeframe)
                self.candles.setdefault(key, []).append(entry)

    def symbols(self) -> set[str]:
        return {key[1] for key in self.candles} | {key[1] for key in self.tickers}

    def candle_columns(
        self, key: CandleKey, since: int | None = None, until: int | None = None
    ) -> Any | None:
        """A series' archived candles in [since, until) as columns (6, rows); None when
        none of its files reaches into the range."""
        tables = list(self._groups(self.candles.get(key, ()), since, until, None))
        if not tables:
            return None
        import numpy as np

        return _cut(np.concatenate([candle_columns_of(t) for t in tables], axis=1), since, until)

    def candle_stamps(
        self, key: CandleKey, since: int | None = None, until: int | None = None
    ) -> Any:
        """The timestamps of a series' archived candles in [since, until) (int64)."""
        return self.values(self.candles.get(key, ()), None, since, until)[0]

    def values(
        self,
        entries: Sequence[ArchiveFile],
        column: tuple[str, int] | None,
        since: int | None,
        until: int | None,
    ) -> Any:
        """(timestamps, units of `column` (name, scale)) of the files' rows in [since,
        until); only the timestamps without a column. Units are int64, or objects
        where a value is NULL or beyond 64 bits."""
        import numpy as np

        names = ("timestamp",) if column is None else ("timestamp", column[0])
        pieces = []
        for table in self._groups(entries, since, until, names):
            stamps = _timestamps(table.column("timestamp"))
            if column is None:
                pieces.append(stamps[None, :])
            else:
                units = _units(table.column(column[0]), column[1], column[0])
                pieces.append(np.vstack((stamps, units)))
        if not pieces:
            return np.empty((len(names), 0), dtype=np.int64)
        return _cut(np.concatenate(pieces, axis=1), since, until)

    def ticker_rows(
        self,
        key: TickerKey,
        since: int | None = None,
        until: int | None = None,
        *,
        enough: int | None = None,
        newest_first: bool = False,
    ) -> list[TickerUnits]:
        """A market's archived tickers in [since, until), in time order; with `enough`,
        row groups are read from the oldest (the newest with `newest_first`) only until
        that many rows are in hand."""
        entries = self.tickers.get(key, ())
        rows: list[TickerUnits] = []
        for table in self._groups(entries, since, until, None, newest_first=newest_first):
            found = [
                row
                for row in ticker_rows_of(table)
                if (since is None or row[0] >= since) and (until is None or row[0] < until)
            ]
            rows = [*rows, *found] if not newest_first else [*found, *rows]
            if enough is not None and len(rows) >= enough:
                break
        return rows

    def _groups(
        self,
        entries: Sequence[ArchiveFile],
        since: int | None,
        until: int | None,
        columns: Sequence[str] | None,
        *,
        newest_first: bool = False,
    ) -> Iterator[Any]:
        """The decoded row groups of `entries` that may hold rows in [since, until), in
        time order (or newest first)."""
        ordered = reversed(entries) if newest_first else iter(entries)
        for entry in ordered:
            if (since is not None and entry.last_timestamp < since) or (
                until is not None and entry.first_timestamp >= until
            ):
                continue
            yield from _row_groups(
                self.folder, entry, since, until, columns, newest_first=newest_first
            )


def _cut(columns: Any, since: int | None, until: int | None) -> Any:
    import numpy as np

    stamps = columns[0]
    low = 0 if since is None else int(np.searchsorted(stamps, since))
    high = len(stamps) if until is None else int(np.searchsorted(stamps, until))
    return columns[:, low:high]


class _Cache:
    """Decoded row groups, least recently used out first, within CACHE_BYTES, and the
    footers of the files they came from. A bot's threads share it, hence the lock."""

    def __init__(self) -> None:
        self.groups: OrderedDict[tuple[object, ...], Any] = OrderedDict()
        self.footers: OrderedDict[tuple[object, ...], Any] = OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def group(self, key: tuple[object, ...]) -> Any | None:
        with self.lock:
            found = self.groups.get(key)
            if found is not None:
                self.groups.move_to_end(key)
            return found

    def keep(self, key: tuple[object, ...], table: Any) -> None:
        with self.lock:
            if key in self.groups:
                return
            self.groups[key] = table
            self.size += table.nbytes
            while self.size > CACHE_BYTES and self.groups:
                _, dropped = self.groups.popitem(last=False)
                self.size -= dropped.nbytes

    def footer(self, key: tuple[object, ...]) -> Any | None:
        with self.lock:
            return self.footers.get(key)

    def keep_footer(self, key: tuple[object, ...], footer: Any) -> None:
        with self.lock:
            self.footers[key] = footer
            while len(self.footers) > 1024:
                self.footers.popitem(last=False)


_CACHE = _Cache()


def clear_cache() -> None:
    """Forget the decoded row groups and footers (benchmarks measure cold reads)."""
    global _CACHE  # noqa: PLW0603 - one cache per process, replaced whole
    _CACHE = _Cache()


def _row_groups(
    folder: Folder,
    entry: ArchiveFile,
    since: int | None,
    until: int | None,
    columns: Sequence[str] | None,
    *,
    newest_first: bool,
) -> Iterator[Any]:
    """A file's row groups that may hold rows in [since, until), decoded: from the cache
    when this very file (the same inode and time, or ETag) was read before. A file the
    manifest names that is gone or unreadable is an ArchiveError."""
    import pyarrow as pa

    name = f"{folder}/{entry.path}"
    wanted = None if columns is None else tuple(columns)
    try:
        identity = (folder.url, entry.path, *folder.identity(entry.path))
        footer = _CACHE.footer(identity)
        parquet = None
        if footer is None:
            parquet = _parquet(folder, entry.path)
            footer = parquet.metadata
            _CACHE.keep_footer(identity, footer)
        groups = _groups_touching(footer, since, until)
        indexes = list(range(footer.num_row_groups)) if groups is None else groups
        for index in reversed(indexes) if newest_first else indexes:
            key = (*identity, index, wanted)
            table = _CACHE.group(key)
            if table is None:
                parquet = parquet or _parquet(folder, entry.path, footer)
                table = parquet.read_row_group(index, columns=columns)
                _CACHE.keep(key, table)
            yield table
    except FileNotFoundError:
        raise ArchiveError(f"archive {name} is in the manifest but missing") from None
    except (OSError, pa.ArrowException) as exc:
        raise ArchiveError(f"archive {name} cannot be read: {exc}") from None


class _Manifests:
    """Parsed manifests, kept while the file is unchanged (a stat tells, or a HEAD of the
    object, cheaper than fetching it), so that a read parses no JSON it parsed before."""

    def __init__(self) -> None:
        self.known: dict[str, tuple[tuple[object, ...], Catalog]] = {}

    def catalog(self, folder: Folder) -> Catalog | None:
        try:
            signature = folder.identity(MANIFEST)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ArchiveError(
                f"archive manifest {folder}/{MANIFEST} cannot be read: {exc}"
            ) from None
        known = self.known.get(folder.url)
        if known is not None and known[0] == signature:
            return known[1]
        catalog = Catalog(folder, read_manifest(folder))
        self.known[folder.url] = (signature, catalog)
        return catalog


_MANIFESTS = _Manifests()


def catalog(database: Path) -> Catalog | None:
    """The archive of the database whose companion base is `database`, or None when it
    has none (the common case: a stat of the config file, of a link and of a manifest).
    Call it after reading the database."""
    return catalog_of(locate(database))


def catalog_of(folder: Folder) -> Catalog | None:
    """The archive in `folder`, or None when it holds none."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        if folder.is_local and not (folder.path / MANIFEST).exists():
            return None
        raise ValidationError(
            "archive",
            str(folder),
            "reading archived market data needs pyarrow: pip install 'tradedb[ops]'",
        ) from None
    return _MANIFESTS.catalog(folder)


def archived_columns(
    database: Path,
    exchange: str,
    symbol: str,
    timeframe: str,
    *,
    since: int | None,
    until: int | None,
) -> Any | None:
    """One market's archived candles in [since, until) as columns (6, rows), in time
    order; None when nothing of the market is archived there."""
    found = catalog(database)
    if found is None:
        return None
    return found.candle_columns((exchange, symbol, timeframe), since, until)


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
