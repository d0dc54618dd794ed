"""PostgreSQL's bulk writes: COPY, with the upsert done by the server.

A batch is copied (binary COPY) into a temporary staging table shaped like the target's
columns, then moved in with one INSERT ... SELECT ... ON CONFLICT, which counts what it
inserted and changed. A batch of one market's candles whose time range holds no stored
candle yet (a download, an import: the common case) is copied straight into market_data,
which is as fast as COPY gets; if another writer got there first, the COPY's unique
violation rolls back to a savepoint and the upsert does the work.

Candles arrive as int64 units (checked column-wise, or derived from stored candles), so
their COPY data is built with NumPy, NUMERIC values included, without a Python object
per value. Other batches (tickers, with their NULLs) go through psycopg's row writer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg.errors
from sqlalchemy import Text

from tradedb.schema.money import ScaledDecimal, from_units
from tradedb.schema.tables import metadata
from tradedb.store.batch import Batch, OnConflict

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
_COPY_TRAILER = b"\xff\xff"
_NBASE_DIGITS = 4  # NUMERIC's binary digits are base 10000
_INT64_DIGITS = 19
_COPY_CHUNK_ROWS = 200_000


def amount_scales(table: str) -> dict[str, int]:
    """The amount columns of a table and their decimal scales."""
    return {
        column.name: column.type.spec.scale
        for column in metadata.tables[table].columns
        if isinstance(column.type, ScaledDecimal)
    }


def upsert_batch(conn: Any, batch: Batch, *, on_conflict: OnConflict) -> tuple[int, int]:
    """Write `batch` in the transaction of `conn` (a PgConnection); rows inserted, and
    rows inserted or changed."""
    if not len(batch):
        return 0, 0
    scales = amount_scales(batch.table)
    columns = _int_columns(batch)
    if columns is not None and _fresh_range(conn, batch, columns):
        copied = _copy_straight(conn, batch, columns, scales)
        if copied is not None:
            return copied, copied
    stage = _stage(conn, batch)
    if columns is not None:
        _copy_columns(conn, stage, batch.columns, columns, scales)
    else:
        _copy_rows(conn, stage, batch, scales)
    # Candle batches (the int columns) hold each key once: bulk.candle_batch refuses a
    # repeat. Ticker rows may repeat one, and as in SQLite's upsert the last given wins.
    return _merge(conn, batch, stage, on_conflict=on_conflict, deduplicate=columns is None)


# --- which path ----------------------------------------------------------------------------


def _int_columns(batch: Batch) -> Any:
    """The batch as int64 columns of shape (columns, rows) when every value is an int
    (candles always are), else None."""
    if batch.arrays is not None:
        return batch.arrays
    try:
        import numpy as np
    except ImportError:
        return None
    if not all(type(value) is int for value in batch.values):
        return None
    try:
        flat = np.array(batch.values, dtype=np.int64)
    except OverflowError:
        return None
    return np.ascontiguousarray(flat.reshape(-1, len(batch.columns)).T)


def _varying_key(batch: Batch) -> list[int]:
    constant = {name for name, _ in batch.constants}
    return [batch.columns.index(name) for name in batch.key if name not in constant]


def _fresh_range(conn: Any, batch: Batch, columns: Any) -> bool:
    """Whether no stored row shares the batch's constants within its key's range: then
    nothing can conflict, and a plain COPY does the whole write."""
    varying = _varying_key(batch)
    if len(varying) != 1 or not batch.constants:
        return False
    name = batch.columns[varying[0]]
    keys = columns[varying[0]]
    where = " AND ".join(f"{column} = ?" for column, _ in batch.constants)
    row = conn.execute(
        f"SELECT 1 FROM {batch.table} WHERE {where} AND {name} >= ? AND {name} <= ? LIMIT 1",
        (*(value for _, value in batch.constants), int(keys.min()), int(keys.max())),
    ).fetchone()
    return row is None


def _copy_straight(conn: Any, batch: Batch, columns: Any, scales: dict[str, int]) -> int | None:
    """COPY the batch into its table; None (and nothing written) if a row turned out to
    exist after all: another writer stored it since the range was found empty."""
    names = (*batch.columns, *(name for name, _ in batch.constants))
    constants = [value for _, value in batch.constants]
    conn.execute("SAVEPOINT tradedb_copy")
    try:
        _copy_binary(
            conn, batch.table, names, batch.columns, columns, constants=constants, scales=scales
        )
    except psycopg.errors.UniqueViolation:
        conn.execute("ROLLBACK TO SAVEPOINT tradedb_copy")
        return None
    conn.execute("RELEASE SAVEPOINT tradedb_copy")
    return int(columns.shape[1])


# --- staging and merging -------------------------------------------------------------------


def _stage(conn: Any, batch: Batch) -> str:
    """A temporary table shaped like the batch's varying columns, empty."""
    stage = f"_tradedb_stage_{batch.table}"
    conn.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
        f"SELECT 0::bigint AS ord, {', '.join(batch.columns)} FROM {batch.table} WITH NO DATA"
    )
    conn.execute(f"TRUNCATE {stage}")
    return stage


def _copy_columns(
    conn: Any, stage: str, names: Sequence[str], columns: Any, scales: dict[str, int]
) -> None:
    import numpy as np

    ordinal = np.arange(columns.shape[1], dtype=np.int64)
    _copy_binary(
        conn,
        stage,
        ("ord", *names),
        ("ord", *names),
        np.vstack([ordinal, columns]),
        constants=[],
        scales=scales,
    )


def _copy_rows(conn: Any, stage: str, batch: Batch, scales: dict[str, int]) -> None:
    """Rows with NULLs or text: through psycopg's row writer (small batches: tickers)."""
    width = len(batch.columns)
    scale_at = [scales.get(name) for name in batch.columns]
    names = ", ".join(("ord", *batch.columns))
    with conn.raw.cursor().copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
        for ordinal, at in enumerate(range(0, len(batch.values), width)):
            row = batch.values[at : at + width]
            copy.write_row(
                [
                    ordinal,
                    *(
                        value if scale is None or value is None else from_units(value, scale)
                        for value, scale in zip(row, scale_at, strict=True)
                    ),
                ]
            )


def _merge(
    conn: Any, batch: Batch, stage: str, *, on_conflict: OnConflict, deduplicate: bool
) -> tuple[int, int]:
    constants = [name for name, _ in batch.constants]
    target = ", ".join((*batch.columns, *constants))
    selected = ", ".join((*batch.columns, *("?" for _ in constants)))
    source = f"SELECT {selected} FROM {stage}"
    if deduplicate:
        varying = [batch.columns[index] for index in _varying_key(batch)]
        order = ", ".join(varying)
        source = f"SELECT DISTINCT ON ({order}) {selected} FROM {stage} ORDER BY {order}, ord DESC"
    insert = (
        f"INSERT INTO {batch.table} AS t ({target}) {source} ON CONFLICT ({', '.join(batch.key)}) "
    )
    if on_conflict == "keep":
        statement = f"{insert} DO NOTHING RETURNING true AS fresh"
    else:
        values = [name for name in (*batch.columns, *constants) if name not in batch.key]
        assignments = ", ".join(f"{name} = excluded.{name}" for name in values)
        before = ", ".join(f"t.{name}" for name in values)
        after = ", ".join(f"excluded.{name}" for name in values)
        statement = (
            f"{insert} DO UPDATE SET {assignments} WHERE ({before}) IS DISTINCT FROM ({after}) "
            "RETURNING (t.xmax = 0) AS fresh"
        )
    inserted, changed = conn.execute(
        f"WITH written AS ({statement}) "
        "SELECT count(*) FILTER (WHERE fresh), count(*) FROM written",
        [value for _, value in batch.constants],
    ).fetchone()
    return int(inserted), int(changed)


# --- rows copied from another database (tradedb migrate-db) -------------------------------


@dataclass(frozen=True)
class CopyText:
    """Rows in COPY's text format, ready to be sent."""

    statement: str
    data: str


def copy_text(
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    units: Mapping[str, int],
) -> CopyText:
    """Rows, ids included, in COPY's text format, built column by column (the page turned
    on its side: each column converted by one `map`, with no Python call per row). The
    columns in `units` hold integer units, written as numeric text with an exponent
    ('12345e-8'), which PostgreSQL reads exactly."""
    texts = metadata.tables[table].columns
    fields = []
    for name, values in zip(columns, zip(*rows, strict=True), strict=True):
        spell: Callable[[Any], str] | None
        if name in units:
            spell = f"{{}}e-{units[name]}".format
        elif isinstance(texts[name].type, Text):
            # Names, symbols and levels hold nothing to escape: they go as they are.
            spell = _escaped if _needs_escapes(values) else None
        else:
            spell = str  # integers; booleans ('True' is read as true); Decimals
        fields.append(_spelt(values, spell))
    data = "".join(line + "\n" for line in map("\t".join, zip(*fields, strict=True)))
    return CopyText(f"COPY {table} ({', '.join(columns)}) FROM STDIN", data)


def copy_in(conn: Any, prepared: CopyText) -> None:
    """Send rows made by `copy_text`, in the open transaction of `conn` (a PgConnection)."""
    if not prepared.data:
        return
    with conn.raw.cursor().copy(prepared.statement) as copy:
        copy.write(prepared.data.encode(conn.raw.info.encoding))


_NULL = "\\N"
# COPY's text format gives backslash, newline, carriage return and tab a meaning.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _spelt(values: Sequence[Any], spell: Callable[[Any], str] | None) -> list[str]:
    """A column's values as COPY text; `spell` None for text that goes as it is."""
    if None not in values:
        return list(values) if spell is None else list(map(spell, values))
    if spell is None:
        return [_NULL if value is None else value for value in values]
    return [_NULL if value is None else spell(value) for value in values]


def _escaped(text: str) -> str:
    return text.translate(_COPY_ESCAPES)


def _needs_escapes(values: Sequence[str | None]) -> bool:
    """Whether any text of a column holds a character COPY escapes (one scan of them all:
    names, symbols and levels never do, so they go as they are)."""
    joined = "".join(value for value in values if value is not None)
    return any(character in joined for character in "\\\n\r\t")


# --- binary COPY out to int64 columns --------------------------------------------------------


def copy_out_int64(conn: Any, sql: str, params: Sequence[Any], width: int) -> Any:
    """Rows of `width` BIGINT columns (never NULL) of a query, as int64 columns of shape
    (width, rows): COPY (query) TO STDOUT in binary, whose rows are then all alike (a
    field count, and per field a length and eight bytes), read by NumPy at once."""
    import numpy as np

    from tradedb.store.engines.postgresql import translate

    text, order = translate(sql)
    values = params if order is None else [params[index] for index in order]
    chunks = []
    with conn.raw.cursor().copy(f"COPY ({text}) TO STDOUT (FORMAT BINARY)", values) as copy:
        for data in copy:
            chunks.append(bytes(data))
    payload = b"".join(chunks)
    body = payload[len(_COPY_HEADER) : len(payload) - len(_COPY_TRAILER)]
    layout = np.dtype([("count", ">i2")] + [(f"f{i}", ">i4,>i8") for i in range(width)])
    records = np.frombuffer(body, dtype=layout)
    return np.ascontiguousarray(
        np.stack([records[f"f{i}"]["f1"].astype(np.int64) for i in range(width)])
    ).reshape(width, -1)


# --- binary COPY from int64 columns ----------------------------------------------------------


def _copy_binary(
    conn: Any,
    table: str,
    names: Sequence[str],
    varying: Sequence[str],
    columns: Any,
    *,
    constants: Sequence[object],
    scales: dict[str, int],
) -> None:
    """COPY rows of int64 columns (amount columns in units, written as NUMERIC) and
    constant text columns, in PostgreSQL's binary format built with NumPy."""
    dtype, fill = _row_layout(varying, constants, scales)
    rows = columns.shape[1]
    with conn.raw.cursor().copy(
        f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.write(_COPY_HEADER)
        for start in range(0, rows, _COPY_CHUNK_ROWS):
            block = columns[:, start : start + _COPY_CHUNK_ROWS]
            copy.write(fill(block, dtype).tobytes())
        copy.write(_COPY_TRAILER)


def _row_layout(
    varying: Sequence[str], constants: Sequence[object], scales: dict[str, int]
) -> tuple[Any, Any]:
    import numpy as np

    fields: list[tuple[str, Any] | tuple[str, Any, tuple[int]]] = [("count", ">i2")]
    setters: list[Any] = []
    for index, name in enumerate(varying):
        scale = scales.get(name)
        if scale is None:
            fields += [(f"l{index}", ">i4"), (f"v{index}", ">i8")]
            setters.append((index, "int8", 8, None))
        else:
            digits_int = math.ceil((_INT64_DIGITS - scale) / _NBASE_DIGITS)
            digits_frac = math.ceil(scale / _NBASE_DIGITS)
            count = digits_int + digits_frac
            fields += [
                (f"l{index}", ">i4"),
                (f"h{index}", ">i2", (4,)),
                (f"d{index}", ">i2", (count,)),
            ]
            setters.append((index, "numeric", 8 + 2 * count, (scale, digits_int, digits_frac)))
    texts = []
    for index, value in enumerate(constants):
        data = str(value).encode()
        fields.append((f"cl{index}", ">i4"))
        if data:
            fields.append((f"c{index}", f"S{len(data)}"))
        texts.append((index, data))
    dtype = np.dtype(fields)
    field_count = len(varying) + len(constants)

    def fill(block: Any, layout: Any) -> Any:
        rows = np.empty(block.shape[1], dtype=layout)
        rows["count"] = field_count
        for index, kind, length, numeric in setters:
            rows[f"l{index}"] = length
            if kind == "int8":
                rows[f"v{index}"] = block[index]
                continue
            scale, digits_int, digits_frac = numeric
            units = block[index]
            negative = units < 0
            magnitude = np.abs(units).astype(np.uint64)
            whole = magnitude // np.uint64(10**scale)
            fraction = (magnitude % np.uint64(10**scale)) * np.uint64(
                10 ** (digits_frac * _NBASE_DIGITS - scale)
            )
            digits = np.empty((block.shape[1], digits_int + digits_frac), dtype=np.int64)
            for place in range(digits_int):
                power = np.uint64(10000 ** (digits_int - 1 - place))
                digits[:, place] = (whole // power) % np.uint64(10000)
            for place in range(digits_frac):
                power = np.uint64(10000 ** (digits_frac - 1 - place))
                digits[:, digits_int + place] = (fraction // power) % np.uint64(10000)
            header = rows[f"h{index}"]
            header[:, 0] = digits_int + digits_frac  # ndigits
            header[:, 1] = digits_int - 1  # weight of the first digit
            header[:, 2] = np.where(negative, 0x4000, 0)  # sign
            header[:, 3] = scale  # display scale
            rows[f"d{index}"] = digits
        for index, data in texts:
            rows[f"cl{index}"] = len(data)
            if data:
                rows[f"c{index}"] = data
        return rows

    return dtype, fill
