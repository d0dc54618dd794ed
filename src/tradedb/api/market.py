"""Market data of one database: candles and tickers in, out, checked and reshaped."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradedb.models import Ticker, TickerCreate
from tradedb.models.fields import TimeframeName
from tradedb.services.marketdata import candles as candle_reads
from tradedb.services.marketdata import download as fetching
from tradedb.services.marketdata import history, quality, reading
from tradedb.services.marketdata import tickers as ticker_recording
from tradedb.services.marketdata.importing import ImportResult, import_path
from tradedb.services.marketdata.resample import ResampleResult, resample
from tradedb.store import Store
from tradedb.store.bulk import BulkResult, OnConflict


class MarketData:
    """Candles (market_data) and tickers. Writes are upserts on the specification's UNIQUE
    keys, so a candle or ticker delivered again is never counted twice."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # --- writing -----------------------------------------------------------------------

    def write_candles(
        self,
        rows: Iterable[Sequence[object]],
        *,
        exchange: str,
        symbol: str,
        timeframe: TimeframeName,
        on_conflict: OnConflict = "replace",
    ) -> BulkResult:
        """Store OHLCV rows [timestamp_ms, open, high, low, close, volume] (ccxt's shape)
        in one transaction: all of them, or none when any row breaks a rule."""
        return self._store.write_candles(
            rows, exchange=exchange, symbol=symbol, timeframe=timeframe, on_conflict=on_conflict
        )

    def write_tickers(
        self,
        rows: Iterable[Mapping[str, object]],
        *,
        exchange: str,
        on_conflict: OnConflict = "replace",
    ) -> BulkResult:
        """Store tickers given as mappings keyed by the tickers columns."""
        return self._store.write_tickers(rows, exchange=exchange, on_conflict=on_conflict)

    def import_path(
        self,
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
        """Import a file or a folder: freqtrade feather, parquet, json and trades files,
        Binance kline CSVs, Kraken OHLCVT and trade CSVs. Values a float source gives with
        noise past 8 decimals are rounded half-even and counted (`rounded`); `strict`
        refuses them instead. Text sources (CSV) are always read exactly."""
        return import_path(
            self._store,
            path,
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
            format=format,
            on_conflict=on_conflict,
            strict=strict,
            progress=progress,
        )

    @staticmethod
    def exchange_client(exchange: str) -> Any:
        """A ccxt client for an exchange id (rate-limited, parsing amounts as Decimals),
        to pass to `download` or `record_tickers`; made before a database is opened, an
        unknown id is refused without touching one."""
        return fetching.connect(exchange)

    def download(
        self,
        exchange: str | Any,
        *,
        symbols: Sequence[str],
        timeframes: Sequence[str],
        since: object = None,
        until: object = None,
        fill_gaps: bool = False,
        progress: Callable[[str, str, int], None] | None = None,
    ) -> list[fetching.MarketDownload]:
        """Download candles through ccxt (an exchange id, or a ccxt exchange object),
        resuming after the newest stored candle of each market; a `since` before the
        oldest stored candle fetches the earlier range too, and `fill_gaps` the candles
        missing between the oldest and the newest."""
        client = fetching.connect(exchange) if isinstance(exchange, str) else exchange
        return fetching.download(
            self._store,
            client,
            symbols=symbols,
            timeframes=timeframes,
            since=since,
            until=until,
            fill_gaps=fill_gaps,
            progress=progress,
        )

    def record_tickers(
        self,
        exchange: str | Any,
        symbols: Sequence[str],
        *,
        every_ms: int | None = None,
        count: int | None = None,
        on_poll: Callable[[ticker_recording.Poll], None] | None = None,
        clock: ticker_recording.Clock | None = None,
    ) -> ticker_recording.Recording:
        """Poll tickers through ccxt `count` times (or until stopped), every `every_ms`
        (timed by `clock`, the system's by default)."""
        client = fetching.connect(exchange) if isinstance(exchange, str) else exchange
        return ticker_recording.record(
            self._store,
            client,
            symbols,
            every_ms=every_ms,
            count=count,
            clock=clock,
            on_poll=on_poll,
        )

    def resample(
        self,
        *,
        exchange: str,
        symbol: str,
        source: str,
        targets: Sequence[str],
        since: object = None,
        until: object = None,
        on_conflict: OnConflict = "replace",
    ) -> list[ResampleResult]:
        """Build coarser candles from stored finer ones, exactly, in UTC buckets."""
        return resample(
            self._store,
            exchange=exchange,
            symbol=symbol,
            source=source,
            targets=targets,
            since=since,
            until=until,
            on_conflict=on_conflict,
        )

    # --- reading -----------------------------------------------------------------------

    def candles(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        start: object = None,
        end: object = None,
        *,
        output: candle_reads.Output = "pandas",
        exact: bool = False,
    ) -> Any:
        """One market's candles from `start` (inclusive) to `end` (exclusive), oldest
        first, as a pandas, Arrow or polars frame (float64, or exact decimals with
        `exact=True`), archived candles included."""
        return candle_reads.get_candles(
            self._store, exchange, symbol, timeframe, start, end, output=output, exact=exact
        )

    def exact_candles(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        *,
        start: object = None,
        end: object = None,
    ) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]]:
        """The same candles as tuples of (timestamp_ms, open, high, low, close, volume)
        with Decimal amounts; needs no data library."""
        return candle_reads.exact_rows(
            self._store, exchange, symbol, timeframe, start=start, end=end
        )

    def candle_page(
        self,
        *,
        exchange: str,
        symbol: str,
        timeframe: str,
        since: object = None,
        until: object = None,
        limit: int = 100,
    ) -> reading.CandlePage:
        """A page of candles and the token of the next one."""
        return reading.candle_page(
            self._store,
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
            since=since,
            until=until,
            limit=limit,
        )

    def latest_ticker(self, *, symbol: str, exchange: str | None = None) -> Ticker | TickerCreate:
        """The newest ticker of a market (on one exchange, or of any). A ticker retention
        archived comes back as a TickerCreate: its row, id and all, is gone."""
        return reading.latest_ticker(self._store, symbol=symbol, exchange=exchange)

    def tickers(
        self,
        *,
        exchange: str,
        symbol: str,
        since: object = None,
        until: object = None,
        limit: int = 100,
    ) -> history.TickerPage:
        """A market's tickers in time order, archived ones included: with `since`, the
        first `limit` from it; without, the newest `limit` before `until`."""
        return reading.ticker_page(
            self._store, exchange=exchange, symbol=symbol, since=since, until=until, limit=limit
        )

    def list_data(self, *, exchange: str | None = None) -> list[quality.MarketSummary]:
        """What is stored per exchange, market and timeframe: first, last, count, gaps."""
        return quality.list_data(self._store, exchange=exchange)

    def gaps(
        self,
        *,
        exchange: str,
        symbol: str,
        timeframe: str,
        since: object = None,
        until: object = None,
    ) -> list[quality.Gap]:
        """The runs of missing candles of one market."""
        return quality.gaps(
            self._store,
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
            since=since,
            until=until,
        )
