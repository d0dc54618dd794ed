"""A database's market data as one history: its candles and tickers together with those
retention moved to Parquet archives, read as if they had never left.

Every reader of market data goes through `MarketHistory` (list-data, gaps, resample,
downloads' backfill, paper sessions, valuation and snapshots, metrics, the report, the MCP
tools); SQL stays in the store and archive I/O in services/ops/archive.py. The methods
mirror the store's `MarketRecords` and `AnalyticsRecords` ones, so a reader changes only
which object it asks.

The rules:

- The database is read first, the archive's manifest after it: retention records a file
  in the manifest before it deletes the rows, so a row is always in one or the other.
- Where both hold a row (a run killed between writing and deleting, or a candle a writer
  changed after it was archived), the database's wins.
- With no archive, a read costs what it did plus a stat of the config file, of a link and
  of a manifest; with one, only the files (and, in a file, the row groups) whose time range
  a read touches are opened, from a cache when read before.
- An archive in an object store is loaded once per `MarketHistory` (one per operation):
  a long operation sees it as it was at its first read.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tradedb.models import Ticker, TickerCreate
from tradedb.models.timeframes import TIMEFRAME_NAMES, TIMEFRAMES, Timeframe
from tradedb.schema.money import from_units
from tradedb.services.ops import archive
from tradedb.services.ops.archive_location import locate
from tradedb.store import Store
from tradedb.store.analytics import AnalyticsRecords, StoredQuote
from tradedb.store.bulk import CandleUnits
from tradedb.store.market import Coverage, unit_columns
from tradedb.store.reports import ReportRecords

SCALE = archive.SCALE
TICKER_FIELDS = ("timestamp", *(name for name, _, _ in archive.TICKER_COLUMNS))


@dataclass(frozen=True)
class TickerPage:
    """Tickers in time order. `truncated`: the range holds more than these, after them
    (a page read forward) or before them (the newest page)."""

    tickers: list[Ticker | TickerCreate]
    truncated: bool


class MarketHistory:
    """Candles and tickers of one store, archived ones included. Make one per operation."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._folder = locate(store.db.companion_base)
        self._remote: archive.Catalog | None = None
        self._remote_loaded = False
        self._analytics: AnalyticsRecords | None = None

    def catalog(self) -> archive.Catalog | None:
        """The archive as its manifest lists it now (a local one is checked with one stat
        per call; one in an object store is fetched once)."""
        if self._folder.is_local:
            return archive.catalog_of(self._folder)
        if not self._remote_loaded:
            self._remote = archive.catalog_of(self._folder)
            self._remote_loaded = True
        return self._remote

    @property
    def analytics(self) -> AnalyticsRecords:
        if self._analytics is None:
            self._analytics = AnalyticsRecords.of(self.store)
        return self._analytics

    # --- candles ---------------------------------------------------------------------------

    def archived_candles(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        since: int | None = None,
        until: int | None = None,
    ) -> Any | None:
        """The archive's candles of a series in [since, until) as columns (6, rows), for a
        reader that merges them itself (archive.merge); None when it holds none there."""
        found = self.catalog()
        if found is None:
            return None
        return found.candle_columns((exchange, symbol, timeframe), since, until)

    def candle_units(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        since: int | None = None,
        until: int | None = None,
    ) -> list[CandleUnits]:
        """Candles of one market in time order, `since` inclusive, `until` exclusive."""
        rows = self.store.market.candle_units(exchange, symbol, timeframe, since, until)
        archived = self.archived_candles(exchange, symbol, timeframe, since, until)
        if archived is None or not archived.shape[1]:
            return rows
        merged = archive.merge(unit_columns(rows), archived)
        return [tuple(row) for row in merged.T.tolist()]

    def first_timestamp(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        stored = self.store.market.first_timestamp(exchange, symbol, timeframe)
        files = self._candle_files((exchange, symbol, timeframe))
        return _either(min, stored, min((f.first_timestamp for f in files), default=None))

    def last_timestamp(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        stored = self.store.market.last_timestamp(exchange, symbol, timeframe)
        files = self._candle_files((exchange, symbol, timeframe))
        return _either(max, stored, max((f.last_timestamp for f in files), default=None))

    def coverage(self, exchange: str | None = None) -> list[Coverage]:
        """First and last time and count per market and timeframe; the archive's come
        from its manifest, so no file is read unless a span is both archived and stored
        (then the timestamps of the overlap are compared, to count each candle once)."""
        stored = self.store.market.coverage(exchange)
        found = self.catalog()
        if found is None or not found.candles:
            return stored
        merged = {(c.exchange, c.symbol, c.timeframe): c for c in stored}
        for key, files in found.candles.items():
            if exchange is not None and key[0] != exchange:
                continue
            first = min(f.first_timestamp for f in files)
            last = max(f.last_timestamp for f in files)
            count = sum(f.rows for f in files)
            held = merged.get(key)
            if held is not None:
                count += held.candles - self._stored_and_archived(found, key, held, first, last)
                first, last = min(first, held.first), max(last, held.last)
            merged[key] = Coverage(*key, first, last, count)
        return [merged[key] for key in sorted(merged)]

    def _stored_and_archived(
        self, found: archive.Catalog, key: archive.CandleKey, held: Coverage, first: int, last: int
    ) -> int:
        """How many candles of a series are both in the database and in the archive."""
        low, high = max(first, held.first), min(last, held.last)
        if low > high:
            return 0
        import numpy as np

        archived = found.candle_stamps(key, low, high + 1)
        if not len(archived):
            return 0
        stored = [row[0] for row in self.store.market.candle_units(*key, low, high + 1)]
        return int(np.isin(archived, np.array(stored, dtype=np.int64)).sum())

    def holes(
        self,
        exchange: str,
        symbol: str,
        frame: Timeframe,
        *,
        since: int | None = None,
        until: int | None = None,
    ) -> list[tuple[int, int]]:
        """Pairs of consecutive timestamps (stored or archived) with candles missing
        between them, as the store's `holes` gives them for the stored ones."""
        key = (exchange, symbol, frame.name)
        stored_holes = self.store.market.holes(exchange, symbol, frame, since=since, until=until)
        found = self.catalog()
        if found is None or key not in found.candles:
            return stored_holes
        archived = found.candle_stamps(key, since, until)
        if not len(archived):
            return stored_holes
        first, last = self._stored_span(key, since, until)
        if first is None or last is None:
            return _holes_of(archived.tolist(), frame)
        if ((archived >= first) & (archived <= last)).any():
            # Archived and stored candles interleave (a run killed mid-move): walk them all.
            stored = [row[0] for row in self.store.market.candle_units(*key, since, until)]
            return _holes_of(sorted({*stored, *archived.tolist()}), frame)
        before = archived[archived < first].tolist()
        after = archived[archived > last].tolist()
        return [
            *_holes_of([*before, first], frame),
            *stored_holes,
            *_holes_of([last, *after], frame),
        ]

    def hole_count(self, exchange: str, symbol: str, frame: Timeframe) -> int:
        """How many runs of candles are missing between the first and the last one."""
        if not self._candle_files((exchange, symbol, frame.name)):
            return self.store.market.hole_count(exchange, symbol, frame)
        return len(self.holes(exchange, symbol, frame))

    def _stored_span(
        self, key: archive.CandleKey, since: int | None, until: int | None
    ) -> tuple[int | None, int | None]:
        where = {"exchange": key[0], "symbol": key[1], "timeframe": key[2]}
        oldest = self.store.candles.list(where, since=since, until=until, limit=1)
        if not oldest.items:
            return None, None
        newest = self.store.candles.list(
            where, since=since, until=until, limit=1, newest_first=True
        )
        return oldest.items[0].timestamp, newest.items[0].timestamp

    def candle_counts(self, exchange: str, symbol: str, since: int, until: int) -> dict[str, int]:
        """How many candles each timeframe of a market has in [since, until)."""
        counts = ReportRecords(self.store.db).candle_counts(exchange, symbol, since, until)
        found = self.catalog()
        if found is None:
            return counts
        import numpy as np

        for timeframe in TIMEFRAME_NAMES:
            key = (exchange, symbol, timeframe)
            if key not in found.candles:
                continue
            archived = found.candle_stamps(key, since, until)
            if not len(archived):
                continue
            both = 0
            if counts.get(timeframe):
                stored = self.store.market.candle_units(
                    *key, int(archived[0]), int(archived[-1]) + 1
                )
                both = int(np.isin(archived, np.array([r[0] for r in stored])).sum())
            counts[timeframe] = counts.get(timeframe, 0) + len(archived) - both
        return counts

    def _candle_files(self, key: archive.CandleKey) -> list[archive.ArchiveFile]:
        found = self.catalog()
        return [] if found is None else found.candles.get(key, [])

    # --- quotes (valuation) ----------------------------------------------------------------

    def market_symbols(self) -> set[str]:
        """Every symbol with candles or tickers, stored or archived."""
        symbols = self.analytics.market_symbols()
        found = self.catalog()
        return symbols if found is None else symbols | found.symbols()

    def latest_candle(
        self, symbol: str, at_ms: int, not_before_ms: int, exchange: str | None = None
    ) -> StoredQuote | None:
        """As `AnalyticsRecords.latest_candle`, archived candles included: the close of
        the newest candle that closed by at_ms and no earlier than not_before_ms; equal
        close times go to the shorter timeframe, then the first exchange by name, then
        the database."""
        best = self.analytics.latest_candle(symbol, at_ms, not_before_ms, exchange)
        found = self.catalog()
        if found is None:
            return best
        for key, files in found.candles.items():
            venue, market, timeframe = key
            frame = TIMEFRAMES.get(timeframe)
            if market != symbol or (exchange is not None and venue != exchange) or not frame:
                continue
            oldest_start, newest_start = frame.starts_closed_between(not_before_ms, at_ms)
            closes = found.values(files, ("close_price", SCALE), oldest_start, newest_start + 1)
            if not closes.shape[1]:
                continue
            start, units = int(closes[0, -1]), int(closes[1, -1])
            quote = StoredQuote(
                symbol, venue, from_units(units, SCALE), frame.end(start), f"candle {timeframe}"
            )
            if best is None or _candle_rank(quote) > _candle_rank(best):
                best = quote
        return best

    def latest_ticker(
        self, symbol: str, at_ms: int, not_before_ms: int, exchange: str | None = None
    ) -> StoredQuote | None:
        """As `AnalyticsRecords.latest_ticker`, archived tickers included: the newest with
        not_before_ms <= timestamp <= at_ms; ties go to the first exchange by name, then
        to the database."""
        best = self.analytics.latest_ticker(symbol, at_ms, not_before_ms, exchange)
        found = self.catalog()
        if found is None:
            return best
        for (venue, market), files in found.tickers.items():
            if market != symbol or (exchange is not None and venue != exchange):
                continue
            prices = found.values(files, ("last_price", SCALE), not_before_ms, at_ms + 1)
            if not prices.shape[1]:
                continue
            timestamp, units = int(prices[0, -1]), int(prices[1, -1])
            quote = StoredQuote(symbol, venue, from_units(units, SCALE), timestamp, "ticker")
            if best is None or (quote.timestamp, _name_rank(venue)) > (
                best.timestamp,
                _name_rank(best.exchange),
            ):
                best = quote
        return best

    # --- tickers -------------------------------------------------------------------------

    def newest_ticker(
        self, symbol: str, exchange: str | None = None
    ) -> Ticker | TickerCreate | None:
        """The newest ticker of a market (on one exchange, or of any)."""
        where = {"symbol": symbol} if exchange is None else {"symbol": symbol, "exchange": exchange}
        page = self.store.tickers.list(where, newest_first=True, limit=1)
        best: Ticker | TickerCreate | None = page.items[0] if page.items else None
        found = self.catalog()
        if found is None:
            return best
        for (venue, market), files in found.tickers.items():
            if market != symbol or (exchange is not None and venue != exchange):
                continue
            if best is not None and files[-1].last_timestamp <= best.timestamp:
                continue
            rows = found.ticker_rows((venue, market), files[-1].last_timestamp, None, enough=1)
            if rows:
                best = _ticker(rows[-1], venue, market)
        return best

    def tickers(
        self,
        exchange: str,
        symbol: str,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> TickerPage:
        """With `newest_first`, the newest `limit` tickers before `until` (from `since`);
        else the first `limit` from `since` before `until`. Returned in time order."""
        page = self.store.tickers.list(
            {"exchange": exchange, "symbol": symbol},
            since=since,
            until=until,
            limit=limit,
            newest_first=newest_first,
        )
        tickers: list[Ticker | TickerCreate] = list(page.items)
        more = page.next_after is not None
        found = self.catalog()
        if found is not None and (exchange, symbol) in found.tickers:
            # A ticker the database holds beyond this page lies past the page's end, so
            # it can never displace one of these.
            stored = {ticker.timestamp for ticker in tickers}
            rows = found.ticker_rows(
                (exchange, symbol), since, until, enough=2 * limit, newest_first=newest_first
            )
            tickers += [_ticker(row, exchange, symbol) for row in rows if row[0] not in stored]
            tickers.sort(key=lambda ticker: ticker.timestamp, reverse=newest_first)
            more = more or len(tickers) > limit
            tickers = tickers[:limit]
        tickers.sort(key=lambda ticker: ticker.timestamp)
        return TickerPage(tickers, more)


def _either(pick: Callable[..., int], a: int | None, b: int | None) -> int | None:
    """`pick` (min or max) of the values that exist, or None."""
    return b if a is None else a if b is None else pick(a, b)


def _holes_of(stamps: Sequence[int], frame: Timeframe) -> list[tuple[int, int]]:
    """Consecutive timestamps further apart than a candle lasts (the store's rule)."""
    return [
        (before, after)
        for before, after in itertools.pairwise(stamps)
        if after - before > frame.longest_ms
    ]


def _candle_rank(quote: StoredQuote) -> tuple[int, int, tuple[int, ...]]:
    """Higher is preferred: later close, then shorter timeframe, then exchange name."""
    timeframe = quote.source.removeprefix("candle ")
    order = TIMEFRAME_NAMES.index(timeframe) if timeframe in TIMEFRAMES else len(TIMEFRAMES)
    return quote.timestamp, -order, _name_rank(quote.exchange)


def _name_rank(name: str) -> tuple[int, ...]:
    """Orders names so that the first by name ranks highest."""
    return (*tuple(-ord(char) for char in name), 1)


def _ticker(row: archive.TickerUnits, exchange: str, symbol: str) -> TickerCreate:
    values: dict[str, object] = {"symbol": symbol, "exchange": exchange, "timestamp": row[0]}
    for (name, scale, _), units in zip(archive.TICKER_COLUMNS, row[1:], strict=True):
        values[name] = None if units is None else from_units(units, scale)
    return TickerCreate.model_validate(values)
