"""The specification's DDL, read back from SQLite, and every difference from it that
docs/schema.md documents, for the conformance tests of both engines.

`parse_spec_ddl` finds the spec's ```sql blocks and `open_spec_db` runs them into an
in-memory SQLite database, whose structure the readers below give back (PRAGMAs and
sqlite_master). tests/test_conformance.py compares it with tradedb's SQLite database,
tests/test_conformance_postgresql.py with tradedb's PostgreSQL database. The documented
differences are declared here once, as SQLite declares them; the PostgreSQL test maps
them to PostgreSQL's types.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from conftest import SPEC


@dataclass(frozen=True)
class Declared:
    """How a column of tradedb's own is declared on SQLite."""

    type: str
    notnull: bool = False
    default: str | None = None
    scale: int | None = None  # an amount in integer units of 1e-scale, with a storage guard
    precision: int | None = None  # the amount's digits where they are not the spec's own
    references: str | None = None  # "table.column" of its foreign key
    pk: bool = False


# Amounts have no declared type on SQLite (BLOB affinity), see tradedb.schema.money.
AMOUNT_UNITS = Declared("", notnull=True, default="0", scale=8)

# Columns tradedb adds to spec tables, each for a documented need:
#   trades.exchange_trade_id: the exchange's own id of a fill, so that a re-delivered fill
#   is recognised (idempotency, ARCHITECTURE decision 6) instead of being booked twice.
#   trades.position_id: the position the fill opened, grew or realised its P&L into.
#   crypto_orders.locked_amount / locked_asset: what the order still holds locked and in
#   which asset's wallet, so a fill, cancel or expiry releases exactly its own reservation.
#   crypto_orders.client_order_id / submission: the id tradedb sent with an order it
#   submitted, and how the order reached the exchange (unknown until settled).
#   positions.open_fees: fees paid to open the part still held; each closing trade is
#   charged its pro-rata share, so realised P&L is net of the fees of both legs.
#   positions.cost_basis: the quote value of the amount still held, which P&L is measured
#   against, so that equity is exactly capital plus realised and unrealised P&L.
#   tickers.open_price ... previous_close: the rest of ccxt's unified ticker, so that a
#   stored ticker reads back whole; volumes DECIMAL(38,8) as volume_24h.
TICKER_DETAILS = (
    "open_price",
    "high_price",
    "low_price",
    "vwap",
    "quote_volume_24h",
    "bid_volume",
    "ask_volume",
    "previous_close",
)
TICKER_VOLUMES = ("quote_volume_24h", "bid_volume", "ask_volume")
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    "trades": ("exchange_trade_id", "position_id"),
    "crypto_orders": ("locked_amount", "locked_asset", "client_order_id", "submission"),
    "positions": ("open_fees", "cost_basis"),
    "tickers": TICKER_DETAILS,
}
EXTRA_COLUMN_DECLARATIONS: dict[tuple[str, str], Declared] = {
    ("trades", "exchange_trade_id"): Declared("TEXT"),
    ("trades", "position_id"): Declared("INTEGER", references="positions.id"),
    ("crypto_orders", "locked_amount"): AMOUNT_UNITS,
    ("crypto_orders", "locked_asset"): Declared("TEXT"),
    ("crypto_orders", "client_order_id"): Declared("TEXT"),
    ("crypto_orders", "submission"): Declared("TEXT"),
    ("positions", "open_fees"): AMOUNT_UNITS,
    ("positions", "cost_basis"): AMOUNT_UNITS,
    **{
        ("tickers", name): Declared("", scale=8, precision=38 if name in TICKER_VOLUMES else None)
        for name in TICKER_DETAILS
    },
}

# Tables tradedb adds, column by column:
#   wallet_movements: the ledger's journal, every change of a wallet as signed amounts;
#   a wallet's balances are the sum of its movements, and the journal is never pruned;
#   sync_cursors: where each stream of an exchange account's sync goes on from;
#   reference_prices: an asset's configured USD price and the period it holds for.
EPOCH_SECONDS_DEFAULT = "strftime('%s','now')"
EXTRA_TABLES: dict[str, dict[str, Declared]] = {
    "wallet_movements": {
        "id": Declared("INTEGER", notnull=True, pk=True),
        "exchange": Declared("TEXT", notnull=True),
        "asset": Declared("TEXT", notnull=True),
        "kind": Declared("TEXT", notnull=True),
        "available_change": AMOUNT_UNITS,
        "locked_change": AMOUNT_UNITS,
        "trade_id": Declared("INTEGER", references="trades.id"),
        "order_id": Declared("TEXT"),
        "reference": Declared("TEXT"),
        "timestamp": Declared("INTEGER", notnull=True),
        "created_at": Declared("INTEGER", default=EPOCH_SECONDS_DEFAULT),
    },
    "sync_cursors": {
        "id": Declared("INTEGER", notnull=True, pk=True),
        "exchange": Declared("TEXT", notnull=True),
        "stream": Declared("TEXT", notnull=True),
        "scope": Declared("TEXT", notnull=True),
        "next_since": Declared("INTEGER", notnull=True),
        "last_id": Declared("TEXT"),
        "synced_at": Declared("INTEGER", notnull=True),
        "created_at": Declared("INTEGER", default=EPOCH_SECONDS_DEFAULT),
    },
    "reference_prices": {
        "id": Declared("INTEGER", notnull=True, pk=True),
        "asset": Declared("TEXT", notnull=True),
        "price_usd": Declared("", notnull=True, scale=8),
        "valid_from": Declared("INTEGER"),
        "valid_until": Declared("INTEGER"),
        "source": Declared("TEXT", notnull=True),
        "created_at": Declared("INTEGER", default=EPOCH_SECONDS_DEFAULT),
        "updated_at": Declared("INTEGER", default=EPOCH_SECONDS_DEFAULT),
    },
}
# Value sets of the extra columns, by table: how an order reached the exchange.
EXTRA_VALUE_SETS: dict[str, dict[str, frozenset[str]]] = {
    "crypto_orders": {"submission": frozenset({"unknown", "acknowledged", "rejected", "adopted"})}
}
# Value sets that are documented supersets of the spec's (docs/schema.md): the candles of
# every ccxt standard timeframe, not only the spec's six.
WIDER_VALUE_SETS: dict[str, dict[str, frozenset[str]]] = {
    "market_data": {
        "timeframe": frozenset(
            {"1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d"}
            | {"1w", "1M"}
        )
    }
}
MOVEMENT_KINDS = frozenset(
    {"opening", "deposit", "withdrawal", "lock", "unlock", "trade", "fee", "sync"}
)


@dataclass(frozen=True)
class IndexShape:
    """A documented extra index: its table, its keys (column names, or an expression as
    `normalise_expression` spells it) and, for a partial index, its WHERE clause (the
    same way)."""

    table: str
    keys: tuple[str, ...]
    unique: bool
    where: str | None = None


# Indexes tradedb adds, by name:
#   uq_trades_exchange_trade_id: one fill per (exchange, exchange_trade_id).
#   uq_performance_metrics_scope: UNIQUE(date, strategy, exchange) lets NULLs repeat, so the
#   portfolio-wide row of a day (strategy and exchange NULL) needs coalesce() to be unique.
#   uq_positions_open_key: one open position per (exchange, symbol, strategy), a NULL
#   strategy being a key of its own; closed positions are not constrained.
#   uq_wallet_movements_reference: a deposit or withdrawal re-recorded under the caller's
#   reference (e.g. a tx hash) is refused; movements without a reference are not constrained.
#   uq_crypto_orders_client_order_id: a client order id names one order per exchange, so
#   that submitting the same intent twice finds the first order.
#   idx_market_data_exchange_symbol_timeframe: the spec's candle index leaves out the
#   exchange, so a market's reads stepped over other exchanges' rows of the same symbol.
#   idx_reference_prices_asset: an asset's reference prices, by the start of their period.
EXTRA_INDEX_SHAPES = {
    "uq_trades_exchange_trade_id": IndexShape("trades", ("exchange", "exchange_trade_id"), True),
    "uq_performance_metrics_scope": IndexShape(
        "performance_metrics", ("date", "coalesce(strategy,'')", "coalesce(exchange,'')"), True
    ),
    "uq_positions_open_key": IndexShape(
        "positions", ("exchange", "symbol", "coalesce(strategy,'')"), True, "status='open'"
    ),
    "uq_wallet_movements_reference": IndexShape(
        "wallet_movements", ("exchange", "kind", "reference"), True, "referenceisnotnull"
    ),
    "uq_crypto_orders_client_order_id": IndexShape(
        "crypto_orders", ("exchange", "client_order_id"), True, "client_order_idisnotnull"
    ),
    "idx_market_data_exchange_symbol_timeframe": IndexShape(
        "market_data", ("exchange", "symbol", "timeframe", "timestamp"), False
    ),
    "idx_reference_prices_asset": IndexShape("reference_prices", ("asset", "valid_from"), False),
}
# The same, by name, with the table each belongs to.
EXTRA_UNIQUE_INDEXES = {
    name: shape.table for name, shape in EXTRA_INDEX_SHAPES.items() if shape.unique
}
EXTRA_INDEXES = {
    name: shape.table for name, shape in EXTRA_INDEX_SHAPES.items() if not shape.unique
}

# The candle read cache (derived data, cleared on every create and upgrade), column by
# column; its one UNIQUE key is the market and the block's start.
CACHE_TABLE_COLUMNS: dict[str, dict[str, Declared]] = {
    "candle_blocks": {
        "id": Declared("INTEGER", notnull=True, pk=True),
        "symbol": Declared("TEXT", notnull=True),
        "timeframe": Declared("TEXT", notnull=True),
        "exchange": Declared("TEXT", notnull=True),
        "first_ts": Declared("INTEGER", notnull=True),
        "end_ts": Declared("INTEGER", notnull=True),
        "candles": Declared("INTEGER"),
        "data": Declared("BLOB"),
        "builder": Declared("INTEGER"),
    },
}
CACHE_UNIQUE_KEYS = {"candle_blocks": ("symbol", "timeframe", "exchange", "first_ts")}

DECIMAL_TYPE = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)", re.IGNORECASE)

SPEC_TABLE_COUNT = 11
SPEC_INDEX_COUNT = 9


# --- the specification's DDL -------------------------------------------------------------


@dataclass(frozen=True)
class SpecDDL:
    tables: dict[str, str]  # name -> CREATE TABLE statement
    indexes: dict[str, str]  # name -> CREATE INDEX statement


def parse_spec_ddl(markdown: str) -> SpecDDL:
    blocks = re.findall(r"^```sql[ \t]*\n(.*?)^```", markdown, re.DOTALL | re.MULTILINE)
    tables: dict[str, str] = {}
    indexes: dict[str, str] = {}
    for block in blocks:
        # The spec's strings hold no "--", so stripping line comments is safe.
        code = re.sub(r"--[^\n]*", "", block)
        for statement in (part.strip() for part in code.split(";")):
            if not statement:
                continue
            table = re.match(r"CREATE\s+TABLE\s+(\w+)", statement, re.IGNORECASE)
            index = re.match(r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(\w+)", statement, re.IGNORECASE)
            if table:
                tables[table.group(1)] = statement
            elif index:
                indexes[index.group(1)] = statement
            else:
                raise AssertionError(f"unexpected statement in the spec: {statement[:60]!r}")
    return SpecDDL(tables, indexes)


SPEC_DDL = parse_spec_ddl(SPEC.read_text(encoding="utf-8"))
SPEC_TABLES = list(SPEC_DDL.tables)
# Derived data only (docs/schema.md): the candle read cache.
CACHE_TABLES = list(CACHE_TABLE_COLUMNS)
SPEC_INDEXES = list(SPEC_DDL.indexes)


def open_spec_db() -> sqlite3.Connection:
    """An in-memory SQLite database holding exactly the spec's DDL."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for statement in [*SPEC_DDL.tables.values(), *SPEC_DDL.indexes.values()]:
        conn.execute(statement)
    return conn


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    notnull: bool
    default: str | None
    pk: bool
    hidden: int


def columns(conn: sqlite3.Connection, table: str) -> list[ColumnInfo]:
    rows = conn.execute(f"PRAGMA table_xinfo({table})").fetchall()
    return [
        ColumnInfo(name, ctype, bool(notnull), default, bool(pk), hidden)
        for _cid, name, ctype, notnull, default, pk, hidden in rows
    ]


def create_sql(conn: sqlite3.Connection, table: str) -> str:
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    assert row is not None, f"table {table} does not exist"
    return str(row[0])


def balanced(text: str, start: int) -> str:
    """The text inside the parenthesis that opens at text[start]."""
    assert text[start] == "("
    depth = 0
    in_string = False
    for position in range(start, len(text)):
        char = text[position]
        if char == "'":
            in_string = not in_string
        elif not in_string and char == "(":
            depth += 1
        elif not in_string and char == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1 : position]
    raise AssertionError(f"unbalanced parentheses in {text!r}")


def check_bodies(sql: str) -> list[str]:
    return [balanced(sql, match.end() - 1) for match in re.finditer(r"\bCHECK\s*\(", sql, re.I)]


@dataclass(frozen=True)
class Checks:
    value_sets: dict[str, frozenset[str]]  # column IN ('a', 'b')
    storage_guards: dict[str, frozenset[str]]  # typeof(column) IN ('integer', ...)


def _quoted(inner: str) -> frozenset[str]:
    return frozenset(value.replace("''", "'") for value in re.findall(r"'((?:[^']|'')*)'", inner))


def parse_checks(sql: str) -> Checks:
    value_sets: dict[str, frozenset[str]] = {}
    guards: dict[str, frozenset[str]] = {}
    for body in check_bodies(sql):
        guard = re.fullmatch(
            r"\s*typeof\s*\(\s*(\w+)\s*\)\s+IN\s*\(([^)]*)\)"
            r"(\s+OR\s+\(typeof\(\1\) = 'text' AND .*\))?\s*",
            body,
            re.I | re.S,
        )
        value_set = re.fullmatch(r"\s*(\w+)\s+IN\s*\((.*)\)\s*", body, re.I | re.S)
        if guard:
            assert guard.group(1) not in guards, f"two storage guards on {guard.group(1)}"
            # "overflow": the text form of units past int64 (tradedb.schema.money).
            overflow = {"overflow"} if guard.group(3) else set()
            guards[guard.group(1)] = _quoted(guard.group(2)) | overflow
        elif value_set:
            assert value_set.group(1) not in value_sets, f"two CHECKs on {value_set.group(1)}"
            value_sets[value_set.group(1)] = _quoted(value_set.group(2))
        else:
            raise AssertionError(f"CHECK of a kind this comparison does not know: {body!r}")
    return Checks(value_sets, guards)


@dataclass(frozen=True)
class IndexInfo:
    name: str
    unique: bool
    origin: str
    columns: tuple[str | None, ...]  # None for an expression
    partial: bool = False  # has a WHERE clause


def indexes(conn: sqlite3.Connection, table: str) -> dict[str, IndexInfo]:
    found = {}
    for _seq, name, unique, origin, partial in conn.execute(f"PRAGMA index_list({table})"):
        cols = tuple(row[2] for row in conn.execute(f"PRAGMA index_info({name})"))
        found[name] = IndexInfo(name, bool(unique), origin, cols, bool(partial))
    return found


def index_sql(conn: sqlite3.Connection, name: str) -> str:
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
    ).fetchone()
    assert row is not None, f"index {name} does not exist"
    return normalise_expression(str(row[0]))


def foreign_keys(conn: sqlite3.Connection, table: str) -> set[tuple[str, str]]:
    """(column, "table.column" it references) for every foreign key of a table."""
    return {
        (row[3], f"{row[2]}.{row[4]}")
        for row in conn.execute(f"PRAGMA foreign_key_list({table})").fetchall()
    }


def decimal_columns(conn: sqlite3.Connection, table: str) -> dict[str, tuple[int, int]]:
    """Spec columns declared DECIMAL(p,s): name -> (precision, scale)."""
    found = {}
    for column in columns(conn, table):
        match = DECIMAL_TYPE.fullmatch(column.type)
        if match:
            found[column.name] = (int(match.group(1)), int(match.group(2)))
    return found


def normalise_expression(text: str) -> str:
    """Whitespace and the quoting style of an SQL expression do not change its meaning."""
    compact = re.sub(r"\s+", "", text).replace('"', "'").lower()
    # Outer parentheses around a whole expression, as in DEFAULT (strftime(...)), add nothing.
    while compact.startswith("(") and balanced(compact, 0) == compact[1:-1]:
        compact = compact[1:-1]
    return compact


# --- the parser found everything ---------------------------------------------------------


def generated_expression(sql: str, column: str) -> tuple[str, str]:
    match = re.search(rf"\b{column}\s(?:[^,(]|\([^()]*\))*?GENERATED\s+ALWAYS\s+AS\s*\(", sql, re.I)
    assert match is not None, f"{column} is not generated"
    expression = balanced(sql, match.end() - 1)
    rest = sql[match.end() + len(expression) :]
    kind = re.match(r"\)\s*(STORED|VIRTUAL)?", rest, re.I)
    assert kind is not None
    return normalise_expression(expression), (kind.group(1) or "VIRTUAL").upper()
