"""The spec's usd_value columns of wallets and balance_history, filled after a sync from
stored tickers and candles: exact values, NULL where nothing gives a price, each history
row at its own time, and nothing changed by running it again."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

import tradedb
from tradedb.errors import ValidationError
from tradedb.services.analytics.snapshots import UnvaluedHolding
from tradedb.services.live.usd_values import fill_usd_values, last_balance_history_id
from tradedb.store import Store

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
T = int(datetime(2024, 3, 1, 12, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def db(store: Store) -> tradedb.TradeDB:
    """The public object over the test's store (on each engine), so that both see one
    database through one connection pool."""
    return tradedb.TradeDB(store)


def ticker(db: tradedb.TradeDB, symbol: str, at: int, last: str, exchange: str = "kraken") -> None:
    db.market.write_tickers(
        [{"symbol": symbol, "last_price": last, "timestamp": at}], exchange=exchange
    )


def hourly_candle(db: tradedb.TradeDB, symbol: str, start: int, close: str) -> None:
    db.market.write_candles(
        [[start, close, close, close, close, "1"]], exchange="kraken", symbol=symbol, timeframe="1h"
    )


def usd_values(db: tradedb.TradeDB, exchange: str = "kraken") -> dict[str, Decimal | None]:
    return {wallet.asset: wallet.usd_value for wallet in db.ledger.wallets(exchange=exchange)}


def history(db: tradedb.TradeDB) -> list[tuple[str, str, Decimal, int, Decimal | None]]:
    rows = db.tables.balance_history.list({"exchange": "kraken"}, limit=1000).items
    return [
        (row.asset, row.balance_type, row.balance, row.timestamp, row.usd_value)
        for row in sorted(rows, key=lambda row: row.id)
    ]


def test_wallets_are_valued_at_their_price_and_left_null_without_one(
    db: tradedb.TradeDB, store: Store
) -> None:
    for asset, amount in (("BTC", "0.3"), ("USDT", "1000.5"), ("XYZ", "10")):
        db.ledger.deposit(exchange="kraken", asset=asset, amount=amount, timestamp=T - HOUR)
    db.ledger.deposit(exchange="binance", asset="BTC", amount="1", timestamp=T - HOUR)
    ticker(db, "BTC/USDT", T - 10 * MINUTE, "61000.12345679")

    filled = fill_usd_values(store, "kraken", history_after_id=0, at_ms=T)

    # 0.3 x 61000.12345679 = 18300.037037037, half-even at the 8th decimal
    assert filled.wallets == {"BTC": Decimal("18300.03703704"), "USDT": Decimal("1000.5")}
    assert filled.total_usd == Decimal("19300.53703704")
    assert len(filled.unvalued) == 1
    (xyz,) = filled.unvalued
    assert (xyz.exchange, xyz.asset, xyz.amount) == ("kraken", "XYZ", Decimal(10))
    assert xyz.reason.startswith("has no USD price at 2024-03-01 12:00:00 UTC")
    assert not filled.complete
    assert usd_values(db) == {
        "BTC": Decimal("18300.03703704"),
        "USDT": Decimal("1000.5"),
        "XYZ": None,
    }
    # Another exchange's wallets are not this account's.
    assert usd_values(db, "binance") == {"BTC": None}


def test_history_after_the_noted_id_is_valued_at_each_rows_own_time(
    db: tradedb.TradeDB, store: Store
) -> None:
    ticker(db, "BTC/USD", T - 3 * HOUR - MINUTE, "40000")
    db.ledger.deposit(exchange="kraken", asset="BTC", amount="1", timestamp=T - 3 * HOUR)
    noted = last_balance_history_id(store)
    assert noted > 0

    # What a sync records: a deposit, an order locking funds, its cancel.
    ticker(db, "BTC/USDT", T - 2 * HOUR - MINUTE, "50000.5")
    db.ledger.deposit(exchange="kraken", asset="BTC", amount="0.5", timestamp=T - 2 * HOUR)
    hourly_candle(db, "BTC/USDT", T - 2 * HOUR, "60000")  # its close is known at T - 1h
    db.ledger.place_order(
        exchange="kraken",
        order_id="o-1",
        symbol="BTC/USDT",
        side="sell",
        order_type="limit",
        amount="0.4",
        price="70000",
        timestamp=T - HOUR,
    )
    db.ledger.cancel_order("kraken", "o-1", timestamp=T - 30 * MINUTE)

    filled = fill_usd_values(store, "kraken", history_after_id=noted, at_ms=T)

    assert (filled.history_valued, filled.history_unvalued) == (6, 0)
    assert filled.wallets == {"BTC": Decimal("90000")}  # 1.5 at the candle's 60000
    assert history(db) == [
        # Before the noted id: untouched, though a price for its time is stored.
        ("BTC", "available", Decimal(1), T - 3 * HOUR, None),
        ("BTC", "total", Decimal(1), T - 3 * HOUR, None),
        # At the ticker of a minute before.
        ("BTC", "available", Decimal("1.5"), T - 2 * HOUR, Decimal("75000.75")),
        ("BTC", "total", Decimal("1.5"), T - 2 * HOUR, Decimal("75000.75")),
        # At the close of the candle that closed at that moment.
        ("BTC", "available", Decimal("1.1"), T - HOUR, Decimal("66000")),
        ("BTC", "locked", Decimal("0.4"), T - HOUR, Decimal("24000")),
        ("BTC", "available", Decimal("1.5"), T - 30 * MINUTE, Decimal("90000")),
        ("BTC", "locked", Decimal(0), T - 30 * MINUTE, Decimal(0)),
    ]


def test_running_again_changes_nothing_and_fills_what_a_new_price_allows(
    db: tradedb.TradeDB, store: Store
) -> None:
    noted = last_balance_history_id(store)
    assert noted == 0
    ticker(db, "ETH/USD", T - 2 * HOUR, "3000")
    db.ledger.deposit(exchange="kraken", asset="ETH", amount="2", timestamp=T - HOUR)
    db.ledger.deposit(exchange="kraken", asset="XYZ", amount="10", timestamp=T - HOUR)

    first = fill_usd_values(store, "kraken", history_after_id=noted, at_ms=T)
    assert (first.history_valued, first.history_unvalued) == (2, 2)
    wallets = db.tables.wallets.list(limit=100).items
    rows = history(db)
    # updated_at counts seconds: a rewrite of the same values would show after one.
    time.sleep(1.1)

    again = fill_usd_values(store, "kraken", history_after_id=noted, at_ms=T)
    assert again.wallets == first.wallets == {"ETH": Decimal("6000")}
    assert again.unvalued == first.unvalued
    assert (again.history_valued, again.history_unvalued) == (0, 2)
    assert db.tables.wallets.list(limit=100).items == wallets
    assert history(db) == rows

    # A price for XYZ stored later values what was left NULL, and only that.
    ticker(db, "XYZ/USD", T - HOUR - MINUTE, "2.5")
    later = fill_usd_values(store, "kraken", history_after_id=noted, at_ms=T)
    assert later.complete
    assert later.wallets == {"ETH": Decimal("6000"), "XYZ": Decimal("25")}
    assert (later.history_valued, later.history_unvalued) == (2, 0)
    assert [(asset, usd) for asset, _, _, _, usd in history(db)] == [
        ("ETH", Decimal("6000")),
        ("ETH", Decimal("6000")),
        ("XYZ", Decimal("25")),
        ("XYZ", Decimal("25")),
    ]


def test_a_wallet_whose_price_went_stale_is_cleared_to_null(
    db: tradedb.TradeDB, store: Store
) -> None:
    db.ledger.deposit(exchange="kraken", asset="BTC", amount="2", timestamp=T - HOUR)
    ticker(db, "BTC/USD", T - MINUTE, "60000")
    assert fill_usd_values(store, "kraken", history_after_id=0, at_ms=T).wallets == {
        "BTC": Decimal("120000")
    }

    # Two days on, the only quote is older than the valuation's one-day limit.
    stale = fill_usd_values(store, "kraken", history_after_id=0, at_ms=T + 2 * DAY)
    assert stale.wallets == {}
    assert [(u.asset, u.amount) for u in stale.unvalued] == [("BTC", Decimal(2))]
    assert usd_values(db) == {"BTC": None}


def test_a_value_beyond_the_column_is_left_null_and_the_rest_still_filled(
    db: tradedb.TradeDB, store: Store
) -> None:
    db.ledger.deposit(exchange="kraken", asset="BTC", amount="20000", timestamp=T - HOUR)
    db.ledger.deposit(exchange="kraken", asset="USD", amount="5", timestamp=T - HOUR)
    ticker(db, "BTC/USD", T - MINUTE, "100000000")  # 2e12 USD: beyond both engines' columns

    filled = fill_usd_values(store, "kraken", history_after_id=0, at_ms=T)

    assert filled.wallets == {"USD": Decimal(5)}
    assert filled.unvalued == [
        UnvaluedHolding("kraken", "BTC", Decimal(20000), filled.unvalued[0].reason)
    ]
    assert "beyond" in filled.unvalued[0].reason
    assert usd_values(db) == {"BTC": None, "USD": Decimal(5)}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"history_after_id": -1, "at_ms": T}, "history_after_id"),
        ({"history_after_id": True, "at_ms": T}, "history_after_id"),
        ({"history_after_id": 0, "at_ms": T // 1000}, "at_ms"),
    ],
)
def test_bad_arguments_are_refused_naming_them(
    store: Store, options: dict[str, int], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        fill_usd_values(store, "kraken", **options)  # type: ignore[arg-type]
    assert caught.value.field == field
