"""Market data a little at a time: a page of one market's candles or tickers, its newest
ticker.

`candles.get_candles` and `candles.exact_rows` read whole ranges for programs that chart
or compute; a caller with a small budget of rows (an agent over MCP) asks for a page
instead: the first `limit` candles from a time on, or the newest `limit` before one, and
whether the range holds more. Candles that retention moved to Parquet archives are read
too, as every candle read in tradedb does.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradedb.errors import UnknownRecord, ValidationError
from tradedb.models import Candle, CandleCreate, Ticker, TickerCreate
from tradedb.models.values import check_exchange, check_symbol
from tradedb.schema.money import from_units
from tradedb.services.marketdata.history import MarketHistory, TickerPage
from tradedb.services.marketdata.resample import check_series, time_range
from tradedb.store import Store
from tradedb.store.repository import MAX_LIMIT

SCALE = 8


@dataclass(frozen=True)
class CandlePage:
    """Candles in time order. `truncated`: the range holds more than these, after them
    (a page read forward) or before them (the newest page)."""

    candles: list[Candle | CandleCreate]
    truncated: bool


def candle_page(
    store: Store,
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    since: object = None,
    until: object = None,
    limit: int = 100,
) -> CandlePage:
    """With `since`, the first `limit` candles from it (inclusive) before `until`
    (exclusive); without, the newest `limit` candles before `until`. A market with no
    candle of the timeframe stored at all is refused (UnknownRecord), so that a mistyped
    symbol is not mistaken for a quiet market; an empty range of a stored one is empty."""
    start, end = check_series(exchange, symbol, timeframe, since, until)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", limit, f"must be an integer from 1 to {MAX_LIMIT}")
    if start is not None and end is not None and start >= end:
        raise ValidationError("until", until, "must be later than since")
    newest_first = start is None
    page = store.candles.list(
        {"exchange": exchange, "symbol": symbol, "timeframe": timeframe},
        since=start,
        until=end,
        limit=limit,
        newest_first=newest_first,
    )
    candles: list[Candle | CandleCreate] = list(page.items)
    more = page.next_after is not None
    history = MarketHistory(store)
    archived = history.archived_candles(exchange, symbol, timeframe, start, end)
    if archived is not None:
        # The database's candle wins where both hold a time. One the database holds beyond
        # this page lies past the page's end, so it can never displace one of these.
        stored = {candle.timestamp for candle in candles}
        candles += [
            _archived(row, exchange, symbol, timeframe)
            for row in archived.T.tolist()
            if row[0] not in stored
        ]
        candles.sort(key=lambda candle: candle.timestamp, reverse=newest_first)
        more = more or len(candles) > limit
        candles = candles[:limit]
    if (
        not candles
        and archived is None
        and history.last_timestamp(exchange, symbol, timeframe) is None
    ):
        raise UnknownRecord(
            "symbol",
            symbol,
            f"no {timeframe} candles of this market are stored on {exchange} "
            "(`tradedb list-data` shows what is stored)",
        )
    candles.sort(key=lambda candle: candle.timestamp)
    return CandlePage(candles, more)


def _archived(row: list[int], exchange: str, symbol: str, timeframe: str) -> CandleCreate:
    timestamp, *units = row
    opened, high, low, close, volume = (from_units(value, SCALE) for value in units)
    return CandleCreate.model_validate(
        {
            "symbol": symbol,
            "timestamp": timestamp,
            "open_price": opened,
            "high_price": high,
            "low_price": low,
            "close_price": close,
            "volume": volume,
            "timeframe": timeframe,
            "exchange": exchange,
        }
    )


def latest_ticker(
    store: Store, *, symbol: str, exchange: str | None = None
) -> Ticker | TickerCreate:
    """The newest stored ticker of a market (on one exchange, or the newest of any),
    archived ones included."""
    check_symbol(symbol)
    if exchange is not None:
        check_exchange(exchange)
    newest = MarketHistory(store).newest_ticker(symbol, exchange)
    if newest is None:
        venue = f" on {exchange}" if exchange is not None else ""
        raise UnknownRecord(
            "symbol",
            symbol,
            f"no ticker is stored for this market{venue} (`tradedb tickers` records them)",
        )
    return newest


def ticker_page(
    store: Store,
    *,
    exchange: str,
    symbol: str,
    since: object = None,
    until: object = None,
    limit: int = 100,
) -> TickerPage:
    """With `since`, the first `limit` tickers from it (inclusive) before `until`
    (exclusive); without, the newest `limit` before `until`; archived ones included."""
    check_exchange(exchange)
    check_symbol(symbol)
    start, end = time_range(since, until)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", limit, f"must be an integer from 1 to {MAX_LIMIT}")
    if start is not None and end is not None and start >= end:
        raise ValidationError("until", until, "must be later than since")
    return MarketHistory(store).tickers(
        exchange, symbol, since=start, until=end, limit=limit, newest_first=start is None
    )
