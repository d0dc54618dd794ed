"""Importing candle and trade files into market_data.

Each file is read and checked whole before any of it is written, then written in one
transaction: a bad file leaves the database as it was. A folder is imported file by file,
in name order, and stops at the first bad file (the files before it stay imported and are
reported).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tradedb.errors import ValidationError
from tradedb.models.values import check_exchange
from tradedb.services.marketdata import files
from tradedb.store import Store
from tradedb.store.bulk import BulkResult, OnConflict


@dataclass(frozen=True)
class ImportResult:
    path: Path
    format: str
    exchange: str
    symbol: str
    timeframe: str
    written: BulkResult
    # Float values rounded to 8 decimals (only with round_floats), and trades read.
    rounded: int = 0
    trades: int = 0


def import_path(
    store: Store,
    path: str | Path,
    *,
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    format: str | None = None,
    on_conflict: OnConflict = "replace",
    round_floats: bool = False,
    progress: Callable[[Path], None] | None = None,
) -> list[ImportResult]:
    """Import a file, or every data file in a folder (a freqtrade data folder, say).

    The exchange is `exchange`, else the name of the file's folder (freqtrade keeps
    `user_data/data/<exchange>/`); symbol and timeframe come from freqtrade file names
    unless given.
    """
    if on_conflict not in ("replace", "keep"):
        raise ValidationError("on_conflict", on_conflict, "must be replace or keep")
    if format is not None and format not in files.FORMATS:
        raise ValidationError("format", format, f"must be one of {', '.join(files.FORMATS)}")
    if exchange is not None:
        check_exchange(exchange)
    results = []
    for item in files.candidates(Path(path)):
        try:
            market = exchange or _exchange_of(item)
            read = files.read(
                item,
                format=format,
                symbol=symbol,
                timeframe=timeframe,
                round_floats=round_floats,
            )
            written = store.write_candles(
                read.rows,
                exchange=market,
                symbol=read.symbol,
                timeframe=read.timeframe,  # type: ignore[arg-type]
                on_conflict=on_conflict,
            )
        except ValidationError as error:
            # The file is named, so that the user of a folder import knows which one.
            raise type(error)(f"{item.name}: {error.field}", error.value, error.rule) from None
        results.append(
            ImportResult(
                item,
                read.format,
                market,
                read.symbol,
                read.timeframe,
                written,
                read.rounded,
                read.trades,
            )
        )
        if progress is not None:
            progress(item)
    return results


def _exchange_of(path: Path) -> str:
    folder = path.resolve().parent.name
    try:
        return check_exchange(folder)
    except ValidationError:
        raise ValidationError(
            "exchange",
            None,
            f"cannot be told from the folder of {path.name} ({folder!r}); give --exchange",
        ) from None
