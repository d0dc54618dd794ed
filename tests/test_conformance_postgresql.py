"""Our PostgreSQL schema against the specification's own DDL, table by table.

The spec is parsed as tests/test_conformance.py parses it: its DDL runs into an in-memory
SQLite database, read back through PRAGMAs (spec_schema.py). It is compared with a fresh
PostgreSQL database made by `Store.open(url)`, read back through pg_catalog and
information_schema. The differences allowed here are the PostgreSQL column of
docs/schema.md: PostgreSQL's spelling of the spec's types (BIGINT, TEXT, BOOLEAN,
NUMERIC(p,s)), the spec's `strftime('%s', 'now')` as an epoch expression that gives the
same second, ids drawn from a sequence, a NaN guard on every amount column, and the extra
columns, indexes and tables that both engines have. Anything else fails.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

import records
import tradedb
from conftest import new_pg_database
from spec_schema import (
    CACHE_TABLE_COLUMNS,
    CACHE_TABLES,
    CACHE_UNIQUE_KEYS,
    DECIMAL_TYPE,
    EPOCH_SECONDS_DEFAULT,
    EXTRA_COLUMN_DECLARATIONS,
    EXTRA_COLUMNS,
    EXTRA_INDEX_SHAPES,
    EXTRA_TABLES,
    EXTRA_UNIQUE_INDEXES,
    EXTRA_VALUE_SETS,
    MOVEMENT_KINDS,
    SPEC_DDL,
    SPEC_INDEXES,
    SPEC_TABLES,
    TICKER_DETAILS,
    WIDER_VALUE_SETS,
    Declared,
    columns,
    create_sql,
    decimal_columns,
    foreign_keys,
    generated_expression,
    indexes,
    normalise_expression,
    open_spec_db,
    parse_checks,
)
from tradedb.api.admin import init
from tradedb.errors import AmountOutOfRange, ValidationError
from tradedb.models.values import AMOUNT, PERCENT
from tradedb.schema import derived, migrate
from tradedb.schema import tables as tradedb_tables
from tradedb.store import Store

DOCS = Path(__file__).parents[1] / "docs" / "schema.md"

# Text columns sort by code point, as SQLite's BINARY does (docs/schema.md).
TEXT = 'text COLLATE "C"'
# Spec type (as SQLite reads the spec) -> our column's type (format_type() and collation).
TYPE_MAP = {"INTEGER": "bigint", "TEXT": TEXT, "BOOLEAN": "boolean"}
# Declared SQLite types of tradedb's own columns -> PostgreSQL (amounts by their scale).
DECLARED_TYPE_MAP = {"INTEGER": "bigint", "TEXT": TEXT, "BLOB": "bytea", "BOOLEAN": "boolean"}
AMOUNT_TYPES = {spec.scale: f"numeric({spec.precision},{spec.scale})" for spec in (AMOUNT, PERCENT)}

SPEC_TABLES_WITH_UPDATED_AT = ("trades", "crypto_orders", "positions", "bot_config", "wallets")
TABLES_WITH_UPDATED_AT = (*SPEC_TABLES_WITH_UPDATED_AT, "reference_prices")
TOUCH_FUNCTION = "trg_touch_updated_at"
BLOCK_EVENTS = ("insert", "update", "delete", "truncate")
TRIGGER_FUNCTIONS = {TOUCH_FUNCTION, *(f"trg_market_data_blocks_{e}" for e in BLOCK_EVENTS)}
INT64_MAX = 2**63 - 1


@pytest.fixture(scope="module")
def spec_db() -> Iterator[sqlite3.Connection]:
    conn = open_spec_db()
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def pg_url(request: pytest.FixtureRequest) -> str:
    """An empty database on the session's server, given tradedb's schema by Store.open."""
    url = new_pg_database(request, schema=False)
    Store.open(url).close()
    return url


@pytest.fixture(scope="module")
def pg(pg_url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


PgConn = psycopg.Connection[tuple[Any, ...]]


# --- reading PostgreSQL's catalogs ---------------------------------------------------------


def normalise_pg_expression(text: str) -> str:
    """A PostgreSQL expression as `normalise_expression` spells SQLite's: without the
    casts PostgreSQL adds to literals ('open'::text) and quotes around identifiers."""
    text = re.sub(r"('(?:[^']|'')*')::[a-z ]+", r"\1", text)
    text = re.sub(r'"(\w+)"', r"\1", text)
    return normalise_expression(text)


@dataclass(frozen=True)
class PgColumn:
    name: str
    type: str  # format_type() and any collation: bigint, text COLLATE "C", numeric(20,8)
    notnull: bool
    default: str | None  # the DEFAULT expression as PostgreSQL deparses it
    generated: str  # pg_attribute.attgenerated: "" or "s" (STORED)
    expression: str | None  # the generation expression of a generated column


def pg_columns(pg: PgConn, table: str) -> list[PgColumn]:
    rows = pg.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) || CASE "
        "WHEN a.attcollation = 0 THEN '' ELSE ' COLLATE ' || a.attcollation::regcollation END, "
        "a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attgenerated "
        "FROM pg_attribute a LEFT JOIN pg_attrdef d "
        "ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (table,),
    ).fetchall()
    return [
        PgColumn(
            name,
            kind,
            notnull,
            None if generated else expression,
            generated,
            expression if generated else None,
        )
        for name, kind, notnull, expression, generated in rows
    ]


def pg_columns_by_name(pg: PgConn, table: str) -> dict[str, PgColumn]:
    return {column.name: column for column in pg_columns(pg, table)}


def relations(pg: PgConn) -> dict[str, str]:
    """Every relation of the schema tradedb made: name -> relkind (r table, v view,
    S sequence, i index, ...)."""
    rows = pg.execute(
        "SELECT c.relname, c.relkind FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


@dataclass(frozen=True)
class PgConstraint:
    name: str
    kind: str  # c check, u unique, p primary key, f foreign key
    definition: str  # pg_get_constraintdef()
    columns: tuple[str, ...]
    references: tuple[str, ...]  # "table.column" for a foreign key
    actions: tuple[str, str, bool]  # ON UPDATE, ON DELETE, DEFERRABLE
    validated: bool


_KEY_NAMES = (
    "ARRAY(SELECT a.attname::text FROM unnest(c.{keys}) WITH ORDINALITY AS k(attnum, position) "
    "JOIN pg_attribute a ON a.attrelid = c.{relation} AND a.attnum = k.attnum "
    "ORDER BY k.position)"
)


def pg_constraints(pg: PgConn, table: str) -> list[PgConstraint]:
    rows = pg.execute(
        "SELECT c.conname, c.contype, pg_get_constraintdef(c.oid), "
        f"{_KEY_NAMES.format(keys='conkey', relation='conrelid')}, "
        "CASE WHEN c.confrelid = 0 THEN NULL ELSE c.confrelid::regclass::text END, "
        f"{_KEY_NAMES.format(keys='confkey', relation='confrelid')}, "
        "c.confupdtype, c.confdeltype, c.condeferrable, c.convalidated "
        "FROM pg_constraint c WHERE c.conrelid = %s::regclass ORDER BY c.conname",
        (table,),
    ).fetchall()
    found = []
    for (
        name,
        kind,
        definition,
        keys,
        target,
        target_keys,
        on_update,
        on_delete,
        deferrable,
        ok,
    ) in rows:
        references = tuple(f"{target}.{key}" for key in target_keys)
        found.append(
            PgConstraint(
                name,
                kind,
                definition,
                tuple(keys),
                references,
                (on_update, on_delete, deferrable),
                ok,
            )
        )
    return found


@dataclass(frozen=True)
class PgChecks:
    value_sets: dict[str, frozenset[str]]  # column IN ('a', 'b'), deparsed as = ANY (ARRAY[..])
    nan_guards: set[str]  # column <> 'NaN'


_VALUE_SET = re.compile(r"CHECK \(\((\w+) = ANY \(ARRAY\[(.*)\]\)\)\)")
_NAN_GUARD = re.compile(r"CHECK \(\((\w+) <> 'NaN'::numeric\)\)")


def pg_checks(pg: PgConn, table: str) -> PgChecks:
    value_sets: dict[str, frozenset[str]] = {}
    guards: set[str] = set()
    for constraint in pg_constraints(pg, table):
        if constraint.kind != "c":
            continue
        assert constraint.validated, constraint.name
        value_set = _VALUE_SET.fullmatch(constraint.definition)
        guard = _NAN_GUARD.fullmatch(constraint.definition)
        if value_set:
            column = value_set.group(1)
            assert column not in value_sets, f"two CHECKs on {table}.{column}"
            literals = re.findall(r"'((?:[^']|'')*)'::text", value_set.group(2))
            assert ", ".join(f"'{v}'::text" for v in literals) == value_set.group(2)
            value_sets[column] = frozenset(value.replace("''", "'") for value in literals)
            assert constraint.name == f"ck_{table}_{column}", constraint.name
        elif guard:
            column = guard.group(1)
            assert column not in guards, f"two NaN guards on {table}.{column}"
            guards.add(column)
            assert constraint.name == f"ck_{table}_{column}_not_nan", constraint.name
        else:
            raise AssertionError(f"CHECK of a kind this comparison does not know: {constraint}")
    return PgChecks(value_sets, guards)


@dataclass(frozen=True)
class PgIndex:
    name: str
    unique: bool
    primary: bool
    method: str
    keys: tuple[str, ...]  # each key column or expression, normalised
    columns: tuple[str | None, ...]  # key columns, None for an expression (as SQLite's PRAGMA)
    where: str | None  # normalised WHERE of a partial index
    options: tuple[int, ...]  # per key: 0 unless DESC or NULLS FIRST
    nulls_not_distinct: bool
    backs_constraint: bool  # the index of a PRIMARY KEY or UNIQUE constraint


def pg_indexes(pg: PgConn, table: str) -> dict[str, PgIndex]:
    rows = pg.execute(
        "SELECT i.relname, x.indisunique, x.indisprimary, am.amname, "
        "ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) "
        "FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k), "
        "ARRAY(SELECT CASE WHEN x.indkey[k - 1] = 0 THEN NULL ELSE a.attname::text END "
        "FROM generate_series(1, x.indnkeyatts) AS k LEFT JOIN pg_attribute a "
        "ON a.attrelid = x.indrelid AND a.attnum = x.indkey[k - 1] ORDER BY k), "
        "pg_get_expr(x.indpred, x.indrelid), x.indoption::int2[], "
        # indnullsnotdistinct exists from PostgreSQL 15 on; before it, NULLs are distinct.
        "coalesce((to_jsonb(x) ->> 'indnullsnotdistinct')::boolean, false), "
        "EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid "
        "AND c.conrelid = x.indrelid AND c.contype IN ('p', 'u')) "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_am am ON am.oid = i.relam WHERE x.indrelid = %s::regclass",
        (table,),
    ).fetchall()
    found = {}
    for name, unique, primary, method, keys, cols, where, options, nnd, backs in rows:
        found[name] = PgIndex(
            name,
            unique,
            primary,
            method,
            tuple(normalise_pg_expression(key) for key in keys),
            tuple(cols),
            None if where is None else normalise_pg_expression(where),
            tuple(options),
            nnd,
            backs,
        )
    return found


def free_indexes(pg: PgConn, table: str) -> dict[str, PgIndex]:
    """The indexes made by CREATE INDEX, not by a PRIMARY KEY or UNIQUE constraint."""
    return {n: i for n, i in pg_indexes(pg, table).items() if not i.backs_constraint}


# --- defaults: equivalent values, not equal spellings -----------------------------------------

_PG_LITERAL = re.compile(r"'(?:[^']|'')*'::text|-?\d+(?:\.\d+)?|true|false")
# Instants to evaluate the epoch defaults at: whole seconds, fractions below, at and above
# the half (a cast to BIGINT rounds where SQLite truncates), and just before a second.
INSTANTS = (
    "2024-01-01 00:00:00",
    "2024-01-01 00:00:00.2",
    "2024-01-01 00:00:00.5",
    "2024-01-01 00:00:00.7",
    "2026-06-30 23:59:59.999",
    "2038-01-19 03:14:07.999",
)


def _pg_value(pg: PgConn, expression: str) -> Any:
    return pg.execute(f"SELECT {expression}").fetchone()[0]  # type: ignore[index]


def _assert_epoch_default(pg: PgConn, spec_db: sqlite3.Connection, pg_default: str) -> None:
    """The spec's strftime('%s', 'now') and PostgreSQL's default give the same second at
    every instant, whatever its fraction; and now, the current second."""
    assert pg_default.count("now()") == 1, pg_default
    for instant in INSTANTS:
        (expected,) = spec_db.execute(f"SELECT CAST(strftime('%s', '{instant}') AS INTEGER)")
        fixed = pg_default.replace("now()", f"'{instant}+00'::timestamptz")
        assert _pg_value(pg, f"pg_typeof({fixed})::text") == "bigint", pg_default
        assert _pg_value(pg, fixed) == expected[0], (instant, pg_default)
    before = int(time.time())
    current = _pg_value(pg, pg_default)
    assert before <= current <= int(time.time())


def assert_default_equivalent(
    pg: PgConn,
    spec_db: sqlite3.Connection,
    *,
    where: str,
    spec_type: str,
    spec_default: str | None,
    pg_default: str | None,
) -> None:
    """`spec_default` as SQLite spells it (a spec DEFAULT, or a Declared default) and the
    PostgreSQL column's default mean the same value."""
    if spec_default is None:
        assert pg_default is None, where
        return
    assert pg_default is not None, f"{where} has no DEFAULT"
    if normalise_expression(spec_default) == EPOCH_SECONDS_DEFAULT:
        _assert_epoch_default(pg, spec_db, pg_default)
        return
    # Any other spec default is a literal, and so must ours be: a constant of the same value.
    assert _PG_LITERAL.fullmatch(pg_default), f"{where}: {pg_default}"
    (spec_value,) = spec_db.execute(f"SELECT {spec_default}").fetchone()
    ours = _pg_value(pg, pg_default)
    if DECIMAL_TYPE.fullmatch(spec_type) or spec_type == "BIGINT":
        assert Decimal(str(ours)) == Decimal(str(spec_value)), where
    elif spec_type == "BOOLEAN":
        # SQLite's true is the integer 1.
        assert ours is (spec_value == 1), where
    else:
        assert type(ours) is type(spec_value), where
        assert ours == spec_value, where


def _autoincrement(spec_db: sqlite3.Connection, table: str) -> bool:
    return bool(
        re.search(
            r"\bid\s+INTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT", create_sql(spec_db, table), re.I
        )
    )


def assert_id_from_sequence(pg: PgConn, table: str, column: PgColumn) -> None:
    """AUTOINCREMENT on PostgreSQL: a bigint drawn from a sequence of its own, so ids are
    never reused (never rolled back, either: a rollback can leave a gap)."""
    assert column.type == "bigint", table
    assert column.notnull, table
    assert column.default == f"nextval('{table}_id_seq'::regclass)", table
    schema = _pg_value(pg, "current_schema()")
    assert _pg_value(pg, f"pg_get_serial_sequence('{table}', 'id')") == f"{schema}.{table}_id_seq"
    sequence = pg.execute(
        "SELECT data_type::text, start_value, min_value, max_value, increment_by, cycle "
        "FROM pg_sequences WHERE schemaname = current_schema() AND sequencename = %s",
        (f"{table}_id_seq",),
    ).fetchone()
    assert sequence == ("bigint", 1, 1, INT64_MAX, 1, False), table


# --- the whole schema --------------------------------------------------------------------


ALL_OUR_TABLES = [*SPEC_TABLES, *EXTRA_TABLES, *CACHE_TABLES]


def test_our_tables_are_the_spec_tables(pg: PgConn) -> None:
    tables = {name for name, kind in relations(pg).items() if kind in "rpf"}
    assert tables == {*ALL_OUR_TABLES, "alembic_version"}
    # information_schema agrees: base tables, nothing else of that kind.
    listed = pg.execute(
        "SELECT table_name::text, table_type::text FROM information_schema.tables "
        "WHERE table_schema = current_schema()"
    ).fetchall()
    assert {name for name, kind in listed if kind == "BASE TABLE"} == tables


def test_the_schema_holds_nothing_undocumented(pg: PgConn) -> None:
    """Tables, the readable views, one id sequence per table, indexes; nothing else."""
    by_kind: dict[str, set[str]] = {}
    for name, kind in relations(pg).items():
        by_kind.setdefault(kind, set()).add(name)
    assert set(by_kind) == {"r", "v", "S", "i"}
    assert by_kind["v"] == {
        f"{name}{derived.VIEW_SUFFIX}" for name in [*SPEC_TABLES, *EXTRA_TABLES]
    }
    assert by_kind["S"] == {f"{name}_id_seq" for name in ALL_OUR_TABLES}
    indexes_of_tables = set()
    for table in [*ALL_OUR_TABLES, "alembic_version"]:
        indexes_of_tables |= set(pg_indexes(pg, table))
    assert by_kind["i"] == indexes_of_tables

    functions = pg.execute(
        "SELECT p.proname::text, p.prorettype::regtype::text, l.lanname::text FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang "
        "WHERE n.nspname = current_schema()"
    ).fetchall()
    assert {name for name, _, _ in functions} == TRIGGER_FUNCTIONS
    assert {(kind, language) for _, kind, language in functions} == {("trigger", "plpgsql")}

    # Nor anything else a database can hold: types or domains of its own (beyond the row
    # and array types of its tables), operators, extensions, rules, policies.
    others = {kind: pg.execute(sql).fetchall() for kind, sql in OTHER_OBJECTS.items()}
    assert others == {kind: [] for kind in OTHER_OBJECTS}


_IN_SCHEMA = "JOIN pg_namespace n ON n.oid = {0} WHERE n.nspname = current_schema()"
OTHER_OBJECTS = {
    "types": "SELECT t.typname FROM pg_type t "
    + _IN_SCHEMA.format("t.typnamespace")
    + " AND t.typrelid = 0 AND t.typelem = 0",
    "operators": "SELECT o.oprname FROM pg_operator o " + _IN_SCHEMA.format("o.oprnamespace"),
    "extensions": "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'",
    "rules": "SELECT rulename FROM pg_rules WHERE schemaname = current_schema()",
    "policies": "SELECT policyname FROM pg_policies WHERE schemaname = current_schema()",
}


_TRIGGER = re.compile(
    r"CREATE TRIGGER (\w+) (BEFORE|AFTER) (\w+) ON \S+ (?:REFERENCING .*? )?"
    r"FOR EACH (ROW|STATEMENT) (?:WHEN \(.*\) )?EXECUTE FUNCTION (\w+)\(\)"
)


def test_triggers_are_the_documented_ones(pg: PgConn) -> None:
    rows = pg.execute(
        "SELECT t.tgname::text, c.relname::text, pg_get_triggerdef(t.oid), t.tgenabled::text "
        "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND NOT t.tgisinternal"
    ).fetchall()
    found = {}
    for name, table, definition, enabled in rows:
        match = _TRIGGER.fullmatch(definition)
        assert match is not None, definition
        assert match.group(1) == name
        assert enabled == "O", name  # fires (on origin), as every trigger does by default
        found[name] = (table, match.group(2), match.group(3), match.group(4), match.group(5))
    expected = {
        f"trg_{table}_updated_at": (table, "BEFORE", "UPDATE", "ROW", TOUCH_FUNCTION)
        for table in TABLES_WITH_UPDATED_AT
    }
    for event in BLOCK_EVENTS:
        name = f"trg_market_data_blocks_{event}"
        expected[name] = ("market_data", "AFTER", event.upper(), "STATEMENT", name)
    assert found == expected


def test_tables_with_updated_at_are_the_spec_ones(spec_db: sqlite3.Connection) -> None:
    with_updated_at = [
        t for t in SPEC_TABLES if "updated_at" in {c.name for c in columns(spec_db, t)}
    ]
    assert with_updated_at == list(SPEC_TABLES_WITH_UPDATED_AT)


def test_readable_views_show_the_columns_of_their_tables_amounts_with_their_text(
    pg: PgConn,
) -> None:
    for table in [*SPEC_TABLES, *EXTRA_TABLES]:
        ours = pg_columns_by_name(pg, table)
        view = pg_columns(pg, f"{table}{derived.VIEW_SUFFIX}")
        readable = derived.readable_columns(tradedb_tables.metadata.tables[table])
        assert [c.name for c in view] == [c.name for c in readable], table
        for column, shown in zip(readable, view, strict=True):
            # Amounts stay NUMERIC; their exact text is a cast's and a time's ISO text is
            # to_char's, in the database's default collation.
            text = column.form in ("exact", "utc")
            expected = 'text COLLATE "default"' if text else ours[column.source].type
            assert shown.type == expected, f"{table}.{column.name}"


def test_spec_indexes_and_documented_extras_are_all_the_indexes(
    spec_db: sqlite3.Connection, pg: PgConn
) -> None:
    found = {}
    for table in ALL_OUR_TABLES:
        found |= {name: table for name in free_indexes(pg, table)}
    query = "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    spec = dict(spec_db.execute(query).fetchall())
    assert set(spec) == set(SPEC_DDL.indexes)
    assert found == spec | {name: shape.table for name, shape in EXTRA_INDEX_SHAPES.items()}


# --- per spec table ----------------------------------------------------------------------


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_columns_are_the_spec_columns_in_order_plus_documented_extras(
    table: str, spec_db: sqlite3.Connection, pg: PgConn
) -> None:
    spec_names = [column.name for column in columns(spec_db, table)]
    our_names = [column.name for column in pg_columns(pg, table)]
    assert our_names[: len(spec_names)] == spec_names
    assert tuple(our_names[len(spec_names) :]) == EXTRA_COLUMNS.get(table, ())
    # information_schema lists the same columns in the same order.
    listed = pg.execute(
        "SELECT column_name::text FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    assert [name for (name,) in listed] == our_names


def _pg_type(spec_type: str) -> str:
    decimal = DECIMAL_TYPE.fullmatch(spec_type)
    if decimal:
        return f"numeric({decimal.group(1)},{decimal.group(2)})"
    assert spec_type in TYPE_MAP, f"spec type {spec_type}"
    return TYPE_MAP[spec_type]


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_types_are_the_spec_types_as_postgresql_spells_them(
    table: str, spec_db: sqlite3.Connection, pg: PgConn
) -> None:
    ours = pg_columns_by_name(pg, table)
    # Volumes are a documented superset: DECIMAL(38,8), for meme coins' trillions.
    wider = {"market_data": "volume", "tickers": "volume_24h"}
    for column in columns(spec_db, table):
        expected = _pg_type(column.type)
        if wider.get(table) == column.name:
            assert expected == "numeric(20,8)"
            expected = "numeric(38,8)"
        assert ours[column.name].type == expected, f"{table}.{column.name}"


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_not_null_flags_match(table: str, spec_db: sqlite3.Connection, pg: PgConn) -> None:
    ours = pg_columns_by_name(pg, table)
    for column in columns(spec_db, table):
        if column.pk:
            # A primary key is NOT NULL on PostgreSQL, as the rowid it is on SQLite.
            assert ours[column.name].notnull, column.name
            continue
        assert ours[column.name].notnull == column.notnull, f"{table}.{column.name}"


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_defaults_are_equivalent(table: str, spec_db: sqlite3.Connection, pg: PgConn) -> None:
    ours = pg_columns_by_name(pg, table)
    for column in columns(spec_db, table):
        where = f"{table}.{column.name}"
        if column.pk:
            assert column.default is None, where
            assert _autoincrement(spec_db, table), where
            assert_id_from_sequence(pg, table, ours[column.name])
            continue
        assert_default_equivalent(
            pg,
            spec_db,
            where=where,
            spec_type=column.type,
            spec_default=column.default,
            pg_default=ours[column.name].default,
        )


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_check_value_sets_match_and_only_nan_guards_are_extra(
    table: str, spec_db: sqlite3.Connection, pg: PgConn
) -> None:
    spec_checks = parse_checks(create_sql(spec_db, table))
    assert spec_checks.storage_guards == {}
    ours = pg_checks(pg, table)
    wider = WIDER_VALUE_SETS.get(table, {})
    assert ours.value_sets == spec_checks.value_sets | EXTRA_VALUE_SETS.get(table, {}) | wider
    # The guard stands where SQLite's integer-storage guard stands: on every amount.
    extra_amounts = {
        column
        for (owner, column), declared in EXTRA_COLUMN_DECLARATIONS.items()
        if owner == table and declared.scale is not None
    }
    assert ours.nan_guards == set(decimal_columns(spec_db, table)) | extra_amounts


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_unique_keys_match_plus_documented_extras(
    table: str, spec_db: sqlite3.Connection, pg: PgConn
) -> None:
    spec_unique = {index.columns for index in indexes(spec_db, table).values() if index.unique}
    constraints = pg_constraints(pg, table)
    our_unique = {c.columns for c in constraints if c.kind == "u"}
    assert our_unique == spec_unique
    # NULLs stay distinct, as in SQLite's UNIQUE (the documented extra indexes handle the
    # NULL cases that matter).
    assert not any(index.nulls_not_distinct for index in pg_indexes(pg, table).values())
    extras = {name for name, index in free_indexes(pg, table).items() if index.unique}
    assert extras == {name for name, owner in EXTRA_UNIQUE_INDEXES.items() if owner == table}

    spec_pk = tuple(column.name for column in columns(spec_db, table) if column.pk)
    assert [c.columns for c in constraints if c.kind == "p"] == [spec_pk]


@pytest.mark.parametrize("table", SPEC_TABLES)
def test_foreign_keys_are_the_specs_plus_documented_extras(
    table: str, spec_db: sqlite3.Connection, pg: PgConn
) -> None:
    extras = {
        (column, declared.references)
        for (owner, column), declared in EXTRA_COLUMN_DECLARATIONS.items()
        if owner == table and declared.references is not None
    }
    ours = [c for c in pg_constraints(pg, table) if c.kind == "f"]
    found = set()
    for constraint in ours:
        (column,) = constraint.columns
        (target,) = constraint.references
        found.add((column, target))
        # NO ACTION on update and delete, checked at once: SQLite's defaults.
        assert constraint.actions == ("a", "a", False), constraint.name
    assert found == foreign_keys(spec_db, table) | extras


@pytest.mark.parametrize("index", SPEC_INDEXES)
def test_spec_index_exists_with_same_columns(
    index: str, spec_db: sqlite3.Connection, pg: PgConn
) -> None:
    query = "SELECT tbl_name FROM sqlite_master WHERE type = 'index' AND name = ?"
    (table,) = spec_db.execute(query, (index,)).fetchone()
    spec_index = indexes(spec_db, table)[index]
    ours = free_indexes(pg, table).get(index)
    assert ours is not None, f"index {index} is missing on {table}"
    assert ours.columns == spec_index.columns
    assert ours.keys == spec_index.columns
    assert ours.unique == spec_index.unique
    assert (ours.method, ours.where, set(ours.options)) == ("btree", None, {0})


@pytest.mark.parametrize("name", list(EXTRA_INDEX_SHAPES))
def test_extra_index_has_its_documented_shape(name: str, pg: PgConn) -> None:
    shape = EXTRA_INDEX_SHAPES[name]
    index = free_indexes(pg, shape.table)[name]
    assert (index.keys, index.unique, index.where) == (shape.keys, shape.unique, shape.where)
    assert (index.method, set(index.options)) == ("btree", {0})


def test_total_balance_is_generated_stored_with_the_spec_expression(
    spec_db: sqlite3.Connection, pg: PgConn
) -> None:
    spec_expression = generated_expression(create_sql(spec_db, "wallets"), "total_balance")
    assert spec_expression == ("available_balance+locked_balance", "STORED")
    column = pg_columns_by_name(pg, "wallets")["total_balance"]
    assert column.generated == "s"  # STORED
    assert column.expression is not None
    assert normalise_pg_expression(column.expression) == spec_expression[0]
    assert column.type == "numeric(20,8)"
    assert not column.notnull
    listed = pg.execute(
        "SELECT is_generated, generation_expression, data_type, numeric_precision, "
        "numeric_scale FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'wallets' AND column_name = 'total_balance'"
    ).fetchone()
    assert listed is not None
    assert listed[0] == "ALWAYS"
    assert normalise_pg_expression(listed[1]) == spec_expression[0]
    assert listed[2:] == ("numeric", 20, 8)
    # No other column of any table is generated.
    for table in ALL_OUR_TABLES:
        generated = [c.name for c in pg_columns(pg, table) if c.generated]
        assert generated == (["total_balance"] if table == "wallets" else []), table


# --- tradedb's own columns and tables ---------------------------------------------------------


def _assert_declared(
    pg: PgConn,
    spec_db: sqlite3.Connection,
    table: str,
    column: PgColumn,
    declared: Declared,
) -> None:
    where = f"{table}.{column.name}"
    if declared.precision is not None:
        assert column.type == f"numeric({declared.precision},{declared.scale})", where
    elif declared.scale is not None:
        assert column.type == AMOUNT_TYPES[declared.scale], where
    else:
        assert column.type == DECLARED_TYPE_MAP[declared.type], where
    assert column.notnull == declared.notnull, where
    assert column.generated == "", where
    if declared.pk:
        assert_id_from_sequence(pg, table, column)
    else:
        assert_default_equivalent(
            pg,
            spec_db,
            where=where,
            spec_type=declared.type,
            spec_default=declared.default,
            pg_default=column.default,
        )
    guards = pg_checks(pg, table).nan_guards
    assert (column.name in guards) == (declared.scale is not None), where
    references = {
        target
        for constraint in pg_constraints(pg, table)
        if constraint.kind == "f" and constraint.columns == (column.name,)
        for target in constraint.references
    }
    assert references == ({declared.references} if declared.references else set()), where
    primary = [c.columns for c in pg_constraints(pg, table) if c.kind == "p"]
    assert ((column.name,) in primary) == declared.pk, where


@pytest.mark.parametrize(
    "where", [f"{table}.{column}" for table, column in EXTRA_COLUMN_DECLARATIONS]
)
def test_extra_columns_are_declared_as_documented(
    where: str, spec_db: sqlite3.Connection, pg: PgConn
) -> None:
    table, name = where.split(".")
    column = pg_columns_by_name(pg, table)[name]
    _assert_declared(pg, spec_db, table, column, EXTRA_COLUMN_DECLARATIONS[(table, name)])


def test_wallet_movements_is_declared_as_documented(
    spec_db: sqlite3.Connection, pg: PgConn
) -> None:
    table = "wallet_movements"
    declared = EXTRA_TABLES[table]
    ours = pg_columns(pg, table)
    assert [column.name for column in ours] == list(declared)
    for column in ours:
        _assert_declared(pg, spec_db, table, column, declared[column.name])
    checks = pg_checks(pg, table)
    assert checks.value_sets == {"kind": MOVEMENT_KINDS}
    # Its only UNIQUE key is the documented reference index (and no UNIQUE constraint).
    assert [c for c in pg_constraints(pg, table) if c.kind == "u"] == []
    unique = {name for name, index in free_indexes(pg, table).items() if index.unique}
    assert unique == {name for name, owner in EXTRA_UNIQUE_INDEXES.items() if owner == table}


def test_cache_table_is_declared_as_documented(spec_db: sqlite3.Connection, pg: PgConn) -> None:
    for table, declared in CACHE_TABLE_COLUMNS.items():
        ours = pg_columns(pg, table)
        assert [column.name for column in ours] == list(declared)
        for column in ours:
            _assert_declared(pg, spec_db, table, column, declared[column.name])
        assert pg_checks(pg, table) == PgChecks({}, set())
        unique = [c.columns for c in pg_constraints(pg, table) if c.kind == "u"]
        assert unique == [CACHE_UNIQUE_KEYS[table]]
        assert free_indexes(pg, table) == {}


def test_every_allowed_difference_is_named_in_the_schema_docs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    named = [
        *(f"{table}.{column}" for table, column in EXTRA_COLUMN_DECLARATIONS),
        *EXTRA_TABLES,
        *CACHE_TABLES,
        *EXTRA_INDEX_SHAPES,
        *TRIGGER_FUNCTIONS,
        "_not_nan",
        "_id_seq",
        "NUMERIC(20,8)",
        "NUMERIC(10,4)",
        "BYTEA",
        "floor(EXTRACT(EPOCH FROM now()))",
        'COLLATE "C"',
    ]
    missing = [name for name in named if f"{name}" not in text]
    assert missing == []


# --- text order ----------------------------------------------------------------------------

# Sorted by code point (Python's and SQLite's order); a collation that ignores punctuation,
# as glibc's en_US.UTF-8 does, puts BTCUP/USDT first.
SYMBOLS = ["BTC/USD", "BTCUP/USDT", "ETH/BTC", "ETHBULL/USDT"]
PUNCTUATION_BLIND = "en-US-u-ka-shifted"  # ICU: English, punctuation ignorable


def test_text_sorts_by_code_point_whatever_the_database_collation(
    pg_server: Any, request: pytest.FixtureRequest
) -> None:
    name = f"collation_{next(_databases)}"
    with pg_server.admin() as admin:
        if admin.info.server_version < 150000:
            pytest.skip("a database's ICU collation needs PostgreSQL 15")
        if not admin.execute("SELECT 1 FROM pg_collation WHERE collprovider = 'i'").fetchone():
            pytest.skip("this PostgreSQL is built without ICU")
        admin.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 LOCALE 'C' "
            f"LOCALE_PROVIDER icu ICU_LOCALE '{PUNCTUATION_BLIND}'"
        )
    request.addfinalizer(lambda: pg_server.drop_database(name))
    url = pg_server.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        values = ", ".join(f"('{symbol}')" for symbol in SYMBOLS)
        unsorted = conn.execute(f"SELECT s FROM (VALUES {values}) AS v(s) ORDER BY s").fetchall()
        assert [s for (s,) in unsorted] != SYMBOLS  # the database's own order is another

    with Store.open(url) as store:
        for symbol in reversed(SYMBOLS):
            store.write_candles(
                [[records.CANDLE_TS, "1", "1", "1", "1", "1"]],
                exchange="binance",
                symbol=symbol,
                timeframe="1h",
            )
        ordered = store.db.connection.execute(
            "SELECT symbol FROM market_data ORDER BY symbol"
        ).fetchall()
        assert [symbol for (symbol,) in ordered] == SYMBOLS
        assert [c.symbol for c in store.market.coverage(None)] == SYMBOLS


_databases = itertools.count(1)


# --- exact values ------------------------------------------------------------------------------

BIG = "12345678901.12345678"
MS = 1_700_000_000_000
# The largest values NUMERIC(20,8) and NUMERIC(10,4) hold: beyond SQLite's 64-bit units.
AMOUNT_MAX = "999999999999.99999999"
PERCENT_MAX = "999999.9999"


def _insert_trade(conn: PgConn, amount: str) -> None:
    conn.execute(
        "INSERT INTO trades (symbol, side, amount, price, total_value, timestamp, exchange) "
        f"VALUES ('BTC/USDT', 'buy', {amount}, 1, {amount}, {MS}, 'kraken')"
    )


def test_amounts_are_exact_in_sql(request: pytest.FixtureRequest) -> None:
    with psycopg.connect(new_pg_database(request), autocommit=True) as conn:
        _insert_trade(conn, BIG)
        assert conn.execute(
            f"SELECT amount, amount::text, amount = {BIG} FROM trades"
        ).fetchone() == (Decimal(BIG), BIG, True)

        conn.execute(
            "INSERT INTO wallets (exchange, asset, available_balance, locked_balance, "
            f"last_updated) VALUES ('kraken', 'BTC', 0.1, 0.2, {MS})"
        )
        assert conn.execute(
            "SELECT total_balance, total_balance::text, total_balance = 0.3 FROM wallets"
        ).fetchone() == (Decimal("0.3"), "0.30000000", True)

        # SUM is exact: ten times 0.1 is 1 (in binary floating point it is not).
        conn.execute(
            "INSERT INTO balance_history (exchange, asset, balance, timestamp) "
            "SELECT 'kraken', 'BTC', 0.1, g FROM generate_series(1, 10) AS g"
        )
        assert conn.execute("SELECT SUM(balance)::text FROM balance_history").fetchone() == (
            "1.00000000",
        )
        _insert_trade(conn, "0.00000001")
        assert conn.execute("SELECT SUM(amount) FROM trades").fetchone() == (
            Decimal("12345678901.12345679"),
        )

        # The full NUMERIC range, and not a digit more.
        _insert_trade(conn, AMOUNT_MAX)
        assert conn.execute("SELECT max(amount)::text FROM trades").fetchone() == (AMOUNT_MAX,)
        with pytest.raises(psycopg.errors.NumericValueOutOfRange):
            _insert_trade(conn, "1000000000000")
        conn.execute(
            "INSERT INTO tickers (symbol, last_price, price_change_percent_24h, timestamp, "
            f"exchange) VALUES ('BTC/USDT', 1, {PERCENT_MAX}, {MS}, 'kraken')"
        )
        with pytest.raises(psycopg.errors.NumericValueOutOfRange):
            conn.execute("UPDATE tickers SET price_change_percent_24h = 1000000")


@pytest.mark.fault("bad input")
def test_nan_is_refused_by_the_guard(request: pytest.FixtureRequest) -> None:
    with psycopg.connect(new_pg_database(request), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.CheckViolation) as info:
            conn.execute(
                "INSERT INTO wallets (exchange, asset, available_balance, last_updated) "
                f"VALUES ('kraken', 'BTC', 'NaN', {MS})"
            )
        assert info.value.diag.constraint_name == "ck_wallets_available_balance_not_nan"
        # Infinity never fits a NUMERIC with a precision: the type refuses it by itself.
        with pytest.raises(psycopg.errors.NumericValueOutOfRange):
            _insert_trade(conn, "'Infinity'")


def test_sql_rounds_more_decimals_than_the_column_holds(request: pytest.FixtureRequest) -> None:
    # Documented: PostgreSQL's NUMERIC(20,8) rounds ad-hoc SQL input to 8 decimals (a
    # CHECK sees only the rounded value). tradedb's own writes refuse such input instead.
    with psycopg.connect(new_pg_database(request), autocommit=True) as conn:
        _insert_trade(conn, "0.123456785")
        assert conn.execute("SELECT amount::text FROM trades").fetchone() == ("0.12345679",)


def test_amounts_are_exact_through_the_store(request: pytest.FixtureRequest) -> None:
    with Store.open(new_pg_database(request)) as store:
        trade = store.trades.insert(
            {
                "symbol": "BTC/USDT",
                "side": "buy",
                "amount": BIG,
                "price": "1",
                "total_value": AMOUNT_MAX,
                "timestamp": MS,
                "exchange": "kraken",
            }
        )
        stored = store.trades.get(trade.id)
        assert stored is not None
        assert (stored.amount, stored.total_value) == (Decimal(BIG), Decimal(AMOUNT_MAX))

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
        for n in range(10):
            store.balance_history.insert(
                {"exchange": "kraken", "asset": "BTC", "balance": 0.1, "timestamp": MS + n}
            )
        conn = store.db.connection
        raw = conn.execute(
            "SELECT (SELECT total_balance FROM wallets), (SELECT SUM(balance) FROM "
            "balance_history), (SELECT amount FROM trades WHERE id = ?)",
            (trade.id,),
        ).fetchone()
        assert raw == (Decimal("0.3"), Decimal("1"), Decimal(BIG))
        assert all(type(value) is Decimal for value in raw)

        # What NUMERIC would round or cannot hold, the store refuses.
        with pytest.raises(ValidationError):
            store.trades.insert(records.trade(amount="0.123456785"))
        with pytest.raises(AmountOutOfRange):
            store.trades.insert(records.trade(amount="1000000000000"))
        with pytest.raises(ValidationError):
            store.trades.insert(records.trade(amount="NaN"))
        assert store.trades.count() == 1


# --- upgrades ------------------------------------------------------------------------------


def test_a_database_at_0004_upgrades_to_the_schema_of_a_new_one(
    request: pytest.FixtureRequest, pg: PgConn
) -> None:
    """PostgreSQL databases made at 0004 gain the order submission columns in place; the
    table must end up as a new database has it, and its orders keep their rows."""
    url = new_pg_database(request)
    with psycopg.connect(url, autocommit=True) as old:
        # The table as revision 0004 made it, holding an order (the upgrade makes the
        # views again from the tables as they are then).
        old.execute("DROP VIEW crypto_orders_readable")
        old.execute("DROP TABLE reference_prices CASCADE")  # 0008's
        old.execute(  # 0009's
            "ALTER TABLE tickers "
            + ", ".join(f"DROP COLUMN {column} CASCADE" for column in TICKER_DETAILS)
        )
        old.execute("ALTER TABLE positions DROP COLUMN cost_basis CASCADE")  # 0010's
        old.execute("DROP INDEX uq_crypto_orders_client_order_id")
        old.execute("ALTER TABLE crypto_orders DROP CONSTRAINT ck_crypto_orders_submission")
        old.execute("ALTER TABLE crypto_orders DROP COLUMN submission")
        old.execute("ALTER TABLE crypto_orders DROP COLUMN client_order_id")
        old.execute("UPDATE alembic_version SET version_num = '0004'")
        old.execute(
            "INSERT INTO crypto_orders (order_id, symbol, side, order_type, amount, price, "
            "status, exchange, timestamp) VALUES ('o-1', 'BTC/USD', 'buy', 'limit', "
            "0.5, 30000.12345678, 'open', 'kraken', 1700000000000)"
        )
    status = init(url)
    assert (status.before, status.after) == ("0004", migrate.head_revision())
    with psycopg.connect(url, autocommit=True) as upgraded:
        assert pg_columns(upgraded, "crypto_orders") == pg_columns(pg, "crypto_orders")
        assert pg_constraints(upgraded, "crypto_orders") == pg_constraints(pg, "crypto_orders")
        assert pg_indexes(upgraded, "crypto_orders") == pg_indexes(pg, "crypto_orders")
    with tradedb.open(url) as db:
        order = db.ledger.order("kraken", "o-1")
    assert order is not None
    assert (order.price, order.client_order_id, order.submission) == (
        Decimal("30000.12345678"),
        None,
        None,
    )
