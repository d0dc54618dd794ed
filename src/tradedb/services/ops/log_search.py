"""Searching bot_logs: the newest records that match, one page at a time.

A search takes a minimum level (as `tradedb logs --level` does: WARNING means WARNING and
above), a strategy, exchange and symbol, a time range (since may be a span back from now:
'2h', '7d') and a piece of the message to look for. Pages run newest first; a page that
stops short of the matches says so and hands back the token that continues it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tradedb.errors import ValidationError
from tradedb.models import Log
from tradedb.models.values import (
    check_exchange,
    check_name,
    check_symbol,
)
from tradedb.services.ops.logs import check_limit, minimum_levels, time_range
from tradedb.store import Store
from tradedb.store.logs import LogFilter, LogRecords

MAX_TEXT_LENGTH = 200


@dataclass(frozen=True)
class LogPage:
    """Matching records, newest first; `next_after` continues the search after the last
    one here when `truncated` (more matching records are older)."""

    records: list[Log]
    truncated: bool
    next_after: str | None


def parse_search(
    *,
    level: str | None = None,
    strategy: str | None = None,
    exchange: str | None = None,
    symbol: str | None = None,
    since: str | int | None = None,
    until: str | int | None = None,
    text: str | None = None,
    now_ms: int | None = None,
) -> LogFilter:
    """Check a search's terms; every bad one is refused with the field it came in."""
    levels = minimum_levels(level)
    if text is not None and len(text) > MAX_TEXT_LENGTH:
        raise ValidationError("text", text, f"at most {MAX_TEXT_LENGTH} characters")
    since_ms, until_ms = time_range(since, until, now_ms)
    return LogFilter(
        levels=levels,
        strategy=None if strategy is None else check_name(strategy, "strategy"),
        exchange=None if exchange is None else check_exchange(exchange),
        symbol=None if symbol is None else check_symbol(symbol),
        since_ms=since_ms,
        until_ms=until_ms,
        text=text or None,
    )


def search_logs(
    store: Store, search: LogFilter, *, limit: int = 100, after: str | None = None
) -> LogPage:
    """Up to `limit` matching records, newest first, from one consistent read; `after` (a
    page's `next_after`) goes on with the records older than that page's last."""
    check_limit(limit)
    position = None if after is None else _parse_token(after)
    with store.db.snapshot():
        rows = LogRecords(store.db).newest(search, limit + 1, before=position)
    truncated = len(rows) > limit
    rows = rows[:limit]
    token = f"{rows[-1].timestamp}:{rows[-1].id}" if truncated else None
    return LogPage(rows, truncated, token)


def _parse_token(token: str) -> tuple[int, int]:
    timestamp, sep, record_id = token.partition(":")
    if not sep or not timestamp.isdigit() or not record_id.isdigit():
        raise ValidationError("after", token, "is not a next_after token a search returned")
    return int(timestamp), int(record_id)
