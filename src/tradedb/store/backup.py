"""SQLite's side of backups: a consistent copy of a live database, and its integrity check.

The copy is `VACUUM INTO`, which reads the database inside one read transaction: writers
in other processes go on committing, and the copy is the state at the moment it began
(measured here: `backup(pages=N)` restarts on every write and never finishes under a
steady writer; copying the file loses what is still in the -wal file).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000


def vacuum_into(source: Path, target: Path) -> None:
    """Write a consistent, compacted copy of `source` to `target` (absent or empty).

    The live database is only read: a failure (a full disk, say) leaves it as it was.
    """
    conn = sqlite3.connect(source, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        conn.close()


def integrity_problems(path: Path) -> list[str]:
    """What `PRAGMA integrity_check` finds wrong with a database file; empty when it is ok.
    A file that is not a SQLite database at all is one problem, not an exception."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        return [f"cannot open: {exc}"]
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        conn.close()
    messages = [str(row[0]) for row in rows]
    return [] if messages == ["ok"] else messages


def schema_revision(path: Path) -> str | None:
    """The Alembic revision a database file is at (None when it has none)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        row = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        if row is None:
            return None
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if version is None else str(version[0])
    finally:
        conn.close()
