"""Candles of a longer timeframe built exactly from stored shorter ones.

A bucket's open is the first open, its close the last close, its high the highest high,
its low the lowest low and its volume the exact sum. Buckets are aligned to the UTC epoch,
so 1d candles start at midnight UTC and 4h candles at 00:00, 04:00, ... UTC, as on
exchanges. A bucket is built from the source candles it has; missing source candles are
minutes without trades, which add nothing to a bucket (Binance's own 5m candles equal
those built from its 1m candles this way).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from tradedb.errors import ValidationError
from tradedb.models.timeframes import Timeframe, check_timeframe, timeframe_of
from tradedb.models.values import check_exchange, check_symbol, parse_time_bound
from tradedb.services.marketdata.history import MarketHistory
from tradedb.store import Store
from tradedb.store.bulk import BulkResult, OnConflict


def check_series(
    exchange: str, symbol: str, timeframe: str, start: object = None, end: object = None
) -> tuple[int | None, int | None]:
    """Check one market's candle series and a time range; return the range in epoch ms
    (`start` inclusive, `end` exclusive, None for open)."""
    check_exchange(exchange)
    check_symbol(symbol)
    check_timeframe(timeframe)
    return time_range(start, end)


def time_range(start: object, end: object) -> tuple[int | None, int | None]:
    return (
        None if start is None else parse_time_bound(start, "since"),
        None if end is None else parse_time_bound(end, "until"),
    )


# Candle amounts: integer units when resampling stored candles, Decimals for trades.
N = TypeVar("N", int, Decimal)


def resample_units(
    rows: Iterable[tuple[int, N, N, N, N, N]], frame: Timeframe
) -> list[tuple[int, N, N, N, N, N]]:
    """Aggregate candles (time ms, open, high, low, close, volume), in time order, into
    the candles of `frame`. A trade is the candle (time, price, price, price, price,
    amount), so trades become candles the same way."""
    out: list[tuple[int, N, N, N, N, N]] = []
    current: list[Any] | None = None
    bucket_end = 0
    for ts, o, h, low, c, v in rows:
        # Rows come in time order, so a row past the bucket's end starts the next one.
        if current is None or ts >= bucket_end:
            if current is not None:
                out.append(tuple(current))
            start = frame.floor(ts)
            bucket_end = frame.end(start)
            current = [start, o, h, low, c, v]
            continue
        current[2] = max(current[2], h)
        current[3] = min(current[3], low)
        current[4] = c
        current[5] += v
    if current is not None:
        out.append(tuple(current))
    return out


@dataclass(frozen=True)
class ResampleResult:
    timeframe: str
    source_candles: int
    written: BulkResult


def resample(
    store: Store,
    *,
    exchange: str,
    symbol: str,
    source: str,
    targets: Sequence[str],
    since: object = None,
    until: object = None,
    on_conflict: OnConflict = "replace",
) -> list[ResampleResult]:
    """Build and store `targets` candles from the stored `source` candles of one market.

    `since` and `until` are widened to whole target buckets, so that no bucket is built
    from part of its candles. Running it again changes nothing.
    """
    check_exchange(exchange)
    check_symbol(symbol)
    source_frame = timeframe_of(source, "source")
    start, end = time_range(since, until)
    # Every target is checked before anything is written.
    frames = []
    for target in targets:
        frame = timeframe_of(target, "target")
        if not source_frame.divides(frame):
            raise ValidationError(
                "target",
                target,
                f"must be a longer timeframe than {source}, each of its candles made of whole "
                f"{source} candles",
            )
        frames.append(frame)
    results = []
    for target, frame in zip(targets, frames, strict=True):
        first = None if start is None else frame.floor(start)
        last = None if end is None else frame.ceil(end)
        rows = MarketHistory(store).candle_units(exchange, symbol, source, first, last)
        candles = resample_units(rows, frame)
        written = store.market.write_candle_units(
            exchange, symbol, target, candles, on_conflict=on_conflict
        )
        results.append(ResampleResult(target, len(rows), written))
    return results
