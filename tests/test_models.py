"""Records: what each table accepts, its defaults, and how amounts leave as JSON."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import pydantic
import pytest

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
    trade,
    wallet,
)
from tradedb.errors import AmountOutOfRange, DuplicateRecord, ValidationError
from tradedb.models import (
    BalanceHistoryCreate,
    CandleCreate,
    ConfigCreate,
    LogCreate,
    OrderCreate,
    PerformanceCreate,
    PositionCreate,
    Record,
    TradeCreate,
    WalletCreate,
    validate_record,
)
from tradedb.models.timeframes import TIMEFRAMES, timeframe_of
from tradedb.schema import tables
from tradedb.store import Store

# --- the list of bad input -----------------------------------------------------

NAIVE = datetime(2024, 1, 1, 12, 0)

BAD_INPUT = [
    # (id, table, record, field, value, error type)
    ("side-hold", "trades", trade(side="hold"), "side", "hold", ValidationError),
    ("timeframe-2m", "market_data", candle(timeframe="2m"), "timeframe", "2m", ValidationError),
    ("amount-negative", "trades", trade(amount=-1), "amount", -1, ValidationError),
    (
        "amount-9-decimals",
        "trades",
        trade(amount="0.123456789"),
        "amount",
        "0.123456789",
        ValidationError,
    ),
    ("float-sum", "trades", trade(price=0.1 + 0.2), "price", 0.1 + 0.2, ValidationError),
    ("nan", "trades", trade(amount="NaN"), "amount", "NaN", ValidationError),
    ("too-big", "trades", trade(total_value=1e12), "total_value", 1e12, AmountOutOfRange),
    (
        "seconds",
        "trades",
        trade(timestamp=1_700_000_000),
        "timestamp",
        1_700_000_000,
        ValidationError,
    ),
    ("naive", "positions", position(opened_at=NAIVE), "opened_at", NAIVE, ValidationError),
    (
        "low-above-high",
        "market_data",
        candle(open_price="100", close_price="100", high_price="100", low_price="120"),
        "low_price",
        Decimal("120"),
        ValidationError,
    ),
    (
        "high-below-open",
        "market_data",
        candle(open_price="100", close_price="95", high_price="99", low_price="90"),
        "high_price",
        Decimal("99"),
        ValidationError,
    ),
    (
        "unaligned-5m",
        "market_data",
        candle(timestamp=CANDLE_TS + 60_000),
        "timestamp",
        CANDLE_TS + 60_000,
        ValidationError,
    ),
    ("unknown-column", "trades", trade(colour="red"), "colour", "red", ValidationError),
]


@pytest.mark.parametrize("case", BAD_INPUT, ids=[case[0] for case in BAD_INPUT])
@pytest.mark.fault("bad input")
def test_bad_input_is_refused_clearly_and_nothing_is_written(
    store: Store, case: tuple[str, str, dict[str, Any], str, object, type]
) -> None:
    _, table, record, field, value, error = case
    repo = store.repo(table)
    with pytest.raises(ValidationError) as direct:
        validate_record(repo.spec.create, record)
    assert type(direct.value) is error
    assert direct.value.field == field
    assert direct.value.value == value
    assert direct.value.rule
    # The message names the field and shows the value; amounts as fixed-point text.
    shown = format(value, "f") if isinstance(value, Decimal) else repr(value)
    assert str(direct.value).startswith(f"{field}={shown}")

    before = repo.count()
    with pytest.raises(ValidationError) as through_store:
        repo.insert(record)
    assert type(through_store.value) is error
    assert through_store.value.field == field
    assert repo.count() == before
    with pytest.raises(ValidationError):
        repo.insert_many([record])
    assert repo.count() == before


@pytest.mark.fault("bad input")
def test_bad_input_rules_say_what_was_wrong() -> None:
    models: dict[str, type[Record]] = {
        "trades": TradeCreate,
        "market_data": CandleCreate,
        "positions": PositionCreate,
    }
    rules = {}
    for case_id, table, record, *_ in BAD_INPUT:
        with pytest.raises(ValidationError) as info:
            validate_record(models[table], record)
        rules[case_id] = info.value.rule.lower()
    assert "'buy'" in rules["side-hold"]
    assert "'5m'" in rules["timeframe-2m"]
    assert "zero" in rules["amount-negative"]
    assert "decimal places" in rules["amount-9-decimals"]
    assert "float" in rules["float-sum"]
    assert "nan" in rules["nan"]
    assert "decimal(20,8)" in rules["too-big"]
    assert "seconds" in rules["seconds"]
    assert "naive" in rules["naive"]
    assert "above" in rules["low-above-high"]
    assert "below" in rules["high-below-open"]
    assert "aligned" in rules["unaligned-5m"]
    assert "not a column" in rules["unknown-column"]


@pytest.mark.fault("bad input")
def test_duplicate_order_id_is_refused_on_the_second_insert(store: Store) -> None:
    first = store.orders.insert(order())
    with pytest.raises(DuplicateRecord) as info:
        store.orders.insert(order(amount="2"))
    assert info.value.field == "order_id"
    assert info.value.value == "ord-1"
    assert "UNIQUE" in info.value.rule
    assert store.orders.count() == 1
    assert store.orders.get(first.id) == first


# --- value sets --------------------------------------------------------------------------

VALUE_SETS = [
    # (table, field, spec values, a refused value, base record factory)
    ("trades", "side", tables.SIDES, "hold", trade),
    ("trades", "status", tables.TRADE_STATUSES, "open", trade),
    ("crypto_orders", "order_type", tables.ORDER_TYPES, "stop_limit", order),
    ("crypto_orders", "status", tables.ORDER_STATUSES, "rejected", order),
    ("positions", "side", tables.POSITION_SIDES, "buy", position),
    ("positions", "status", tables.POSITION_STATUSES, "pending", position),
    ("market_data", "timeframe", tables.TIMEFRAMES, "2m", candle),
    ("bot_logs", "level", tables.LOG_LEVELS, "info", log),
    ("bot_config", "config_type", tables.CONFIG_TYPES, "integer", config),
    ("balance_history", "balance_type", tables.BALANCE_TYPES, "frozen", balance),
]

CONFIG_VALUE_FOR_TYPE = {"string": "x", "number": "3", "boolean": "true", "json": "[1]"}


def test_value_sets_are_the_specs() -> None:
    assert tables.SIDES == ("buy", "sell")
    assert tables.TRADE_STATUSES == ("filled", "partial", "canceled")
    assert tables.ORDER_TYPES == ("market", "limit", "stop_loss", "take_profit")
    assert tables.ORDER_STATUSES == ("pending", "open", "filled", "canceled", "expired")
    assert tables.POSITION_SIDES == ("long", "short")
    assert tables.POSITION_STATUSES == ("open", "closed")
    # A documented superset: ccxt's standard timeframes, the spec's six among them.
    assert set(tables.TIMEFRAMES) > {"1m", "5m", "15m", "1h", "4h", "1d"}
    assert (
        *("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h"),
        *("1d", "3d", "1w", "1M"),
    ) == tables.TIMEFRAMES
    assert tables.LOG_LEVELS == ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    assert tables.CONFIG_TYPES == ("string", "number", "boolean", "json")
    assert tables.BALANCE_TYPES == ("available", "locked", "total")


def value_record(table: str, base: Any, field: str, value: str, number: int) -> dict[str, Any]:
    """A valid record of `table` whose `field` is `value` (keys stay unique per number)."""
    changes: dict[str, Any] = {field: value}
    if table == "crypto_orders":
        changes["order_id"] = f"ord-{number}"
    if table == "bot_config":
        changes["config_key"] = f"key_{number}"
        changes["config_value"] = CONFIG_VALUE_FOR_TYPE.get(value, "x")
    if table == "positions":
        # At most one open position per (exchange, symbol, strategy).
        changes["strategy"] = f"strategy_{number}"
    if table == "market_data" and value in TIMEFRAMES:
        # Weeks start on Mondays and months on the 1st: the candle of the record's time.
        changes["timestamp"] = timeframe_of(value).floor(base()["timestamp"])
    return base(**changes)  # type: ignore[no-any-return]


@pytest.mark.parametrize("case", VALUE_SETS, ids=[f"{case[0]}.{case[1]}" for case in VALUE_SETS])
def test_value_set_accepts_exactly_the_spec_values(
    store: Store, case: tuple[str, str, tuple[str, ...], str, Any]
) -> None:
    table, field, allowed, refused, base = case
    repo = store.repo(table)
    for number, value in enumerate(allowed):
        stored = repo.insert(value_record(table, base, field, value, number))
        assert getattr(stored, field) == value
        assert getattr(repo.get(stored.id), field) == value
    assert repo.count() == len(allowed)
    assert {getattr(row, field) for row in repo.list().items} == set(allowed)

    with pytest.raises(ValidationError) as info:
        repo.insert(value_record(table, base, field, refused, len(allowed)))
    assert info.value.field == field
    assert info.value.value == refused
    assert repo.count() == len(allowed)


@pytest.mark.parametrize(
    ("model", "base", "field", "refused"),
    [
        (TradeCreate, trade, "side", "BUY"),
        (OrderCreate, order, "order_type", "Market"),
        (CandleCreate, candle, "timeframe", "1y"),
        (LogCreate, log, "level", "Warning"),
        (BalanceHistoryCreate, balance, "balance_type", ""),
    ],
)
def test_value_sets_are_case_sensitive(
    model: type[Record], base: Any, field: str, refused: str
) -> None:
    with pytest.raises(ValidationError) as info:
        validate_record(model, base(**{field: refused}))
    assert info.value.field == field


# --- defaults ----------------------------------------------------------------------------


def test_create_models_have_the_spec_defaults() -> None:
    created_trade = validate_record(TradeCreate, trade())
    assert created_trade.fee == Decimal(0)
    assert created_trade.status == "filled"

    created_order = validate_record(OrderCreate, order())
    assert created_order.status == "pending"
    assert created_order.filled_amount == Decimal(0)

    created_position = validate_record(PositionCreate, position())
    assert created_position.status == "open"
    assert created_position.unrealized_pnl == Decimal(0)
    assert created_position.realized_pnl == Decimal(0)

    created_config = validate_record(ConfigCreate, config())
    assert created_config.config_type == "string"
    assert created_config.is_active is True

    created_balance = validate_record(BalanceHistoryCreate, balance())
    assert created_balance.balance_type == "total"

    created_wallet = validate_record(WalletCreate, wallet())
    assert created_wallet.available_balance == Decimal(0)
    assert created_wallet.locked_balance == Decimal(0)

    created_performance = validate_record(PerformanceCreate, performance())
    assert created_performance.daily_pnl == Decimal(0)
    assert created_performance.daily_pnl_percent == Decimal(0)
    assert created_performance.total_trades == 0
    assert created_performance.winning_trades == 0
    assert created_performance.losing_trades == 0
    assert created_performance.win_rate == Decimal(0)


def test_defaults_are_stored_as_the_spec_says(store: Store) -> None:
    stored_trade = store.trades.insert(trade())
    assert (stored_trade.fee, stored_trade.status) == (Decimal(0), "filled")
    stored_order = store.orders.insert(order())
    assert (stored_order.status, stored_order.filled_amount) == ("pending", Decimal(0))
    assert store.positions.insert(position()).status == "open"
    stored_config = store.config.insert(config())
    assert (stored_config.config_type, stored_config.is_active) == ("string", True)
    assert store.balance_history.insert(balance()).balance_type == "total"
    stored_wallet = store.wallets.insert(wallet())
    assert stored_wallet.available_balance == 0
    assert stored_wallet.locked_balance == 0
    assert stored_wallet.total_balance == 0
    row = store.db.connection.execute(
        "SELECT fee, status FROM trades WHERE id = ?", (stored_trade.id,)
    ).fetchone()
    assert row == (0, "filled")


# --- JSON --------------------------------------------------------------------------------


def test_amounts_are_fixed_point_strings_in_json(store: Store) -> None:
    record = validate_record(
        TradeCreate,
        trade(amount=Decimal("0.00000001"), price=Decimal("1E-8"), total_value=Decimal("0E-8")),
    )
    text = record.model_dump_json()
    data = json.loads(text)
    assert data["amount"] == "0.00000001"
    assert data["price"] == "0.00000001"
    assert data["total_value"] == "0.00000000"
    assert "E-" not in text
    assert "e-" not in text

    stored = store.trades.insert(record)
    fetched = store.trades.get(stored.id)
    assert fetched is not None
    assert fetched.fee == Decimal("0E-8")
    fetched_data = json.loads(fetched.model_dump_json())
    assert fetched_data["fee"] == "0.00000000"
    assert fetched_data["amount"] == "0.00000001"
    assert fetched_data["profit_loss"] is None
    assert Decimal(fetched_data["amount"]) == record.amount


def test_large_amounts_in_json_keep_every_digit() -> None:
    record = validate_record(
        TradeCreate, trade(total_value="92233720368.54775807", amount="12345678901.12345678")
    )
    data = json.loads(record.model_dump_json())
    assert data["total_value"] == "92233720368.54775807"
    assert data["amount"] == "12345678901.12345678"


def test_python_dump_keeps_decimals() -> None:
    record = validate_record(TradeCreate, trade())
    assert isinstance(record.model_dump()["amount"], Decimal)


# --- order rules -------------------------------------------------------------------------


@pytest.mark.parametrize("order_type", ["limit", "stop_loss", "take_profit"])
def test_priced_order_types_need_a_price(store: Store, order_type: str) -> None:
    with pytest.raises(ValidationError) as info:
        store.orders.insert(order(order_type=order_type, price=None))
    assert info.value.field == "price"
    assert order_type in info.value.rule
    assert store.orders.count() == 0


def test_market_order_needs_no_price(store: Store) -> None:
    stored = store.orders.insert(order(order_type="market", price=None))
    assert stored.price is None


def test_filled_amount_cannot_exceed_amount(store: Store) -> None:
    with pytest.raises(ValidationError) as info:
        store.orders.insert(order(amount="1", filled_amount="1.00000001"))
    assert info.value.field == "filled_amount"
    assert info.value.value == Decimal("1.00000001")
    assert store.orders.count() == 0
    assert store.orders.insert(order(amount="1", filled_amount="1")).filled_amount == 1


def test_remaining_amount_must_equal_amount_minus_filled(store: Store) -> None:
    with pytest.raises(ValidationError) as info:
        store.orders.insert(order(amount="1", filled_amount="0.25", remaining_amount="0.5"))
    assert info.value.field == "remaining_amount"
    assert "amount - filled_amount" in info.value.rule
    assert store.orders.count() == 0
    stored = store.orders.insert(order(amount="1", filled_amount="0.25", remaining_amount="0.75"))
    assert stored.remaining_amount == Decimal("0.75")


def test_position_cannot_close_before_it_opened() -> None:
    with pytest.raises(ValidationError) as info:
        validate_record(PositionCreate, position(closed_at=TS - 1))
    assert info.value.field == "closed_at"


# --- bot_config, bot_logs, performance_metrics ------------------------------------------


@pytest.mark.parametrize(
    ("config_type", "bad_value"),
    [("number", "abc"), ("number", "NaN"), ("boolean", "yes"), ("boolean", "True"), ("json", "{")],
)
@pytest.mark.fault("bad input")
def test_config_value_must_match_its_type(store: Store, config_type: str, bad_value: str) -> None:
    with pytest.raises(ValidationError) as info:
        store.config.insert(config(config_type=config_type, config_value=bad_value))
    assert info.value.field == "config_value"
    assert info.value.value == bad_value
    assert store.config.count() == 0


@pytest.mark.parametrize(
    ("config_type", "value"),
    [("number", "0.5"), ("boolean", "false"), ("json", '{"a": [1, 2]}'), ("string", "abc")],
)
def test_config_value_matching_its_type_is_stored(
    store: Store, config_type: str, value: str
) -> None:
    stored = store.config.insert(config(config_type=config_type, config_value=value))
    assert (stored.config_type, stored.config_value) == (config_type, value)


def test_log_metadata_dict_is_stored_as_json_text(store: Store) -> None:
    metadata = {"order": "ord-1", "fills": [1, 2], "price": "40000.5"}
    stored = store.logs.insert(log(metadata=metadata))
    (raw,) = store.db.connection.execute(
        "SELECT metadata FROM bot_logs WHERE id = ?", (stored.id,)
    ).fetchone()
    assert isinstance(raw, str)
    assert json.loads(raw) == metadata
    assert json.loads(stored.metadata) == metadata  # type: ignore[arg-type]


@pytest.mark.parametrize("metadata", ["{not json", {"price": Decimal("1")}, {"at": NAIVE}])
@pytest.mark.fault("bad input")
def test_log_metadata_that_is_not_json_is_refused(store: Store, metadata: object) -> None:
    with pytest.raises(ValidationError) as info:
        store.logs.insert(log(metadata=metadata))
    assert info.value.field == "metadata"
    assert store.logs.count() == 0


def test_log_message_cannot_be_empty() -> None:
    with pytest.raises(ValidationError) as info:
        validate_record(LogCreate, log(message=""))
    assert info.value.field == "message"


@pytest.mark.parametrize("date", ["2024-13-01", "2024-02-30", "01/02/2024", "", 20240101])
def test_performance_date_must_be_a_calendar_date(store: Store, date: object) -> None:
    with pytest.raises(ValidationError) as info:
        store.performance.insert(performance(date=date))
    assert info.value.field == "date"
    assert info.value.value == date
    assert store.performance.count() == 0


def test_performance_datetime_is_not_a_date() -> None:
    with pytest.raises(ValidationError) as info:
        validate_record(PerformanceCreate, performance(date=NAIVE))
    assert info.value.field == "date"


def test_winning_plus_losing_cannot_exceed_total_trades(store: Store) -> None:
    with pytest.raises(ValidationError) as info:
        store.performance.insert(performance(total_trades=5, winning_trades=3, losing_trades=3))
    assert info.value.field == "total_trades"
    assert store.performance.count() == 0
    stored = store.performance.insert(
        performance(total_trades=6, winning_trades=3, losing_trades=3)
    )
    assert (stored.total_trades, stored.winning_trades, stored.losing_trades) == (6, 3, 3)


def test_record_is_immutable() -> None:
    record = validate_record(TradeCreate, trade())
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        record.amount = Decimal(2)  # type: ignore[misc]
    assert record.amount == Decimal("0.5")
