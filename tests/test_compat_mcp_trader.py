"""tradedb.compat.mcp_trader: mcp-trader's models and exact conversions to and from them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradedb.compat.mcp_trader import (
    CandleData,
    exact_candle,
    from_candle_data,
    market_data_response,
    to_candle_data,
)
from tradedb.errors import ValidationError
from tradedb.models.market import CandleCreate

JAN_2018 = 1_515_560_100_000  # 2018-01-10 04:55 UTC, a 5m boundary


def candle(**changes: object) -> CandleCreate:
    values: dict[str, object] = {
        "symbol": "XRP/ETH",
        "timestamp": JAN_2018,
        "open_price": Decimal("0.00141342"),
        "high_price": Decimal("0.00141500"),
        "low_price": Decimal("0.00141000"),
        "close_price": Decimal("0.00141400"),
        "volume": Decimal("12345.6789"),
        "timeframe": "5m",
        "exchange": "binance",
    }
    values.update(changes)
    return CandleCreate.model_validate(values)


def test_a_candle_goes_out_as_candle_data_and_comes_back_unchanged() -> None:
    ours = candle()

    theirs = to_candle_data(ours)

    assert theirs.date == datetime(2018, 1, 10, 4, 55, tzinfo=UTC)
    assert (theirs.open, theirs.volume, theirs.symbol) == (0.00141342, 12345.6789, "XRP/ETH")
    assert from_candle_data(theirs, exchange="binance", timeframe="5m") == ours


def test_exact_fields_are_fixed_point_strings() -> None:
    exact = exact_candle(candle(low_price=Decimal("0.00000001"), open_price=Decimal("1E-8")))

    assert exact["timestamp"] == JAN_2018
    assert exact["low_exact"] == exact["open_exact"] == "0.00000001"


def test_a_float_needing_more_than_8_decimals_is_refused_not_rounded() -> None:
    data = CandleData(
        date=datetime(2018, 1, 10, 4, 55, tzinfo=UTC),
        open=0.00010756000000000001,
        high=0.0002,
        low=0.0001,
        close=0.0001,
        volume=1.0,
        symbol="TRX/BTC",
    )

    with pytest.raises(ValidationError) as refused:
        from_candle_data(data, exchange="binance", timeframe="5m")

    assert refused.value.field == "open"
    assert "more than 8 decimals" in refused.value.rule


def test_kraken_is_a_provider_and_an_unknown_exchange_is_not() -> None:
    response = market_data_response(
        [candle(exchange="kraken")], exchange="kraken", symbol="XRP/ETH", lookback_days=1
    )
    assert (response.provider, response.quote_currency) == ("kraken", "ETH")

    with pytest.raises(ValidationError) as refused:
        market_data_response([], exchange="nosuchexchange", symbol="XRP/ETH", lookback_days=1)
    assert refused.value.field == "provider"
