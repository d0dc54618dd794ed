"""Store repositories: insert, get, list (filters, time ranges, pages), upsert, update."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import sha256
from records import (
    CANDLE_TS,
    TS,
    balance,
    candle,
    config,
    log,
    order,
    performance,
    position,
    snapshot,
    ticker,
    trade,
    wallet,
)
from tradedb.errors import DuplicateRecord, TradeDBError, UnknownName, ValidationError
from tradedb.store import Page, Repository, Store

# The config and wallet samples also fill optional columns, so that more than defaults
# are stored and read back.
SAMPLES: dict[str, tuple[Callable[..., dict[str, Any]], str]] = {
    "trades": (trade, "trades"),
    "crypto_orders": (order, "orders"),
    "positions": (position, "positions"),
    "market_data": (candle, "candles"),
    "tickers": (ticker, "tickers"),
    "performance_metrics": (performance, "performance"),
    "portfolio_snapshots": (snapshot, "snapshots"),
    "bot_config": (partial(config, config_type="number"), "config"),
    "bot_logs": (log, "logs"),
    "wallets": (partial(wallet, available_balance="1", locked_balance="0.5"), "wallets"),
    "balance_history": (balance, "balance_history"),
}


def raw_count(store: Store, table: str) -> int:
    return int(store.db.connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


# --- insert and get ----------------------------------------------------------------------


@pytest.mark.parametrize("table", list(SAMPLES))
def test_insert_returns_the_stored_record_and_get_returns_it_again(
    store: Store, table: str
) -> None:
    make, attribute = SAMPLES[table]
    repo = store.repo(table)
    assert getattr(store, attribute) is repo
    before = time.time()
    stored = repo.insert(make())
    after = time.time()

    assert isinstance(stored.id, int)
    assert stored.id >= 1
    assert int(before) - 1 <= stored.created_at <= after + 1
    if "updated_at" in type(stored).model_fields:
        assert stored.updated_at == stored.created_at
    for name, value in repo.validate(make()).model_dump().items():
        assert getattr(stored, name) == value, name

    assert repo.get(stored.id) == stored
    assert repo.get(stored.id + 1) is None
    assert repo.get(-1) is None
    assert repo.count() == 1
    assert repo.list().items == [stored]


def test_insert_fills_the_spec_defaults(store: Store) -> None:
    stored = store.trades.insert(trade())
    assert stored.fee == Decimal(0)
    assert stored.status == "filled"
    assert stored.profit_loss is None
    stored_order = store.orders.insert(order())
    assert stored_order.status == "pending"
    assert stored_order.filled_amount == Decimal(0)
    stored_wallet = store.wallets.insert(wallet(available_balance="1", locked_balance="0.5"))
    assert stored_wallet.total_balance == Decimal("1.5")


def test_ids_are_never_reused(store: Store) -> None:
    first = store.trades.insert(trade())
    with store.db.transaction() as conn:
        conn.execute("DELETE FROM trades WHERE id = ?", (first.id,))
    second = store.trades.insert(trade())
    assert second.id > first.id


# --- list filters ------------------------------------------------------------------------


@pytest.fixture
def mixed_trades(store: Store) -> list[Any]:
    rows = [
        trade(exchange="kraken", symbol="BTC/USDT", strategy="grid", status="filled"),
        trade(exchange="binance", symbol="BTC/USDT", strategy="grid", status="partial"),
        trade(exchange="kraken", symbol="ETH/USDT", strategy=None, status="filled"),
        trade(exchange="kraken", symbol="ETH/USDT", strategy="dca", status="canceled"),
        trade(exchange="binance", symbol="SOL/USDT", strategy=None, status="filled"),
    ]
    return [store.trades.insert(row) for row in rows]


def ids(page: Page[Any]) -> list[int]:
    return [row.id for row in page.items]


def test_list_filters_on_equality(store: Store, mixed_trades: list[Any]) -> None:
    t = mixed_trades
    assert ids(store.trades.list({"exchange": "kraken"})) == [t[0].id, t[2].id, t[3].id]
    assert ids(store.trades.list({"symbol": "ETH/USDT"})) == [t[2].id, t[3].id]
    assert ids(store.trades.list({"strategy": "grid"})) == [t[0].id, t[1].id]
    assert ids(store.trades.list({"status": "filled"})) == [t[0].id, t[2].id, t[4].id]
    assert ids(store.trades.list({"exchange": "kraken", "status": "filled"})) == [
        t[0].id,
        t[2].id,
    ]
    assert store.trades.list({"exchange": "okx"}).items == []
    assert store.trades.count({"exchange": "binance"}) == 2


def test_list_value_means_in_and_none_means_is_null(store: Store, mixed_trades: list[Any]) -> None:
    t = mixed_trades
    assert ids(store.trades.list({"status": ["partial", "canceled"]})) == [t[1].id, t[3].id]
    assert ids(store.trades.list({"symbol": ("SOL/USDT", "ETH/USDT")})) == [
        t[2].id,
        t[3].id,
        t[4].id,
    ]
    assert ids(store.trades.list({"strategy": None})) == [t[2].id, t[4].id]
    assert store.trades.list({"status": []}).items == []
    assert store.trades.count({"strategy": None}) == 2


def test_list_filters_amounts_and_times_by_value(store: Store) -> None:
    small = store.trades.insert(trade(amount="0.1", total_value="4000"))
    store.trades.insert(trade(amount="0.2", total_value="8000", timestamp=TS + 1))
    assert ids(store.trades.list({"amount": Decimal("0.1")})) == [small.id]
    assert ids(store.trades.list({"amount": "0.10000000"})) == [small.id]
    moment = datetime.fromtimestamp(TS / 1000, tz=UTC)
    assert ids(store.trades.list({"timestamp": moment})) == [small.id]


def test_filter_value_follows_its_field_rule(store: Store, mixed_trades: list[Any]) -> None:
    with pytest.raises(ValidationError) as info:
        store.trades.list({"side": "hold"})
    assert info.value.field == "side"
    assert info.value.value == "hold"
    with pytest.raises(ValidationError) as in_list:
        store.trades.list({"status": ["filled", "open"]})
    assert in_list.value.field == "status"
    with pytest.raises(ValidationError):
        store.trades.list({"timestamp": 1_700_000_000})
    with pytest.raises(ValidationError):
        store.trades.count({"amount": "0.123456789"})


@pytest.mark.fault("bad input")
def test_unknown_names_are_refused_naming_them(store: Store) -> None:
    with pytest.raises(UnknownName) as table:
        store.repo("nope")
    assert "nope" in str(table.value)
    assert table.value.value == "nope"
    with pytest.raises(UnknownName) as column:
        store.trades.list({"colour": 1})
    assert "colour" in str(column.value)
    assert column.value.field == "colour"
    with pytest.raises(UnknownName):
        store.trades.count({"colour": 1})
    with pytest.raises(UnknownName):
        store.trades.list({"id; DROP TABLE trades": 1})
    assert raw_count(store, "trades") == 0


@pytest.mark.parametrize("limit", [0, -1, 10**9, True, 1.5, "10"])
@pytest.mark.fault("bad input")
def test_limit_out_of_range_is_refused(store: Store, limit: Any) -> None:
    with pytest.raises(ValidationError) as info:
        store.trades.list(limit=limit)
    assert info.value.field == "limit"


@pytest.mark.fault("bad input")
def test_bad_page_token_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError) as info:
        store.trades.list(after="garbage")
    assert info.value.field == "after"


# --- time ranges ------------------------------------------------------------------------


def test_time_range_on_trades_timestamp(store: Store) -> None:
    rows = {ts: store.trades.insert(trade(timestamp=ts)).id for ts in (TS, TS + 1, TS + 2, TS + 3)}
    assert ids(store.trades.list(since=TS + 1, until=TS + 3)) == [rows[TS + 1], rows[TS + 2]]
    assert ids(store.trades.list(since=TS + 3)) == [rows[TS + 3]]
    assert ids(store.trades.list(until=TS + 1)) == [rows[TS]]
    assert store.trades.list(since=TS + 2, until=TS + 2).items == []
    since = datetime.fromtimestamp((TS + 2) / 1000, tz=UTC)
    assert ids(store.trades.list(since=since)) == [rows[TS + 2], rows[TS + 3]]
    with pytest.raises(ValidationError):
        store.trades.list(since=1_700_000_000)
    with pytest.raises(ValidationError):
        store.trades.list(until=datetime(2024, 1, 1))


def test_time_range_on_positions_opened_at(store: Store) -> None:
    early = store.positions.insert(position(opened_at=TS, closed_at=TS + 5_000, status="closed"))
    late = store.positions.insert(position(opened_at=TS + 10_000))
    assert ids(store.positions.list(since=TS + 1)) == [late.id]
    assert ids(store.positions.list(until=TS + 10_000)) == [early.id]
    assert ids(store.positions.list(since=TS, until=TS + 10_001)) == [early.id, late.id]


def test_time_range_on_performance_dates(store: Store) -> None:
    days = {
        day: store.performance.insert(performance(date=day)).id
        for day in ("2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02")
    }
    page = store.performance.list(since="2024-01-31", until="2024-02-02")
    assert ids(page) == [days["2024-01-31"], days["2024-02-01"]]
    assert [row.date for row in page.items] == ["2024-01-31", "2024-02-01"]
    assert ids(store.performance.list(since="2024-02-02")) == [days["2024-02-02"]]


@pytest.mark.fault("bad input")
def test_bad_performance_date_bound_is_a_tradedb_error(store: Store) -> None:
    with pytest.raises(ValidationError):
        store.performance.list(since="2024-13-01")


# --- keyset pagination ------------------------------------------------------------------


def walk(repo: Repository[Any, Any], limit: int, **kwargs: Any) -> list[int]:
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        page = repo.list(after=after, limit=limit, **kwargs)
        assert len(page.items) <= limit
        seen += ids(page)
        pages += 1
        assert pages <= 1000
        if page.next_after is None:
            return seen
        assert len(page.items) == limit
        after = page.next_after


def test_pages_cover_every_row_once_in_time_then_id_order(store: Store) -> None:
    # Inserted out of time order, with ties on time.
    times = [TS + 5, TS, TS + 5, TS + 1, TS, TS + 5, TS + 3, TS, TS + 1, TS + 5]
    stored = [store.trades.insert(trade(timestamp=ts)) for ts in times]
    expected = [row.id for row in sorted(stored, key=lambda r: (r.timestamp, r.id))]
    for limit in (1, 2, 3, 4, 10, 11):
        assert walk(store.trades, limit) == expected
        assert walk(store.trades, limit, newest_first=True) == expected[::-1]
    assert ids(store.trades.list(limit=len(times))) == expected
    assert store.trades.list(limit=len(times)).next_after is None


def test_pages_combine_with_filters_and_ranges(store: Store) -> None:
    stored = [
        store.trades.insert(trade(timestamp=TS + i % 4, exchange=("kraken", "binance")[i % 2]))
        for i in range(12)
    ]
    expected = [
        r.id
        for r in sorted(stored, key=lambda r: (r.timestamp, r.id))
        if r.exchange == "kraken" and r.timestamp >= TS + 1
    ]
    assert walk(store.trades, 2, where={"exchange": "kraken"}, since=TS + 1) == expected


def test_pages_on_performance_dates_with_ties(store: Store) -> None:
    stored = []
    for day in ("2024-01-02", "2024-01-01", "2024-01-02", "2024-01-01"):
        strategy = f"s{len(stored)}"
        stored.append(store.performance.insert(performance(date=day, strategy=strategy)))
    expected = [r.id for r in sorted(stored, key=lambda r: (r.date, r.id))]
    assert walk(store.performance, 1) == expected
    assert walk(store.performance, 3, newest_first=True) == expected[::-1]


def test_pages_on_a_table_without_time_column_follow_ids(store: Store) -> None:
    stored = [store.config.insert(config(config_key=f"k{i}")) for i in range(5)]
    assert walk(store.config, 2) == [row.id for row in stored]


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=4), min_size=0, max_size=25),
    limit=st.integers(min_value=1, max_value=7),
    newest_first=st.booleans(),
)
def test_walking_pages_visits_every_row_once(
    shared_store: Store, offsets: list[int], limit: int, newest_first: bool
) -> None:
    with shared_store.db.transaction() as conn:
        conn.execute("DELETE FROM trades")
    shared_store.trades.insert_many(trade(timestamp=TS + offset) for offset in offsets)
    rows = shared_store.db.connection.execute("SELECT id, timestamp FROM trades").fetchall()
    expected = [row_id for row_id, _ in sorted(rows, key=lambda r: (r[1], r[0]))]
    if newest_first:
        expected.reverse()
    assert walk(shared_store.trades, limit, newest_first=newest_first) == expected


# --- upserts on the spec's UNIQUE keys -------------------------------------------------


def test_candle_upsert_updates_in_place(store: Store) -> None:
    first = store.candles.upsert(candle(close_price="105"))
    second = store.candles.upsert(candle(close_price="106", high_price="111"))
    assert second.id == first.id
    assert second.close_price == Decimal("106")
    assert store.candles.count() == 1
    fetched = store.candles.get(first.id)
    assert fetched is not None
    assert (fetched.close_price, fetched.high_price) == (Decimal("106"), Decimal("111"))
    # Any part of the key differing makes a new row.
    for other in (
        candle(symbol="ETH/USDT"),
        candle(timestamp=CANDLE_TS + 300_000),
        candle(timeframe="1h"),
        candle(exchange="binance"),
    ):
        assert store.candles.upsert(other).id != first.id
    assert store.candles.count() == 5
    with pytest.raises(DuplicateRecord):
        store.candles.insert(candle())
    assert store.candles.count() == 5


def test_ticker_upsert_on_symbol_exchange_timestamp(store: Store) -> None:
    first = store.tickers.upsert(ticker(last_price="100"))
    second = store.tickers.upsert(ticker(last_price="101"))
    assert second.id == first.id
    assert store.tickers.get(first.id).last_price == Decimal("101")  # type: ignore[union-attr]
    assert store.tickers.upsert(ticker(timestamp=TS + 1)).id != first.id
    assert store.tickers.count() == 2


def test_wallet_upsert_on_exchange_asset(store: Store) -> None:
    first = store.wallets.upsert(wallet(available_balance="1", locked_balance="0"))
    second = store.wallets.upsert(wallet(available_balance="2", locked_balance="0.25"))
    assert second.id == first.id
    assert second.total_balance == Decimal("2.25")
    assert store.wallets.count() == 1
    assert store.wallets.upsert(wallet(asset="ETH")).id != first.id
    assert store.wallets.upsert(wallet(exchange="binance")).id != first.id
    assert store.wallets.count() == 3


def test_config_upsert_on_config_key(store: Store) -> None:
    first = store.config.upsert(config(config_value="3"))
    second = store.config.upsert(config(config_value="5", description="raised"))
    assert second.id == first.id
    fetched = store.config.get(first.id)
    assert fetched is not None
    assert (fetched.config_value, fetched.description) == ("5", "raised")
    assert store.config.count() == 1


def test_portfolio_wide_performance_row_is_never_duplicated(store: Store) -> None:
    store.performance.insert(performance(total_portfolio_value="100"))
    with pytest.raises(DuplicateRecord):
        store.performance.insert(performance(total_portfolio_value="200"))
    assert store.performance.count() == 1
    assert store.performance.list().items[0].total_portfolio_value == Decimal("100")


def test_portfolio_wide_performance_upsert_keeps_one_row(store: Store) -> None:
    first = store.performance.upsert(performance(total_portfolio_value="100"))
    second = store.performance.upsert(performance(total_portfolio_value="200"))
    assert second.id == first.id
    assert store.performance.count({"strategy": None, "exchange": None}) == 1
    only = store.performance.list().items
    assert [row.total_portfolio_value for row in only] == [Decimal("200")]


def test_strategy_performance_rows_are_separate_and_upserted(store: Store) -> None:
    wide = store.performance.upsert(performance())
    grid = store.performance.upsert(performance(strategy="grid", total_portfolio_value="1"))
    grid_kraken = store.performance.upsert(
        performance(strategy="grid", exchange="kraken", total_portfolio_value="2")
    )
    assert len({wide.id, grid.id, grid_kraken.id}) == 3
    again = store.performance.upsert(performance(strategy="grid", total_portfolio_value="3"))
    assert again.id == grid.id
    assert again.total_portfolio_value == Decimal("3")
    assert store.performance.count() == 3
    with pytest.raises(DuplicateRecord):
        store.performance.insert(performance(strategy="grid", exchange="kraken"))
    assert store.performance.count() == 3
    other_day = store.performance.upsert(performance(date="2024-01-02"))
    assert other_day.id not in {wide.id, grid.id, grid_kraken.id}


def test_raw_sql_cannot_duplicate_the_portfolio_wide_row(store: Store) -> None:
    statement = (
        "INSERT INTO performance_metrics (date, total_portfolio_value) VALUES ('2024-01-01', 1)"
    )
    with store.db.transaction() as conn:
        conn.execute(statement)
    with pytest.raises(store.db.IntegrityError), store.db.transaction() as conn:
        conn.execute(statement)
    assert raw_count(store, "performance_metrics") == 1


def test_upsert_needs_a_unique_key(store: Store) -> None:
    with pytest.raises(UnknownName):
        store.trades.upsert(trade())
    assert store.trades.count() == 0


# --- update ------------------------------------------------------------------------------


def test_update_changes_the_row_and_returns_it(store: Store) -> None:
    stored = store.orders.insert(order())
    updated = store.orders.update(
        stored.id, {"status": "open", "filled_amount": "0.4", "remaining_amount": "0.6"}
    )
    assert updated.id == stored.id
    assert (updated.status, updated.filled_amount) == ("open", Decimal("0.4"))
    fetched = store.orders.get(stored.id)
    assert fetched is not None
    # updated_at is compared on its own in the updated_at tests below.
    assert fetched.model_dump(exclude={"updated_at"}) == updated.model_dump(exclude={"updated_at"})
    assert updated.order_id == stored.order_id
    assert updated.amount == stored.amount


def test_update_validates_the_merged_record(store: Store) -> None:
    stored = store.orders.insert(order(amount="1"))
    with pytest.raises(ValidationError) as info:
        store.orders.update(stored.id, {"filled_amount": "1.5"})
    assert info.value.field == "filled_amount"
    assert store.orders.get(stored.id) == stored
    with pytest.raises(ValidationError):
        store.orders.update(stored.id, {"price": None})  # a limit order needs a price
    with pytest.raises(ValidationError):
        store.orders.update(stored.id, {"status": "done"})
    assert store.orders.get(stored.id) == stored


@pytest.mark.fault("bad input")
def test_update_refuses_unknown_columns_and_missing_rows(store: Store) -> None:
    stored = store.orders.insert(order())
    with pytest.raises(UnknownName) as info:
        store.orders.update(stored.id, {"colour": "red"})
    assert "colour" in str(info.value)
    with pytest.raises(UnknownName):
        store.orders.update(stored.id, {"id": 99})
    with pytest.raises(UnknownName):
        store.orders.update(stored.id + 100, {"status": "open"})
    assert store.orders.get(stored.id) == stored


def test_update_keeps_wallet_total_exact(store: Store) -> None:
    stored = store.wallets.insert(wallet(available_balance="0.1", locked_balance="0.2"))
    updated = store.wallets.update(stored.id, {"locked_balance": "0.00000001"})
    assert updated.total_balance == Decimal("0.10000001")
    assert store.wallets.get(stored.id).total_balance == Decimal("0.10000001")  # type: ignore[union-attr]


def set_updated_at(store: Store, table: str, row_id: int, value: int) -> None:
    with store.db.transaction() as conn:
        conn.execute(f"UPDATE {table} SET updated_at = ? WHERE id = ?", (value, row_id))


def test_updated_at_is_maintained_by_update(store: Store) -> None:
    stored = store.orders.insert(order())
    set_updated_at(store, "crypto_orders", stored.id, 1)
    assert store.orders.get(stored.id).updated_at == 1  # type: ignore[union-attr]
    store.orders.update(stored.id, {"status": "open"})
    fetched = store.orders.get(stored.id)
    assert fetched is not None
    assert fetched.updated_at > 1
    assert abs(fetched.updated_at - time.time()) < 60


def test_updated_at_is_maintained_by_raw_sql(store: Store) -> None:
    stored = store.positions.insert(position())
    set_updated_at(store, "positions", stored.id, 1)
    with store.db.transaction() as conn:
        conn.execute("UPDATE positions SET status = 'closed' WHERE id = ?", (stored.id,))
    fetched = store.positions.get(stored.id)
    assert fetched is not None
    assert fetched.status == "closed"
    assert fetched.updated_at > 1


def test_updated_at_is_maintained_by_upsert(store: Store) -> None:
    stored = store.config.upsert(config(config_value="3"))
    set_updated_at(store, "bot_config", stored.id, 1)
    store.config.upsert(config(config_value="4"))
    assert store.config.get(stored.id).updated_at > 1  # type: ignore[union-attr]


def test_update_returns_the_updated_at_it_stored(store: Store) -> None:
    stored = store.orders.insert(order())
    set_updated_at(store, "crypto_orders", stored.id, 1)
    returned = store.orders.update(stored.id, {"status": "open"})
    assert returned == store.orders.get(stored.id)


def test_upsert_returns_the_updated_at_it_stored(store: Store) -> None:
    stored = store.config.upsert(config(config_value="3"))
    set_updated_at(store, "bot_config", stored.id, 1)
    returned = store.config.upsert(config(config_value="4"))
    assert returned == store.config.get(stored.id)


# --- insert_many is all or nothing -----------------------------------------------------


def test_insert_many_writes_every_record(store: Store) -> None:
    written = store.orders.insert_many(order(order_id=f"ord-{i}") for i in range(5))
    assert written == 5
    assert store.orders.count() == 5
    assert [row.order_id for row in store.orders.list().items] == [f"ord-{i}" for i in range(5)]


@pytest.mark.fault("bad input")
def test_insert_many_with_an_invalid_third_record_writes_nothing(store: Store) -> None:
    store.orders.insert(order(order_id="existing"))
    batch = [order(order_id="a"), order(order_id="b"), order(order_id="c", side="hold")]
    batch.append(order(order_id="d"))
    with pytest.raises(ValidationError) as info:
        store.orders.insert_many(batch)
    assert info.value.field == "side"
    assert raw_count(store, "crypto_orders") == 1


def test_insert_many_with_a_duplicate_third_record_writes_nothing(store: Store) -> None:
    store.orders.insert(order(order_id="existing"))
    batch = [order(order_id="a"), order(order_id="b"), order(order_id="a"), order(order_id="d")]
    with pytest.raises(DuplicateRecord):
        store.orders.insert_many(batch)
    assert raw_count(store, "crypto_orders") == 1
    clash = [order(order_id="x"), order(order_id="y"), order(order_id="existing")]
    with pytest.raises(DuplicateRecord):
        store.orders.insert_many(clash)
    assert [row.order_id for row in store.orders.list().items] == ["existing"]


def test_insert_many_of_candles_with_a_duplicate_writes_nothing(store: Store) -> None:
    batch = [candle(timestamp=CANDLE_TS + i * 300_000) for i in range(2)] + [candle()]
    with pytest.raises(DuplicateRecord):
        store.candles.insert_many(batch)
    assert raw_count(store, "market_data") == 0


# --- read-only -----------------------------------------------------------------------------


def test_readonly_store_lists_but_never_writes(db_path: Path) -> None:
    with Store.open(db_path) as writer:
        stored = writer.orders.insert(order())
    before = sha256(db_path)

    with Store.open(db_path, readonly=True) as reader:
        assert reader.orders.list().items == [stored]
        assert reader.orders.get(stored.id) == stored
        with pytest.raises((sqlite3.OperationalError, TradeDBError)):
            reader.orders.insert(order(order_id="ord-2"))
        with pytest.raises((sqlite3.OperationalError, TradeDBError)):
            reader.orders.update(stored.id, {"status": "open"})
        assert reader.orders.count() == 1

    assert sha256(db_path) == before
    with Store.open(db_path) as writer:
        assert writer.orders.list().items == [stored]


def test_readonly_store_needs_an_existing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    with pytest.raises(TradeDBError):
        Store.open(missing, readonly=True)
    assert not missing.exists()
