"""Market data tools: candles (in mcp-trader's CandleData shape, plus the exact values),
the newest ticker, and what is stored."""

from __future__ import annotations

from mcp.server import MCPServer

from tradedb.api import TradeDB
from tradedb.compat.mcp_trader import candle_data_with_exact
from tradedb.errors import ValidationError
from tradedb.mcp.arguments import (
    DEFAULT_ROWS,
    After,
    Exchange,
    Limit,
    OptionalExchange,
    Symbol,
    Time,
)
from tradedb.mcp.errors import tool_errors
from tradedb.mcp.shapes import (
    CandlesResult,
    ExactCandle,
    Listing,
    StoredMarket,
    TickerShape,
    shaped,
)
from tradedb.mcp.tooling import READ_ONLY
from tradedb.services.marketdata.quality import MarketSummary


def register(server: MCPServer, db: TradeDB) -> None:
    def get_candles(
        *,
        exchange: Exchange,
        symbol: Symbol,
        timeframe: str,
        since: Time = None,
        until: Time = None,
        limit: Limit = DEFAULT_ROWS,
    ) -> CandlesResult:
        """One market's candles, oldest first, each in mcp-trader's CandleData shape
        (floats) plus its exact values (`timestamp` in epoch ms, `open_exact` ... as
        fixed-point strings). timeframe: one of ccxt's 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h
        12h 1d 3d 1w 1M. With `since`, the first `limit` candles from it; without, the
        newest `limit` before `until`."""
        page = db.market.candle_page(
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
            since=since,
            until=until,
            limit=limit,
        )
        return CandlesResult(
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
            candles=[
                ExactCandle.model_validate(candle_data_with_exact(candle))
                for candle in page.candles
            ],
            truncated=page.truncated,
        )

    def get_ticker(symbol: Symbol, exchange: OptionalExchange = None) -> TickerShape:
        """The newest stored ticker of a market: bid, ask, last price, 24h volume and
        change, and where recorded open, high, low, vwap, quote volume, the best bid's and
        ask's volumes and the previous close. Without `exchange`, the newest of any
        exchange."""
        return shaped(TickerShape, db.market.latest_ticker(symbol=symbol, exchange=exchange))

    def list_data(
        *,
        exchange: OptionalExchange = None,
        limit: Limit = DEFAULT_ROWS,
        after: After = None,
    ) -> Listing[StoredMarket]:
        """The candles stored, per exchange, market and timeframe: first and last candle,
        count, and how many are missing between them (as `tradedb list-data`)."""
        summaries = db.market.list_data(exchange=exchange)
        # Series come ordered by (exchange, symbol, timeframe): the cursor is that key, so a
        # page goes on from the right place even if series were added since the last one.
        if after is not None:
            summaries = [s for s in summaries if _series_key(s) > _cursor(after)]
        page = summaries[:limit]
        truncated = len(summaries) > limit
        return Listing[StoredMarket](
            items=[
                StoredMarket(
                    exchange=summary.coverage.exchange,
                    symbol=summary.coverage.symbol,
                    timeframe=summary.coverage.timeframe,
                    first=summary.coverage.first,
                    last=summary.coverage.last,
                    candles=summary.coverage.candles,
                    missing=summary.missing,
                    gaps=summary.gaps,
                )
                for summary in page
            ],
            truncated=truncated,
            next_after=_SEPARATOR.join(_series_key(page[-1])) if truncated else None,
        )

    for tool in (get_candles, get_ticker, list_data):
        server.add_tool(tool_errors(tool), annotations=READ_ONLY)


# Symbols hold '/' and ':', never a space.
_SEPARATOR = " "


def _series_key(summary: MarketSummary) -> tuple[str, str, str]:
    coverage = summary.coverage
    return coverage.exchange, coverage.symbol, coverage.timeframe


def _cursor(after: str) -> tuple[str, str, str]:
    parts = after.split(_SEPARATOR)
    if len(parts) != 3:
        raise ValidationError("after", after, "must be the `next_after` of a list_data page")
    return parts[0], parts[1], parts[2]
