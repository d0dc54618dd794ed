"""bot_logs: a logging handler that writes to the database without making the caller wait,
and the reads behind `tradedb logs`.

    handler = BotLogHandler("bot.sqlite")
    logging.getLogger().addHandler(handler)
    log.info("order sent", extra={"strategy": "sma", "exchange": "kraken",
                                  "symbol": "BTC/EUR", "order_id": "A1"})

The caller only turns its record into a row (the message is formatted then, so that
arguments changed afterwards cannot change what was logged) and appends it to a bounded
queue. A writer thread inserts the queue in batches, one transaction each, every
`flush_interval` seconds or as soon as `batch_size` rows wait. `flush()` waits until
everything logged before it is in the table; `close()` flushes and stops the thread; an
atexit hook does both for handlers still open when the interpreter exits.

Overflow: the queue holds `capacity` rows. When the database falls that far behind, the
OLDEST waiting rows are dropped: the caller never blocks, and the newest rows, which say
what the bot is doing now, are kept. Drops are counted (`dropped`), and the next batch
written carries one WARNING row that says how many were dropped and over which span.
A batch that cannot be written (disk full, database gone) is counted in `failed` and
reported once per distinct error on stderr, as logging reports its handlers' errors.

Columns: `module` is the logger's name; `strategy`, `exchange` and `symbol` come from the
record's `extra`; every other extra goes into `metadata` as JSON (Decimal as fixed-point
text, datetimes as ISO 8601, anything else JSON cannot hold as its repr). An exception's
traceback, and a stack from `stack_info=True`, follow the message as `logging.Formatter`
prints them. Levels between the five of the table are stored as the next lower one
(a custom level 25 is INFO), with the original name in metadata as `level_name`.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import re
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from tradedb.errors import ValidationError
from tradedb.models import Log
from tradedb.models.values import format_decimal, now_epoch_ms, parse_time_bound
from tradedb.store import Store
from tradedb.store.database import DatabaseUnavailable
from tradedb.store.logs import LogFilter, LogRecords, LogRow

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
CONTEXT_FIELDS = ("strategy", "exchange", "symbol")
DEFAULT_CAPACITY = 100_000
DEFAULT_BATCH_SIZE = 5_000
DEFAULT_FLUSH_INTERVAL = 0.2

# Attributes every LogRecord has; whatever else is in its __dict__ came from `extra`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_EXCLUDED = _STANDARD | set(CONTEXT_FIELDS)
_formatter = logging.Formatter()


def level_name(levelno: int) -> str:
    """The table's level for a numeric level: the highest of the five not above it."""
    if levelno >= logging.CRITICAL:
        return "CRITICAL"
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARNING"
    if levelno >= logging.INFO:
        return "INFO"
    return "DEBUG"


def _plain(value: Any) -> Any:
    """JSON cannot hold it as it is: Decimal as fixed-point text, times as ISO 8601."""
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def _json_value(value: Any) -> Any:
    """A value JSON can hold: NaN and infinity (which json.dumps would write as invalid
    JSON) and anything unserialisable (a cycle, say) become their repr."""
    try:
        json.dumps(value, default=_plain, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return repr(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return value


# json.dumps with options builds a new encoder on every call (about 1 µs of the
# caller's time a record); one encoder serves every record.
_METADATA_ENCODER = json.JSONEncoder(default=_plain, allow_nan=False, separators=(",", ":"))


def metadata_json(extras: Mapping[str, Any]) -> str | None:
    if not extras:
        return None
    try:
        return _METADATA_ENCODER.encode(extras)
    except (TypeError, ValueError, RecursionError):
        safe = {key: _json_value(value) for key, value in extras.items()}
        return _METADATA_ENCODER.encode(safe)


def record_row(record: logging.LogRecord) -> LogRow:
    """The bot_logs row of a log record."""
    message = record.getMessage()
    if record.exc_info and not record.exc_text:
        record.exc_text = _formatter.formatException(record.exc_info)
    if record.exc_text:
        message = f"{message}\n{record.exc_text}"
    if record.stack_info:
        message = f"{message}\n{_formatter.formatStack(record.stack_info)}"
    fields = record.__dict__
    extras = {key: value for key, value in fields.items() if key not in _EXCLUDED}
    level = level_name(record.levelno)
    if record.levelname != level:
        extras["level_name"] = record.levelname
    context = [fields.get(name) for name in CONTEXT_FIELDS]
    strategy, exchange, symbol = (None if value is None else str(value) for value in context)
    return (
        int(record.created * 1000),
        level,
        message,
        record.name,
        strategy,
        exchange,
        symbol,
        metadata_json(extras),
    )


class BotLogHandler(logging.Handler):
    """Writes log records to bot_logs from a background thread (see the module's doc)."""

    def __init__(
        self,
        database: str | os.PathLike[str] | Store,
        level: int = logging.NOTSET,
        *,
        capacity: int = DEFAULT_CAPACITY,
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    ) -> None:
        if capacity < 1 or batch_size < 1 or flush_interval <= 0:
            raise ValidationError(
                "capacity", (capacity, batch_size, flush_interval), "sizes and interval > 0"
            )
        super().__init__(level)
        self._own_store = not isinstance(database, Store)
        self._store = Store.open(database) if not isinstance(database, Store) else database
        self._records = LogRecords(self._store.db)
        self.capacity = capacity
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._queue: deque[LogRow] = deque(maxlen=capacity)
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._queued = 0  # rows ever queued, dropped ones included
        self._settled = 0  # rows written, dropped or failed
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self._drops_reported = 0
        self._first_drop_ms: int | None = None
        self._last_drop_ms: int | None = None
        self._errors_seen: set[str] = set()
        self._stopping = False
        self._closing = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tradedb-bot-logs", daemon=True)
        self._thread.start()
        _open_handlers.add(self)

    @property
    def _lock(self) -> threading.RLock:
        # logging.Handler.handle holds this lock around emit().
        lock = self.lock
        assert lock is not None  # createLock() made it in __init__
        return lock

    # --- the caller's side: build the row, append, return -------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        # logging.Handler.handle holds self.lock here, so the queue and counters change
        # under one lock with the writer's swap.
        try:
            row = record_row(record)
        except Exception:
            self.handleError(record)
            return
        if self._closed:
            return
        queue = self._queue
        if len(queue) == self.capacity:
            self.dropped += 1
            self._settled += 1
            self._last_drop_ms = queue[0][0]
            if self._first_drop_ms is None:
                self._first_drop_ms = self._last_drop_ms
        queue.append(row)
        self._queued += 1
        if len(queue) >= self.batch_size:
            self._wake.set()

    def flush(self) -> None:
        """Wait until every row logged before this call is in the table (or counted lost)."""
        if self._closed or threading.current_thread() is self._thread:
            return
        with self._lock:
            target = self._queued
        with self._done:
            while self._settled < target and self._thread.is_alive():
                self._wake.set()
                self._done.wait(0.05)

    def close(self) -> None:
        if self._closed:
            return
        self._closing = True
        self.flush()
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self._closed = True
        _open_handlers.discard(self)
        if self._own_store:
            self._store.close()
        super().close()

    # --- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            stopping = self._stopping
            while self._write_waiting():
                pass
            if stopping:
                return

    def _write_waiting(self) -> bool:
        """Write what waits, one batch at a time; False when nothing was waiting."""
        with self._lock:
            queue = self._queue
            if not queue:
                return False
            count = min(len(queue), self.batch_size)
            batch = [queue.popleft() for _ in range(count)]
            drop_note = self._drop_note()
        rows = batch if drop_note is None else [drop_note, *batch]
        try:
            self._records.insert_rows(rows)
        except Exception as exc:
            with self._lock:
                if isinstance(exc, DatabaseUnavailable) and self._closing:
                    # Closing, and the database cannot be reached: each further batch
                    # would wait as long for a connection, so what waits is given up
                    # now and counted, rather than holding the program's exit.
                    count += len(self._queue)
                    self._queue.clear()
                self.failed += count
            self._report(exc)
        else:
            with self._lock:
                self.written += count
        with self._done:
            self._settled += count
            self._done.notify_all()
        return True

    def _drop_note(self) -> LogRow | None:
        new_drops = self.dropped - self._drops_reported
        if not new_drops:
            return None
        self._drops_reported = self.dropped
        first, last = self._first_drop_ms, self._last_drop_ms
        self._first_drop_ms = self._last_drop_ms = None
        message = (
            f"bot_logs: {new_drops} log records were dropped because the queue of "
            f"{self.capacity} was full (the database fell behind); the oldest waiting ones "
            "go first"
        )
        details = {"dropped": new_drops, "first_dropped_ms": first, "last_dropped_ms": last}
        return (now_epoch_ms(), "WARNING", message, __name__, None, None, None, json.dumps(details))

    def _report(self, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if text in self._errors_seen:
            return
        self._errors_seen.add(text)
        if logging.raiseExceptions and sys.stderr is not None:
            sys.stderr.write(f"tradedb bot_logs handler could not write a batch: {text}\n")


_open_handlers: weakref.WeakSet[BotLogHandler] = weakref.WeakSet()


@atexit.register
def _close_open_handlers() -> None:
    """Rows still queued at exit are written: the writer is a daemon thread, which would
    otherwise die with the interpreter."""
    for handler in list(_open_handlers):
        handler.close()


# --- reading: `tradedb logs` -------------------------------------------------------------

_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
MAX_LIMIT = 100_000


@dataclass(frozen=True)
class LogQuery:
    """What `tradedb logs` asks for: a minimum level, a strategy, a time range, a count."""

    selection: LogFilter
    limit: int

    @classmethod
    def parse(
        cls,
        *,
        level: str | None = None,
        since: str | int | None = None,
        until: str | int | None = None,
        strategy: str | None = None,
        limit: int = 100,
        now_ms: int | None = None,
    ) -> LogQuery:
        levels = minimum_levels(level)
        check_limit(limit)
        since_ms, until_ms = time_range(since, until, now_ms)
        selection = LogFilter(
            levels=levels, strategy=strategy, since_ms=since_ms, until_ms=until_ms
        )
        return cls(selection, limit)


def time_range(
    since: str | int | None, until: str | int | None, now_ms: int | None = None
) -> tuple[int | None, int | None]:
    """A `since` (which may be a span back from now) and an exclusive `until`, in epoch ms."""
    since_ms = None if since is None else parse_since(since, now_ms)
    until_ms = None if until is None else parse_time_bound(until, "until")
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise ValidationError("until", until, "must be later than since")
    return since_ms, until_ms


def minimum_levels(level: str | None) -> tuple[str, ...] | None:
    """The levels a minimum level asks for: WARNING means WARNING and above (None: all)."""
    if level is None:
        return None
    wanted = level.strip().upper()
    if wanted not in LEVELS:
        raise ValidationError("level", level, f"must be one of {', '.join(LEVELS)}")
    return LEVELS[LEVELS.index(wanted) :]


def check_limit(limit: object) -> int:
    """How many rows a read returns: an integer from 1 to MAX_LIMIT (True is not 1)."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError("limit", limit, f"must be an integer from 1 to {MAX_LIMIT}")
    return limit


def parse_since(text: str | int, now_ms: int | None = None) -> int:
    """A start time: a span back from now ('30m', '2h', '7d', '1w'), or a date, an ISO 8601
    time with an offset, or epoch milliseconds (as text, or as an integer)."""
    if not isinstance(text, str):
        return parse_time_bound(text, "since")
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        now = now_epoch_ms() if now_ms is None else now_ms
        return now - int(relative.group(1)) * _SECONDS[relative.group(2)] * 1000
    try:
        return parse_time_bound(text, "since")
    except ValidationError:
        raise ValidationError(
            "since",
            text,
            "give a span back from now (30m, 2h, 7d, 1w), a date YYYY-MM-DD (UTC), an ISO "
            "8601 time with an offset, or epoch milliseconds",
        ) from None


def recent(store: Store, query: LogQuery) -> list[Log]:
    """The newest matching rows, oldest first."""
    return LogRecords(store.db).latest(query.selection, query.limit)


def follow(
    store: Store,
    query: LogQuery,
    *,
    poll_seconds: float = 0.5,
    stop: threading.Event | None = None,
) -> Iterator[Log]:
    """The newest `limit` matching rows, then each new one as it is written, until `stop`
    is set (or forever). A query with an end is refused here, before the first row."""
    if query.selection.until_ms is not None:
        raise ValidationError(
            "until", query.selection.until_ms, "followed records come as written, with no end"
        )
    return _follow(store, query, poll_seconds=poll_seconds, stop=stop)


def _follow(
    store: Store, query: LogQuery, *, poll_seconds: float, stop: threading.Event | None
) -> Iterator[Log]:
    records = LogRecords(store.db)
    with store.db.snapshot():
        shown = records.latest(query.selection, query.limit)
        last_id = records.last_id()
    yield from shown
    while stop is None or not stop.is_set():
        # One read transaction: the mark moves past rows that did not match (so they are
        # not scanned again) but never past a matching row written meanwhile.
        with store.db.snapshot():
            new = records.after_id(last_id, query.selection, MAX_LIMIT)
            top = records.last_id()
        if new:
            last_id = new[-1].id
            yield from new
            continue
        last_id = max(last_id, top)
        if stop is not None:
            stop.wait(poll_seconds)
        else:
            time.sleep(poll_seconds)
