"""The 11 tables and 9 indexes of the specification, defined once.

Names, NOT NULLs, DEFAULTs, CHECK value sets and UNIQUE keys follow
docs/spec/crypto-trading-bot-schema.md exactly. The differences are listed in
docs/schema.md: amounts are stored as scaled integers on SQLite (see `money`) and as
NUMERIC on PostgreSQL, every amount column carries a storage guard (a CHECK that refuses
non-integer storage on SQLite, NaN on PostgreSQL), and a few extra columns and indexes
exist where a real need demands them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    event,
    func,
    literal_column,
    text,
    true,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.schema import SchemaItem

from tradedb.models.timeframes import TIMEFRAME_NAMES
from tradedb.models.values import AMOUNT, PERCENT, VOLUME, DecimalSpec
from tradedb.schema.money import OVERFLOW_DIGITS, OVERFLOW_FLOOR, ScaledDecimal

metadata = MetaData(
    naming_convention={
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    }
)


EPOCH_SECONDS_NOW = "strftime('%s', 'now')"
# floor(): SQLite's %s truncates to the second, while a cast of NUMERIC (or double) to
# BIGINT rounds, which would put a row written at 12:00:00.7 at 12:00:01, in the future.
PG_EPOCH_SECONDS_NOW = "CAST(floor(EXTRACT(EPOCH FROM now())) AS BIGINT)"


class epoch_seconds_now(FunctionElement[int]):
    """The spec's `strftime('%s', 'now')`, written per dialect."""

    type = Integer()
    inherit_cache = True


@compiles(epoch_seconds_now, "sqlite")
def _epoch_now_sqlite(element: Any, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({EPOCH_SECONDS_NOW})"


@compiles(epoch_seconds_now)
def _epoch_now_default(element: Any, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({PG_EPOCH_SECONDS_NOW})"


# 64-bit everywhere; on SQLite the id must be spelt INTEGER to be the rowid alias.
Int64 = BigInteger().with_variant(Integer(), "sqlite")
# Text that sorts as SQLite's BINARY does, by code point, on both engines. PostgreSQL's
# default is the database's collation, which varies by server: en_US.UTF-8 ignores
# punctuation, so 'BTCUP/USDT' came before 'BTC/USD' in SQL while Python (and SQLite) put
# it after, and pages whose cursor is compared in Python skipped series.
Str = Text().with_variant(Text(collation="C"), "postgresql")


def _id() -> Column[Any]:
    return Column("id", Int64, primary_key=True, autoincrement=True)


def _created_at() -> Column[Any]:
    return Column("created_at", Int64, server_default=epoch_seconds_now())


def _updated_at() -> Column[Any]:
    return Column("updated_at", Int64, server_default=epoch_seconds_now())


def _money(
    name: str, *, nullable: bool = True, default: int | None = None, spec: DecimalSpec = AMOUNT
) -> Column[Any]:
    return Column(
        name,
        ScaledDecimal(spec),
        nullable=nullable,
        server_default=None if default is None else text(str(default)),
    )


def _percent(name: str, *, default: int | None = None) -> Column[Any]:
    return _money(name, default=default, spec=PERCENT)


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    listed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


def _table(name: str, *items: SchemaItem) -> Table:
    """Create a table and give each amount column its storage guard, one per engine.

    On SQLite the guard refuses any value that is not an integer number of units, so a
    float or text written by ad-hoc SQL cannot slip past the exact encoding. On PostgreSQL
    the NUMERIC type itself refuses text, infinities and values too large, but not NaN,
    which is no amount (tradedb refuses it on input) and would turn every SUM over the
    column into NaN; its guard refuses NaN.
    """
    table = Table(name, metadata, *items, sqlite_autoincrement=True)
    for column in table.columns:
        if isinstance(column.type, ScaledDecimal):
            guard = CheckConstraint(
                storage_guard(column.name, column.type.spec, nullable=bool(column.nullable)),
                name=f"{column.name}_integer_units_1e_{column.type.spec.scale}",
            ).ddl_if(dialect="sqlite")
            table.append_constraint(guard)
            not_nan = CheckConstraint(
                f"{column.name} <> 'NaN'", name=f"{column.name}_not_nan"
            ).ddl_if(dialect="postgresql")
            table.append_constraint(not_nan)
    return table


def storage_guard(name: str, spec: DecimalSpec, *, nullable: bool) -> str:
    """SQLite's CHECK on an amount column: integer units, or past int64 the overflow form
    (tradedb.schema.money) of a value below the column's precision, and nothing else."""
    kinds = "'integer', 'null'" if nullable else "'integer'"
    guard = f"typeof({name}) IN ({kinds})"
    limit = str(10**spec.precision).zfill(OVERFLOW_DIGITS)
    if limit <= OVERFLOW_FLOOR:
        return guard  # every value of the column fits int64
    digits = f"ltrim({name}, '-')"
    return (
        f"{guard} OR (typeof({name}) = 'text' AND length({name}) = {OVERFLOW_DIGITS} + "
        f"({name} GLOB '-*') AND {digits} NOT GLOB '*[^0-9]*' AND {digits} >= "
        f"'{OVERFLOW_FLOOR}' AND {digits} < '{limit}')"
    )


class wallet_total(FunctionElement[Any]):
    """total_balance = available_balance + locked_balance, written per dialect."""

    inherit_cache = True


@compiles(wallet_total, "sqlite")
def _wallet_total_sqlite(element: Any, compiler: SQLCompiler, **kw: Any) -> str:
    # Integers add as they are. A sum past int64 (SQLite would make it a float) is added
    # in two parts of the units, below and above 10^10, and written in the overflow form;
    # balances are never negative, so the parts need no sign.
    parts = []
    for name in ("available_balance", "locked_balance"):
        parts.append(
            (
                f"(CASE WHEN typeof({name}) = 'integer' THEN {name} / {_SPLIT} "
                f"ELSE CAST(substr({name}, 1, length({name}) - {_SPLIT_DIGITS}) AS INTEGER) END)",
                f"(CASE WHEN typeof({name}) = 'integer' THEN {name} % {_SPLIT} "
                f"ELSE CAST(substr({name}, -{_SPLIT_DIGITS}) AS INTEGER) END)",
            )
        )
    (high_a, low_a), (high_b, low_b) = parts
    low = f"({low_a} + {low_b})"
    return (
        "CASE WHEN typeof(available_balance) = 'integer' AND typeof(locked_balance) = "
        "'integer' AND typeof(available_balance + locked_balance) = 'integer' THEN "
        "available_balance + locked_balance ELSE printf("
        f"'%0{OVERFLOW_DIGITS - _SPLIT_DIGITS}d%0{_SPLIT_DIGITS}d', "
        f"{high_a} + {high_b} + {low} / {_SPLIT}, {low} % {_SPLIT}) END"
    )


@compiles(wallet_total)
def _wallet_total_default(element: Any, compiler: SQLCompiler, **kw: Any) -> str:
    return "available_balance + locked_balance"


_SPLIT_DIGITS = 10
_SPLIT = 10**_SPLIT_DIGITS


SIDES = ("buy", "sell")
TRADE_STATUSES = ("filled", "partial", "canceled")
ORDER_TYPES = ("market", "limit", "stop_loss", "take_profit")
ORDER_STATUSES = ("pending", "open", "filled", "canceled", "expired")
POSITION_SIDES = ("long", "short")
POSITION_STATUSES = ("open", "closed")
TIMEFRAMES = TIMEFRAME_NAMES
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
CONFIG_TYPES = ("string", "number", "boolean", "json")
BALANCE_TYPES = ("available", "locked", "total")
# What `tradedb sync` reads from an exchange account, each from its own cursor.
SYNC_STREAMS = ("trades", "orders", "deposits", "withdrawals")
# How an order reached the exchange, beside the spec's status (docs/live.md): NULL for an
# order the bot recorded itself; `unknown` from the moment tradedb stores an order it is
# about to send until the exchange's answer or a sync settles it.
SUBMISSIONS = ("unknown", "acknowledged", "rejected", "adopted")

# --- core trading ------------------------------------------------------------------------

trades = _table(
    "trades",
    _id(),
    Column("symbol", Str, nullable=False),
    Column("side", Str, nullable=False),
    _money("amount", nullable=False),
    _money("price", nullable=False),
    _money("total_value", nullable=False),
    _money("fee", default=0),
    Column("fee_currency", Str),
    Column("timestamp", Int64, nullable=False),
    Column("exchange", Str, nullable=False),
    Column("order_id", Str),
    Column("strategy", Str),
    Column("status", Str, server_default="filled"),
    _money("profit_loss"),
    _created_at(),
    _updated_at(),
    # Extra: the exchange's id of the fill, the idempotency key of a re-delivered fill.
    Column("exchange_trade_id", Str),
    # Extra: the position whose P&L this fill realised (or opened), for per-position sums.
    Column("position_id", Int64, ForeignKey("positions.id")),
    _one_of("side", SIDES),
    _one_of("status", TRADE_STATUSES),
)

crypto_orders = _table(
    "crypto_orders",
    _id(),
    Column("order_id", Str, nullable=False, unique=True),
    Column("symbol", Str, nullable=False),
    Column("side", Str, nullable=False),
    Column("order_type", Str, nullable=False),
    _money("amount", nullable=False),
    _money("price"),
    _money("filled_amount", default=0),
    _money("remaining_amount"),
    Column("status", Str, server_default="pending"),
    Column("exchange", Str, nullable=False),
    Column("strategy", Str),
    Column("timestamp", Int64, nullable=False),
    Column("filled_at", Int64),
    Column("canceled_at", Int64),
    _created_at(),
    _updated_at(),
    # Extra: the funds this order still holds locked in the wallet of `locked_asset`, so
    # that a fill, cancel or expiry releases exactly its own reservation.
    _money("locked_amount", nullable=False, default=0),
    Column("locked_asset", Str),
    # Extra: the id tradedb sent with an order it submitted, which finds the order at the
    # exchange when the answer was lost; and how the order reached the exchange.
    Column("client_order_id", Str),
    Column("submission", Str),
    _one_of("side", SIDES),
    _one_of("order_type", ORDER_TYPES),
    _one_of("status", ORDER_STATUSES),
    _one_of("submission", SUBMISSIONS),
)

positions = _table(
    "positions",
    _id(),
    Column("symbol", Str, nullable=False),
    Column("side", Str, nullable=False),
    _money("amount", nullable=False),
    _money("entry_price", nullable=False),
    _money("current_price"),
    _money("unrealized_pnl", default=0),
    _money("realized_pnl", default=0),
    Column("status", Str, server_default="open"),
    Column("exchange", Str, nullable=False),
    Column("strategy", Str),
    Column("opened_at", Int64, nullable=False),
    Column("closed_at", Int64),
    _created_at(),
    _updated_at(),
    # Extra: fees paid (in quote terms) to open the part still held; each close charges its
    # share to the closing trade's profit_loss, so round trips are reported net of fees.
    _money("open_fees", nullable=False, default=0),
    # Extra: the quote value of the amount still held, which P&L is measured against, so
    # that equity is exactly capital plus realised and unrealised P&L (no rounding of the
    # average entry price in between; docs/ledger.md).
    _money("cost_basis", nullable=False, default=0),
    _one_of("side", POSITION_SIDES),
    _one_of("status", POSITION_STATUSES),
)

# --- market data -------------------------------------------------------------------------

market_data = _table(
    "market_data",
    _id(),
    Column("symbol", Str, nullable=False),
    Column("timestamp", Int64, nullable=False),
    _money("open_price", nullable=False),
    _money("high_price", nullable=False),
    _money("low_price", nullable=False),
    _money("close_price", nullable=False),
    _money("volume", nullable=False, spec=VOLUME),
    Column("timeframe", Str, nullable=False),
    Column("exchange", Str, nullable=False),
    _created_at(),
    _one_of("timeframe", TIMEFRAMES),
    UniqueConstraint("symbol", "timestamp", "timeframe", "exchange"),
)

tickers = _table(
    "tickers",
    _id(),
    Column("symbol", Str, nullable=False),
    _money("bid_price"),
    _money("ask_price"),
    _money("last_price", nullable=False),
    _money("volume_24h", spec=VOLUME),
    _money("price_change_24h"),
    _percent("price_change_percent_24h"),
    Column("timestamp", Int64, nullable=False),
    Column("exchange", Str, nullable=False),
    _created_at(),
    # Extra: the rest of ccxt's unified ticker, so that a stored ticker reads back whole
    # (docs/schema.md). Order-book volumes are in the base currency, as volume_24h is.
    _money("open_price"),
    _money("high_price"),
    _money("low_price"),
    _money("vwap"),
    _money("quote_volume_24h", spec=VOLUME),
    _money("bid_volume", spec=VOLUME),
    _money("ask_volume", spec=VOLUME),
    _money("previous_close"),
    UniqueConstraint("symbol", "exchange", "timestamp"),
)

# --- performance and analytics -----------------------------------------------------------

performance_metrics = _table(
    "performance_metrics",
    _id(),
    Column("date", Str, nullable=False),
    _money("total_portfolio_value", nullable=False),
    _money("daily_pnl", default=0),
    _percent("daily_pnl_percent", default=0),
    Column("total_trades", Int64, server_default=text("0")),
    Column("winning_trades", Int64, server_default=text("0")),
    Column("losing_trades", Int64, server_default=text("0")),
    _percent("win_rate", default=0),
    _percent("sharpe_ratio"),
    _percent("max_drawdown"),
    Column("strategy", Str),
    Column("exchange", Str),
    _created_at(),
    UniqueConstraint("date", "strategy", "exchange"),
)

portfolio_snapshots = _table(
    "portfolio_snapshots",
    _id(),
    Column("timestamp", Int64, nullable=False),
    Column("asset", Str, nullable=False),
    _money("amount", nullable=False),
    _money("usd_value", nullable=False),
    _money("price_per_unit", nullable=False),
    Column("exchange", Str, nullable=False),
    _created_at(),
)

# --- system management -------------------------------------------------------------------

bot_config = _table(
    "bot_config",
    _id(),
    Column("config_key", Str, nullable=False, unique=True),
    Column("config_value", Str, nullable=False),
    Column("config_type", Str, server_default="string"),
    Column("description", Str),
    Column("strategy", Str),
    Column("is_active", Boolean(create_constraint=False), server_default=true()),
    _created_at(),
    _updated_at(),
    _one_of("config_type", CONFIG_TYPES),
)

bot_logs = _table(
    "bot_logs",
    _id(),
    Column("timestamp", Int64, nullable=False),
    Column("level", Str, nullable=False),
    Column("message", Str, nullable=False),
    Column("module", Str),
    Column("strategy", Str),
    Column("exchange", Str),
    Column("symbol", Str),
    Column("metadata", Str),
    _created_at(),
    _one_of("level", LOG_LEVELS),
)

# --- wallets -----------------------------------------------------------------------------

wallets = _table(
    "wallets",
    _id(),
    Column("exchange", Str, nullable=False),
    Column("asset", Str, nullable=False),
    _money("available_balance", nullable=False, default=0),
    _money("locked_balance", nullable=False, default=0),
    Column(
        "total_balance",
        ScaledDecimal(AMOUNT),
        Computed(wallet_total(), persisted=True),
    ),
    _money("usd_value"),
    Column("last_updated", Int64, nullable=False),
    _created_at(),
    _updated_at(),
    UniqueConstraint("exchange", "asset"),
)

balance_history = _table(
    "balance_history",
    _id(),
    Column("exchange", Str, nullable=False),
    Column("asset", Str, nullable=False),
    _money("balance", nullable=False),
    _money("usd_value"),
    Column("timestamp", Int64, nullable=False),
    Column("balance_type", Str, server_default="total"),
    _created_at(),
    _one_of("balance_type", BALANCE_TYPES),
)

# --- the ledger's journal (extra table) ----------------------------------------------------

MOVEMENT_KINDS = ("opening", "deposit", "withdrawal", "lock", "unlock", "trade", "fee", "sync")

# Every change of a wallet, as signed amounts. Wallets hold the current balances; this
# journal explains them (wallet = sum of its movements, always), records deposits and
# withdrawals, and is never pruned (balance_history may be, after two years).
wallet_movements = _table(
    "wallet_movements",
    _id(),
    Column("exchange", Str, nullable=False),
    Column("asset", Str, nullable=False),
    Column("kind", Str, nullable=False),
    _money("available_change", nullable=False, default=0),
    _money("locked_change", nullable=False, default=0),
    Column("trade_id", Int64, ForeignKey("trades.id")),
    Column("order_id", Str),
    # The caller's id of a deposit or withdrawal (e.g. a transaction hash): re-recording
    # the same one changes nothing.
    Column("reference", Str),
    Column("timestamp", Int64, nullable=False),
    _created_at(),
    _one_of("kind", MOVEMENT_KINDS),
)

# --- the candle read cache (extra table, derived data) -------------------------------------

# A block is one market's candles over a fixed, aligned span of CANDLES_PER_BLOCK candles,
# kept as one compressed Arrow stream: a year of 1m candles is read from 64 blobs instead
# of 525,600 rows. Blocks are derived data: triggers on market_data delete a block when
# any candle in its span is written, and migrations clear the table. `builder` marks a
# block being built (data NULL) by one reader; tradedb.store.candle_blocks says how.
candle_blocks = Table(
    "candle_blocks",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("symbol", Str, nullable=False),
    Column("timeframe", Str, nullable=False),
    Column("exchange", Str, nullable=False),
    Column("first_ts", Int64, nullable=False),
    Column("end_ts", Int64, nullable=False),
    Column("candles", Int64),
    Column("data", LargeBinary),
    Column("builder", Int64),
    UniqueConstraint("symbol", "timeframe", "exchange", "first_ts"),
)


# The blocks are compressed already: PostgreSQL's own compression of large values (TOAST)
# only costs time on them (inserting a year of 1m candles' blocks took 0.43 s with it,
# 0.07 s without). EXTERNAL keeps them out of line, uncompressed.
@event.listens_for(candle_blocks, "after_create")
def _keep_blocks_uncompressed(target: Table, connection: Connection, **_: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "ALTER TABLE candle_blocks ALTER COLUMN data SET STORAGE EXTERNAL"
        )


# --- the specification's indexes ---------------------------------------------------------

Index("idx_trades_symbol_timestamp", trades.c.symbol, trades.c.timestamp)
Index("idx_trades_strategy_timestamp", trades.c.strategy, trades.c.timestamp)
Index("idx_orders_status", crypto_orders.c.status)
Index("idx_positions_status", positions.c.status)
Index(
    "idx_market_data_symbol_timeframe",
    market_data.c.symbol,
    market_data.c.timeframe,
    market_data.c.timestamp,
)
Index("idx_tickers_symbol_exchange", tickers.c.symbol, tickers.c.exchange, tickers.c.timestamp)
Index("idx_performance_date", performance_metrics.c.date)
Index("idx_logs_timestamp_level", bot_logs.c.timestamp, bot_logs.c.level)
Index("idx_balance_history_timestamp", balance_history.c.timestamp)

# --- extra indexes (docs/schema.md says why) ---------------------------------------------

# The spec's candle index leaves out the exchange: one market's reads and its newest
# candle then step over the same symbol's rows on every other exchange (80 ms for the
# latest candle of a market that stopped before a busier one; 8 µs with this index).
Index(
    "idx_market_data_exchange_symbol_timeframe",
    market_data.c.exchange,
    market_data.c.symbol,
    market_data.c.timeframe,
    market_data.c.timestamp,
)

# A fill re-delivered by the exchange carries the same id: it must not be recorded twice.
Index(
    "uq_trades_exchange_trade_id",
    trades.c.exchange,
    trades.c.exchange_trade_id,
    unique=True,
)
# SQL treats NULLs as distinct, so UNIQUE(date, strategy, exchange) alone would let the
# portfolio-wide row (strategy and exchange NULL) of one day be stored twice.
PERFORMANCE_SCOPE = (
    performance_metrics.c.date,
    func.coalesce(performance_metrics.c.strategy, literal_column("''")),
    func.coalesce(performance_metrics.c.exchange, literal_column("''")),
)
Index("uq_performance_metrics_scope", *PERFORMANCE_SCOPE, unique=True)
# One open position per (exchange, symbol, strategy); a NULL strategy is a key of its own.
OPEN_POSITION_KEY = (
    positions.c.exchange,
    positions.c.symbol,
    func.coalesce(positions.c.strategy, literal_column("''")),
)
Index(
    "uq_positions_open_key",
    *OPEN_POSITION_KEY,
    unique=True,
    sqlite_where=positions.c.status == literal_column("'open'"),
    postgresql_where=positions.c.status == literal_column("'open'"),
)
# No index on trades(exchange, order_id), wallet_movements(exchange, asset) or the foreign
# keys trades.position_id and wallet_movements.trade_id: each would add a page to every
# fill's commit (measured: 7-10% of its time), and nothing on a hot path looks them up. The
# audit reads them in one pass with GROUP BY; SQLite would need an index on a foreign key
# only to delete a position or trade, and those are never deleted.
Index(
    "uq_wallet_movements_reference",
    wallet_movements.c.exchange,
    wallet_movements.c.kind,
    wallet_movements.c.reference,
    unique=True,
    sqlite_where=wallet_movements.c.reference.isnot(None),
    postgresql_where=wallet_movements.c.reference.isnot(None),
)

# Submitting the same client order id twice must find the first order, not make a second.
Index(
    "uq_crypto_orders_client_order_id",
    crypto_orders.c.exchange,
    crypto_orders.c.client_order_id,
    unique=True,
    sqlite_where=crypto_orders.c.client_order_id.isnot(None),
    postgresql_where=crypto_orders.c.client_order_id.isnot(None),
)

# --- where each stream of a live account's sync goes on from (extra table) ------------------

# One row per exchange, stream and scope (a market for trades and orders, "account" for
# transfers): the time the next fetch starts from and the exchange's id of the newest item
# seen. Each advances in the transaction that records what was fetched, so a sync killed
# at any moment resumes where the database says, and refetching what overlaps is harmless
# (every item is recorded idempotently by its exchange id).
sync_cursors = _table(
    "sync_cursors",
    _id(),
    Column("exchange", Str, nullable=False),
    Column("stream", Str, nullable=False),
    Column("scope", Str, nullable=False),
    Column("next_since", Int64, nullable=False),
    Column("last_id", Str),
    Column("synced_at", Int64, nullable=False),
    _created_at(),
    UniqueConstraint("exchange", "stream", "scope"),
    _one_of("stream", SYNC_STREAMS),
)

# --- USD reference prices with their validity period (extra table) ------------------------

# A configured USD price of an asset where stored market data cannot value it (the
# Binance sample has no BTC/USD market). It holds from `valid_from` (inclusive) until
# `valid_until` (exclusive), epoch ms UTC; NULL leaves that end open. A price meant for
# January 2018 must not value a 2023 holding, so the period is part of the row, and the
# periods of one asset never overlap (the analytics service refuses an overlap).
reference_prices = _table(
    "reference_prices",
    _id(),
    Column("asset", Str, nullable=False),
    _money("price_usd", nullable=False),
    Column("valid_from", Int64),
    Column("valid_until", Int64),
    Column("source", Str, nullable=False),
    _created_at(),
    _updated_at(),
    CheckConstraint(
        "valid_from IS NULL OR valid_until IS NULL OR valid_until > valid_from", name="period"
    ),
)
Index("idx_reference_prices_asset", reference_prices.c.asset, reference_prices.c.valid_from)

SPEC_TABLES = (
    trades,
    crypto_orders,
    positions,
    market_data,
    tickers,
    performance_metrics,
    portfolio_snapshots,
    bot_config,
    bot_logs,
    wallets,
    balance_history,
)
# Tables of tradedb's own beyond the specification (docs/schema.md says why).
EXTRA_TABLES = (wallet_movements, sync_cursors, reference_prices)
ALL_TABLES = SPEC_TABLES + EXTRA_TABLES
# Derived data only, rebuilt on demand: no readable view, no repository, cleared on upgrade.
CACHE_TABLES = (candle_blocks,)

# --- the progress record of `tradedb migrate-db` (not part of the schema) -----------------

# While `tradedb migrate-db` copies a database into this one, one row per copied table says
# what it copies from and how far it got; each page of rows and its progress commit in one
# transaction. The copy creates the table and drops it once it has verified the result. It
# has a MetaData of its own, so no create or upgrade makes it and no revision knows it.
migration_metadata = MetaData()
migration_progress = Table(
    "tradedb_migration",
    migration_metadata,
    Column("table_name", Text, primary_key=True),
    # The source's location without any password (tradedb.store.engines.location_key).
    Column("source", Text, nullable=False),
    # The source table's row count, largest id and amount sums when the copy began (JSON):
    # a resumed copy refuses a source that has changed since.
    Column("source_figures", Text, nullable=False),
    # The same figures of this table before the copy: zero, except for a copy made with
    # --into-non-empty, whose result is checked as these plus the source's.
    Column("before_figures", Text, nullable=False),
    # The largest source id copied so far (rows are copied in id order) and the rows copied.
    Column("copied_through", Int64, nullable=False),
    Column("rows_copied", Int64, nullable=False),
    Column("started_at", Int64, nullable=False),  # epoch ms
)
