"""bot_logs searched by level, context, time and text, newest first, a page at a time.

`tradedb logs` tails the table (store.logs.LogRecords); a search answers a question about
the past instead ("the errors of strategy X on kraken last week that mention 'timeout'"),
so it also filters by exchange, symbol, an end time and a piece of the message, and pages
backwards with a keyset on (timestamp, id) rather than OFFSET.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradedb.models import Log
from tradedb.store.database import Database
from tradedb.store.repository import Repository
from tradedb.store.store import LOGS


@dataclass(frozen=True)
class LogSearch:
    """Which rows: levels (None: all), context columns, [since, until) and message text."""

    levels: tuple[str, ...] | None = None
    strategy: str | None = None
    exchange: str | None = None
    symbol: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    # Matched anywhere in the message, ignoring the case of ASCII letters.
    text: str | None = None

    def where(self) -> tuple[list[str], list[Any]]:
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
            # instr() on lowered text: a bound parameter, so no LIKE wildcard in the
            # user's text ('%', '_') can widen the match.
            clauses.append("instr(lower(message), lower(?)) > 0")
            params.append(self.text)
        return clauses, params


class LogSearchRecords:
    """Read-only searches of bot_logs."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._repo = Repository(db, LOGS)

    def newest(
        self, search: LogSearch, limit: int, *, before: tuple[int, int] | None = None
    ) -> list[Log]:
        """Up to `limit` matching rows, newest first; `before` = (timestamp, id) continues
        after the last row of a previous page."""
        clauses, params = search.where()
        if before is not None:
            clauses.append("(timestamp, id) < (?, ?)")
            params += before
        where = " AND ".join(clauses) or "1"
        rows = self._repo.select_all(
            "id IN (SELECT id FROM bot_logs WHERE "
            f"{where} ORDER BY timestamp DESC, id DESC LIMIT ?)",
            (*params, limit),
        )
        return sorted(rows, key=lambda row: (row.timestamp, row.id), reverse=True)
