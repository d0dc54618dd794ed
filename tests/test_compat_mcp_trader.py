"""tradedb.compat.mcp_trader: mcp-trader's models and exact conversions to and from them."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from market_files import ohlcv_rows, read_feather
from tradedb.compat import mcp_trader_models
from tradedb.compat.mcp_trader import (
    CandleData,
    MarketDataResponse,
    PatternDetectionResult,
    PositionSizeResult,
    StopLevels,
    StopLevelSuggestions,
    TechnicalAnalysisResult,
    candle_data_with_exact,
    exact_candle,
    float_round_trips,
    from_candle_data,
    market_data_response,
    position_size_from,
    position_size_result,
    stop_level_suggestions,
    stop_levels_from,
    to_candle_data,
    validate_trader,
)
from tradedb.errors import AmountOutOfRange, ValidationError
from tradedb.models.market import CandleCreate
from tradedb.store import Store

JAN_2018 = 1_515_560_100_000  # 2018-01-10 04:55 UTC, a 5m boundary
FIVE_MINUTES = 300_000
CAP_UNITS = 10**20 - 1  # DECIMAL(20,8)'s 999,999,999,999.99999999 in units of 1e-8
AMOUNT_FIELDS = ("open_price", "high_price", "low_price", "close_price", "volume")
THEIR_AMOUNTS = ("open", "high", "low", "close", "volume")


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


def candle_data(**changes: object) -> dict[str, Any]:
    """An mcp-trader candle payload (what an agent would send), valid unless changed."""
    payload: dict[str, Any] = {
        "date": datetime(2018, 1, 10, 4, 55, tzinfo=UTC),
        "open": 0.00141342,
        "high": 0.001415,
        "low": 0.00141,
        "close": 0.001414,
        "volume": 12345.6789,
        "symbol": "XRP/ETH",
    }
    payload.update(changes)
    return payload


def significant_digits(amount: Decimal) -> int:
    return len(amount.normalize().as_tuple().digits) if amount else 1


# --- candles: examples ---------------------------------------------------------------------


def test_a_candle_goes_out_as_candle_data_and_comes_back_unchanged() -> None:
    ours = candle()

    theirs = to_candle_data(ours)

    assert theirs.date == datetime(2018, 1, 10, 4, 55, tzinfo=UTC)
    assert theirs.date.utcoffset() == timedelta(0)
    assert (theirs.open, theirs.volume, theirs.symbol) == (0.00141342, 12345.6789, "XRP/ETH")
    assert from_candle_data(theirs, exchange="binance", timeframe="5m") == ours


def test_exact_fields_are_fixed_point_strings_beside_the_candle_data_fields() -> None:
    tiny = candle(
        open_price=Decimal("1E-8"), low_price=Decimal("0.00000001"), volume=Decimal("0E-8")
    )

    exact = exact_candle(tiny)
    merged = candle_data_with_exact(tiny)

    assert exact == {
        "timestamp": JAN_2018,
        "open_exact": "0.00000001",
        "high_exact": "0.00141500",
        "low_exact": "0.00000001",
        "close_exact": "0.00141400",
        "volume_exact": "0.00000000",
    }
    # One JSON object: CandleData's fields (floats, ISO date) and the exact ones side by side.
    assert json.loads(json.dumps(merged)) == {
        "date": "2018-01-10T04:55:00Z",
        "open": 1e-08,
        "high": 0.001415,
        "low": 1e-08,
        "close": 0.001414,
        "volume": 0.0,
        "symbol": "XRP/ETH",
        **exact,
    }


def test_an_amount_past_15_digits_comes_back_as_the_double_that_was_sent() -> None:
    big = Decimal("1234567890.12345678")
    ours = candle(open_price=big, high_price=big, low_price=big, close_price=big, volume=Decimal(1))

    back = from_candle_data(to_candle_data(ours), exchange="binance", timeframe="5m")

    assert back.open_price == Decimal("1234567890.1234567")
    assert float(back.open_price) == float(big)
    assert exact_candle(ours)["open_exact"] == "1234567890.12345678"


def test_a_symbol_that_is_not_a_ccxt_symbol_can_be_named_by_the_caller() -> None:
    payload = candle_data(symbol="XRPETH")

    with pytest.raises(ValidationError) as refused:
        from_candle_data(payload, exchange="binance", timeframe="5m")
    assert (refused.value.field, refused.value.value) == ("symbol", "XRPETH")

    record = from_candle_data(payload, exchange="binance", timeframe="5m", symbol="XRP/ETH")
    assert record == candle()


FUTURE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        (
            {"open": 0.00010756000000000001, "high": 0.0002, "low": 0.0001, "close": 0.0001},
            "open",
            "needs more than 8 decimals",
        ),
        ({"volume": 1e-09}, "volume", "needs more than 8 decimals"),
        ({"high": 1e12}, "high", "exceeds ±999999999999.99999999"),
        ({"high": float("inf")}, "high", "NaN and infinity are not amounts"),
        ({"volume": float("inf")}, "volume", "NaN and infinity are not amounts"),
        ({"open": float("nan")}, "open", "greater than or equal to 0"),
        ({"low": -0.001}, "low", "greater than or equal to 0"),
        ({"low": 0.0, "open": 0.001414}, "low", "must be greater than zero"),
        ({"high": 0.0014}, "high", "must be >= open and close"),
        ({"date": datetime(2018, 1, 10, 4, 55)}, "date", "naive datetime"),
        (
            {"date": datetime(2018, 1, 10, 4, 55, 0, 500, tzinfo=UTC)},
            "date",
            "sub-millisecond",
        ),
        ({"date": datetime(2018, 1, 10, 4, 56, tzinfo=UTC)}, "date", "not aligned to the 5m"),
        ({"date": FUTURE}, "date", "is in the future"),
        ({"date": "10 January 2018"}, "date", "valid datetime"),
        ({"symbol": "XRP/ETH'; DROP TABLE market_data;--"}, "symbol", "ccxt market symbol"),
        ({"price": 1.0}, "price", "is not a field of CandleData"),
    ],
)
@pytest.mark.fault("bad input")
def test_candle_data_that_does_not_fit_is_refused_naming_field_value_and_rule(
    changes: dict[str, object], field: str, rule: str
) -> None:
    payload = candle_data(**changes)

    with pytest.raises(ValidationError) as refused:
        from_candle_data(payload, exchange="binance", timeframe="5m")

    error = refused.value
    assert error.field == field
    assert rule in error.rule
    assert str(error).startswith(f"{field}=")
    if field in payload and field != "date":
        assert repr(error.value) == repr(payload[field])  # repr: NaN equals nothing


def test_an_amount_above_the_cap_is_an_amount_out_of_range() -> None:
    with pytest.raises(AmountOutOfRange):
        from_candle_data(candle_data(volume=1e30), exchange="binance", timeframe="5m")
    # A meme coin's volume in the trillions fits the volume's DECIMAL(38,8).
    record = from_candle_data(candle_data(volume=5.1e12), exchange="binance", timeframe="5m")
    assert record.volume == Decimal("5100000000000")


def test_exchange_and_timeframe_are_checked_as_for_any_candle() -> None:
    with pytest.raises(ValidationError) as refused:
        from_candle_data(candle_data(), exchange="Binance", timeframe="5m")
    assert refused.value.field == "exchange"

    with pytest.raises(ValidationError) as refused:
        from_candle_data(candle_data(), exchange="binance", timeframe="7m")
    assert refused.value.field == "timeframe"


# --- candles: properties -------------------------------------------------------------------

MIN_SLOT = 1_483_228_800_000 // FIVE_MINUTES  # 2017-01-01
MAX_SLOT = 1_704_067_200_000 // FIVE_MINUTES  # 2024-01-01


def units_to_amount(units: int) -> Decimal:
    return Decimal(units).scaleb(-8)


@st.composite
def amounts_of_at_most_15_digits(draw: st.DrawFn, *, minimum: int = 1) -> Decimal:
    """Amounts at 8 decimals with at most 15 significant digits, anywhere up to the cap."""
    mantissa = draw(st.integers(minimum, 10**15 - 1))
    shift = draw(st.integers(0, 4))
    units = mantissa * 10**shift
    if units > CAP_UNITS:
        units = mantissa
    return units_to_amount(units)


# Below the cap by more than a double's spacing there (2**-16), so that the nearest
# double cannot lie above the cap.
any_amount = st.integers(1, CAP_UNITS - 10**4).map(units_to_amount)


@st.composite
def candles(draw: st.DrawFn, amounts: st.SearchStrategy[Decimal]) -> CandleCreate:
    low, first, second, high = sorted(draw(amounts) for _ in range(4))
    open_price, close_price = draw(st.permutations([first, second]))
    return CandleCreate(
        symbol="ETH/BTC",
        timestamp=draw(st.integers(MIN_SLOT, MAX_SLOT)) * FIVE_MINUTES,
        open_price=open_price,
        high_price=high,
        low_price=low,
        close_price=close_price,
        volume=draw(st.one_of(st.just(Decimal(0)), amounts)),
        timeframe="5m",
        exchange=draw(st.sampled_from(["kraken", "binance"])),
    )


@settings(max_examples=300, deadline=None)
@given(candles(amounts_of_at_most_15_digits()))
def test_candles_whose_amounts_have_at_most_15_significant_digits_round_trip_exactly(
    ours: CandleCreate,
) -> None:
    back = from_candle_data(to_candle_data(ours), exchange=ours.exchange, timeframe="5m")

    assert back == ours


@settings(max_examples=300, deadline=None)
@given(candles(any_amount))
def test_any_candle_comes_back_as_the_doubles_it_was_sent_as(ours: CandleCreate) -> None:
    sent = to_candle_data(ours)

    back = from_candle_data(sent, exchange=ours.exchange, timeframe="5m")

    assert back.timestamp == ours.timestamp
    for column, field in zip(AMOUNT_FIELDS, THEIR_AMOUNTS, strict=True):
        original, returned = getattr(ours, column), getattr(back, column)
        # The same double, read as its shortest repr: never more digits than we had,
        # and equal to the original exactly when float_round_trips says so.
        assert float(returned) == getattr(sent, field) == float(original)
        assert significant_digits(returned) <= significant_digits(original)
        assert (returned == original) == float_round_trips(original)
        if significant_digits(original) <= 15:
            assert returned == original


@settings(max_examples=200, deadline=None)
@given(st.integers(10**17, CAP_UNITS).map(units_to_amount))
def test_amounts_of_18_or_more_significant_digits_never_round_trip(amount: Decimal) -> None:
    assume(significant_digits(amount) >= 18)

    assert not float_round_trips(amount)


@settings(max_examples=200, deadline=None)
@given(candles(any_amount))
def test_exact_fields_give_back_every_stored_digit(ours: CandleCreate) -> None:
    exact = exact_candle(ours)

    for column, field in zip(AMOUNT_FIELDS, THEIR_AMOUNTS, strict=True):
        text = exact[f"{field}_exact"]
        assert isinstance(text, str)
        assert "e" not in text.lower()
        assert Decimal(text) == getattr(ours, column)
    assert exact["timestamp"] == ours.timestamp


# --- candles: real data --------------------------------------------------------------------


def test_binance_xrp_eth_candles_go_out_as_binance_published_them(store: Store) -> None:
    table = read_feather("XRP_ETH-5m.feather")
    rows = ohlcv_rows(table)
    store.write_candles(rows, exchange="binance", symbol="XRP/ETH", timeframe="5m")
    stored = store.candles.list(
        {"exchange": "binance", "symbol": "XRP/ETH", "timeframe": "5m"}, limit=1000
    ).items

    response = market_data_response(stored, exchange="binance", symbol="XRP/ETH", lookback_days=3)

    assert (response.provider, response.quote_currency, len(response.data)) == (
        "binance",
        "ETH",
        706,
    )
    dates = table.column("date").to_pylist()
    for sent, row, date in zip(response.data, rows, dates, strict=True):
        # Every float is the very double in Binance's file, every date its UTC time.
        assert [sent.open, sent.high, sent.low, sent.close, sent.volume] == row[1:]
        assert sent.date == date
    # What an agent receives as JSON validates back into the same response...
    assert validate_trader(MarketDataResponse, json.loads(response.model_dump_json())) == response
    # ...and every candle it sends back is the stored candle, digit for digit.
    for sent, kept in zip(response.data, stored, strict=True):
        back = from_candle_data(sent, exchange="binance", timeframe="5m")
        assert back.model_dump() == kept.model_dump(exclude={"id", "created_at"})


@pytest.mark.fault("bad input")
def test_trx_floats_with_noise_past_8_decimals_are_refused_never_rounded() -> None:
    rows = ohlcv_rows(read_feather("TRX_BTC-5m.feather"))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    refused = 0

    for millis, *values in rows:
        payload = dict(zip(THEIR_AMOUNTS, values, strict=True))
        payload |= {"date": epoch + timedelta(milliseconds=millis), "symbol": "TRX/BTC"}
        noisy = [
            field
            for field, value in zip(THEIR_AMOUNTS, values, strict=True)
            if Decimal(repr(value)).as_tuple().exponent < -8  # type: ignore[operator]
        ]
        if noisy:
            refused += 1
            with pytest.raises(ValidationError) as refusal:
                from_candle_data(payload, exchange="binance", timeframe="5m")
            assert refusal.value.field == noisy[0]
            assert "needs more than 8 decimals" in refusal.value.rule
        else:
            record = from_candle_data(payload, exchange="binance", timeframe="5m")
            assert record.timestamp == millis
            assert [getattr(record, column) for column in AMOUNT_FIELDS] == [
                Decimal(repr(value)) for value in values
            ]

    assert 0 < refused < len(rows) == 5754


# --- market data responses -----------------------------------------------------------------


@pytest.mark.parametrize("provider", ["kraken", "binance", "coinbase", "tiingo"])
def test_providers_are_any_ccxt_exchange_and_tiingo(provider: str) -> None:
    response = market_data_response(
        [] if provider == "tiingo" else [candle(exchange=provider)],
        exchange=provider,
        symbol="XRP/ETH",
        lookback_days=30,
        quote_currency="eth",
    )

    assert response.provider == provider
    assert response.quote_currency == "eth"
    assert MarketDataResponse.model_validate(response.model_dump()).provider == provider


@pytest.mark.parametrize(
    ("provider", "rule"),
    [
        ("nosuchexchange", "is not an exchange ccxt knows"),
        ("Kraken", "lowercase ccxt exchange id"),
        ("kraken; DROP TABLE", "lowercase ccxt exchange id"),
        ("", "lowercase ccxt exchange id"),
    ],
)
@pytest.mark.fault("bad input")
def test_an_unknown_provider_is_refused(provider: str, rule: str) -> None:
    with pytest.raises(ValidationError) as refused:
        market_data_response([], exchange=provider, symbol="XRP/ETH", lookback_days=1)

    assert (refused.value.field, refused.value.value) == ("provider", provider)
    assert rule in refused.value.rule


def test_without_ccxt_a_provider_need_only_look_like_an_exchange_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ccxt", None)  # import ccxt now raises ImportError
    mcp_trader_models.ccxt_exchange_ids.cache_clear()
    try:
        assert mcp_trader_models.check_provider("nosuchexchange") == "nosuchexchange"
        with pytest.raises(ValidationError):
            mcp_trader_models.check_provider("No Such Exchange")
    finally:
        mcp_trader_models.ccxt_exchange_ids.cache_clear()


def test_a_response_holds_only_candles_of_its_own_market() -> None:
    with pytest.raises(ValidationError) as refused:
        market_data_response(
            [candle(), candle(symbol="ETH/BTC")],
            exchange="binance",
            symbol="XRP/ETH",
            lookback_days=1,
        )
    assert refused.value.field == "candles"
    assert "binance ETH/BTC" in str(refused.value.value)

    with pytest.raises(ValidationError) as refused:
        market_data_response([candle()], exchange="kraken", symbol="XRP/ETH", lookback_days=1)
    assert refused.value.field == "candles"


def test_lookback_days_must_be_positive() -> None:
    with pytest.raises(ValidationError) as refused:
        market_data_response([candle()], exchange="binance", symbol="XRP/ETH", lookback_days=0)
    assert (refused.value.field, refused.value.value) == ("lookback_days", 0)


# --- position size and stop levels ---------------------------------------------------------


def position_result(**changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "symbol": "ETH/USDT",
        "entry_price": 2000.0,
        "stop_price": 1900.0,
        "recommended_shares": 5,
        "dollar_risk": 500.0,
        "risk_per_share": 100.0,
        "position_cost": 10000.0,
        "account_percent_risked": 1.0,
        "r_multiples": {"r1": 2100.0, "r2": 2200.0, "r3": 2300.0},
    }
    result.update(changes)
    return result


def test_a_position_size_becomes_exact_amounts_and_goes_back_unchanged() -> None:
    theirs = validate_trader(PositionSizeResult, position_result())

    ours = position_size_from(theirs)

    assert ours.model_dump(mode="json") == {
        "symbol": "ETH/USDT",
        "entry_price": "2000.00000000",
        "stop_price": "1900.00000000",
        "amount": "5.00000000",
        "dollar_risk": "500.00000000",
        "risk_per_share": "100.00000000",
        "position_cost": "10000.00000000",
        "account_percent_risked": "1.0000",
        "r1": "2100.00000000",
        "r2": "2200.00000000",
        "r3": "2300.00000000",
    }
    assert position_size_result(ours) == theirs


@pytest.mark.parametrize(
    ("field", "value", "exact"),
    [
        ("dollar_risk", 0.1 + 0.2, "0.30000000"),  # 0.30000000000000004
        ("dollar_risk", 1.25e-07, "0.00000012"),  # a tie goes to the even neighbour...
        ("dollar_risk", 1.35e-07, "0.00000014"),  # ...up or down
        ("position_cost", 5e-09, "0.00000000"),
        ("account_percent_risked", 1.23445, "1.2344"),  # the percentage at 4 decimals
        ("account_percent_risked", 1.23455, "1.2346"),
    ],
)
def test_computed_floats_are_quantized_half_even(field: str, value: float, exact: str) -> None:
    ours = position_size_from(position_result(**{field: value}))

    # At the column's scale, digit for digit.
    assert format(getattr(ours, field), "f") == exact


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"dollar_risk": float("inf")}, "dollar_risk", "NaN and infinity are not amounts"),
        ({"position_cost": 1e12}, "position_cost", "exceeds ±999999999999.99999999"),
        (
            {"r_multiples": {"r1": float("inf"), "r2": 1.0, "r3": 1.0}},
            "r_multiples.r1",
            "NaN and infinity",
        ),
        ({"risk_per_share": 50.0}, "risk_per_share", "must equal |entry_price - stop_price|"),
        ({"account_percent_risked": 150.0}, "account_percent_risked", "less than or equal"),
        ({"dollar_risk": float("nan")}, "dollar_risk", "greater than or equal to 0"),
    ],
)
@pytest.mark.fault("bad input")
def test_position_sizes_that_do_not_fit_are_refused(
    changes: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        position_size_from(position_result(**changes))

    assert refused.value.field == field
    assert rule in refused.value.rule


@pytest.mark.fault("bad input")
def test_a_fractional_amount_is_refused_by_mcp_traders_whole_shares() -> None:
    ours = position_size_from(position_result()).model_copy(update={"amount": Decimal("0.5")})

    with pytest.raises(ValidationError) as refused:
        position_size_result(ours)

    assert (refused.value.field, refused.value.value) == ("amount", Decimal("0.5"))


finite_amounts = st.floats(0, 9e10, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(finite_amounts, finite_amounts)
def test_each_computed_float_lands_within_half_a_unit_of_its_shortest_repr(
    dollar_risk: float, position_cost: float
) -> None:
    ours = position_size_from(position_result(dollar_risk=dollar_risk, position_cost=position_cost))

    for name, value in (("dollar_risk", dollar_risk), ("position_cost", position_cost)):
        exact = getattr(ours, name)
        written = Decimal(repr(value))
        assert exact == written.quantize(Decimal("1E-8"), rounding=ROUND_HALF_EVEN)
        assert abs(exact - written) <= Decimal("0.000000005")
        assert exact.as_tuple().exponent == -8


def stop_suggestions(**changes: Any) -> dict[str, Any]:
    suggestions: dict[str, Any] = {
        "symbol": "ETH/USDT",
        "current_price": 2000.0,
        "atr_1x": 1950.0,
        "atr_2x": 1900.0,
        "atr_3x": 1850.0,
        "percent_2": 1960.0,
        "percent_5": 1900.0,
        "percent_8": 1840.0,
        "sma_20": 1975.5,
        "sma_50": None,
        "sma_200": None,
        "recent_swing": 1888.12345678,
    }
    suggestions.update(changes)
    return suggestions


def test_stop_levels_become_exact_prices_and_go_back_unchanged() -> None:
    theirs = validate_trader(StopLevelSuggestions, stop_suggestions())

    ours = stop_levels_from(theirs)

    assert isinstance(ours, StopLevels)
    assert (ours.current_price, ours.sma_20, ours.sma_50) == (
        Decimal("2000.00000000"),
        Decimal("1975.50000000"),
        None,
    )
    assert ours.recent_swing == Decimal("1888.12345678")
    assert stop_level_suggestions(ours) == theirs


@pytest.mark.fault("bad input")
def test_a_stop_that_quantizing_lifts_to_the_price_is_refused() -> None:
    # Both round to 1.00000000: apart as floats, the stop is no longer below the price.
    suggestions = stop_suggestions(
        current_price=1.000000004,
        atr_1x=1.000000001,
        atr_2x=0.9,
        atr_3x=0.8,
        percent_2=0.98,
        percent_5=0.95,
        percent_8=0.92,
        sma_20=None,
        recent_swing=None,
    )

    with pytest.raises(ValidationError) as refused:
        stop_levels_from(suggestions)

    assert refused.value.field == "atr_1x"
    assert "must be below current_price 1.00000000" in refused.value.rule


def test_mcp_traders_own_stop_rule_names_the_stop() -> None:
    with pytest.raises(ValidationError) as refused:
        stop_levels_from(stop_suggestions(atr_2x=2001.0))

    assert (refused.value.field, refused.value.value) == ("atr_2x", 2001.0)


def test_our_exact_records_serialize_amounts_as_fixed_point_strings() -> None:
    tiny = stop_levels_from(
        stop_suggestions(current_price=1e-07, atr_1x=1e-08, atr_2x=1e-08, atr_3x=1e-08)
        | {"percent_2": 1e-08, "percent_5": 1e-08, "percent_8": 1e-08, "sma_20": 1e-08}
        | {"recent_swing": None}
    )

    dumped = json.loads(tiny.model_dump_json())

    assert dumped["current_price"] == "0.00000010"
    assert dumped["atr_1x"] == "0.00000001"
    assert dumped["sma_50"] is None


# --- technical analysis and patterns -------------------------------------------------------


def analysis(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "symbol": "BTC/USDT",
        "current_price": 42000.5,
        "trend_status": {
            "above_20sma": True,
            "above_50sma": True,
            "above_200sma": False,
            "20_50_bullish": True,
            "50_200_bullish": False,
            "rsi": 61.2,
            "macd_bullish": True,
        },
        "indicators": {
            "sma_20": 41000.0,
            "sma_50": 40000.0,
            "sma_200": None,
            "atr": 850.25,
            "adrp": 2.1,
            "avg_20d_vol": 1234.5,
            "rsi": 61.2,
            "macd": 12.5,
            "macd_signal": 10.0,
            "macd_histogram": 2.5,
        },
        "analysis_date": "2024-03-01T12:00:00Z",
    }
    payload.update(changes)
    return payload


def test_an_analysis_with_mcp_traders_aliases_survives_a_json_round_trip() -> None:
    result = validate_trader(TechnicalAnalysisResult, analysis())

    assert result.trend_status.sma_20_50_bullish is True
    dumped = json.loads(result.model_dump_json(by_alias=True))
    assert dumped["trend_status"]["20_50_bullish"] is True
    assert dumped["analysis_date"] == "2024-03-01T12:00:00Z"
    assert validate_trader(TechnicalAnalysisResult, dumped) == result


def test_an_analysis_without_a_date_is_dated_now_in_utc() -> None:
    payload = analysis()
    del payload["analysis_date"]

    result = validate_trader(TechnicalAnalysisResult, payload)

    assert result.analysis_date.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - result.analysis_date) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("payload", "field", "rule"),
    [
        (
            analysis(trend_status=analysis()["trend_status"] | {"rsi": 150.0}),
            "trend_status.rsi",
            "less than or equal to 100",
        ),
        (
            analysis(indicators=analysis()["indicators"] | {"atr": -1.0}),
            "indicators.atr",
            "greater than or equal to 0",
        ),
        (analysis(sql="DROP TABLE bot_logs"), "sql", "is not a field of TechnicalAnalysisResult"),
    ],
)
@pytest.mark.fault("bad input")
def test_a_bad_analysis_is_refused_naming_the_nested_field(
    payload: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_trader(TechnicalAnalysisResult, payload)

    assert refused.value.field == field
    assert rule in refused.value.rule


def test_patterns_keep_mcp_traders_types_and_confidences() -> None:
    pattern = {
        "type": "Double Bottom",
        "start_date": "2024-01-01",
        "end_date": "2024-01-15",
        "price_level": 41000.0,
        "confidence": "High",
        "additional_info": {"neckline": 43000.0},
    }
    result = validate_trader(PatternDetectionResult, {"symbol": "BTC/USDT", "patterns": [pattern]})
    assert result.patterns[0].additional_info == {"neckline": 43000.0}

    with pytest.raises(ValidationError) as refused:
        validate_trader(
            PatternDetectionResult,
            {"symbol": "BTC/USDT", "patterns": [pattern | {"type": "Cup and Handle"}]},
        )
    assert refused.value.field == "patterns.0.type"


def test_candle_data_models_keep_mcp_traders_bounds() -> None:
    with pytest.raises(ValidationError) as refused:
        validate_trader(CandleData, candle_data(low=0.0015))
    assert (refused.value.field, refused.value.value) == ("low", 0.0015)


# --- the documentation -----------------------------------------------------------------------


def test_docs_candle_example_is_what_a_stored_candle_gives(store: Store) -> None:
    docs = (Path(__file__).parents[1] / "docs" / "mcp.md").read_text(encoding="utf-8")
    section = docs.split("## mcp-trader compatibility", 1)[1].split("\n## ", 1)[0]
    [example] = re.findall(r"```json\n(.*?)```", section, flags=re.DOTALL)
    store.write_candles(
        [[1_570_752_000_000, "0.00141342", "0.001415", "0.00141", "0.001414", "12345.6789"]],
        exchange="binance",
        symbol="XRP/ETH",
        timeframe="5m",
    )
    [stored] = store.candles.list({"exchange": "binance"}).items

    assert candle_data_with_exact(stored) == json.loads(example)
