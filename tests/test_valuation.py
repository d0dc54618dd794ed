"""Valuation: an asset's USD price at a time, from stored tickers and candles, through an
intermediate asset or a reference price, never invented."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyarrow import feather

from conftest import DATA
from tradedb.errors import Unvaluable, ValidationError
from tradedb.services.analytics.references import set_reference_price
from tradedb.services.analytics.valuation import (
    Valuer,
    parse_max_age,
    parse_reference_prices,
)
from tradedb.services.marketdata.importing import import_path
from tradedb.store import Store

HOUR = 3_600_000
DAY = 24 * HOUR


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


T = ms("2024-03-01T12:00:00")


def candle(
    store: Store,
    symbol: str,
    start: int,
    close: str,
    *,
    timeframe: str = "1h",
    exchange: str = "kraken",
) -> None:
    store.write_candles(
        [[start, close, close, close, close, "1"]],
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,  # type: ignore[arg-type]
    )


def ticker(store: Store, symbol: str, at: int, last: str, *, exchange: str = "kraken") -> None:
    store.write_tickers(
        [{"symbol": symbol, "last_price": last, "timestamp": at}], exchange=exchange
    )


def eighths(value: Decimal) -> Decimal:
    return value.quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN)


# --- direct and inverse markets ------------------------------------------------------------


def test_direct_pair_uses_the_close_of_the_latest_candle_closed_by_t(store: Store) -> None:
    candle(store, "ETH/USD", T - 2 * HOUR, "3000")
    candle(store, "ETH/USD", T - HOUR, "3100")  # closes exactly at T: usable
    candle(store, "ETH/USD", T, "9999")  # still open at T: its close is the future
    valuation = Valuer(store).price_usd("ETH", T)
    assert valuation.price == Decimal("3100")
    assert valuation.path == ("ETH/USD",)
    assert [(q.exchange, q.timestamp, q.source) for q in valuation.quotes] == [
        ("kraken", T, "candle 1h")
    ]


def test_the_fresher_of_ticker_and_candle_wins(store: Store) -> None:
    candle(store, "BTC/USDT", T - 2 * HOUR, "60000")  # closed at T - 1h
    ticker(store, "BTC/USDT", T - 30 * 60_000, "61000")
    assert Valuer(store).price_usd("BTC", T).price == Decimal("61000")
    candle(store, "BTC/USDT", T - HOUR, "62000")  # closed at T: newer than the ticker
    assert Valuer(store).price_usd("BTC", T).price == Decimal("62000")


def test_inverse_pair_is_one_over_its_price_quantized_half_even(store: Store) -> None:
    ticker(store, "USDT/TRY", T - 60_000, "32")
    ticker(store, "USD/JPY", T - 60_000, "150")
    assert Valuer(store).price_usd("TRY", T).price == Decimal("0.03125000")
    valuation = Valuer(store).price_usd("JPY", T)
    # 1/150 = 0.0066666...: half-even at the 8th decimal
    assert valuation.price == Decimal("0.00666667")
    assert valuation.path == ("USD/JPY (inverse)",)


def test_usd_stablecoins_count_as_usd_unless_configured_otherwise(store: Store) -> None:
    assert Valuer(store).price_usd("USDT", T).price == Decimal(1)
    with pytest.raises(Unvaluable):
        Valuer(store, usd_assets=("USD",)).price_usd("USDT", T)
    ticker(store, "USDT/USD", T - 60_000, "0.9990")
    strict = Valuer(store, usd_assets=("USD",))
    assert strict.price_usd("USDT", T).price == Decimal("0.999")
    ticker(store, "SOL/USDT", T - 60_000, "100")
    # SOL/USDT is then a route through USDT, not a USD price
    strict = Valuer(store, usd_assets=("USD",))
    assert strict.price_usd("SOL", T).price == Decimal("99.9")
    assert strict.price_usd("SOL", T).path == ("SOL/USDT", "USDT/USD")


# --- through an intermediate asset -----------------------------------------------------------


@pytest.fixture(scope="module")
def eth_btc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Binance's real ETH/BTC 5m candles of January 2018 in a database of their own."""
    path = tmp_path_factory.mktemp("eth_btc") / "tradedb.sqlite"
    with Store.open(path) as store:
        import_path(store, DATA / "ETH_BTC-5m.feather", exchange="binance")
    return path


def real_close(at: int) -> Decimal:
    """The close of the real 5m candle that closed at `at`, read from the file itself."""
    table = feather.read_table(DATA / "ETH_BTC-5m.feather").to_pylist()
    start = datetime.fromtimestamp((at - 300_000) / 1000, UTC)
    (row,) = [row for row in table if row["date"] == start]
    return eighths(Decimal(repr(row["close"])))


def test_eth_btc_is_valued_through_btc_usdt(eth_btc: Path, tmp_path: Path) -> None:
    at = ms("2018-01-15T00:00:00")
    copy = Path(shutil.copy(eth_btc, tmp_path / "copy.sqlite"))
    with Store.open(copy) as store:
        ticker(store, "BTC/USDT", at - 10 * 60_000, "13712.5", exchange="binance")
        valuation = Valuer(store).price_usd("ETH", at)
    assert valuation.path == ("ETH/BTC", "BTC/USDT")
    assert valuation.quotes[0].timestamp == at
    assert valuation.quotes[1].timestamp == at - 10 * 60_000
    assert valuation.price == eighths(real_close(at) * Decimal("13712.5"))


def test_reference_price_values_btc_and_eth_through_it(eth_btc: Path) -> None:
    at = ms("2018-01-20T12:00:00")
    with Store.open(eth_btc) as store:
        valuer = Valuer(store, {"BTC": Decimal("13500")})
        eth = valuer.price_usd("ETH", at)
        btc = valuer.price_usd("BTC", at)
    assert eth.path == ("ETH/BTC", "BTC (reference)")
    assert eth.price == eighths(real_close(at) * 13500)
    assert btc.path == ("BTC (reference)",)
    assert btc.price == Decimal("13500")


def test_stored_reference_price_is_read_and_the_given_one_wins(store: Store) -> None:
    set_reference_price(store, "BTC", "13500", source="test")
    assert Valuer(store).price_usd("BTC", T).price == Decimal("13500")
    assert Valuer(store, {"BTC": "14000"}).price_usd("BTC", T).price == Decimal("14000")
    assert Valuer(store, configured_references=False).reference_price("BTC", T) is None


def test_market_data_comes_before_a_reference_price(store: Store) -> None:
    ticker(store, "BTC/USD", T - 60_000, "60000")
    valuation = Valuer(store, {"BTC": "13500"}).price_usd("BTC", T)
    assert valuation.price == Decimal("60000")
    assert valuation.path == ("BTC/USD",)


def test_the_product_of_a_route_is_quantized_once(store: Store) -> None:
    # XYZ/ABC = 3 and ABC = 1/3 USD: exactly 1 USD. Quantizing each leg would give
    # 3 x 0.33333333 = 0.99999999.
    ticker(store, "XYZ/ABC", T - 60_000, "3")
    ticker(store, "USD/ABC", T - 60_000, "3")
    valuation = Valuer(store).price_usd("XYZ", T)
    assert valuation.path == ("XYZ/ABC", "USD/ABC (inverse)")
    assert valuation.price == Decimal("1.00000000")


# --- staleness and failure ---------------------------------------------------------------------


def test_a_quote_older_than_the_limit_is_not_used(store: Store) -> None:
    ticker(store, "ETH/USD", T - DAY - 1, "3000")
    with pytest.raises(Unvaluable):
        Valuer(store).price_usd("ETH", T)
    assert Valuer(store, max_age_ms=2 * DAY).price_usd("ETH", T).price == Decimal("3000")
    ticker(store, "ETH/USD", T - DAY, "3050")  # exactly one day old: still used
    assert Valuer(store).price_usd("ETH", T).price == Decimal("3050")


def test_unvaluable_names_the_asset_the_time_and_what_was_tried(store: Store) -> None:
    ticker(store, "DOGE/BTC", T - 60_000, "0.0000025")
    with pytest.raises(Unvaluable) as caught:
        Valuer(store).price_usd("DOGE", T)
    error = caught.value
    assert error.asset == "DOGE"
    assert error.at_ms == T
    message = str(error)
    assert "DOGE" in message
    assert "2024-03-01 12:00:00 UTC" in message
    assert "via BTC" in message
    # The library's own argument; the command line names its option (tests/test_metrics.py).
    assert "`reference_prices={'DOGE': PRICE}`" in message
    assert "via BTC" in error.tried


def test_exchange_given_prefers_its_own_quotes(store: Store) -> None:
    ticker(store, "BTC/USD", T - 60_000, "60000", exchange="kraken")
    ticker(store, "BTC/USD", T - 120_000, "60100", exchange="bitstamp")
    assert Valuer(store).price_usd("BTC", T).price == Decimal("60000")
    preferred = Valuer(store).price_usd("BTC", T, exchange="bitstamp")
    assert preferred.price == Decimal("60100")
    assert preferred.quotes[0].exchange == "bitstamp"
    # an exchange without a quote of its own falls back to any exchange's
    assert Valuer(store).price_usd("BTC", T, exchange="binance").price == Decimal("60000")


@pytest.mark.fault("bad input")
def test_bad_reference_prices_and_ages_are_refused() -> None:
    assert parse_reference_prices(["BTC=13500", "ETH = 1000.5"]) == {
        "BTC": Decimal("13500"),
        "ETH": Decimal("1000.5"),
    }
    for bad in ("BTC", "BTC=0", "BTC=-1", "btc=1", "BTC=1e400"):
        with pytest.raises(ValidationError):
            parse_reference_prices([bad])
    assert parse_max_age("6h") == 6 * HOUR
    with pytest.raises(ValidationError):
        parse_max_age("0d")


# --- the rounding rule, for any prices ------------------------------------------------------

PRICES = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("100000"), places=8)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(PRICES, PRICES, st.booleans())
def test_a_route_is_the_exact_product_rounded_half_even_once(
    shared_store: Store, first: Decimal, second: Decimal, inverse: bool
) -> None:
    shared_store.db.connection.execute("DELETE FROM tickers")
    ticker(shared_store, "AAA/BBB", T - 60_000, str(first))
    ticker(shared_store, "USDT/BBB" if inverse else "BBB/USDT", T - 60_000, str(second))
    with localcontext(prec=100):
        exact = first / second if inverse else first * second
    assert Valuer(shared_store).price_usd("AAA", T).price == eighths(exact)
