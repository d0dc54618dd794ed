"""Importing candle and trade files into market_data.

A file is identified (format, market, timeframe) and read and checked whole before any of
it is written. A candle file is written in one transaction of its own. Trade files of one
market (exchange, symbol, timeframe) are turned into candles together, as one
time-ordered stream of trades, and written in one transaction when the last of them has
been read: a candle whose bucket spans two files holds the trades of both. Files are
taken in name order.

Importing one file, a bad file is refused (nothing of it written). Importing a folder (a
freqtrade `user_data/data`, say), one bad file never stops the others: it is reported
failed with its reason, and so is every trade file of its market, which are written
together or not at all. Files that are not market candles (freqtrade's mark, index,
premium-index and funding-rate series, HDF5 files, backtest results, anything else) are
reported skipped with the reason.

Trade files carry no trade ids (Kraken's CSVs are time, price, volume), so trades found in
two files cannot be told from the same trades listed twice, and identical trades really
happen. The trade files of one market must therefore not overlap in time: a file whose
first trade is at or before another's last trade is refused, with both files and their
time ranges, and nothing of that market is written.

A trade import's first and last bucket may hold only part of their trades (the rest can
sit in an adjacent file imported separately), so a stored candle in such a bucket that
differs from this import's is never replaced and never added to: it is kept and reported
(`boundary_kept`). Importing the adjacent files together rebuilds it exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from tradedb.errors import ValidationError
from tradedb.models.timeframes import timeframe_of
from tradedb.models.values import AMOUNT, check_exchange, ms_to_datetime
from tradedb.schema.money import to_units
from tradedb.services.marketdata import files
from tradedb.services.marketdata.history import MarketHistory
from tradedb.store import Store
from tradedb.store.bulk import BulkResult, OnConflict

NOTHING = BulkResult(0, 0, 0)
# Folders freqtrade keeps inside an exchange's own: its futures candles, and Kraken's
# trade CSVs.
EXCHANGE_SUBFOLDERS = frozenset({"futures", "trades_csv"})


@dataclass(frozen=True)
class ImportResult:
    path: Path
    format: str
    exchange: str
    symbol: str
    timeframe: str
    # A candle file's own write. Trade files of one market are written together: the
    # market's write is counted once, on the last of `market_files`, and the others carry
    # NOTHING, so that summing `written` over the results gives what was written.
    written: BulkResult
    # Float values rounded to 8 decimals (never with strict), and trades read.
    rounded: int = 0
    trades: int = 0
    # Trade files: the times (ms) of this file's first and last trade (None if it has none),
    # and every trade file of its market in this import, in time order.
    first_trade: int | None = None
    last_trade: int | None = None
    market_files: tuple[Path, ...] = ()
    # On the result that carries the market's write: the times of its first or last bucket
    # where a differing stored candle was kept (see the module's docstring).
    boundary_kept: tuple[int, ...] = ()
    # A candle file's candles listed twice, same time and values, written once.
    repeated: int = 0
    # In a folder's import: why this file was not imported (nothing of it was written),
    # or why it was passed over (it holds no market candles).
    failed: str | None = None
    skipped: str | None = None

    @property
    def carries_write(self) -> bool:
        """Whether `written` is this result's market's write (not one counted elsewhere)."""
        return self.status == "imported" and (
            not self.market_files or self.path == self.market_files[-1]
        )

    @property
    def status(self) -> str:
        return "failed" if self.failed else "skipped" if self.skipped else "imported"

    @classmethod
    def not_imported(
        cls, path: Path, *, failed: str | None = None, skipped: str | None = None
    ) -> ImportResult:
        return cls(path, "", "", "", "", NOTHING, failed=failed, skipped=skipped)


@dataclass(frozen=True)
class _Planned:
    source: files.Source
    exchange: str

    @property
    def market(self) -> tuple[str, str, str]:
        return (self.exchange, self.source.symbol, self.source.timeframe)


def import_path(
    store: Store,
    path: str | Path,
    *,
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    format: str | None = None,
    on_conflict: OnConflict = "replace",
    strict: bool = False,
    progress: Callable[[Path], None] | None = None,
) -> list[ImportResult]:
    """Import a file, or every data file in a folder (a freqtrade data folder, say).

    The exchange is `exchange`, else the name of the file's folder (freqtrade keeps
    `user_data/data/<exchange>/`); symbol and timeframe come from freqtrade file names
    unless given. Results come per file: candle files in name order; the trade files of a
    market together, in time order, where the last of them (by name) was read.
    """
    if on_conflict not in ("replace", "keep"):
        raise ValidationError("on_conflict", on_conflict, "must be replace or keep")
    if format is not None and format not in files.FORMATS:
        raise ValidationError("format", format, f"must be one of {', '.join(files.FORMATS)}")
    if exchange is not None:
        check_exchange(exchange)
    whole_folder = Path(path).is_dir()
    plan = []
    passed_over: list[ImportResult] = []
    for item in files.candidates(Path(path), every_file=whole_folder):
        skip = files.not_market_candles(item) if whole_folder else None
        if skip is not None:
            passed_over.append(ImportResult.not_imported(item, skipped=skip))
            continue
        try:
            with _naming(item):
                source = files.identify(item, format=format, symbol=symbol, timeframe=timeframe)
                plan.append(_Planned(source, exchange or _exchange_of(item)))
        except ValidationError as exc:
            if not whole_folder:
                raise
            passed_over.append(ImportResult.not_imported(item, failed=str(exc)))
    last_of_market = {p.market: p.source.path for p in plan if p.source.is_trades}
    pending: dict[tuple[str, str, str], list[files.Rows]] = {}
    failed_markets: dict[tuple[str, str, str], str] = {}
    results: list[ImportResult] = []
    for planned in plan:
        item = planned.source.path
        try:
            results += _import_one(
                store, planned, last_of_market, pending, failed_markets, on_conflict, strict
            )
        except ValidationError as exc:
            if not whole_folder:
                raise
            if planned.source.is_trades:
                failed_markets.setdefault(planned.market, str(exc))
            else:
                results.append(ImportResult.not_imported(item, failed=str(exc)))
        if planned.source.is_trades and last_of_market[planned.market] == item:
            reason = failed_markets.get(planned.market)
            if reason is not None:
                pending.pop(planned.market, None)
                results += [
                    ImportResult.not_imported(p.source.path, failed=reason)
                    for p in plan
                    if p.market == planned.market
                ]
        if progress is not None:
            progress(item)
    return results + passed_over


def _import_one(  # noqa: PLR0917 - private, called once above
    store: Store,
    planned: _Planned,
    last_of_market: dict[tuple[str, str, str], Path],
    pending: dict[tuple[str, str, str], list[files.Rows]],
    failed_markets: dict[tuple[str, str, str], str],
    on_conflict: OnConflict,
    strict: bool,
) -> list[ImportResult]:
    """Read one file and write it (a candle file), or keep it for its market's write (a
    trade file), writing the market's trades when this is its last file."""
    item = planned.source.path
    if planned.source.is_trades and planned.market in failed_markets:
        return []  # its market is not written: nothing of it would be
    with _naming(item):
        read = files.read_source(planned.source, strict=strict)
        if not planned.source.is_trades:
            written = store.write_candles(
                read.rows,
                exchange=planned.exchange,
                symbol=read.symbol,
                timeframe=read.timeframe,  # type: ignore[arg-type]
                on_conflict=on_conflict,
            )
            return [
                ImportResult(
                    item,
                    read.format,
                    planned.exchange,
                    read.symbol,
                    read.timeframe,
                    written,
                    read.rounded,
                    repeated=read.repeated,
                )
            ]
    pending.setdefault(planned.market, []).append(read)
    if last_of_market[planned.market] != item:
        return []
    return _write_trades(store, planned.exchange, pending.pop(planned.market), on_conflict)


def _write_trades(
    store: Store, exchange: str, reads: list[files.Rows], on_conflict: OnConflict
) -> list[ImportResult]:
    """Write one market's trade files as one stream of trades, in one transaction."""
    ordered = sorted(reads, key=lambda r: (r.first_trade is None, r.first_trade or 0))
    _refuse_overlaps(exchange, ordered)
    symbol, timeframe = ordered[0].symbol, ordered[0].timeframe
    candles = files.join_candles((r.rows for r in ordered), timeframe_of(timeframe))
    # One transaction from reading the stored boundary candles to writing, so that what
    # is decided about them still holds when the rest is written.
    paths = tuple(r.path for r in ordered)
    with _naming(*paths), store.db.transaction(durable=False):
        kept = _boundary_kept(store, exchange, symbol, timeframe, candles)
        written = store.write_candles(
            [candle for candle in candles if candle[0] not in kept],
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,  # type: ignore[arg-type]
            on_conflict=on_conflict,
        )
    return [
        ImportResult(
            r.path,
            r.format,
            exchange,
            symbol,
            timeframe,
            written if r is ordered[-1] else NOTHING,
            r.rounded,
            r.trades,
            r.first_trade,
            r.last_trade,
            paths,
            tuple(sorted(kept)) if r is ordered[-1] else (),
        )
        for r in ordered
    ]


def _refuse_overlaps(exchange: str, ordered: Sequence[files.Rows]) -> None:
    spans = [
        (r.first_trade, r.last_trade, r)
        for r in ordered
        if r.first_trade is not None and r.last_trade is not None
    ]
    # Ordered by first trade, any overlap shows between two neighbours.
    for (_, last, earlier), (first, _, later) in pairwise(spans):
        if first <= last:
            raise ValidationError(
                "trades",
                f"{earlier.path.name} and {later.path.name}",
                f"{later.path.name} ({_span(later)}) overlaps {earlier.path.name} "
                f"({_span(earlier)}) in {exchange} {earlier.symbol}: trade files carry no "
                "trade ids, so trades at the same time in two files cannot be told from the "
                "same trades listed twice. Nothing of this market was written; import files "
                "that share no instant (one that ends before the other's first trade)",
            )


def _span(read: files.Rows) -> str:
    return f"trades from {_when(read.first_trade)} to {_when(read.last_trade)}"


def _when(millis: int | None) -> str:
    if millis is None:
        return "-"
    return ms_to_datetime(millis).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _boundary_kept(
    store: Store, exchange: str, symbol: str, timeframe: str, candles: list[list[Any]]
) -> set[int]:
    """The first and last buckets whose stored candle differs from this import's."""
    if not candles:
        return set()
    frame = timeframe_of(timeframe)
    kept = set()
    history = MarketHistory(store)  # an archived candle is as stored
    for candle in {candles[0][0]: candles[0], candles[-1][0]: candles[-1]}.values():
        stored = history.candle_units(exchange, symbol, timeframe, candle[0], frame.end(candle[0]))
        # to_units refuses what the column cannot hold, as the write would.
        if stored and tuple(stored[0][1:]) != tuple(
            to_units(value, AMOUNT, name)
            for value, name in zip(candle[1:], _CANDLE_AMOUNTS, strict=True)
        ):
            kept.add(candle[0])
    return kept


_CANDLE_AMOUNTS = ("open_price", "high_price", "low_price", "close_price", "volume")


@contextmanager
def _naming(*items: Path) -> Iterator[None]:
    """Name the file (or a market's trade files) in a ValidationError, so that the user
    of a folder import knows which file it was."""
    try:
        yield
    except ValidationError as error:
        names = " + ".join(item.name for item in items)
        raise type(error)(f"{names}: {error.field}", error.value, error.rule) from None


def _exchange_of(path: Path) -> str:
    """The exchange a file's folder names: freqtrade keeps `data/<exchange>/`,
    `data/<exchange>/futures/` and `data/kraken/trades_csv/`."""
    parent = path.resolve().parent
    folder = parent.parent.name if parent.name in EXCHANGE_SUBFOLDERS else parent.name
    try:
        exchange = check_exchange(folder)
        if exchange not in _known_exchanges(exchange):
            raise ValidationError("exchange", folder, "is no exchange ccxt knows")
    except ValidationError:
        raise ValidationError(
            "exchange",
            None,
            f"cannot be told from the folder of {path.name} ({folder!r}); give `exchange=EXCHANGE`",
        ) from None
    return exchange


def _known_exchanges(name: str) -> Sequence[str]:
    """ccxt's exchange ids; without ccxt (an optional extra), any well-formed name."""
    try:
        import ccxt
    except ImportError:
        return (name,)
    known: list[str] = ccxt.exchanges
    return known
