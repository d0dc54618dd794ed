"""What a test database holds, read from its engine's own catalog (sqlite_master and
PRAGMAs on SQLite, pg_catalog on PostgreSQL), for tests that check the schema itself."""

from __future__ import annotations

from tradedb.store import Store


def columns(store: Store, relation: str) -> list[str]:
    """Column names of a table or view, in order."""
    conn = store.db.connection
    if store.db.engine == "sqlite":
        return [row[1] for row in conn.execute(f"PRAGMA table_xinfo({relation})")]
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(?) AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        (relation,),
    )
    return [str(name) for (name,) in rows]


def views(store: Store) -> set[str]:
    conn = store.db.connection
    if store.db.engine == "sqlite":
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'")
    else:
        rows = conn.execute("SELECT viewname FROM pg_views WHERE schemaname = current_schema()")
    return {str(name) for (name,) in rows}


def triggers(store: Store) -> dict[str, str]:
    """Trigger name -> the table it is on."""
    conn = store.db.connection
    if store.db.engine == "sqlite":
        rows = conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
    else:
        rows = conn.execute(
            "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal"
        )
    return {str(name): str(table) for name, table in rows}


def now_seconds(store: Store) -> int:
    """The database's clock, in epoch seconds."""
    sql = f"SELECT {store.db.dialect.epoch_seconds_now}"
    return int(store.db.connection.execute(sql).fetchone()[0])
