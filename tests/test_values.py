"""The value rules every record shares: exact decimals, epoch-millisecond times and names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradedb.errors import AmountOutOfRange, ValidationError
from tradedb.models.values import (
    AMOUNT,
    PERCENT,
    DecimalSpec,
    check_exchange,
    check_symbol,
    ms_to_datetime,
    to_decimal,
    to_epoch_ms,
)

# --- decimals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1.5"), Decimal("1.5")),
        (Decimal("-0.00000001"), Decimal("-0.00000001")),
        (7, Decimal(7)),
        (0, Decimal(0)),
        ("0.12345678", Decimal("0.12345678")),
        (" 42.1 ", Decimal("42.1")),
        ("1.000000000", Decimal("1")),  # a trailing zero past the scale loses nothing
        ("999999999999.99999999", Decimal("999999999999.99999999")),
        (0.1, Decimal("0.1")),
        (2.5, Decimal("2.5")),
        (0.12345678, Decimal("0.12345678")),
    ],
)
def test_to_decimal_accepts_exact_input(value: object, expected: Decimal) -> None:
    result = to_decimal(value, "amount")
    assert isinstance(result, Decimal)
    assert result == expected


def test_float_accepted_only_when_its_repr_fits_the_scale() -> None:
    assert to_decimal(0.1, "amount") == Decimal("0.1")
    with pytest.raises(ValidationError) as info:
        to_decimal(0.1 + 0.2, "amount")
    message = str(info.value).lower()
    assert "float" in message
    assert "exact" in message
    assert info.value.value == 0.1 + 0.2


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), float("-inf"), "NaN", "nan", "sNaN", "inf", "-Infinity"],
)
@pytest.mark.fault("bad input")
def test_nan_and_infinity_are_refused(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        to_decimal(value, "price")
    assert info.value.field == "price"
    assert not isinstance(info.value, AmountOutOfRange)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
@pytest.mark.fault("bad input")
def test_non_finite_decimals_are_refused(value: Decimal) -> None:
    with pytest.raises(ValidationError):
        to_decimal(value, "price")


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_numbers(value: bool) -> None:
    with pytest.raises(ValidationError) as info:
        to_decimal(value, "amount")
    assert "boolean" in info.value.rule


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, b"1", object()])
@pytest.mark.fault("bad input")
def test_other_types_are_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        to_decimal(value, "amount")


@pytest.mark.parametrize("value", ["abc", "", "1.2.3", "1,5", "0x10"])
@pytest.mark.fault("bad input")
def test_text_that_is_not_a_number_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as info:
        to_decimal(value, "amount")
    assert info.value.value == value


@pytest.mark.parametrize(
    "value", ["0.123456789", Decimal("0.000000001"), "-1.000000001", "1E-9", 1e-9]
)
@pytest.mark.fault("bad input")
def test_more_decimals_than_the_column_holds_is_refused_never_rounded(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        to_decimal(value, "amount")
    assert not isinstance(info.value, AmountOutOfRange)
    assert "8" in info.value.rule


@pytest.mark.parametrize(
    "value", [10**12, 1e12, "1000000000000", Decimal("-1000000000000"), "1E+20", 1e300]
)
def test_too_many_integer_digits_is_amount_out_of_range(value: object) -> None:
    with pytest.raises(AmountOutOfRange) as info:
        to_decimal(value, "amount")
    assert info.value.field == "amount"
    assert "DECIMAL(20,8)" in info.value.rule


def test_largest_decimal_20_8_value_is_accepted() -> None:
    assert to_decimal("999999999999.99999999", "amount") == Decimal("999999999999.99999999")
    assert to_decimal("-999999999999.99999999", "amount") == Decimal("-999999999999.99999999")


@pytest.mark.parametrize(
    "value", ["1000000000000000000000.000000000", Decimal("123456789012345678901.0000000000")]
)
def test_huge_value_with_trailing_zeros_is_amount_out_of_range(value: object) -> None:
    with pytest.raises(AmountOutOfRange):
        to_decimal(value, "amount")


def test_percent_spec_is_decimal_10_4() -> None:
    assert to_decimal("12.3456", "win_rate", PERCENT) == Decimal("12.3456")
    assert to_decimal("999999.9999", "win_rate", PERCENT) == Decimal("999999.9999")
    with pytest.raises(ValidationError) as info:
        to_decimal("12.34567", "win_rate", PERCENT)
    assert not isinstance(info.value, AmountOutOfRange)
    assert "DECIMAL(10,4)" in info.value.rule
    with pytest.raises(AmountOutOfRange) as big:
        to_decimal(Decimal(10**6), "win_rate", PERCENT)
    assert "DECIMAL(10,4)" in big.value.rule
    with pytest.raises(AmountOutOfRange):
        to_decimal(1e6, "win_rate", PERCENT)


@settings(max_examples=300)
@given(
    units=st.integers(min_value=-(10**20) + 1, max_value=10**20 - 1),
    spec=st.sampled_from([AMOUNT, PERCENT]),
)
def test_any_value_within_the_spec_round_trips_through_text(units: int, spec: DecimalSpec) -> None:
    value = Decimal(units).scaleb(-spec.scale)
    if abs(value) >= spec.limit:
        with pytest.raises(AmountOutOfRange):
            to_decimal(str(value), "x", spec)
    else:
        assert to_decimal(str(value), "x", spec) == value
        assert to_decimal(format(value, "f"), "x", spec) == value


@settings(max_examples=300)
@given(
    units=st.integers(min_value=-(10**19), max_value=10**19),
    extra=st.integers(min_value=1, max_value=9),
)
@pytest.mark.fault("bad input")
def test_a_ninth_decimal_is_always_refused(units: int, extra: int) -> None:
    value = Decimal(units).scaleb(-8) + Decimal(extra).scaleb(-9)
    with pytest.raises(ValidationError):
        to_decimal(value, "amount")
    with pytest.raises(ValidationError):
        to_decimal(str(value), "amount")


# --- time --------------------------------------------------------------------------------

NOV_2023_MS = 1_700_000_000_000


def test_int_milliseconds_are_accepted_as_they_are() -> None:
    assert to_epoch_ms(NOV_2023_MS, "timestamp") == NOV_2023_MS
    assert to_epoch_ms(NOV_2023_MS + 1, "timestamp") == NOV_2023_MS + 1


@pytest.mark.fault("bad input")
def test_an_int_that_looks_like_seconds_is_refused_saying_so() -> None:
    with pytest.raises(ValidationError) as info:
        to_epoch_ms(1_700_000_000, "timestamp")
    assert "seconds" in str(info.value)
    assert info.value.field == "timestamp"
    assert info.value.value == 1_700_000_000


@pytest.mark.fault("bad input")
def test_microseconds_are_refused_saying_so() -> None:
    with pytest.raises(ValidationError) as info:
        to_epoch_ms(1_700_000_000_000_000, "timestamp")
    assert "microseconds" in str(info.value)


@pytest.mark.parametrize("value", [0, -1, 12345])
@pytest.mark.fault("bad input")
def test_times_before_any_market_are_refused(value: int) -> None:
    with pytest.raises(ValidationError):
        to_epoch_ms(value, "timestamp")


@pytest.mark.fault("bad input")
def test_naive_datetime_is_refused_saying_so() -> None:
    naive = datetime(2024, 1, 1, 12, 0, 0)
    with pytest.raises(ValidationError) as info:
        to_epoch_ms(naive, "opened_at")
    assert "naive" in str(info.value)
    assert info.value.field == "opened_at"
    assert info.value.value == naive


@pytest.mark.fault("bad input")
def test_naive_iso_text_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        to_epoch_ms("2024-01-01T00:00:00", "timestamp")
    assert "naive" in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2024, 1, 1, tzinfo=UTC), 1_704_067_200_000),
        (datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))), 1_704_067_200_000),
        (datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC), 1_700_000_000_123),
        (datetime(2023, 11, 14, 22, 13, 20, 123999, tzinfo=UTC), 1_700_000_000_123),
        ("2024-01-01T00:00:00Z", 1_704_067_200_000),
        ("2024-01-01T00:00:00+00:00", 1_704_067_200_000),
        ("2024-01-01T05:30:00+05:30", 1_704_067_200_000),
    ],
)
def test_aware_times_convert_to_exact_epoch_ms(value: object, expected: int) -> None:
    assert to_epoch_ms(value, "timestamp") == expected


@pytest.mark.parametrize("value", [True, False])
def test_boolean_is_not_a_time(value: bool) -> None:
    with pytest.raises(ValidationError) as info:
        to_epoch_ms(value, "timestamp")
    assert "boolean" in info.value.rule


@pytest.mark.parametrize("value", ["yesterday", "", None, 1.5e12 + 0.5, [NOV_2023_MS]])
@pytest.mark.fault("bad input")
def test_other_time_input_is_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        to_epoch_ms(value, "timestamp")


@settings(max_examples=300)
@given(
    moment=st.datetimes(
        min_value=datetime(1974, 1, 1),
        max_value=datetime(5000, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=13, minutes=45))]
        ),
    )
)
def test_aware_datetimes_map_to_the_millisecond_that_holds_them(moment: datetime) -> None:
    millis = to_epoch_ms(moment, "timestamp")
    start = ms_to_datetime(millis)
    assert start <= moment < start + timedelta(milliseconds=1)
    assert to_epoch_ms(start, "timestamp") == millis


# --- names -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["BTC/USDT", "BTC/USDT:USDT", "ETH/BTC", "1INCH/USD"])
def test_ccxt_symbols_are_accepted(value: str) -> None:
    assert check_symbol(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "btc/usdt",
        "BTCUSDT",
        "BTC/USDT'; DROP TABLE trades;--",
        "BTC/",
        "/USDT",
        " BTC/USDT",
        "BTC / USDT",
        "",
        None,
        42,
    ],
)
@pytest.mark.fault("bad input")
def test_other_symbols_are_refused(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        check_symbol(value)  # type: ignore[arg-type]
    assert info.value.field == "symbol"
    assert info.value.value == value


@pytest.mark.parametrize("value", ["kraken", "binanceusdm", "binance", "okx", "gateio"])
def test_ccxt_exchange_ids_are_accepted(value: str) -> None:
    assert check_exchange(value) == value


@pytest.mark.parametrize("value", ["Kraken", "kra ken", "KRAKEN", "kraken ", "", "1inch", None])
@pytest.mark.fault("bad input")
def test_other_exchange_ids_are_refused(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        check_exchange(value)  # type: ignore[arg-type]
    assert info.value.field == "exchange"


# --- the shape of every error ------------------------------------------------------------

REFUSALS = [
    (lambda: to_decimal(0.1 + 0.2, "amount"), "amount", 0.1 + 0.2),
    (lambda: to_decimal("NaN", "price"), "price", "NaN"),
    (lambda: to_decimal(True, "fee"), "fee", True),
    (lambda: to_decimal("0.123456789", "amount"), "amount", "0.123456789"),
    (lambda: to_decimal("1000000000000", "amount"), "amount", "1000000000000"),
    (lambda: to_decimal("1.23456", "win_rate", PERCENT), "win_rate", "1.23456"),
    (lambda: to_epoch_ms(1_700_000_000, "timestamp"), "timestamp", 1_700_000_000),
    (
        lambda: to_epoch_ms(1_700_000_000_000_000, "filled_at"),
        "filled_at",
        1_700_000_000_000_000,
    ),
    (lambda: to_epoch_ms(True, "timestamp"), "timestamp", True),
    (lambda: check_symbol("btc/usdt"), "symbol", "btc/usdt"),
    (lambda: check_exchange("Kraken"), "exchange", "Kraken"),
]


@pytest.mark.parametrize(("refuse", "field", "value"), REFUSALS)
def test_every_error_carries_field_value_and_rule(
    refuse: object, field: str, value: object
) -> None:
    with pytest.raises(ValidationError) as info:
        refuse()  # type: ignore[operator]
    error = info.value
    assert error.field == field
    assert error.value == value
    assert isinstance(error.rule, str)
    assert error.rule
    text = str(error)
    assert field in text
    assert repr(value) in text
    assert isinstance(error, ValueError)


@pytest.mark.parametrize("text", ["1E1000000", "-1E+999999", "1.E1000000"])
def test_an_exponent_past_decimals_own_range_is_out_of_range_not_a_crash(text: str) -> None:
    """abs() of such a Decimal overflows Python's default context; the user must get the
    column's range error, not decimal.Overflow."""
    with pytest.raises(AmountOutOfRange):
        to_decimal(text, "price")
