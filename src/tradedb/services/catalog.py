"""The database described for programs: every table, column, type and unit, generated from
the schema's one definition (tradedb.schema.tables), so it cannot drift from it.

An agent reading the database through tradedb's tools needs to know what a column means:
that `timestamp` is epoch milliseconds UTC while `created_at` is epoch seconds, that an
amount is exact to 1e-8 and comes as a fixed-point string, which values a status takes.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Column, Table, UniqueConstraint
from sqlalchemy.sql.elements import TextClause

from tradedb.models.values import MAX_NAME_LENGTH
from tradedb.schema.derived import EPOCH_MS_COLUMNS, EPOCH_SECONDS_COLUMNS
from tradedb.schema.money import ScaledDecimal
from tradedb.schema.tables import ALL_TABLES, EXTRA_TABLES
from tradedb.services.analytics.definitions import PERFORMANCE_METRICS, PORTFOLIO_SNAPSHOTS

_ONE_OF = re.compile(r"^(\w+) IN \((.*)\)$")


def describe_schema() -> dict[str, Any]:
    """Tables (the specification's and tradedb's own), with their columns, keys and the
    conventions every value follows."""
    return {
        "conventions": {
            "amounts": (
                "DECIMAL(20,8) and DECIMAL(10,4) columns are exact decimals: stored in SQLite "
                "as integers of 1e-8 (or 1e-4) units, returned by tradedb as fixed-point "
                "strings such as '0.00000001', never floats or '1E-8'"
            ),
            "event_times": "epoch milliseconds, UTC (as ccxt reports them)",
            "row_times": "created_at and updated_at are epoch seconds, UTC",
            "dates": "performance_metrics.date is a UTC calendar date, YYYY-MM-DD",
            "names": (
                "exchanges are lowercase ccxt ids ('kraken'); symbols are ccxt market "
                f"symbols 'BASE/QUOTE' in capitals; strategies are 1 to {MAX_NAME_LENGTH} "
                "characters"
            ),
            "readable_views": (
                "each table has a view <table>_readable: every amount as a number that sorts "
                "and filters as one (on SQLite a REAL, approximate past 15 significant "
                "digits) with <column>_exact, its exact fixed-point text, beside it; every "
                "epoch time with <column>_utc, its ISO 8601 UTC text, beside it"
            ),
            "archives": (
                "market_data and tickers rows past retention's horizon move to Parquet "
                "archives: tradedb's market-data readers (candles, list_data, tickers, "
                "valuation) include them, reads of the tables themselves do not"
            ),
        },
        "tables": [_table(table) for table in ALL_TABLES],
    }


def _table(table: Table) -> dict[str, Any]:
    allowed = _allowed_values(table)
    unique = [
        [column.name for column in constraint.columns]
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    unique += [
        [column.name] for column in table.columns if column.unique and [column.name] not in unique
    ]
    return {
        "name": table.name,
        "origin": "tradedb" if table in EXTRA_TABLES else "specification",
        "description": TABLE_DESCRIPTIONS.get(table.name, ""),
        "columns": [_column(column, allowed.get(column.name)) for column in table.columns],
        "unique": unique,
        "indexes": sorted(index.name for index in table.indexes if index.name),
    }


def _column(column: Column[Any], allowed: list[str] | None) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": column.name,
        "type": _sql_type(column),
        "nullable": bool(column.nullable) and not column.primary_key,
        "primary_key": column.primary_key,
    }
    description = column_description(column.table.name, column.name)
    if description is not None:
        described["description"] = description
    unit = column_unit(column)
    if unit is not None:
        described["unit"] = unit
    if allowed is not None:
        described["allowed_values"] = allowed
    default = _default(column)
    if default is not None:
        described["default"] = default
    if column.computed is not None:
        described["generated"] = str(column.computed.sqltext)
    foreign = [key.target_fullname for key in column.foreign_keys]
    if foreign:
        described["references"] = foreign[0]
    return described


def _default(column: Column[Any]) -> str | None:
    """A literal server default ('0', 'filled'); None for none or a function (the row
    times' strftime)."""
    argument = getattr(column.server_default, "arg", None)
    if isinstance(argument, str):
        return argument
    if isinstance(argument, TextClause):
        return argument.text
    return None


def _sql_type(column: Column[Any]) -> str:
    if isinstance(column.type, ScaledDecimal):
        return column.type.spec.sql
    if isinstance(column.type, Boolean):
        return "BOOLEAN"
    return str(column.type.compile())


def column_unit(column: Column[Any]) -> str | None:
    """How a column's values are counted: an amount's decimals, a time's epoch."""
    if isinstance(column.type, ScaledDecimal):
        scale = column.type.spec.scale
        return f"exact decimal, {scale} places; a fixed-point string in tradedb's output"
    if column.name in EPOCH_MS_COLUMNS:
        return "epoch milliseconds, UTC"
    if column.name in EPOCH_SECONDS_COLUMNS:
        return "epoch seconds, UTC"
    if column.name == "date":
        return "UTC calendar date, YYYY-MM-DD"
    return None


def _allowed_values(table: Table) -> dict[str, list[str]]:
    """The CHECK (column IN (...)) value sets of a table, by column."""
    values: dict[str, list[str]] = {}
    for constraint in table.constraints:
        if not isinstance(constraint, CheckConstraint):
            continue
        match = _ONE_OF.match(str(constraint.sqltext))
        if match:
            values[match.group(1)] = [item.strip().strip("'") for item in match.group(2).split(",")]
    return values


# --- what each table and column means ------------------------------------------------------
# One entry per column of every table (a test fails on a column without one): what it
# holds and, for an amount, in which currency. How values are counted (decimals, epoch)
# comes from the definitions (column_unit). performance_metrics and portfolio_snapshots
# are defined where their figures are computed (tradedb.services.analytics.definitions).

TABLE_DESCRIPTIONS = {
    "trades": "Fills: each execution of an order, with its fee and the P&L it realised.",
    "crypto_orders": "Orders and their life: placed, partly and fully filled, canceled.",
    "positions": "Positions per exchange, market and strategy, open and closed, with P&L.",
    "market_data": "OHLCV candles per exchange, market and timeframe.",
    "tickers": "Ticker snapshots: best bid and ask, last price and 24-hour figures.",
    "performance_metrics": "Daily performance per strategy and exchange, and portfolio-wide.",
    "portfolio_snapshots": "Holdings per exchange and asset at a moment, valued in USD.",
    "bot_config": "The bot's settings, one typed value per key.",
    "bot_logs": "The bot's log messages.",
    "wallets": "Current balances per exchange and asset: available, locked and total.",
    "balance_history": "Balances over time, one row per change of a wallet.",
    "wallet_movements": (
        "The ledger's journal: every change of a wallet as signed amounts; a wallet's "
        "balances are the sums of its movements."
    ),
    "sync_cursors": "Where each stream of an exchange account's sync goes on from.",
    "reference_prices": "Configured USD prices of assets, each for its own period.",
    "candle_blocks": (
        "Cache: compressed blocks of candles read instead of the rows; derived from "
        "market_data, rebuilt on demand."
    ),
}

# Columns that mean the same in every table that has them, unless the table says more.
_SHARED = {
    "id": "Row id, given by the database; never reused.",
    "symbol": "The market, as ccxt writes it: BASE/QUOTE, e.g. BTC/USDT.",
    "exchange": "The exchange, by its ccxt id (lowercase, e.g. kraken).",
    "strategy": "The strategy's name; empty for none.",
    "asset": "The currency, e.g. BTC.",
    "created_at": "When the row was written.",
    "updated_at": "When the row last changed (set on every update).",
}

_COLUMNS: dict[str, dict[str, str]] = {
    "trades": {
        "side": "buy or sell.",
        "amount": "Quantity filled, in the base currency (BTC of BTC/USDT).",
        "price": "Price of the fill, in the quote currency per unit of base.",
        "total_value": "amount x price, in the quote currency.",
        "fee": "Fee paid for the fill, in fee_currency.",
        "fee_currency": "Currency of the fee (the quote currency unless the exchange said).",
        "timestamp": "When the fill happened.",
        "order_id": "The order filled (crypto_orders.order_id on the same exchange).",
        "strategy": "The strategy of the order.",
        "status": "filled, partial or canceled.",
        "profit_loss": (
            "P&L the fill realised by reducing or closing a position, in the quote "
            "currency, net of the opening and closing fees; empty for a fill that opened "
            "or added to a position."
        ),
        "exchange_trade_id": "The exchange's own id of the fill; a fill is recorded once.",
        "position_id": "The position the fill opened, added to or reduced (positions.id).",
    },
    "crypto_orders": {
        "order_id": "The exchange's id of the order (its client id until the exchange answers).",
        "side": "buy or sell.",
        "order_type": "market, limit, stop_loss or take_profit.",
        "amount": "Quantity ordered, in the base currency.",
        "price": "Limit price, in the quote currency per unit of base; empty for market orders.",
        "filled_amount": "Quantity filled so far, in the base currency.",
        "remaining_amount": "Quantity still to fill, in the base currency.",
        "status": "pending, open, filled, canceled or expired.",
        "timestamp": "When the order was placed.",
        "filled_at": "When the order was completely filled.",
        "canceled_at": "When the order was canceled or expired.",
        "locked_amount": "Funds the order still holds reserved, in locked_asset.",
        "locked_asset": (
            "The asset whose wallet holds locked_amount (the quote for a buy, the base for a sell)."
        ),
        "client_order_id": "The id tradedb sent with an order it submitted.",
        "submission": (
            "How the order reached the exchange: unknown, acknowledged, rejected or "
            "adopted; empty for an order the bot recorded itself."
        ),
    },
    "positions": {
        "side": "long or short.",
        "amount": "Size held, in the base currency.",
        "entry_price": "Average entry price, in the quote currency per unit of base.",
        "current_price": "The price last marked, in the quote currency per unit of base.",
        "unrealized_pnl": "P&L of the size held at current_price, in the quote currency.",
        "realized_pnl": (
            "P&L realised by the position's closing fills, in the quote currency, net of fees."
        ),
        "status": "open or closed.",
        "opened_at": "When the position opened.",
        "closed_at": "When the position closed; empty while open.",
        "open_fees": (
            "Fees paid to open the size still held, in the quote currency; each close "
            "charges its share to its P&L."
        ),
        "cost_basis": (
            "What the size still held cost, in the quote currency (each opening fill's "
            "value, less what closes released); P&L is measured against it."
        ),
    },
    "market_data": {
        "timestamp": "When the candle opens (aligned to its timeframe).",
        "open_price": "First price of the candle, in the quote currency.",
        "high_price": "Highest price of the candle, in the quote currency.",
        "low_price": "Lowest price of the candle, in the quote currency.",
        "close_price": "Last price of the candle, in the quote currency.",
        "volume": "Quantity traded during the candle, in the base currency.",
        "timeframe": "The candle's length: 1m, 5m, 15m, 1h, 4h, 1d and the other ccxt ones.",
    },
    "tickers": {
        "bid_price": "Best bid, in the quote currency.",
        "ask_price": "Best ask, in the quote currency.",
        "last_price": "Price of the last trade, in the quote currency.",
        "volume_24h": "Quantity traded over the last 24 hours, in the base currency.",
        "price_change_24h": "Change of the price over the last 24 hours, in the quote currency.",
        "price_change_percent_24h": "Change of the price over the last 24 hours, in percent.",
        "timestamp": "When the exchange took the ticker.",
        "open_price": "Price 24 hours before the ticker, in the quote currency.",
        "high_price": "Highest price over the last 24 hours, in the quote currency.",
        "low_price": "Lowest price over the last 24 hours, in the quote currency.",
        "vwap": "Volume-weighted average price over the last 24 hours, in the quote currency.",
        "quote_volume_24h": "Value traded over the last 24 hours, in the quote currency.",
        "bid_volume": "Quantity offered at the best bid, in the base currency.",
        "ask_volume": "Quantity offered at the best ask, in the base currency.",
        "previous_close": "Close of the previous day, in the quote currency.",
    },
    "bot_config": {
        "config_key": "The setting's name.",
        "config_value": "The setting's value, as text read as config_type says.",
        "config_type": "string, number, boolean or json.",
        "description": "What the setting is for.",
        "strategy": "The strategy the setting belongs to; empty for the whole bot.",
        "is_active": "1 while the setting applies, 0 when switched off.",
    },
    "bot_logs": {
        "timestamp": "When the message was logged.",
        "level": "DEBUG, INFO, WARNING, ERROR or CRITICAL.",
        "message": "The message.",
        "module": "The module that logged it.",
        "strategy": "The strategy it concerns.",
        "exchange": "The exchange it concerns.",
        "symbol": "The market it concerns.",
        "metadata": "More about it, as JSON.",
    },
    "wallets": {
        "available_balance": "Free to trade or withdraw, in the asset.",
        "locked_balance": "Reserved by open orders, in the asset.",
        "total_balance": "available_balance + locked_balance, in the asset (generated).",
        "usd_value": "total_balance in USD at the last sync's prices; empty if unpriced.",
        "last_updated": "When the balance last changed.",
    },
    "balance_history": {
        "balance": "The balance after the change, in the asset.",
        "usd_value": "balance in USD at the row's own time; empty if unpriced.",
        "timestamp": "When the balance changed.",
        "balance_type": "available, locked or total.",
    },
    "wallet_movements": {
        "exchange": "The exchange of the wallet that changed.",
        "asset": "The asset of the wallet that changed.",
        "kind": "opening, deposit, withdrawal, lock, unlock, trade, fee or sync.",
        "available_change": "Signed change of available_balance, in the asset.",
        "locked_change": "Signed change of locked_balance, in the asset.",
        "trade_id": "The fill behind a trade or fee movement (trades.id).",
        "order_id": "The order behind a lock, unlock or fill.",
        "reference": "The caller's id of a deposit or withdrawal (e.g. a transaction hash).",
        "timestamp": "When the change happened.",
    },
    "sync_cursors": {
        "stream": "trades, orders, deposits or withdrawals.",
        "scope": "The market of a trades or orders stream; account for transfers.",
        "next_since": "The time the next fetch starts from.",
        "last_id": "The exchange's id of the newest item recorded.",
        "synced_at": "When a sync last moved the cursor.",
    },
    "reference_prices": {
        "price_usd": "The asset's price, in USD per unit.",
        "valid_from": "Start of the period the price holds for (inclusive); empty: open.",
        "valid_until": "End of the period the price holds for (exclusive); empty: open.",
        "source": "Where the price comes from.",
    },
    "candle_blocks": {
        "timeframe": "The candles' timeframe.",
        "first_ts": "Time of the block's first candle slot, epoch milliseconds UTC.",
        "end_ts": "Time just past the block's last slot, epoch milliseconds UTC.",
        "candles": "Candles in the block.",
        "data": "The candles as compressed int64 columns (LZ4).",
        "builder": "The reader building the block; empty once built.",
    },
}

_ANALYTICS = {
    "performance_metrics": PERFORMANCE_METRICS,
    "portfolio_snapshots": PORTFOLIO_SNAPSHOTS,
}


def column_description(table: str, column: str) -> str | None:
    """What a column of a table holds (None for one nobody has described yet, which a
    test refuses)."""
    defined = _ANALYTICS.get(table, {}).get(column)
    if defined is not None:
        meaning = defined["definition"]
        return f"{meaning[0].upper()}{meaning[1:]} ({defined['unit']})."
    return _COLUMNS.get(table, {}).get(column) or _SHARED.get(column)
