"""Collecting candles from exchanges through ccxt.

Amounts stay exact end to end: the ccxt client is given `number = Decimal`, so its parsers
build Decimals from the exchange's text and no float is ever created. Each market and
timeframe resumes after its last stored candle, pages through `fetch_ohlcv` within the
exchange's own page size (ccxt's `features`; Binance 1000, Kraken 720), drops the candle
that is still open, and writes page by page, so that an interrupted download keeps what
it fetched. A page that still fails after retries with backoff stops that market: nothing
after it is skipped, and the next run resumes from the last stored candle.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from tradedb.errors import ExchangeUnavailable, ValidationError
from tradedb.models.values import (
    TIMEFRAME_MS,
    check_exchange,
    check_symbol,
    now_epoch_ms,
    parse_time_bound,
)
from tradedb.services.marketdata.resample import check_timeframe
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
            results.append(
                _download_one(store, client, symbol, timeframe, start, end, clock, progress, sleep)
            )
    return results


def _download_one(  # noqa: PLR0917 - private, called once above
    store: Store,
    client: Any,
    symbol: str,
    timeframe: str,
    start: int | None,
    end: int | None,
    now: int,
    progress: Callable[[str, str, int], None] | None,
    sleep: Callable[[float], None],
) -> MarketDownload:
    step = TIMEFRAME_MS[timeframe]
    limit = page_size(client)
    last = store.market.last_timestamp(client.id, symbol, timeframe)
    cursor = last + step if last is not None else start
    if cursor is None:
        cursor = now - now % step - limit * step  # nothing stored, no start: the latest page
    if start is not None and cursor < start:
        cursor = start
    stop = now if end is None else min(end, now)
    pages = received = inserted = updated = 0
    cut_short = False
    failed = None
    while cursor < stop:
        try:
            batch = call_with_retries(
                partial(client.fetch_ohlcv, symbol, timeframe, cursor, limit), sleep
            )
        except network_errors() as exc:
            failed = f"{type(exc).__name__}: {exc}"
            break
        pages += 1
        if pages == 1 and batch and batch[0][0] > cursor + step and last is None:
            cut_short = True
        # The candle still open (it ends after now) is not final yet; leave it for later.
        rows = [row for row in batch if cursor <= row[0] < stop and row[0] + step <= now]
        if not rows:
            break
        written = store.write_candles(rows, exchange=client.id, symbol=symbol, timeframe=timeframe)  # type: ignore[arg-type]
        received += written.received
        inserted += written.inserted
        updated += written.updated
        cursor = rows[-1][0] + step
        if progress is not None:
            progress(symbol, timeframe, written.received)
    return MarketDownload(symbol, timeframe, pages, received, inserted, updated, cut_short, failed)


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
