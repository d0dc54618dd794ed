"""bot_logs: the batch insert the logging handler uses, and the reads behind `tradedb logs`
(a tail, then each new row) and the MCP `search_logs` tool (pages backwards in time, with a
keyset on (timestamp, id) rather than OFFSET).

The handler's rows are built from log records it has already checked (level one of the
five, a millisecond timestamp), so they go in as plain tuples with one executemany: per
row validation would cost more than the insert itself at the rates a bot logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tradedb.models import Log
from tradedb.store.database import Database, Dialect
from tradedb.store.repository import Repository
from tradedb.store.store import LOGS

# timestamp, level, message, module, strategy, exchange, symbol, metadata
LogRow = tuple[int, str, str, str | None, str | None, str | None, str | None, str | None]

LOG_COLUMNS = (
    "timestamp",
    "level",
    "message",
    "module",
    "strategy",
    "exchange",
    "symbol",
    "metadata",
)


@dataclass(frozen=True)
class LogFilter:
    """Which rows a reader wants: levels (None: all), context columns, [since, until) and
    message text."""

    levels: tuple[str, ...] | None = None
    strategy: str | None = None
    exchange: str | None = None
    symbol: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    # Matched anywhere in the message, ignoring the case of ASCII letters.
    text: str | None = None

    def where(self, dialect: Dialect) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.levels is not None:
            clauses.append(f"level IN ({', '.join('?' for _ in self.levels)})")
            params += self.levels
        for column in ("strategy", "exchange", "symbol"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.since_ms is not None:
            clauses.append("timestamp >= ?")
            params.append(self.since_ms)
        if self.until_ms is not None:
            clauses.append("timestamp < ?")
            params.append(self.until_ms)
        if self.text:
            # A substring search on lowered text with a bound parameter, so no LIKE
            # wildcard in the user's text ('%', '_') can widen the match.
            clauses.append(f"{dialect.find_text}(lower(message), lower(?)) > 0")
            params.append(self.text)
        return clauses, params


class LogRecords:
    """bot_logs reads and writes beyond the generic repository's."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._repo = Repository(db, LOGS)

    def insert_rows(self, rows: Sequence[LogRow]) -> int:
        """Insert prepared rows in one transaction (synchronous=NORMAL: logs may lose their
        last moments to a power cut, never the database)."""
        with self.db.transaction(durable=False) as conn:
            self.db.append_rows(conn, "bot_logs", LOG_COLUMNS, rows)
        return len(rows)

    def newest(
        self, selection: LogFilter, limit: int, *, before: tuple[int, int] | None = None
    ) -> list[Log]:
        """Up to `limit` matching rows, newest first; `before` = (timestamp, id) continues
        after the last row of a previous page."""
        clauses, params = selection.where(self.db.dialect)
        if before is not None:
            clauses.append("(timestamp, id) < (?, ?)")
            params += before
        where = " AND ".join(clauses) or "1 = 1"
        rows = self._repo.select_all(
            "id IN (SELECT id FROM bot_logs WHERE "
            f"{where} ORDER BY timestamp DESC, id DESC LIMIT ?)",
            (*params, limit),
        )
        # Time order: processes logging to one database write their batches interleaved.
        return sorted(rows, key=lambda row: (row.timestamp, row.id), reverse=True)

    def latest(self, selection: LogFilter, limit: int) -> list[Log]:
        """The newest `limit` matching rows, oldest first (as a terminal shows a tail)."""
        return self.newest(selection, limit)[::-1]

    def after_id(self, last_id: int, selection: LogFilter, limit: int) -> list[Log]:
        """Matching rows written after the row `last_id`, in the order they were written."""
        clauses, params = selection.where(self.db.dialect)
        clauses.append("id > ?")
        params.append(last_id)
        return self._repo.select_all(
            f"id IN (SELECT id FROM bot_logs WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?)",
            (*params, limit),
        )

    def last_id(self) -> int:
        row = self.db.connection.execute("SELECT max(id) FROM bot_logs").fetchone()
        return 0 if row[0] is None else int(row[0])

    def count(self) -> int:
        return int(self.db.connection.execute("SELECT count(*) FROM bot_logs").fetchone()[0])
