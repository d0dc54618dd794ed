"""Our schema against the specification's own DDL, table by table.

The spec's ```sql blocks are executed into an in-memory SQLite database and compared, via
PRAGMAs and the CREATE statements in sqlite_master, with a fresh database made by
`Store.open`. Every difference allowed here is one that docs/schema.md documents; anything
else fails, so the schema cannot drift from the specification unnoticed.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

import records
from conftest import SPEC
from records import TS
from tradedb.errors import DuplicateRecord
from tradedb.schema import tables as schema_tables
from tradedb.schema.money import ScaledDecimal
from tradedb.store import Store


@dataclass(frozen=True)
class Declared:
    """How a column of tradedb's own is declared on SQLite."""

    type: str
    notnull: bool = False
    default: str | None = None
    scale: int | None = None  # an amount in integer units of 1e-scale, with a storage guard
    references: str | None = None  # "table.column" of its foreign key
    pk: bool = False


AMOUNT_UNITS = Declared("BIGINT", notnull=True, default="0", scale=8)

# Columns tradedb adds to spec tables, each for a documented need:
#   trades.exchange_trade_id: the exchange's own id of a fill, so that a re-delivered fill
#   is recognised (idempotency, ARCHITECTURE decision 6) instead of being booked twice.
#   trades.position_id: the position the fill opened, grew or realised its P&L into.
#   crypto_orders.locked_amount / locked_asset: what the order still holds locked and in
#   which asset's wallet, so a fill, cancel or expiry releases exactly its own reservation.
#   positions.open_fees: fees paid to open the part still held; each closing trade is
#   charged its pro-rata share, so realised P&L is net of the fees of both legs.
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    "trades": ("exchange_trade_id", "position_id"),
    "crypto_orders": ("locked_amount", "locked_asset"),
    "positions": ("open_fees",),
}
EXTRA_COLUMN_DECLARATIONS: dict[tuple[str, str], Declared] = {
    ("trades", "exchange_trade_id"): Declared("TEXT"),
    ("trades", "position_id"): Declared("INTEGER", references="positions.id"),
    ("crypto_orders", "locked_amount"): AMOUNT_UNITS,
    ("crypto_orders", "locked_asset"): Declared("TEXT"),
    ("positions", "open_fees"): AMOUNT_UNITS,
}

# Tables tradedb adds, column by column:
#   wallet_movements: the ledger's journal, every change of a wallet as signed amounts;
#   a wallet's balances are the sum of its movements, and the journal is never pruned.
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
}
MOVEMENT_KINDS = frozenset(
    {"opening", "deposit", "withdrawal", "lock", "unlock", "trade", "fee", "sync"}
)

# UNIQUE indexes tradedb adds, by name, with the table they belong to:
#   uq_trades_exchange_trade_id: one fill per (exchange, exchange_trade_id).
#   uq_performance_metrics_scope: UNIQUE(date, strategy, exchange) lets NULLs repeat, so the
#   portfolio-wide row of a day (strategy and exchange NULL) needs coalesce() to be unique.
#   uq_positions_open_key: one open position per (exchange, symbol, strategy), a NULL
#   strategy being a key of its own; closed positions are not constrained.
#   uq_wallet_movements_reference: a deposit or withdrawal re-recorded under the caller's
#   reference (e.g. a tx hash) is refused; movements without a reference are not constrained.
EXTRA_UNIQUE_INDEXES = {
    "uq_trades_exchange_trade_id": "trades",
    "uq_performance_metrics_scope": "performance_metrics",
    "uq_positions_open_key": "positions",
    "uq_wallet_movements_reference": "wallet_movements",
}

# Plain indexes tradedb adds, by name, with their table:
#   idx_market_data_exchange_symbol_timeframe: the spec's candle index leaves out the
#   exchange, so a market's reads stepped over other exchanges' rows of the same symbol.
EXTRA_INDEXES = {"idx_market_data_exchange_symbol_timeframe": "market_data"}

DECIMAL_TYPE = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)", re.IGNORECASE)
# Spec type -> our declared SQLite type. DECIMAL becomes integer units of 1e-scale.
TYPE_MAP = {"INTEGER": "INTEGER", "TEXT": "TEXT", "BOOLEAN": "BOOLEAN"}
OUR_DECIMAL_TYPE = "BIGINT"

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
CACHE_TABLES = ["candle_blocks"]
SPEC_INDEXES = list(SPEC_DDL.indexes)


@pytest.fixture(scope="module")
def spec_db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for statement in [*SPEC_DDL.tables.values(), *SPEC_DDL.indexes.values()]:
        conn.execute(statement)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def our_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path = tmp_path_factory.mktemp("conformance") / "tradedb.sqlite"
    Store.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    yield conn
    conn.close()


# --- reading a schema back -----------------------------------------------------------------


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


def _balanced(text: str, start: int) -> str:
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
    return [_balanced(sql, match.end() - 1) for match in re.finditer(r"\bCHECK\s*\(", sql, re.I)]


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
        guard = re.fullmatch(r"\s*typeof\s*\(\s*(\w+)\s*\)\s+IN\s*\((.*)\)\s*", body, re.I | re.S)
        value_set = re.fullmatch(r"\s*(\w+)\s+IN\s*\((.*)\)\s*", body, re.I | re.S)
        if guard:
            assert guard.group(1) not in guards, f"two storage guards on {guard.group(1)}"
            guards[guard.group(1)] = _quoted(guard.group(2))
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
    while compact.startswith("(") and _balanced(compact, 0) == compact[1:-1]:
        compact = compact[1:-1]
    return compact


# --- the parser found everything ---------------------------------------------------------


def test_spec_ddl_has_11_tables_and_9_indexes(spec_db: sqlite3.Connection) -> None:
    assert len(SPEC_DDL.tables) == SPEC_TABLE_COUNT, sorted(SPEC_DDL.tables)
    assert len(SPEC_DDL.indexes) == SPEC_INDEX_COUNT, sorted(SPEC_DDL.indexes)
    # Every statement ran: the in-memory database holds exactly what was parsed.
    created = {
        (kind, name)
        for kind, name in spec_db.execute(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        )
    }
    expected = {("table", name) for name in SPEC_DDL.tables}
    expected |= {("index", name) for name in SPEC_DDL.indexes}
    assert created == expected


def test_our_tables_are_the_spec_tables(our_db: sqlite3.Connection) -> None:
    ours = {
        name
        for (name,) in our_db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    assert ours == {*SPEC_TABLES, *EXTRA_TABLES, *CACHE_TABLES, "alembic_version"}
    assert [table.name for table in schema_tables.SPEC_TABLES] == SPEC_TABLES
    assert [table.name for table in schema_tables.CACHE_TABLES] == CACHE_TABLES
    assert [table.name for table in schema_tables.EXTRA_TABLES] == list(EXTRA_TABLES)
    assert schema_tables.ALL_TABLES == schema_tables.SPEC_TABLES + schema_tables.EXTRA_TABLES


def test_our_indexes_are_the_spec_indexes_plus_documented_extras(
    spec_db: sqlite3.Connection, our_db: sqlite3.Connection
) -> None:
    query = "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    ours = dict(our_db.execute(query).fetchall())
    expected = dict(spec_db.execute(query).fetchall())
    assert set(expected) == set(SPEC_INDEXES)
    expected |= EXTRA_UNIQUE_INDEXES | EXTRA_INDEXES
    assert ours == expected


# --- per table ---------------------------------------------------------------------------


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_columns_are_the_spec_columns_in_order_plus_documented_extras(
    table: str, spec_db: sqlite3.Connection, our_db: sqlite3.Connection
) -> None:
    spec_names = [column.name for column in columns(spec_db, table)]
    our_names = [column.name for column in columns(our_db, table)]
    assert [name for name in our_names if name in spec_names] == spec_names
    extras = tuple(name for name in our_names if name not in spec_names)
    assert extras == EXTRA_COLUMNS.get(table, ())


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_types_differ_only_by_decimal_as_integer_units(
    table: str, spec_db: sqlite3.Connection, our_db: sqlite3.Connection
) -> None:
    ours = {column.name: column for column in columns(our_db, table)}
    model = schema_tables.metadata.tables[table]
    for column in columns(spec_db, table):
        decimal = DECIMAL_TYPE.fullmatch(column.type)
        if decimal:
            assert ours[column.name].type == OUR_DECIMAL_TYPE, column.name
            # The unit is 1e-scale of the spec's own DECIMAL(p,s): DECIMAL(10,4) columns
            # must not be stored in units of 1e-8 or the other way round.
            spec_type = model.c[column.name].type
            assert isinstance(spec_type, ScaledDecimal), column.name
            assert (spec_type.spec.precision, spec_type.spec.scale) == (
                int(decimal.group(1)),
                int(decimal.group(2)),
            ), column.name
        else:
            assert column.type in TYPE_MAP, f"spec type {column.type} of {column.name}"
            assert ours[column.name].type == TYPE_MAP[column.type], column.name


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_not_null_flags_match(
    table: str, spec_db: sqlite3.Connection, our_db: sqlite3.Connection
) -> None:
    ours = {column.name: column for column in columns(our_db, table)}
    for column in columns(spec_db, table):
        mine = ours[column.name]
        assert mine.pk == column.pk, column.name
        if column.pk and column.type == "INTEGER":
            # `id INTEGER PRIMARY KEY` is the rowid, which can never hold NULL; SQLAlchemy
            # spells it with NOT NULL, the spec without. Same behaviour either way.
            continue
        assert mine.notnull == column.notnull, column.name


def _expected_default(spec_column: ColumnInfo) -> str | None:
    """The spec's DEFAULT as our schema must spell it."""
    default = spec_column.default
    if default is None:
        return None
    decimal = DECIMAL_TYPE.fullmatch(spec_column.type)
    if decimal:
        units = Decimal(default).scaleb(int(decimal.group(2)))
        assert units == units.to_integral_value(), spec_column.name
        return str(int(units))
    if spec_column.type == "BOOLEAN":
        return {"true": "1", "false": "0"}.get(default.lower(), default)
    return normalise_expression(default)


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_defaults_match(
    table: str, spec_db: sqlite3.Connection, our_db: sqlite3.Connection
) -> None:
    ours = {column.name: column for column in columns(our_db, table)}
    for column in columns(spec_db, table):
        expected = _expected_default(column)
        actual = ours[column.name].default
        if DECIMAL_TYPE.fullmatch(column.type) or column.type == "BOOLEAN":
            assert actual == expected, column.name
        else:
            assert (None if actual is None else normalise_expression(actual)) == expected, (
                column.name
            )


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_check_value_sets_match_and_only_storage_guards_are_extra(
    table: str, spec_db: sqlite3.Connection, our_db: sqlite3.Connection
) -> None:
    spec_checks = parse_checks(create_sql(spec_db, table))
    our_checks = parse_checks(create_sql(our_db, table))
    assert spec_checks.storage_guards == {}
    assert our_checks.value_sets == spec_checks.value_sets

    # A guard on exactly the spec's DECIMAL columns and the documented extra amount
    # columns refuses any non-integer storage, so a float or text written by ad-hoc SQL
    # cannot bypass the exact encoding.
    extra_amounts = {
        column
        for (owner, column), declared in EXTRA_COLUMN_DECLARATIONS.items()
        if owner == table and declared.scale is not None
    }
    assert set(our_checks.storage_guards) == set(decimal_columns(spec_db, table)) | extra_amounts
    for name, allowed in our_checks.storage_guards.items():
        assert "integer" in allowed, name
        assert allowed <= {"integer", "null"}, name


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_unique_keys_match_plus_documented_extras(
    table: str, spec_db: sqlite3.Connection, our_db: sqlite3.Connection
) -> None:
    spec_unique = {index.columns for index in indexes(spec_db, table).values() if index.unique}
    ours = [index for index in indexes(our_db, table).values() if index.unique]
    our_unique = {index.columns for index in ours if index.name not in EXTRA_UNIQUE_INDEXES}
    extras = {index.name for index in ours if index.name in EXTRA_UNIQUE_INDEXES}
    assert our_unique == spec_unique
    assert extras == {name for name, owner in EXTRA_UNIQUE_INDEXES.items() if owner == table}

    spec_pk = [column.name for column in columns(spec_db, table) if column.pk]
    our_pk = [column.name for column in columns(our_db, table) if column.pk]
    assert our_pk == spec_pk


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_foreign_keys_are_the_specs_plus_documented_extras(
    table: str, spec_db: sqlite3.Connection, our_db: sqlite3.Connection
) -> None:
    extras = {
        (column, declared.references)
        for (owner, column), declared in EXTRA_COLUMN_DECLARATIONS.items()
        if owner == table and declared.references is not None
    }
    assert foreign_keys(our_db, table) == foreign_keys(spec_db, table) | extras


def _assert_declared(
    conn: sqlite3.Connection, table: str, column: ColumnInfo, declared: Declared
) -> None:
    where = f"{table}.{column.name}"
    assert column.type == declared.type, where
    assert column.pk == declared.pk, where
    assert column.notnull == declared.notnull, where
    actual_default = None if column.default is None else normalise_expression(column.default)
    assert actual_default == declared.default, where
    assert column.hidden == 0, where  # not generated
    guards = parse_checks(create_sql(conn, table)).storage_guards
    model = schema_tables.metadata.tables[table].c[column.name].type
    if declared.scale is None:
        assert column.name not in guards, where
        assert not isinstance(model, ScaledDecimal), where
    else:
        # Integer units of 1e-scale, and a guard that refuses floats and text (and NULL
        # when the column is NOT NULL).
        assert isinstance(model, ScaledDecimal), where
        assert model.spec.scale == declared.scale, where
        assert guards[column.name] == ({"integer"} if declared.notnull else {"integer", "null"})
    references = {target for name, target in foreign_keys(conn, table) if name == column.name}
    assert references == ({declared.references} if declared.references else set()), where


def test_every_extra_column_has_a_declaration() -> None:
    listed = {(table, name) for table, names in EXTRA_COLUMNS.items() for name in names}
    assert set(EXTRA_COLUMN_DECLARATIONS) == listed


@pytest.mark.parametrize(
    "where", [f"{table}.{column}" for table, column in EXTRA_COLUMN_DECLARATIONS]
)
def test_extra_columns_are_declared_as_documented(where: str, our_db: sqlite3.Connection) -> None:
    table, name = where.split(".")
    column = {column.name: column for column in columns(our_db, table)}[name]
    _assert_declared(our_db, table, column, EXTRA_COLUMN_DECLARATIONS[(table, name)])


def test_wallet_movements_is_declared_as_documented(our_db: sqlite3.Connection) -> None:
    table = "wallet_movements"
    declared = EXTRA_TABLES[table]
    ours = columns(our_db, table)
    assert [column.name for column in ours] == list(declared)
    for column in ours:
        _assert_declared(our_db, table, column, declared[column.name])

    sql = create_sql(our_db, table)
    # Ids are never reused, as in every spec table.
    assert re.search(r"\bid\s+INTEGER\s+NOT\s+NULL\s+PRIMARY\s+KEY\s+AUTOINCREMENT", sql, re.I)
    checks = parse_checks(sql)
    assert checks.value_sets == {"kind": MOVEMENT_KINDS}
    assert set(schema_tables.MOVEMENT_KINDS) == MOVEMENT_KINDS
    assert set(checks.storage_guards) == {
        name for name, column in declared.items() if column.scale is not None
    }
    # Its only UNIQUE key is the documented reference index (and no UNIQUE constraint).
    unique = {index.name for index in indexes(our_db, table).values() if index.unique}
    assert unique == {name for name, owner in EXTRA_UNIQUE_INDEXES.items() if owner == table}


def test_extra_unique_indexes_cover_what_their_reason_says(our_db: sqlite3.Connection) -> None:
    fills = indexes(our_db, "trades")["uq_trades_exchange_trade_id"]
    assert fills.columns == ("exchange", "exchange_trade_id")

    scope = indexes(our_db, "performance_metrics")["uq_performance_metrics_scope"]
    assert scope.columns == ("date", None, None)  # two expressions after the date
    (sql,) = our_db.execute(
        "SELECT sql FROM sqlite_master WHERE name = 'uq_performance_metrics_scope'"
    ).fetchone()
    assert "coalesce(strategy,'')" in normalise_expression(sql)
    assert "coalesce(exchange,'')" in normalise_expression(sql)

    open_key = indexes(our_db, "positions")["uq_positions_open_key"]
    assert open_key.columns == ("exchange", "symbol", None)  # coalesce(strategy, '')
    assert open_key.unique
    assert open_key.partial
    sql = index_sql(our_db, "uq_positions_open_key")
    assert "(exchange,symbol,coalesce(strategy,''))" in sql
    assert sql.endswith("wherestatus='open'")

    reference = indexes(our_db, "wallet_movements")["uq_wallet_movements_reference"]
    assert reference.columns == ("exchange", "kind", "reference")
    assert reference.unique
    assert reference.partial
    assert index_sql(our_db, "uq_wallet_movements_reference").endswith("wherereferenceisnotnull")


def test_open_position_key_refuses_a_second_open_position(store: Store) -> None:
    first = store.positions.insert(records.position(strategy="a"))
    with pytest.raises(DuplicateRecord) as info:
        store.positions.insert(records.position(strategy="a", amount="2", opened_at=TS + 1))
    assert "UNIQUE" in info.value.rule
    assert store.positions.list().items == [first]

    # Any other strategy, symbol or exchange is another key.
    store.positions.insert(records.position(strategy="b"))
    store.positions.insert(records.position(strategy="a", symbol="ETH/USDT"))
    store.positions.insert(records.position(strategy="a", exchange="binance"))
    assert store.positions.count() == 4


def test_open_position_key_treats_a_null_strategy_as_a_key_of_its_own(store: Store) -> None:
    # NULL and 'a' are different keys...
    store.positions.insert(records.position(strategy="a"))
    no_strategy = store.positions.insert(records.position())
    assert no_strategy.strategy is None
    # ...and NULL does not escape the key as NULLs do in a plain UNIQUE.
    with pytest.raises(DuplicateRecord):
        store.positions.insert(records.position(amount="2"))
    raw = (
        "INSERT INTO positions (symbol, side, amount, entry_price, exchange, opened_at) "
        "VALUES ('BTC/USDT', 'short', 1, 1, 'kraken', 1700000000000)"
    )
    with pytest.raises(sqlite3.IntegrityError), store.db.transaction() as conn:
        conn.execute(raw)
    assert store.positions.count() == 2


def test_open_position_key_leaves_closed_positions_alone(store: Store) -> None:
    closed = [
        store.positions.insert(
            records.position(status="closed", opened_at=TS + n, closed_at=TS + n)
        )
        for n in range(2)
    ]
    held = store.positions.insert(records.position(opened_at=TS + 2))
    assert store.positions.count() == 3

    # Reopening a closed one while another is open on the same key is refused...
    with pytest.raises(DuplicateRecord):
        store.positions.update(closed[0].id, {"status": "open", "closed_at": None})
    assert store.positions.count({"status": "open"}) == 1
    # ...and closing the open one frees the key for the next position.
    store.positions.update(held.id, {"status": "closed", "closed_at": TS + 3})
    store.positions.insert(records.position(opened_at=TS + 4))
    assert store.positions.count({"status": "open"}) == 1
    assert store.positions.count() == 4


def movement(**changes: object) -> dict[str, object]:
    return {
        "exchange": "kraken",
        "asset": "BTC",
        "kind": "deposit",
        "available_change": "1.5",
        "timestamp": TS,
        **changes,
    }


def test_movement_reference_refuses_the_same_deposit_twice(store: Store) -> None:
    first = store.movements.insert(movement(reference="0xabc"))
    with pytest.raises(DuplicateRecord) as info:
        store.movements.insert(movement(reference="0xabc", timestamp=TS + 1))
    assert "UNIQUE" in info.value.rule
    assert store.movements.list().items == [first]

    # The key is (exchange, kind, reference): another kind or exchange is another key.
    store.movements.insert(movement(reference="0xabc", kind="withdrawal", available_change="-1"))
    store.movements.insert(movement(reference="0xabc", exchange="binance"))
    # The asset is not part of it: one reference names one transfer of one exchange.
    with pytest.raises(DuplicateRecord):
        store.movements.insert(movement(reference="0xabc", asset="ETH"))
    assert store.movements.count() == 3


def test_movements_without_a_reference_are_not_constrained(store: Store) -> None:
    for _ in range(3):
        store.movements.insert(movement())
        store.movements.insert(movement(kind="lock", available_change="-1", locked_change="1"))
    assert store.movements.count({"reference": None}) == 6


@pytest.mark.parametrize("index", SPEC_INDEXES)
def test_spec_index_exists_with_same_columns(
    index: str, spec_db: sqlite3.Connection, our_db: sqlite3.Connection
) -> None:
    query = "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ?"
    (spec_table,) = spec_db.execute(query, (index,)).fetchone()
    found = our_db.execute(query, (index,)).fetchone()
    assert found is not None, f"index {index} is missing"
    assert found[0] == spec_table
    spec_index = indexes(spec_db, spec_table)[index]
    our_index = indexes(our_db, spec_table)[index]
    assert our_index.columns == spec_index.columns
    assert our_index.unique == spec_index.unique


def _generated_expression(sql: str, column: str) -> tuple[str, str]:
    match = re.search(rf"\b{column}\s(?:[^,(]|\([^()]*\))*?GENERATED\s+ALWAYS\s+AS\s*\(", sql, re.I)
    assert match is not None, f"{column} is not generated"
    expression = _balanced(sql, match.end() - 1)
    rest = sql[match.end() + len(expression) :]
    kind = re.match(r"\)\s*(STORED|VIRTUAL)?", rest, re.I)
    assert kind is not None
    return normalise_expression(expression), (kind.group(1) or "VIRTUAL").upper()


def test_total_balance_is_generated_stored_with_the_spec_expression(
    spec_db: sqlite3.Connection, our_db: sqlite3.Connection
) -> None:
    stored_generated = 3  # table_xinfo's "hidden" for GENERATED ... STORED
    spec_column = {c.name: c for c in columns(spec_db, "wallets")}["total_balance"]
    our_column = {c.name: c for c in columns(our_db, "wallets")}["total_balance"]
    assert spec_column.hidden == stored_generated
    assert our_column.hidden == stored_generated
    spec_expression = _generated_expression(create_sql(spec_db, "wallets"), "total_balance")
    our_expression = _generated_expression(create_sql(our_db, "wallets"), "total_balance")
    assert our_expression == spec_expression == ("available_balance+locked_balance", "STORED")
    # No other column of any table is generated, in either schema.
    for table in SPEC_TABLES:
        for conn in (spec_db, our_db):
            generated = [c.name for c in columns(conn, table) if c.hidden]
            assert generated == (["total_balance"] if table == "wallets" else []), table


# --- the float problem the encoding exists for ---------------------------------------------

BIG = "12345678901.12345678"
MS = 1_700_000_000_000


def test_spec_ddl_loses_digits_and_adds_floats(spec_db: sqlite3.Connection) -> None:
    spec_db.execute("SAVEPOINT float_demo")
    try:
        spec_db.execute(
            "INSERT INTO trades (symbol, side, amount, price, total_value, timestamp, exchange) "
            "VALUES ('BTC/USDT', 'buy', ?, '1', ?, ?, 'kraken')",
            (BIG, BIG, MS),
        )
        amount, kind = spec_db.execute("SELECT amount, typeof(amount) FROM trades").fetchone()
        assert kind == "real"
        assert Decimal(repr(amount)) != Decimal(BIG)

        spec_db.execute(
            "INSERT INTO wallets (exchange, asset, available_balance, locked_balance, "
            "last_updated) VALUES ('kraken', 'BTC', '0.1', '0.2', ?)",
            (MS,),
        )
        (total,) = spec_db.execute("SELECT total_balance FROM wallets").fetchone()
        assert repr(total) == "0.30000000000000004"
    finally:
        spec_db.execute("ROLLBACK TO float_demo")
        spec_db.execute("RELEASE float_demo")


def test_our_schema_keeps_the_same_values_exact(store: Store) -> None:
    trade = store.trades.insert(
        {
            "symbol": "BTC/USDT",
            "side": "buy",
            "amount": BIG,
            "price": "1",
            "total_value": BIG,
            "timestamp": MS,
            "exchange": "kraken",
        }
    )
    assert trade.amount == Decimal(BIG)
    stored = store.trades.get(trade.id)
    assert stored is not None
    assert stored.amount == Decimal(BIG)

    wallet = store.wallets.upsert(
        {
            "exchange": "kraken",
            "asset": "BTC",
            "available_balance": "0.1",
            "locked_balance": "0.2",
            "last_updated": MS,
        }
    )
    assert wallet.total_balance == Decimal("0.3")
    # SQL sees exact integer units too, so SUM and comparisons in plain SQL are exact.
    raw = store.db.connection.execute(
        "SELECT total_balance, typeof(total_balance), "
        "(SELECT amount FROM trades WHERE id = ?) FROM wallets",
        (trade.id,),
    ).fetchone()
    assert raw == (30_000_000, "integer", 1_234_567_890_112_345_678)
