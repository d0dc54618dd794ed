"""What is stored, and what is missing: coverage per market and gaps in a series."""

from __future__ import annotations

from dataclasses import dataclass

from tradedb.models.timeframes import timeframe_of
from tradedb.models.values import check_exchange
from tradedb.services.marketdata.history import MarketHistory
from tradedb.services.marketdata.resample import check_series
from tradedb.store import Store
from tradedb.store.market import Coverage


@dataclass(frozen=True)
class Gap:
    """Candles missing from a series: from `start` to `end`, both included."""

    start: int
    end: int
    missing: int


@dataclass(frozen=True)
class MarketSummary:
    coverage: Coverage
    # Runs of missing candles, as `gaps` lists them.
    gaps: int

    @property
    def expected(self) -> int:
        """Candles from the first to the last stored one, had none been missing."""
        frame = timeframe_of(self.coverage.timeframe)
        return frame.count(self.coverage.first, self.coverage.last)

    @property
    def missing(self) -> int:
        return self.expected - self.coverage.candles


def list_data(store: Store, *, exchange: str | None = None) -> list[MarketSummary]:
    """Per exchange, symbol and timeframe: first, last, count, missing candles and gaps.

    First, last and count come from the index (and the archive's manifest). A series with
    no candle missing has no gap, so only series with holes are walked to count their
    gaps. Archived candles count as stored (MarketHistory).
    """
    if exchange is not None:
        check_exchange(exchange)
    summaries = []
    history = MarketHistory(store)
    with store.db.snapshot():
        for coverage in history.coverage(exchange):
            frame = timeframe_of(coverage.timeframe)
            complete = frame.count(coverage.first, coverage.last) == coverage.candles
            holes = 0 if complete else history.hole_count(coverage.exchange, coverage.symbol, frame)
            summaries.append(MarketSummary(coverage, holes))
    return summaries


def gaps(
    store: Store,
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    since: object = None,
    until: object = None,
) -> list[Gap]:
    """The missing ranges between the first and last stored candle (in the time range)."""
    start, end = check_series(exchange, symbol, timeframe, since, until)
    frame = timeframe_of(timeframe)
    history = MarketHistory(store)
    return [
        Gap(frame.end(before), frame.shift(after, -1), frame.count(before, after) - 2)
        for before, after in history.holes(exchange, symbol, frame, since=start, until=end)
    ]
