"""The stored candles a paper session replays, as exact Decimals in time order."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from tradedb.schema.money import from_units
from tradedb.services.marketdata.history import MarketHistory
from tradedb.store import Store

SCALE = 8


@dataclass(frozen=True, slots=True)
class Candle:
    symbol: str
    timestamp: int  # open time, epoch ms UTC
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


def load(
    store: Store,
    exchange: str,
    symbols: Sequence[str],
    timeframe: str,
    *,
    since: int,
    until: int,
) -> dict[str, list[Candle]]:
    """Each market's candles from `since` (inclusive) to `until` (exclusive), oldest first,
    archived ones included. Read as integer units and turned into Decimals without
    arithmetic: exact."""
    series: dict[str, list[Candle]] = {}
    history = MarketHistory(store)
    for symbol in symbols:
        rows = history.candle_units(exchange, symbol, timeframe, since, until)
        series[symbol] = [
            Candle(symbol, ts, *(from_units(value, SCALE) for value in values))
            for ts, *values in rows
        ]
    return series


def in_time_order(series: Mapping[str, Sequence[Candle]]) -> Iterator[Candle]:
    """Every market's candles merged by time; candles of the same time come in the order
    the markets were given, so a replay is the same every time."""
    order = {symbol: index for index, symbol in enumerate(series)}
    return heapq.merge(
        *series.values(), key=lambda candle: (candle.timestamp, order[candle.symbol])
    )
