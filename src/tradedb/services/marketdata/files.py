"""Candle files from elsewhere, read into exact ccxt-style rows.

Formats, detected from the file name and its first line, or named:
- freqtrade data files `<BASE>_<QUOTE>-<timeframe>.{feather,parquet,json,json.gz}` (whole
  `user_data/data/<exchange>/` folders too), and freqtrade trade files
  `<BASE>_<QUOTE>-trades.{feather,parquet}`, which become candles;
- Binance public-data kline CSVs (12 columns; open times in milliseconds, or in
  microseconds in files from 2025 on);
- Kraken OHLCVT CSVs (timestamp in seconds, open, high, low, close, volume, trades);
- Kraken trade-history CSVs (timestamp in seconds, price, volume), which become candles.

freqtrade stores prices as float64. A float means its shortest repr (0.1 is 0.1), and one
whose repr runs past 8 decimals (0.00010756000000000001, float noise) is refused unless
the caller asks to round such values half-even to 8 decimals; then they are counted.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, get_args

from tradedb.errors import ValidationError
from tradedb.models.timeframes import Timeframe, check_timeframe, timeframe_of
from tradedb.models.values import (
    MAX_EPOCH_MS,
    MIN_EPOCH_MS,
    check_symbol,
)
from tradedb.services.marketdata.resample import resample_units

Format = Literal[
    "freqtrade-feather",
    "freqtrade-parquet",
    "freqtrade-json",
    "freqtrade-trades",
    "binance-klines",
    "kraken-ohlcvt",
    "kraken-trades",
]
FORMATS: tuple[Format, ...] = get_args(Format)
TRADE_FORMATS = ("freqtrade-trades", "kraken-trades")
_FREQTRADE_NAME = re.compile(
    r"(?P<pair>[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+?)-(?P<tf>\d+(?:Mo|[mhdwM])|trades)"
    r"(?:-(?P<kind>spot|futures|mark|index|premiumIndex|funding_rate))?"
    r"\.(?P<ext>feather|parquet|json|json\.gz)$"
)
UNIT = Decimal("0.00000001")
MICROSECONDS = 100_000_000_000_000  # an open time at or above this is in microseconds


@dataclass(frozen=True)
class Source:
    """A data file and what it holds, told from its name and first line (or given)."""

    path: Path
    format: Format
    symbol: str
    timeframe: str

    @property
    def is_trades(self) -> bool:
        return self.format in TRADE_FORMATS


@dataclass
class Rows:
    """Candle rows read from one file, and what reading them took."""

    path: Path
    format: Format
    symbol: str
    timeframe: str
    rows: list[list[Any]]
    rounded: int = 0
    trades: int = 0
    # Trade files: the times (ms) of the first and last trade, None when it holds none.
    first_trade: int | None = None
    last_trade: int | None = None
    # Candle files: candles listed again with the same time and values, read once.
    repeated: int = 0


@dataclass
class FloatPolicy:
    """What a float read from a file becomes: exactly its shortest form when that has at
    most 8 decimals; otherwise (float noise such as 0.00010756000000000001) rounded
    half-even to 8 decimals and counted, or refused when `strict`."""

    strict: bool = False
    rounded: int = field(default=0)

    def value(self, number: object, name: str) -> object:
        if not isinstance(number, float):
            return number
        if not math.isfinite(number):
            raise ValidationError(name, number, "is not a finite number")
        exact = Decimal(repr(number))
        if exact.as_tuple().exponent >= -8:  # type: ignore[operator]
            return exact
        if self.strict:
            raise ValidationError(
                name,
                number,
                "is a float with noise past 8 decimals, refused with `strict=True` (without "
                "it such values are rounded half-even and counted)",
            )
        self.rounded += 1
        return exact.quantize(UNIT, rounding=ROUND_HALF_EVEN)


def candidates(path: Path, *, every_file: bool = False) -> list[Path]:
    """The files an import of `path` reads: the file, or the data files in a folder
    (with `every_file`, all its files but hidden ones, for the import to say why it
    passes over the others)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ValidationError("path", str(path), "does not exist")
    found = sorted(
        item
        for item in path.rglob("*")
        if item.is_file() and not any(part.startswith(".") for part in item.relative_to(path).parts)
    )
    data = [item for item in found if _is_data_file(item)]
    if not any(not_market_candles(item) is None for item in data):
        raise ValidationError("path", str(path), "holds no candle or trade files tradedb reads")
    return found if every_file else data


def _is_data_file(item: Path) -> bool:
    return bool(_FREQTRADE_NAME.search(item.name)) or item.name.endswith((".csv", ".csv.gz"))


# freqtrade's series of a futures market that are not its trading candles.
_NOT_CANDLES = {
    "mark": "mark-price candles",
    "index": "index-price candles",
    "premiumIndex": "premium-index candles",
    "funding_rate": "funding rates",
}


def not_market_candles(item: Path) -> str | None:
    """Why a file in a folder being imported holds no market candles or trades tradedb
    stores; None for a file it reads."""
    if "backtest_results" in item.parts or item.name.startswith("backtest-result"):
        return "freqtrade backtest results hold no market data"
    if item.suffix == ".h5":
        return (
            "HDF5 files are not read: convert them with freqtrade's "
            "`convert-data --format-to feather`"
        )
    match = _FREQTRADE_NAME.search(item.name)
    if match and match["kind"] in _NOT_CANDLES:
        return f"freqtrade's {_NOT_CANDLES[match['kind']]}: market_data holds trading candles"
    if not _is_data_file(item):
        return "not a candle or trade file tradedb reads"
    return None


def detect(path: Path) -> Format:
    """The format of a file, from its name and, for CSVs, its first line."""
    match = _FREQTRADE_NAME.search(path.name)
    if match:
        if match["tf"] == "trades":
            return "freqtrade-trades"
        ext = match["ext"]
        return "freqtrade-json" if ext.startswith("json") else f"freqtrade-{ext}"  # type: ignore[return-value]
    if path.name.endswith((".csv", ".csv.gz")):
        first = _first_line(path)
        if not first:
            raise ValidationError("path", str(path), "is empty")
        columns = len(first.split(","))
        if columns == 12 or first.startswith("open_time"):
            return "binance-klines"
        if columns == 7:
            return "kraken-ohlcvt"
        if columns == 3:
            return "kraken-trades"
        raise ValidationError(
            "format",
            path.name,
            f"a CSV with {columns} columns is none of binance-klines (12), kraken-ohlcvt (7) "
            "or kraken-trades (3); name the format with `format=FORMAT`",
        )
    raise ValidationError(
        "format",
        path.name,
        f"is not a file format tradedb reads; name it with `format=FORMAT` ({', '.join(FORMATS)})",
    )


# Kraken names its CSVs by its own pair names (XBTUSD.csv, BCHEUR.csv, XBTUSD_1.csv).
_KRAKEN_QUOTES = (
    "USDT",
    "USDC",
    "EUR",
    "USD",
    "GBP",
    "CAD",
    "JPY",
    "CHF",
    "AUD",
    "ETH",
    "XBT",
    "DAI",
)
_KRAKEN_ASSETS = {"XBT": "BTC", "XDG": "DOGE"}


def kraken_symbol(path: Path) -> str | None:
    """A ccxt symbol from a Kraken CSV name: XBTUSD.csv -> BTC/USD, BCHEUR-... -> BCH/EUR."""
    pair = re.split(r"[-_.]", path.name, maxsplit=1)[0].upper()
    for quote in _KRAKEN_QUOTES:
        base = pair.removesuffix(quote)
        if base != pair and base.isalnum():
            return f"{_KRAKEN_ASSETS.get(base, base)}/{_KRAKEN_ASSETS.get(quote, quote)}"
    return None


def name_parts(path: Path) -> tuple[str | None, str | None]:
    """Symbol and timeframe from a file name: freqtrade's (XRP_ETH-5m -> XRP/ETH, 5m) or
    Kraken's (XBTUSD.csv -> BTC/USD)."""
    match = _FREQTRADE_NAME.search(path.name)
    if not match:
        return kraken_symbol(path) if path.name.endswith((".csv", ".csv.gz")) else None, None
    parts = match["pair"].upper().split("_")
    symbol = f"{parts[0]}/{parts[1]}"
    if len(parts) > 2:  # freqtrade writes BTC/USDT:USDT as BTC_USDT_USDT
        symbol += ":" + "_".join(parts[2:])
    if match["tf"] == "trades":
        return symbol, None
    # freqtrade names a month "1Mo", so that case-insensitive file systems tell it from 1m.
    return symbol, match["tf"].removesuffix("o")


def identify(
    path: Path,
    *,
    format: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> Source:
    """What a file holds, without reading it whole: its format, market and timeframe."""
    kind: Format = detect(path) if format is None else _known(format)
    named_symbol, named_timeframe = name_parts(path)
    symbol = (
        check_symbol(symbol or named_symbol or "", "symbol") if (symbol or named_symbol) else None
    )
    if symbol is None:
        raise ValidationError(
            "symbol", None, f"cannot be told from {path.name}; give `symbol=SYMBOL`"
        )
    if kind in TRADE_FORMATS:
        timeframe = check_timeframe(timeframe or "1m")
    else:
        timeframe = timeframe or named_timeframe
        if timeframe is None:
            raise ValidationError(
                "timeframe", None, f"cannot be told from {path.name}; give `timeframe=TIMEFRAME`"
            )
        check_timeframe(timeframe)
    return Source(path, kind, symbol, timeframe)


def read(
    path: Path,
    *,
    format: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    strict: bool = False,
) -> Rows:
    """Read one file into rows [epoch_ms, open, high, low, close, volume]."""
    source = identify(path, format=format, symbol=symbol, timeframe=timeframe)
    return read_source(source, strict=strict)


def read_source(source: Source, *, strict: bool = False) -> Rows:
    """Read an identified file whole into rows [epoch_ms, open, high, low, close, volume];
    a trade file's trades become candles of its timeframe."""
    path, kind, symbol, timeframe = source.path, source.format, source.symbol, source.timeframe
    policy = FloatPolicy(strict)
    try:
        if kind in TRADE_FORMATS:
            trades = list(_trades(path, kind, policy))
            rows = trades_to_candles(trades, timeframe_of(timeframe))
            first, last = (trades[0][0], trades[-1][0]) if trades else (None, None)
            return Rows(
                path, kind, symbol, timeframe, rows, policy.rounded, len(trades), first, last
            )
        rows = list(_candles(path, kind, policy))
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise ValidationError("path", str(path), f"cannot be read: {exc}") from None
    if not rows:
        raise ValidationError("path", str(path), "holds no rows")
    once = _each_time_once(rows)
    return Rows(path, kind, symbol, timeframe, once, policy.rounded, repeated=len(rows) - len(once))


def _each_time_once(rows: list[list[Any]]) -> list[list[Any]]:
    """A file's candles with each time once: a candle listed again with the same values
    is read once (the caller reports how many were), one listed again with other values
    is refused, since which of the two is right cannot be told."""
    if all(row[0] < after[0] for row, after in itertools.pairwise(rows)):
        return rows  # in time order, as files usually are
    first_at: dict[int, int] = {}
    once = []
    for index, row in enumerate(rows):
        earlier = first_at.setdefault(row[0], index)
        if earlier == index:
            once.append(row)
        elif row != rows[earlier]:
            raise ValidationError(
                f"candle {index + 1}.time",
                row[0],
                f"is also the time of candle {earlier + 1} of the file, with other values; "
                "which of the two is right cannot be told (candles counted from 1)",
            )
    return once


def _known(format: str) -> Format:
    for known in FORMATS:
        if format == known:
            return known
    raise ValidationError("format", format, f"must be one of {', '.join(FORMATS)}")


def trades_to_candles(
    trades: Iterable[tuple[int, Decimal, Decimal]], frame: Timeframe
) -> list[list[Any]]:
    """Candles from trades (time ms, price, amount) in time order: first and last price,
    highest and lowest, and the exact sum of the amounts, per UTC bucket."""
    as_candles = ((ts, price, price, price, price, amount) for ts, price, amount in trades)
    return [list(candle) for candle in resample_units(as_candles, frame)]


def join_candles(parts: Iterable[Sequence[Sequence[Any]]], frame: Timeframe) -> list[list[Any]]:
    """One market's candles from the candles of each of its trade files, the files given
    in time order and none with a trade inside another's time range. A bucket's open, high,
    low, close and volume combine the same from trades as from candles of them, so this
    equals bucketing all the trades at once, while only candles, not every trade of every
    file, are held in memory."""
    as_tuples = (
        (candle[0], candle[1], candle[2], candle[3], candle[4], candle[5])
        for part in parts
        for candle in part
    )
    return [list(candle) for candle in resample_units(as_tuples, frame)]


# --- readers --------------------------------------------------------------------------------


def _candles(path: Path, kind: Format, policy: FloatPolicy) -> Iterator[list[Any]]:
    if kind in ("freqtrade-feather", "freqtrade-parquet"):
        table = _arrow_table(path, kind)
        _require_columns(
            table.column_names, ("date", "open", "high", "low", "close", "volume"), path
        )
        millis = _arrow_millis(table.column("date"))
        columns = [
            table.column(name).to_pylist() for name in ("open", "high", "low", "close", "volume")
        ]
        for index, (ms, *values) in enumerate(zip(millis, *columns, strict=True)):
            yield [
                ms,
                *(
                    policy.value(v, f"row {index + 1}.{n}")
                    for v, n in zip(values, _OHLCV, strict=True)
                ),
            ]
    elif kind == "freqtrade-json":
        data = _json(path)
        if not isinstance(data, list):
            raise ValidationError("path", str(path), "is not a freqtrade JSON list of candles")
        for index, row in enumerate(data):
            if not isinstance(row, list) or len(row) != 6:
                raise ValidationError(
                    f"row {index + 1}", row, "must be [ms, open, high, low, close, volume]"
                )
            yield [
                _millis(row[0], index),
                *(
                    policy.value(v, f"row {index + 1}.{n}")
                    for v, n in zip(row[1:], _OHLCV, strict=True)
                ),
            ]
    elif kind == "binance-klines":
        for index, cells in _csv_rows(path, 12, "binance-klines"):
            if index == 0 and not cells[0].isdigit():
                _check_header(cells, BINANCE_HEADER, path)
                continue
            yield [
                _binance_time(cells[0], index),
                *(_decimal(c, index, n) for c, n in zip(cells[1:6], _OHLCV, strict=True)),
            ]
    elif kind == "kraken-ohlcvt":
        for index, cells in _csv_rows(path, 7, "kraken-ohlcvt"):
            yield [
                _seconds(cells[0], index),
                *(_decimal(c, index, n) for c, n in zip(cells[1:6], _OHLCV, strict=True)),
            ]


def _trades(
    path: Path, kind: Format, policy: FloatPolicy
) -> Iterator[tuple[int, Decimal, Decimal]]:
    # A candle's open and close are its first and last trade, and a market's files are
    # ordered and checked for overlap by their first and last trades, so a file whose
    # trades are out of time order is refused rather than bucketed.
    previous: int | None = None
    if kind == "kraken-trades":
        for index, cells in _csv_rows(path, 3, "kraken-trades"):
            ts = _seconds(cells[0], index)
            previous = _in_time_order(ts, previous, f"line {index + 1}.time", cells[0])
            yield (ts, _decimal(cells[1], index, "price"), _decimal(cells[2], index, "volume"))
        return
    stamps, prices, amounts = _freqtrade_trade_columns(path)
    for index, (stamp, price, amount) in enumerate(zip(stamps, prices, amounts, strict=True)):
        ts = _millis(stamp, index)
        previous = _in_time_order(ts, previous, f"row {index + 1}.timestamp", stamp)
        yield (
            ts,
            Decimal(str(policy.value(price, f"row {index + 1}.price"))),
            Decimal(str(policy.value(amount, f"row {index + 1}.amount"))),
        )


# freqtrade's JSON trade files hold one list per trade, in this column order.
FREQTRADE_TRADE_COLUMNS = ("timestamp", "id", "type", "side", "price", "amount", "cost")


def _freqtrade_trade_columns(path: Path) -> tuple[list[Any], list[Any], list[Any]]:
    """A freqtrade trades file's timestamps, prices and amounts, in every format freqtrade
    writes: feather, parquet, and JSON (plain or gzipped) lists of lists."""
    if path.name.endswith((".json", ".json.gz")):
        trades = _json(path)
        width = len(FREQTRADE_TRADE_COLUMNS)
        if not isinstance(trades, list) or any(
            not isinstance(trade, list) or len(trade) < width for trade in trades
        ):
            raise ValidationError(
                "path",
                str(path),
                "is not a freqtrade trades JSON file: a list of "
                f"[{', '.join(FREQTRADE_TRADE_COLUMNS)}]",
            )
        price, amount = (
            FREQTRADE_TRADE_COLUMNS.index("price"),
            FREQTRADE_TRADE_COLUMNS.index("amount"),
        )
        return (
            [trade[0] for trade in trades],
            [trade[price] for trade in trades],
            [trade[amount] for trade in trades],
        )
    table = _arrow_table(
        path, "freqtrade-parquet" if path.suffix == ".parquet" else "freqtrade-feather"
    )
    _require_columns(table.column_names, ("timestamp", "price", "amount"), path)
    return (
        table.column("timestamp").to_pylist(),
        table.column("price").to_pylist(),
        table.column("amount").to_pylist(),
    )


def _in_time_order(ts: int, previous: int | None, field: str, value: object) -> int:
    if previous is not None and ts < previous:
        raise ValidationError(
            field, value, "is earlier than the trade before it; trades must be in time order"
        )
    return ts


_OHLCV = ("open", "high", "low", "close", "volume")
# The columns of Binance's kline files, in their order (newer files carry this header).
BINANCE_HEADER = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)


def _check_header(cells: Sequence[str], expected: Sequence[str], path: Path) -> None:
    if [cell.lower() for cell in cells] != list(expected):
        raise ValidationError(
            "header",
            ",".join(cells),
            f"{path.name} has its columns in an unexpected order; expected {','.join(expected)}",
        )


def _arrow_table(path: Path, kind: Format) -> Any:
    try:
        from pyarrow import feather, parquet
    except ImportError:
        raise ValidationError(
            "format", kind, "needs pyarrow: pip install 'tradedb[arrow]'"
        ) from None
    try:
        if kind == "freqtrade-parquet":
            return parquet.read_table(path)
        return feather.read_table(path)
    except Exception as exc:  # pyarrow raises its own error types for unreadable files
        raise ValidationError("path", str(path), f"is not a readable {kind} file: {exc}") from None


def _arrow_millis(column: Any) -> list[int]:
    import pyarrow as pa

    return column.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_pylist()  # type: ignore[no-any-return]


def _require_columns(have: Sequence[str], need: Sequence[str], path: Path) -> None:
    missing = [name for name in need if name not in have]
    if missing:
        raise ValidationError(
            "columns",
            list(have),
            f"{path.name} lacks {', '.join(missing)}; is it the right format?",
        )


def _json(path: Path) -> Any:
    try:
        return json.loads(_text(path))
    except json.JSONDecodeError as exc:
        raise ValidationError("path", str(path), f"is not valid JSON: {exc}") from None
    except RecursionError:
        # Python's parser recurses once per level of nesting; freqtrade's lists have two.
        raise ValidationError(
            "path", str(path), "is nested too deeply to be a freqtrade JSON file"
        ) from None


def _text(path: Path) -> str:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return raw.decode("utf-8")


def _first_line(path: Path) -> str:
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            return str(handle.readline()).strip()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise ValidationError("path", str(path), f"cannot be read: {exc}") from None


def _csv_rows(path: Path, columns: int, kind: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(_text(path)))
    for index, cells in enumerate(reader):
        if not cells:
            continue
        if len(cells) != columns:
            raise ValidationError(
                f"line {index + 1}",
                ",".join(cells),
                f"has {len(cells)} columns; {kind} has {columns}",
            )
        yield index, [cell.strip() for cell in cells]


def _decimal(text: str, index: int, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValidationError(f"line {index + 1}.{name}", text, "is not a decimal number") from None
    if not value.is_finite():
        raise ValidationError(f"line {index + 1}.{name}", text, "is not a finite number")
    return value


def _integer(text: object, index: int) -> int:
    try:
        return int(str(text))
    except ValueError:
        raise ValidationError(f"line {index + 1}.time", text, "is not a whole number") from None


def _seconds(text: str, index: int) -> int:
    """Kraken's CSVs count whole seconds."""
    value = _integer(text, index)
    if value >= MIN_EPOCH_MS:
        raise ValidationError(
            f"line {index + 1}.time", text, "looks like milliseconds; this format uses seconds"
        )
    return value * 1000


def _binance_time(text: str, index: int) -> int:
    """Binance's open times: milliseconds, or microseconds in files from 2025 on."""
    value = _integer(text, index)
    if value >= MICROSECONDS:
        if value % 1000:
            raise ValidationError(f"line {index + 1}.open_time", text, "is not a whole millisecond")
        value //= 1000
    return _millis(value, index)


def _millis(value: object, index: int) -> int:
    number = _integer(value, index)
    if number < MIN_EPOCH_MS:
        raise ValidationError(
            f"line {index + 1}.time",
            value,
            "looks like epoch seconds; this format uses milliseconds",
        )
    if number > MAX_EPOCH_MS:
        raise ValidationError(f"line {index + 1}.time", value, "is too large for milliseconds")
    return number
