"""Amounts past 64-bit integers: meme-coin volumes in the trillions and whale balances are
stored and read back exactly on both engines, and SQL over them gives what docs/schema.md
says."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from targets import target_of
from tradedb.cli.app import app
from tradedb.errors import AmountOutOfRange, ValidationError
from tradedb.services.ledger.ledger import Ledger
from tradedb.services.marketdata.candles import exact_rows, get_candles
from tradedb.services.marketdata.quality import list_data
from tradedb.services.marketdata.reading import latest_ticker
from tradedb.services.marketdata.resample import resample
from tradedb.store import Store

HOUR = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
SHIB = "SHIB/USDT"
# A SHIB hour on Binance: 5.1 trillion coins, past int64's 92,233,720,368.54775807.
TRILLIONS = Decimal("5123456789012.5")
# Past DECIMAL(20,8) too (PEPE-sized 24h volumes and more): DECIMAL(38,8) holds it.
HUGE = Decimal("420690000000000000.12345678")


def hour_rows(count: int, volume: Decimal = TRILLIONS) -> list[list[Any]]:
    return [
        [T0 + i * HOUR, "0.00000812", "0.00000830", "0.00000801", "0.00000820", volume + i]
        for i in range(count)
    ]


def as_decimals(rows: list[list[Any]]) -> list[tuple[Any, ...]]:
    return [(row[0], *(Decimal(str(v)) for v in row[1:])) for row in rows]


@pytest.mark.parametrize("count", [3, 300], ids=["row checks", "column checks"])
def test_meme_coin_candles_round_trip_exactly(store: Store, count: int) -> None:
    rows = hour_rows(count)
    rows[1][5] = HUGE

    written = store.write_candles(rows, exchange="binance", symbol=SHIB, timeframe="1h")

    assert written.inserted == count
    assert exact_rows(store, "binance", SHIB, "1h") == as_decimals(rows)
    frame = get_candles(store, "binance", SHIB, "1h", output="arrow", exact=True)
    assert frame.column("volume").to_pylist() == [Decimal(str(row[5])) for row in rows]
    floats = get_candles(store, "binance", SHIB, "1h", output="arrow")
    assert floats.column("volume").to_pylist()[1] == float(HUGE)
    # Writing the same candles again changes nothing: the stored text compares equal.
    again = store.write_candles(rows, exchange="binance", symbol=SHIB, timeframe="1h")
    assert (again.inserted, again.updated) == (0, 0)


def test_resample_list_data_and_the_cli_read_them_exactly(store: Store) -> None:
    rows = hour_rows(48)
    store.write_candles(rows, exchange="binance", symbol=SHIB, timeframe="1h")

    resample(store, exchange="binance", symbol=SHIB, source="1h", targets=["1d"])

    days = exact_rows(store, "binance", SHIB, "1d")
    assert sum(day[5] for day in days) == sum((Decimal(str(r[5])) for r in rows), Decimal(0))
    assert {(s.coverage.timeframe, s.coverage.candles) for s in list_data(store)} >= {("1h", 48)}
    result = CliRunner().invoke(
        app,
        [
            *("candles", "--exchange", "binance", "--symbol", SHIB, "--timeframe", "1h"),
            *("--db", target_of(store), "--json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert [c["volume"] for c in json.loads(result.stdout)][:2] == [
        "5123456789012.50000000",
        "5123456789013.50000000",
    ]


def test_tickers_with_trillions_of_volume_are_stored_exactly(store: Store) -> None:
    ticker = {"symbol": SHIB, "last_price": "0.0000082", "volume_24h": HUGE, "timestamp": T0}
    store.write_tickers([ticker], exchange="binance")
    store.tickers.insert(
        {**ticker, "timestamp": T0 + 1, "volume_24h": TRILLIONS, "exchange": "binance"}
    )

    assert [t.volume_24h for t in store.tickers.list().items] == [HUGE, TRILLIONS]
    assert latest_ticker(store, symbol=SHIB).volume_24h == TRILLIONS


def test_a_whale_balance_and_its_trades_are_exact_and_the_audit_holds(store: Store) -> None:
    ledger = Ledger(store)
    ledger.deposit(exchange="binance", asset="SHIB", amount="50000000000.12345678", timestamp=T0)
    ledger.deposit(exchange="binance", asset="USDT", amount="5000000", timestamp=T0)
    ledger.place_order(
        exchange="binance",
        order_id="whale-1",
        symbol=SHIB,
        side="buy",
        order_type="limit",
        amount="400000000000",
        price="0.00000810",
        timestamp=T0 + 1,
    )
    ledger.record_fill(
        exchange="binance",
        order_id="whale-1",
        exchange_trade_id="t-1",
        amount="400000000000",
        price="0.00000810",
        fee="0",
        fee_currency="USDT",
        timestamp=T0 + 2,
    )

    assert ledger.balance("binance", "SHIB").available == Decimal("450000000000.12345678")
    assert ledger.balance("binance", "USDT").available == Decimal("1760000")
    [row] = [w for w in store.wallets.list().items if w.asset == "SHIB"]
    assert row.total_balance == Decimal("450000000000.12345678")
    assert ledger.audit() == []


def test_past_decimal_38_8_a_volume_is_refused_naming_it_and_nothing_is_written(
    store: Store,
) -> None:
    rows = hour_rows(2, Decimal("1" + "0" * 30))
    with pytest.raises(AmountOutOfRange) as caught:
        store.write_candles(rows, exchange="binance", symbol=SHIB, timeframe="1h")
    assert "volume" in caught.value.field
    with pytest.raises(ValidationError):
        store.write_candles(
            hour_rows(1, Decimal("1.123456789")), exchange="binance", symbol=SHIB, timeframe="1h"
        )
    assert store.market.coverage() == []


# --- what SQL gives on these columns -------------------------------------------------------


@pytest.mark.sqlite_only
def test_sqlite_sorts_overflow_values_after_the_rest_and_sums_them_as_floats(
    store: Store,
) -> None:
    volumes = [HUGE, Decimal("1"), TRILLIONS, Decimal("92233720368.54775807")]
    rows = [[T0 + i * HOUR, "1", "1", "1", "1", v] for i, v in enumerate(volumes)]
    store.write_candles(rows, exchange="binance", symbol=SHIB, timeframe="1h")
    conn = store.db.connection

    ordered = [
        v
        for (v,) in conn.execute(
            "SELECT r.volume_exact FROM market_data m JOIN market_data_readable r ON r.id = m.id "
            "ORDER BY m.volume"
        )
    ]
    by_column = [v for (v,) in conn.execute("SELECT volume FROM market_data ORDER BY volume")]
    kinds = [t for (t,) in conn.execute("SELECT typeof(volume) FROM market_data ORDER BY volume")]
    (total,) = conn.execute("SELECT sum(volume) FROM market_data").fetchone()

    # Positive amounts sort as numbers: integers first, then the overflow text, which is
    # zero-padded to one width.
    assert [Decimal(v) for v in ordered] == sorted(volumes)
    assert kinds == ["integer", "integer", "text", "text"]
    assert by_column[:2] == [100_000_000, 9_223_372_036_854_775_807]
    # SUM turns the text into floats: near, not exact; tradedb's own sums are exact.
    assert isinstance(total, float)
    assert total == pytest.approx(float(sum(volumes) * 10**8))


@pytest.mark.postgresql_only
def test_postgresql_sums_and_sorts_them_exactly(store: Store) -> None:
    volumes = [HUGE, Decimal("1"), TRILLIONS]
    rows = [[T0 + i * HOUR, "1", "1", "1", "1", v] for i, v in enumerate(volumes)]
    store.write_candles(rows, exchange="binance", symbol=SHIB, timeframe="1h")
    conn = store.db.connection

    (total,) = conn.execute("SELECT sum(volume) FROM market_data").fetchone()
    ordered = [v for (v,) in conn.execute("SELECT volume FROM market_data ORDER BY volume")]

    assert total == sum(volumes)
    assert ordered == sorted(volumes)


@pytest.mark.sqlite_only
def test_ad_hoc_sql_cannot_store_a_float_or_a_malformed_text(store: Store) -> None:
    import sqlite3

    conn = store.db.connection
    insert = (
        "INSERT INTO market_data (symbol, timestamp, open_price, high_price, low_price, "
        "close_price, volume, timeframe, exchange) VALUES ('X/Y', ?, 1, 1, 1, 1, ?, '1h', 'e')"
    )
    for bad in [1.5, "123", "1" * 39, "x" * 38, str(5).zfill(38)]:
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(insert, (T0, bad))
    assert store.market.coverage() == []


@pytest.mark.parametrize(
    ("table", "column"), [("wallets", "available_balance"), ("wallets", "total_balance")]
)
def test_sql_over_ledger_balances_past_int64(store: Store, table: str, column: str) -> None:
    ledger = Ledger(store)
    balances = {"SHIB": "500000000000", "PEPE": "92233720368.54775808", "BTC": "2"}
    for asset, amount in balances.items():
        ledger.deposit(exchange="binance", asset=asset, amount=amount, timestamp=T0)
    conn = store.db.connection

    ordered = [
        v
        for (v,) in conn.execute(
            f"SELECT r.{column}_exact FROM {table} t JOIN {table}_readable r ON r.id = t.id "
            f"ORDER BY t.{column}"
        )
    ]
    (total,) = conn.execute(f"SELECT sum({column}) FROM {table}").fetchone()

    exact = sorted(Decimal(v) for v in balances.values())
    assert [Decimal(v) for v in ordered] == exact
    if store.db.engine == "postgresql":
        assert total == sum(exact)
    else:
        assert isinstance(total, float)
        assert total == pytest.approx(float(sum(exact) * 10**8))
    assert ledger.audit() == []
