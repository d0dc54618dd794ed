"""bot_logs of one database: a logging handler that never blocks the bot, and searches."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from tradedb.models import Log
from tradedb.services import analysis_log
from tradedb.services.ops import log_search
from tradedb.services.ops.logs import BotLogHandler, LogQuery, follow, recent
from tradedb.store import Store


class BotLogs:
    """Log records in bot_logs, written in batches from a background thread."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def handler(self, level: int = logging.NOTSET) -> BotLogHandler:
        """A logging.Handler writing to this database; add it to your loggers. Records
        carry `strategy`, `exchange` and `symbol` from `extra=`; other extras become the
        JSON metadata."""
        return BotLogHandler(self._store, level)

    def recent(
        self,
        *,
        level: str | None = None,
        since: str | int | None = None,
        until: str | int | None = None,
        strategy: str | None = None,
        limit: int = 100,
    ) -> list[Log]:
        """The newest records (at `level` or above, since a time: a span back from now
        such as '30m', a date, ISO 8601, or epoch ms; before `until`), in time order."""
        query = LogQuery.parse(
            level=level, since=since, until=until, strategy=strategy, limit=limit
        )
        return recent(self._store, query)

    def follow(
        self,
        *,
        level: str | None = None,
        since: str | int | None = None,
        until: str | int | None = None,
        strategy: str | None = None,
        limit: int = 100,
        stop: threading.Event | None = None,
    ) -> Iterator[Log]:
        """The newest records, then each new one as it is written, until `stop` is set
        (`until` is refused: what is followed has no end)."""
        query = LogQuery.parse(
            level=level, since=since, until=until, strategy=strategy, limit=limit
        )
        return follow(self._store, query, stop=stop)

    def search(
        self,
        *,
        level: str | None = None,
        strategy: str | None = None,
        exchange: str | None = None,
        symbol: str | None = None,
        since: str | int | None = None,
        until: str | int | None = None,
        text: str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> log_search.LogPage:
        """Records matching all the filters, newest first, a page at a time: pass a page's
        `next_after` as `after` for the next."""
        selection = log_search.parse_search(
            level=level,
            strategy=strategy,
            exchange=exchange,
            symbol=symbol,
            since=since,
            until=until,
            text=text,
        )
        return log_search.search_logs(self._store, selection, limit=limit, after=after)

    def record_analysis(
        self,
        *,
        kind: str,
        summary: str,
        result: Mapping[str, Any],
        symbol: str | None = None,
        exchange: str | None = None,
        strategy: str | None = None,
        at: object = None,
    ) -> Log:
        """Store one analysis result (JSON-ready values, already checked by its own
        model) as an INFO record of module `tradedb.analysis`, the result as its JSON
        metadata; the record as stored."""
        return analysis_log.record_analysis(
            self._store,
            kind=kind,
            summary=summary,
            result=result,
            symbol=symbol,
            exchange=exchange,
            strategy=strategy,
            at=at,
        )
