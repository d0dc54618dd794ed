"""The --db value that names a test's database, whichever engine it is on."""

from __future__ import annotations

from tradedb.store import Store


def target_of(store: Store) -> str:
    """A SQLite path, or the PostgreSQL URL with its password (test databases have none)."""
    if store.db.engine == "sqlite":
        return str(store.db.path)
    url = store.db.target.url.set(drivername="postgresql")  # type: ignore[attr-defined]
    return str(url.render_as_string(hide_password=False))
