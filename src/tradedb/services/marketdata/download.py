"""Collecting candles from exchanges through ccxt.

Amounts stay exact end to end: the ccxt client is given `number = Decimal`, so its parsers
build Decimals from the exchange's text and no float is ever created. Each market and
timeframe pages through `fetch_ohlcv` within the exchange's own page size (ccxt's
`features`; Binance 1000, Kraken 720), drops the candle that is still open, and writes
page by page, so that an interrupted download keeps what it fetched. Per market it fetches:

- **backwards** from the oldest stored candle to `since`, when `since` is earlier (a
  backfill): each page ends where the stored candles begin, so an interrupted backfill
  leaves no hole and the next run goes on from the new oldest candle. Candles retention
  archived count as stored (MarketHistory), so they are not fetched again;
- with `fill_gaps`, each run of missing candles between the oldest and the newest stored;
- **forwards** from the newest stored candle (or from `since`, or the latest page when
  nothing is stored) to `until` or now.

A page that still fails after retries with backoff stops that market: nothing after it is
skipped, and the next run resumes from what is stored.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from tradedb.errors import ExchangeUnavailable, ValidationError
from tradedb.models.timeframes import check_timeframe, timeframe_of
from tradedb.models.values import (
    check_exchange,
    check_symbol,
    now_epoch_ms,
    parse_time_bound,
)
from tradedb.services.marketdata.history import MarketHistory
from tradedb.store import Store

DEFAULT_PAGE = 500
RETRIES = 4
FIRST_BACKOFF_S = 1.0
# An exchange's error in a message is cut to this many characters.
MAX_REASON = 200


@dataclass(frozen=True)
class MarketDownload:
    """What downloading one market and timeframe did."""

    symbol: str
    timeframe: str
    pages: int
    received: int
    inserted: int
    updated: int
    # The exchange served less history than asked for (Kraken keeps only its latest 720
    # candles per timeframe): import files for older data.
    cut_short: bool = False
    # Why the download of this market stopped early; the next run resumes it.
    failed: str | None = None


def connect(exchange_id: str) -> Any:
    """A ccxt client for `exchange_id`, rate-limited, parsing amounts as Decimals."""
    check_exchange(exchange_id, "exchange")
    try:
        import ccxt
    except ImportError:
        raise ValidationError(
            "exchange", exchange_id, "needs ccxt: pip install 'tradedb[exchanges]'"
        ) from None
    if exchange_id not in ccxt.exchanges:
        raise ValidationError("exchange", exchange_id, "is not an exchange ccxt knows")
    client = getattr(ccxt, exchange_id)({"enableRateLimit": True})
    client.number = Decimal
    return client


def page_size(client: Any) -> int:
    features = getattr(client, "features", None) or {}
    limit = (features.get("spot") or {}).get("fetchOHLCV", {}).get("limit")
    return int(limit) if limit else DEFAULT_PAGE


def download(
    store: Store,
    client: Any,
    *,
    symbols: Sequence[str],
    timeframes: Sequence[str],
    since: object = None,
    until: object = None,
    fill_gaps: bool = False,
    now: int | None = None,
    progress: Callable[[str, str, int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[MarketDownload]:
    """Download candles of `symbols` x `timeframes` from `client` into the store."""
    for symbol in symbols:
        check_symbol(symbol)
    for timeframe in timeframes:
        check_timeframe(timeframe)
        if timeframe not in (getattr(client, "timeframes", None) or {}):
            raise ValidationError("timeframe", timeframe, f"is not offered by {client.id}")
    start = None if since is None else parse_time_bound(since, "since")
    end = None if until is None else parse_time_bound(until, "until")
    markets = load_markets(client, sleep)
    for symbol in symbols:
        if symbol not in markets:
            raise ValidationError("symbol", symbol, f"is not listed on {client.id}")
    clock = now_epoch_ms() if now is None else now
    results = []
    for symbol in symbols:
        for timeframe in timeframes:
            series = _Series(store, client, symbol, timeframe, clock, progress, sleep)
            results.append(series.download(start, end, fill_gaps=fill_gaps))
    return results


class _Series:
    """One market and timeframe being downloaded, and what its pages did so far."""

    def __init__(  # noqa: PLR0917 - private, called once above
        self,
        store: Store,
        client: Any,
        symbol: str,
        timeframe: str,
        now: int,
        progress: Callable[[str, str, int], None] | None,
        sleep: Callable[[float], None],
    ) -> None:
        self.store, self.client, self.symbol, self.timeframe = store, client, symbol, timeframe
        self.now, self.progress, self.sleep = now, progress, sleep
        self.frame = timeframe_of(timeframe)
        self.limit = page_size(client)
        self.pages = self.received = self.inserted = self.updated = 0
        self.cut_short = False
        self.failed: str | None = None

    def download(self, start: int | None, end: int | None, *, fill_gaps: bool) -> MarketDownload:
        # Archived candles are there: a backfill must not fetch them into the database again.
        records = MarketHistory(self.store)
        first = records.first_timestamp(self.client.id, self.symbol, self.timeframe)
        last = records.last_timestamp(self.client.id, self.symbol, self.timeframe)
        stop = self.now if end is None else min(end, self.now)
        if first is not None and start is not None and start < first:
            self._backwards(start, min(first, stop))
        if first is not None and fill_gaps and self.failed is None:
            holes = records.holes(self.client.id, self.symbol, self.frame, since=start, until=end)
            self._fill([(self.frame.end(before), min(after, stop)) for before, after in holes])
        if self.failed is None:
            if last is not None:
                cursor = self.frame.end(last)
            elif start is not None:
                cursor = start
            else:  # nothing stored, no start: the latest page
                cursor = self.frame.shift(self.frame.floor(self.now), -self.limit)
            if start is not None:
                cursor = max(cursor, start)
            self._forwards(cursor, stop, first_fetch=last is None)
        return MarketDownload(
            self.symbol,
            self.timeframe,
            self.pages,
            self.received,
            self.inserted,
            self.updated,
            self.cut_short,
            self.failed,
        )

    def _forwards(self, cursor: int, stop: int, *, first_fetch: bool) -> None:
        while cursor < stop:
            batch = self._page(cursor)
            if batch is None:
                return
            if first_fetch and batch and batch[0][0] > self.frame.end(cursor):
                self.cut_short = True
            first_fetch = False
            rows = self._final(batch, cursor, stop)
            if not rows:
                return
            self._write(rows)
            cursor = self.frame.end(rows[-1][0])

    def _fill(self, holes: list[tuple[int, int]]) -> None:
        """The candles missing in `holes` ([start, end) ranges, in time order). A page
        from a hole's start also covers the holes after it that it reaches: a market the
        exchange itself has gaps in (no trade in a minute) takes a page per page of
        history, not a request per gap."""
        holes = [(start, end) for start, end in holes if start < end]
        while holes:
            start = holes[0][0]
            batch = self._page(start)
            if batch is None:
                return
            rows = self._final(batch, start, holes[-1][1])
            if not rows:
                return  # the exchange has nothing from here on
            missing = [row for row in rows if _inside(row[0], holes)]
            if missing:
                self._write(missing)
            reached = self.frame.end(rows[-1][0])
            holes = [(max(hole_start, reached), end) for hole_start, end in holes if end > reached]

    def _backwards(self, start: int, end: int) -> None:
        """The candles from `start` up to `end` (the oldest stored), newest page first."""
        while end > start:
            page_start = max(start, self.frame.shift(self.frame.ceil(end), -self.limit))
            batch = self._page(page_start)
            if batch is None:
                return
            rows = self._final(batch, page_start, end)
            if not rows:
                # Nothing before the oldest candle: the exchange's history ends here
                # (Kraken keeps only its latest 720 candles per timeframe).
                self.cut_short = True
                return
            self._write(rows)
            end = page_start

    def _page(self, since: int) -> list[list[Any]] | None:
        try:
            batch: list[list[Any]] = call_with_retries(
                partial(self.client.fetch_ohlcv, self.symbol, self.timeframe, since, self.limit),
                self.sleep,
            )
        except network_errors() as exc:
            self.failed = f"{type(exc).__name__}: {exc}"
            return None
        self.pages += 1
        return batch

    def _final(self, batch: list[list[Any]], since: int, stop: int) -> list[list[Any]]:
        """The page's candles in [since, stop), without the one still open (it ends after
        now and is not final yet)."""
        return [
            row for row in batch if since <= row[0] < stop and self.frame.end(row[0]) <= self.now
        ]

    def _write(self, rows: list[list[Any]]) -> None:
        written = self.store.write_candles(
            rows,
            exchange=self.client.id,
            symbol=self.symbol,
            timeframe=self.timeframe,  # type: ignore[arg-type]
        )
        self.received += written.received
        self.inserted += written.inserted
        self.updated += written.updated
        if self.progress is not None:
            self.progress(self.symbol, self.timeframe, written.received)


def _inside(timestamp: int, ranges: list[tuple[int, int]]) -> bool:
    """Whether `timestamp` falls in one of `ranges` ([start, end), in time order)."""
    position = bisect.bisect_right(ranges, (timestamp, math.inf)) - 1
    return position >= 0 and ranges[position][0] <= timestamp < ranges[position][1]


def load_markets(client: Any, sleep: Callable[[float], None]) -> Any:
    """The exchange's markets, the first request of every download and recording; an
    exchange that cannot be reached or refuses, even after retries, is ExchangeUnavailable
    (nothing has been written yet)."""
    import ccxt

    try:
        return call_with_retries(client.load_markets, sleep)
    except ccxt.BaseError as exc:
        raise ExchangeUnavailable(
            f"{client.id} could not be asked for its markets ({reason(exc)}); nothing was "
            "written: try again later"
        ) from None


def reason(exc: BaseException) -> str:
    """A ccxt error in one short line: its class and the first line of its message (which
    can hold a whole HTML error page)."""
    lines = str(exc).strip().splitlines()
    first = lines[0].strip() if lines else ""
    if len(first) > MAX_REASON:
        first = first[: MAX_REASON - 1] + "…"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def network_errors() -> tuple[type[BaseException], ...]:
    """The ccxt errors worth retrying: the request may succeed if sent again."""
    import ccxt

    return (ccxt.NetworkError,)


def call_with_retries(request: Callable[[], Any], sleep: Callable[[float], None]) -> Any:
    """Run a ccxt request, retrying network errors with exponential backoff (1, 2, 4, 8 s);
    the last error is raised. The downloader and the ticker recorder share it."""
    network = network_errors()
    delay = FIRST_BACKOFF_S
    for attempt in range(RETRIES + 1):
        try:
            return request()
        except network:
            if attempt == RETRIES:
                raise
            sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")
