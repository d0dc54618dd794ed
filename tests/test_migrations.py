"""Creating, upgrading and recognising tradedb databases; the derived views and triggers."""

from __future__ import annotations

import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import catalog
from conftest import DATA, sha256
from records import TS, trade
from tradedb.errors import SchemaVersionError
from tradedb.schema import derived, migrate
from tradedb.schema.tables import ALL_TABLES, SPEC_TABLES
from tradedb.store import Store

SPEC_TABLE_NAMES = [table.name for table in SPEC_TABLES]
TABLE_NAMES = [table.name for table in ALL_TABLES]
TABLES_WITH_UPDATED_AT = [
    "trades",
    "crypto_orders",
    "positions",
    "bot_config",
    "wallets",
    "reference_prices",
]

# A database left behind by each older revision, holding data, lives in
# tests/data/tradedb-<rev>.sqlite (the first one, revision 0001, is tradedb-v1.sqlite and
# is built by tests/data/make_v1_fixture.py). When a revision is added, commit the fixture
# of the revision it replaces as head, so that every upgrade step is tested with data.
V1_FIXTURE = DATA / "tradedb-v1.sqlite"
FIXTURE_NAMES = {"0001": V1_FIXTURE.name}


def fixture_for(revision: str) -> Path:
    return DATA / FIXTURE_NAMES.get(revision, f"tradedb-{revision}.sqlite")


# --- helpers -------------------------------------------------------------------------------


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def normalise_sql(sql: str) -> str:
    return " ".join(sql.replace('"', "").split())


def schema_of(path: Path) -> list[tuple[str, str, str, str]]:
    """Every table, index, view and trigger, with its CREATE statement normalised."""
    conn = connect(path)
    try:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE sql IS NOT NULL ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()
    return [(kind, name, table, normalise_sql(sql)) for kind, name, table, sql in rows]


def data_tables(conn: sqlite3.Connection) -> list[str]:
    return [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != ? ORDER BY name",
            (migrate.VERSION_TABLE,),
        )
    ]


def column_names(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_xinfo({table})")]


def rows_of(path: Path, like: dict[str, list[str]] | None = None) -> dict[str, list[Any]]:
    """All rows of every table, each value with its Python type (so 1 and 1.0 differ).

    `like` maps table -> columns to read, so an upgraded database can be read with the
    columns the old one had (a later revision may add columns; it must not lose any).
    """
    conn = connect(path)
    try:
        tables = like or {table: column_names(conn, table) for table in data_tables(conn)}
        # sqlite_sequence is keyed by table name; a rebuilt table moves its row.
        order = {"sqlite_sequence": "name"}
        return {
            table: [
                tuple((type(value).__name__, value) for value in row)
                for row in conn.execute(
                    f"SELECT {', '.join(cols)} FROM {table} ORDER BY {order.get(table, 'rowid')}"
                )
            ]
            for table, cols in tables.items()
        }
    finally:
        conn.close()


def columns_by_table(path: Path) -> dict[str, list[str]]:
    conn = connect(path)
    try:
        return {table: column_names(conn, table) for table in data_tables(conn)}
    finally:
        conn.close()


def revision_of(path: Path) -> str | None:
    conn = connect(path)
    try:
        return migrate.status(conn).current
    finally:
        conn.close()


def fresh_schema(folder: Path) -> list[tuple[str, str, str, str]]:
    path = folder / "fresh.sqlite"
    Store.open(path).close()
    return schema_of(path)


# --- create and upgrade --------------------------------------------------------------------


def test_upgrade_creates_an_empty_file_at_head(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    path.touch()
    result = migrate.upgrade(path)
    assert result.current == result.head == migrate.head_revision()
    assert result.up_to_date

    conn = connect(path)
    try:
        state = migrate.status(conn)
        objects = set(conn.execute("SELECT type, name FROM sqlite_master WHERE sql NOT NULL"))
    finally:
        conn.close()
    assert state.current == state.head
    assert state.up_to_date
    assert {name for kind, name in objects if kind == "table"} >= {
        *TABLE_NAMES,
        migrate.VERSION_TABLE,
    }
    assert {name for kind, name in objects if kind == "view"} == {
        f"{name}_readable" for name in TABLE_NAMES
    }
    # Everything Store.open would create, and nothing else.
    assert schema_of(path) == fresh_schema(tmp_path)


def test_upgrading_twice_is_a_no_op_that_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "twice.sqlite"
    migrate.upgrade(path)
    with Store.open(path) as store:
        store.trades.insert(trade(amount="0.00000001", exchange_trade_id="T-1"))
        store.wallets.upsert(
            {"exchange": "kraken", "asset": "BTC", "available_balance": "0.1", "last_updated": TS}
        )
    schema, rows = schema_of(path), rows_of(path)

    again = migrate.upgrade(path)

    assert again.up_to_date
    assert schema_of(path) == schema
    assert rows_of(path) == rows
    with Store.open(path) as store:
        assert [t.amount for t in store.trades.list().items] == [Decimal("0.00000001")]


def check_upgrade_keeps_everything(fixture: Path, tmp_path: Path) -> None:
    """Upgrade a copy of `fixture`: every row survives and the schema equals a fresh one."""
    assert fixture.is_file(), f"missing fixture {fixture} (see the comment on V1_FIXTURE)"
    path = tmp_path / fixture.name
    shutil.copyfile(fixture, path)
    columns_before = columns_by_table(path)
    rows_before = rows_of(path)
    assert all(rows_before[table] for table in SPEC_TABLE_NAMES), "fixture has empty tables"

    result = migrate.upgrade(path)

    assert result.current == migrate.head_revision()
    assert revision_of(path) == migrate.head_revision()
    rows_after = rows_of(path, like=columns_before)
    # A new table may start its AUTOINCREMENT counter; the old counters must be unchanged.
    old_tables = {("str", table) for table in columns_before}
    rows_after["sqlite_sequence"] = [
        row for row in rows_after["sqlite_sequence"] if row[0] in old_tables
    ]
    assert rows_after == rows_before
    assert schema_of(path) == fresh_schema(tmp_path)


def test_v1_fixture_upgrades_to_head_keeping_every_row(tmp_path: Path) -> None:
    assert revision_of(V1_FIXTURE) == "0001"
    check_upgrade_keeps_everything(V1_FIXTURE, tmp_path)

    # And the upgraded database reads back through the API with exact values.
    with Store.open(tmp_path / V1_FIXTURE.name) as store:
        amounts = [t.amount for t in store.trades.list().items]
        assert amounts == [
            Decimal("0.00000001"),
            Decimal("12345678901.12345678"),
            Decimal("92233720368.54775807"),
        ]
        wallet = store.wallets.list({"asset": "BTC"}).items[0]
        assert wallet.total_balance == Decimal("0.3")


# Every revision but the head, oldest first; empty while 0001 is the only revision.
@pytest.mark.parametrize("revision", migrate.revisions()[:-1])
def test_each_older_revision_upgrades_to_head_keeping_every_row(
    revision: str, tmp_path: Path
) -> None:
    fixture = fixture_for(revision)
    assert revision_of(fixture) == revision
    check_upgrade_keeps_everything(fixture, tmp_path)


def test_v1_fixture_is_the_first_revision() -> None:
    # The fixture naming above assumes 0001 is the root of the revision history.
    assert migrate.revisions()[0] == "0001"
    assert migrate.revisions()[-1] == migrate.head_revision()


# --- databases tradedb must not touch ------------------------------------------------------


@pytest.mark.fault("bad input")
def test_newer_schema_is_refused_as_newer(db_path: Path) -> None:
    Store.open(db_path).close()
    conn = connect(db_path)
    conn.execute(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '9999'")
    conn.close()

    with pytest.raises(SchemaVersionError, match="newer") as caught:
        Store.open(db_path)
    assert "9999" in str(caught.value)
    assert revision_of(db_path) == "9999"


def make_foreign(path: Path) -> None:
    conn = connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('not a trading database')")
    conn.close()


@pytest.mark.fault("bad input")
def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    make_foreign(path)

    with pytest.raises(SchemaVersionError, match="not a tradedb database"):
        Store.open(path)

    conn = connect(path)
    try:
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
        assert names == ["notes"]
        assert conn.execute("SELECT body FROM notes").fetchall() == [("not a trading database",)]
    finally:
        conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite"]


def test_foreign_sqlite_file_is_left_byte_for_byte_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    make_foreign(path)
    before = sha256(path)

    with pytest.raises(SchemaVersionError):
        Store.open(path)

    assert sha256(path) == before


# --- derived objects -------------------------------------------------------------------------


def test_readable_views_exist_for_every_table_with_all_columns(store: Store) -> None:
    assert catalog.views(store) == {f"{name}_readable" for name in TABLE_NAMES}
    for table in ALL_TABLES:
        shown = catalog.columns(store, f"{table.name}_readable")
        assert shown == [column.name for column in derived.readable_columns(table)]
        # Every column of the table under its own name, in order; the others beside them.
        assert [name for name in shown if name in table.columns] == catalog.columns(
            store, table.name
        )


def test_readable_views_render_exact_fixed_point_text(store: Store) -> None:
    first = store.trades.insert(trade(amount="0.00000001", profit_loss="-1234.56789012", fee=None))
    second = store.trades.insert(
        trade(amount="92233720368.54775807", profit_loss="-0.00000001", fee="0")
    )
    store.tickers.insert(
        {
            "symbol": "BTC/USDT",
            "last_price": "37000",
            "price_change_percent_24h": "-2.5",
            "timestamp": TS,
            "exchange": "kraken",
        }
    )
    store.wallets.upsert(
        {
            "exchange": "kraken",
            "asset": "BTC",
            "available_balance": "0.1",
            "locked_balance": "0.2",
            "last_updated": TS,
        }
    )
    conn = store.db.connection
    query = "SELECT amount_exact, profit_loss_exact, fee_exact FROM trades_readable WHERE id = ?"
    assert conn.execute(query, (first.id,)).fetchone() == ("0.00000001", "-1234.56789012", None)
    assert conn.execute(query, (second.id,)).fetchone() == (
        "92233720368.54775807",
        "-0.00000001",
        "0.00000000",
    )
    # DECIMAL(10,4) columns render with four decimals, and absent values stay NULL.
    assert conn.execute(
        "SELECT price_change_percent_24h_exact, bid_price_exact FROM tickers_readable"
    ).fetchone() == ("-2.5000", None)
    assert conn.execute(
        "SELECT available_balance_exact, locked_balance_exact, total_balance_exact "
        "FROM wallets_readable"
    ).fetchone() == ("0.10000000", "0.20000000", "0.30000000")


def test_updated_at_triggers_exist_for_the_tables_with_updated_at(store: Store) -> None:
    triggers = {
        name: table
        for name, table in catalog.triggers(store).items()
        if name.endswith("_updated_at")
    }
    assert sorted(triggers.values()) == sorted(TABLES_WITH_UPDATED_AT)
    with_updated_at = [n for n in SPEC_TABLE_NAMES if "updated_at" in catalog.columns(store, n)]
    assert sorted(with_updated_at) == sorted(set(TABLES_WITH_UPDATED_AT) & set(SPEC_TABLE_NAMES))


def test_updated_at_is_maintained_on_update_but_an_explicit_value_wins(store: Store) -> None:
    row = store.trades.insert(trade())
    conn = store.db.connection
    with store.db.transaction() as tx:
        tx.execute("UPDATE trades SET updated_at = 5 WHERE id = ?", (row.id,))
    assert conn.execute("SELECT updated_at FROM trades WHERE id = ?", (row.id,)).fetchone() == (5,)

    with store.db.transaction() as tx:
        tx.execute("UPDATE trades SET strategy = 'grid' WHERE id = ?", (row.id,))
    (updated_at,) = conn.execute("SELECT updated_at FROM trades WHERE id = ?", (row.id,)).fetchone()
    now = catalog.now_seconds(store)
    assert now - 5 <= updated_at <= now


def test_upgrade_to_0002_opens_the_wallet_journal_with_the_existing_balances(
    tmp_path: Path,
) -> None:
    path = tmp_path / V1_FIXTURE.name
    shutil.copyfile(V1_FIXTURE, path)
    migrate.upgrade(path)

    with Store.open(path) as store:
        wallets = store.ledger.wallet_rows()
        assert wallets, "the fixture has wallets"
        # Each wallet is explained by exactly one 'opening' movement holding its balances.
        assert store.ledger.journal_sums() == wallets
        openings = store.movements.list({"kind": "opening"}).items
        assert len(openings) == len(wallets)
        # Orders placed before the ledger existed reserve nothing.
        assert {order.locked_amount for order in store.orders.list().items} == {Decimal(0)}


def test_upgrade_to_0002_names_open_positions_that_share_a_key_and_changes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / V1_FIXTURE.name
    shutil.copyfile(V1_FIXTURE, path)
    conn = connect(path)
    conn.execute(
        "INSERT INTO positions (symbol, side, amount, entry_price, exchange, strategy, "
        "opened_at) VALUES ('BTC/USDT', 'long', 1, 1, 'kraken', 'grid', ?)",
        (TS,),
    )
    conn.close()
    before = sha256(path)

    with pytest.raises(SchemaVersionError, match="kraken BTC/USDT strategy grid: ids 1, 3"):
        migrate.upgrade(path)

    assert revision_of(path) == "0001"
    assert sha256(path) == before
