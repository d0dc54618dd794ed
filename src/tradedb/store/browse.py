"""The SQL behind `tradedb browse`: the read-only connections Datasette reads through and
the canned queries it offers (tradedb.services.browse describes them).

Every sum over amounts is exact (`exact_sum`), rendered as fixed-point text by the
readable views' own renderer, with a REAL beside it that sorts as a number.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tradedb.models.values import AMOUNT
from tradedb.schema.derived import fixed_point_sql, iso_utc_sql, number_sql, readable_columns
from tradedb.schema.tables import positions
from tradedb.store.engines.sqlite import BUSY_TIMEOUT_MS, add_exact_functions, read_only_uri

# profit_loss and fee, the amounts summed here, are DECIMAL(20,8).
AMOUNT_SCALE = AMOUNT.scale


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write `path`: opened read-only (not immutable, so a live
    bot's commits in WAL mode are seen) and `query_only` besides. It has the exact sums."""
    conn = sqlite3.connect(read_only_uri(path), uri=True, check_same_thread=False)
    conn.execute("PRAGMA query_only = ON")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    add_exact_functions(conn)
    return conn


def exact_sum(column: str) -> str:
    """The exact sum of an amount column's units, as an integer or past int64 the overflow
    form. SQLite's own sum() adds the integers at C speed, their parts above and below
    10^9 units apart so that neither sum leaves int64 (as the store's exact sums do);
    tradedb's units_sum() adds the values past int64 (a Python call per value, 0.7 s for
    300,000 where sum() takes 0.2 s); units_add() puts the three together exactly."""
    split = 10**_SPLIT_DIGITS
    integer = f"FILTER (WHERE typeof({column}) = 'integer')"
    return (
        f"units_add(coalesce(sum({column} / {split}) {integer}, 0) || '{'0' * _SPLIT_DIGITS}', "
        f"coalesce(sum({column} % {split}) {integer}, 0), "
        f"coalesce(units_sum({column}) FILTER (WHERE typeof({column}) = 'text'), 0))"
    )


_SPLIT_DIGITS = 9


def _amount_columns(units: str, name: str) -> str:
    """`units` summed, as a number and as exact text beside it."""
    return (
        f"{number_sql(units, AMOUNT_SCALE)} AS {name}, "
        f"{fixed_point_sql(units, AMOUNT_SCALE)} AS {name}_exact"
    )


# ccxt's symbols are BASE/QUOTE, and BASE/QUOTE:SETTLE for derivatives.
_AFTER_SLASH = "substr(symbol, instr(symbol, '/') + 1)"
_QUOTE = (
    f"CASE WHEN instr({_AFTER_SLASH}, ':') > 0 "
    f"THEN substr({_AFTER_SLASH}, 1, instr({_AFTER_SLASH}, ':') - 1) ELSE {_AFTER_SLASH} END"
)
_SIGN = number_sql("profit_loss", AMOUNT_SCALE)

# Realised P&L: the closing fills' profit_loss (in the quote currency, net of fees). About
# 0.7 s on 300,000 fills on a busy 2-core machine, most of it grouping them.
PNL_BY_STRATEGY = (
    "SELECT strategy, exchange, quote, closing_fills, winning, losing, "
    f"{_amount_columns('units', 'realized_pnl')} FROM ("
    f"SELECT strategy, exchange, {_QUOTE} AS quote, count(*) AS closing_fills, "
    f"count(CASE WHEN {_SIGN} > 0 THEN 1 END) AS winning, "
    f"count(CASE WHEN {_SIGN} < 0 THEN 1 END) AS losing, "
    f"{exact_sum('profit_loss')} AS units FROM trades WHERE profit_loss IS NOT NULL "
    "GROUP BY strategy, exchange, quote) "
    "ORDER BY quote, realized_pnl DESC, strategy, exchange"
)

_OPEN_POSITION_COLUMNS = (
    "exchange",
    "symbol",
    "strategy",
    "side",
    *(
        column.name
        for column in readable_columns(positions)
        if column.form in ("number", "exact") or column.source == "opened_at"
    ),
    "id",
)
OPEN_POSITIONS = (
    f"SELECT {', '.join(_OPEN_POSITION_COLUMNS)} FROM positions_readable "
    "WHERE status = 'open' ORDER BY exchange, symbol, strategy"
)

FEES_BY_CURRENCY = (
    f"SELECT currency, fills, {_amount_columns('units', 'fees')} FROM ("
    f"SELECT fee_currency AS currency, count(*) AS fills, {exact_sum('fee')} AS units "
    "FROM trades WHERE fee <> 0 GROUP BY fee_currency) ORDER BY currency"
)

# Answered from the index on (exchange, symbol, timeframe, timestamp), never the rows.
CANDLE_COVERAGE = (
    "SELECT exchange, symbol, timeframe, "
    f"first_candle, {iso_utc_sql('first_candle')} AS first_candle_utc, "
    f"last_candle, {iso_utc_sql('last_candle')} AS last_candle_utc, candles FROM ("
    "SELECT exchange, symbol, timeframe, min(timestamp) AS first_candle, "
    "max(timestamp) AS last_candle, count(*) AS candles FROM market_data "
    "GROUP BY exchange, symbol, timeframe) ORDER BY exchange, symbol, timeframe"
)

QUERIES = {
    "pnl_by_strategy": PNL_BY_STRATEGY,
    "open_positions": OPEN_POSITIONS,
    "fees_by_currency": FEES_BY_CURRENCY,
    "candle_coverage": CANDLE_COVERAGE,
}
