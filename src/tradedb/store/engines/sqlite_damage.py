"""A damaged SQLite file, reported as one DatabaseDamaged wherever SQLite meets the damage.

SQLite notices a damaged page only when it reads that page, and says so in the words of
`DAMAGE_MESSAGES`. Reading every page at each open (`PRAGMA quick_check`) costs as much
as reading the whole file, so a database is checked in three ways instead:

- at open, the first and the last row of every table: each reads the table's root page
  and one path down to a leaf, about a hundred pages for the whole schema (a small table
  is all root page, so any damage to it is found here);
- on use, any statement that meets the damage raises DatabaseDamaged instead of the
  driver's error: the write transactions and read snapshots of `Database` translate what
  escapes them, and statements outside any transaction run through `ReportingConnection`;
- `tradedb maintain` runs SQLite's own checks of every page on a schedule.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from tradedb.errors import DatabaseDamaged

# SQLITE_CORRUPT and SQLITE_NOTADB, as sqlite3 words them.
DAMAGE_MESSAGES = ("database disk image is malformed", "file is not a database")
# The first bytes of every SQLite database file: a file without them was never one, so
# SQLite's "file is not a database" means the wrong file, not a damaged one.
SQLITE_HEADER = b"SQLite format 3\0"


class DamagedSQLiteError(DatabaseDamaged, sqlite3.DatabaseError):
    """A damaged SQLite file. It is also a sqlite3.DatabaseError, the class of SQLite's own
    report, so that code handling that one handles this."""


def damage_in(exc: BaseException, path: Path) -> DamagedSQLiteError | None:
    """The DatabaseDamaged that a driver error stands for, or None if it reports something
    else (or is one already)."""
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, DatabaseDamaged):
        return None
    message = str(exc)
    if message.startswith("malformed database schema") or message == DAMAGE_MESSAGES[0]:
        return DamagedSQLiteError(str(path), message)
    if message == DAMAGE_MESSAGES[1] and has_sqlite_header(path):
        return DamagedSQLiteError(str(path), message)
    return None


def has_sqlite_header(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def check_tables_readable(conn: sqlite3.Connection, path: Path) -> None:
    """Read the first and the last row of every table (see the module docstring); raise
    DatabaseDamaged if SQLite finds a damaged page on the way."""
    try:
        tables = [
            str(name)
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND sql NOT LIKE 'CREATE VIRTUAL%'"
            )
        ]
        for table in tables:
            # NOT INDEXED: the table's own b-tree, not a smaller index that covers rowid.
            conn.execute(f'SELECT rowid FROM "{table}" NOT INDEXED LIMIT 1').fetchall()
            conn.execute(f'SELECT max(rowid) FROM "{table}"').fetchall()
    except sqlite3.DatabaseError as exc:
        damage = damage_in(exc, path)
        if damage is None:
            raise
        raise damage from exc


class ReportingConnection:
    """A thread's connection for statements outside any transaction, whose damage reports
    (when a statement starts, or as its rows are read) are DatabaseDamaged."""

    __slots__ = ("_conn", "_path")

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> ReportingCursor:
        try:
            return ReportingCursor(self._conn.execute(sql, parameters), self._path)
        except sqlite3.DatabaseError as exc:
            _raise_reported(exc, self._path)

    def executemany(self, sql: str, parameters: Any) -> ReportingCursor:
        try:
            return ReportingCursor(self._conn.executemany(sql, parameters), self._path)
        except sqlite3.DatabaseError as exc:
            _raise_reported(exc, self._path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class ReportingCursor:
    """A cursor of `ReportingConnection`: SQLite reads a statement's later rows as they are
    fetched, so damage can surface there too."""

    __slots__ = ("_cursor", "_path")

    def __init__(self, cursor: sqlite3.Cursor, path: Path) -> None:
        self._cursor = cursor
        self._path = path

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    def fetchone(self) -> Any:
        try:
            return self._cursor.fetchone()
        except sqlite3.DatabaseError as exc:
            _raise_reported(exc, self._path)

    def fetchmany(self, size: int = 1) -> list[Any]:
        try:
            return self._cursor.fetchmany(size)
        except sqlite3.DatabaseError as exc:
            _raise_reported(exc, self._path)

    def fetchall(self) -> list[Any]:
        try:
            return self._cursor.fetchall()
        except sqlite3.DatabaseError as exc:
            _raise_reported(exc, self._path)

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self._cursor
        except sqlite3.DatabaseError as exc:
            _raise_reported(exc, self._path)

    def close(self) -> None:
        self._cursor.close()


def _raise_reported(exc: sqlite3.DatabaseError, path: Path) -> NoReturn:
    damage = damage_in(exc, path)
    if damage is None:
        raise exc
    raise damage from exc
