"""Our SQLite schema against the specification's own DDL, table by table.

The spec's ```sql blocks are executed into an in-memory SQLite database and compared, via
PRAGMAs and the CREATE statements in sqlite_master, with a fresh database made by
`Store.open`. Every difference allowed here is one that docs/schema.md documents (declared
in spec_schema.py); anything else fails, so the schema cannot drift from the specification
unnoticed. tests/test_conformance_postgresql.py does the same for PostgreSQL.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from decimal import Decimal

import pytest

import records
from records import TS
from spec_schema import (
    CACHE_TABLE_COLUMNS,
    CACHE_TABLES,
    CACHE_UNIQUE_KEYS,
    DECIMAL_TYPE,
    EXTRA_COLUMN_DECLARATIONS,
    EXTRA_COLUMNS,
    EXTRA_INDEX_SHAPES,
    EXTRA_INDEXES,
    EXTRA_TABLES,
    EXTRA_UNIQUE_INDEXES,
    EXTRA_VALUE_SETS,
    MOVEMENT_KINDS,
    SPEC_DDL,
    SPEC_INDEX_COUNT,
    SPEC_INDEXES,
    SPEC_TABLE_COUNT,
    SPEC_TABLES,
    WIDER_VALUE_SETS,
    ColumnInfo,
    Declared,
    columns,
    create_sql,
    decimal_columns,
    foreign_keys,
    generated_expression,
    index_sql,
    indexes,
    normalise_expression,
    open_spec_db,
    parse_checks,
)
from tradedb.errors import DuplicateRecord
from tradedb.models.values import AMOUNT
from tradedb.schema import tables as schema_tables
from tradedb.schema.money import ScaledDecimal
from tradedb.store import Store

# Spec type -> our declared SQLite type. DECIMAL becomes integer units of 1e-scale.
TYPE_MAP = {"INTEGER": "INTEGER", "TEXT": "TEXT", "BOOLEAN": "BOOLEAN"}
# No declared type: BLOB affinity keeps integers and the overflow text as they are.
OUR_DECIMAL_TYPE = ""
# Spec DECIMAL(20,8) columns tradedb widens to DECIMAL(38,8): meme coins' volumes.
WIDER_DECIMALS = {"market_data": ("volume",), "tickers": ("volume_24h",)}


@pytest.fixture(scope="module")
def spec_db() -> Iterator[sqlite3.Connection]:
    conn = open_spec_db()
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def our_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path = tmp_path_factory.mktemp("conformance") / "tradedb.sqlite"
    Store.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    yield conn
    conn.close()


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
            # Volumes are a documented superset, DECIMAL(38,8) (docs/schema.md).
            precision = 38 if column.name in WIDER_DECIMALS.get(table, ()) else None
            assert (spec_type.spec.precision, spec_type.spec.scale) == (
                precision or int(decimal.group(1)),
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
    wider = WIDER_VALUE_SETS.get(table, {})
    for column, values in wider.items():
        assert spec_checks.value_sets[column] < values, column
    assert our_checks.value_sets == spec_checks.value_sets | EXTRA_VALUE_SETS.get(table, {}) | wider

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
        assert allowed <= {"integer", "null", "overflow"}, name


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
        assert model.spec.precision == (declared.precision or AMOUNT.precision), where
        stored = {"integer", "overflow"} if declared.scale == AMOUNT.scale else {"integer"}
        assert guards[column.name] == (stored if declared.notnull else stored | {"null"})
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


def test_cache_table_is_declared_as_documented(our_db: sqlite3.Connection) -> None:
    for table, declared in CACHE_TABLE_COLUMNS.items():
        ours = columns(our_db, table)
        assert [column.name for column in ours] == list(declared)
        for column in ours:
            _assert_declared(our_db, table, column, declared[column.name])
        checks = parse_checks(create_sql(our_db, table))
        assert checks.value_sets == checks.storage_guards == {}
        unique = {index.columns for index in indexes(our_db, table).values() if index.unique}
        assert unique == {CACHE_UNIQUE_KEYS[table]}


@pytest.mark.parametrize("name", list(EXTRA_INDEX_SHAPES))
def test_extra_index_has_its_documented_shape(name: str, our_db: sqlite3.Connection) -> None:
    shape = EXTRA_INDEX_SHAPES[name]
    expected = (
        f"create{'unique' if shape.unique else ''}index{name}on{shape.table}"
        f"({','.join(shape.keys)})" + (f"where{shape.where}" if shape.where else "")
    )
    assert index_sql(our_db, name) == expected


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


@pytest.mark.fault("bad input")
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
    with pytest.raises(store.db.IntegrityError), store.db.transaction() as conn:
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


@pytest.mark.fault("bad input")
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


def test_total_balance_is_generated_stored_with_the_spec_expression(
    spec_db: sqlite3.Connection, our_db: sqlite3.Connection
) -> None:
    stored_generated = 3  # table_xinfo's "hidden" for GENERATED ... STORED
    spec_column = {c.name: c for c in columns(spec_db, "wallets")}["total_balance"]
    our_column = {c.name: c for c in columns(our_db, "wallets")}["total_balance"]
    assert spec_column.hidden == stored_generated
    assert our_column.hidden == stored_generated
    spec_expression = generated_expression(create_sql(spec_db, "wallets"), "total_balance")
    our_expression = generated_expression(create_sql(our_db, "wallets"), "total_balance")
    assert spec_expression == ("available_balance+locked_balance", "STORED")
    # Ours adds integers as the spec's does, and balances past int64 exactly (the
    # overflow form): test_wide_amounts.py checks both.
    assert our_expression[1] == "STORED"
    assert "thenavailable_balance+locked_balanceelse" in our_expression[0]
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
    # SQL sees exact values too (integer units on SQLite, NUMERIC on PostgreSQL), so SUM
    # and comparisons in plain SQL are exact.
    raw = store.db.connection.execute(
        "SELECT total_balance, (SELECT amount FROM trades WHERE id = ?) FROM wallets",
        (trade.id,),
    ).fetchone()
    dialect = store.db.dialect
    assert raw == (
        dialect.amount_in(Decimal("0.3"), 8, "x"),
        dialect.amount_in(Decimal(BIG), 8, "x"),
    )
    if store.db.engine == "sqlite":
        assert raw == (30_000_000, 1_234_567_890_112_345_678)
