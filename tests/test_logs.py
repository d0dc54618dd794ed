"""bot_logs: the logging handler a bot attaches, and `tradedb logs` that reads what it wrote.

Handler tests run the real handler against a real database file: its writer thread, its
batches, its queue limit, its flush at close and at interpreter exit (in a subprocess).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli_harness import isolated_environ
from tradedb.cli.app import app
from tradedb.errors import ValidationError
from tradedb.models import Log
from tradedb.services.ops.logs import BotLogHandler, LogQuery, follow, parse_since, recent
from tradedb.store import Store

USER_ERROR = 2
runner = CliRunner()


@pytest.fixture
def logger(db_target: str) -> Iterator[logging.Logger]:
    """A logger of the test's own, not propagating to the root's handlers. Its handlers are
    closed before the test's database goes (it comes after `db_target`)."""
    log = logging.getLogger(f"bot.test.{time.perf_counter_ns()}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()


def attach(logger: logging.Logger, db_target: str | Path, **options: object) -> BotLogHandler:
    handler = BotLogHandler(db_target, **options)  # type: ignore[arg-type]
    logger.addHandler(handler)
    return handler


@contextmanager
def holding_the_logs(store: Store) -> Iterator[None]:
    """Another writer holding what the handler writes: SQLite's write lock, or on
    PostgreSQL a lock on bot_logs (its writers do not otherwise wait for each other)."""
    with store.db.transaction() as conn:
        if store.db.engine == "postgresql":
            conn.execute("LOCK TABLE bot_logs IN ACCESS EXCLUSIVE MODE")
        yield


def all_rows(db_target: str) -> list[Log]:
    with Store.open(db_target, readonly=True) as store:
        return store.logs.list(limit=100_000).items


# --- the handler -------------------------------------------------------------------------


def test_context_from_extra_and_the_other_extras_as_json_metadata(
    logger: logging.Logger, db_target: str
) -> None:
    handler = attach(logger, db_target)
    before = int(time.time() * 1000)
    logger.warning(
        "order %s rejected",
        "A1",
        extra={
            "strategy": "sma_cross",
            "exchange": "kraken",
            "symbol": "BTC/EUR",
            "price": Decimal("0.00000001"),
            "at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            "tags": ("x", "y"),
            "attempt": 3,
        },
    )
    handler.flush()
    (row,) = all_rows(db_target)
    assert (row.level, row.message, row.module) == ("WARNING", "order A1 rejected", logger.name)
    assert (row.strategy, row.exchange, row.symbol) == ("sma_cross", "kraken", "BTC/EUR")
    assert before <= row.timestamp <= int(time.time() * 1000)
    assert json.loads(row.metadata or "") == {
        "price": "0.00000001",  # fixed-point text, never 1E-8
        "at": "2024-01-02T03:04:05+00:00",
        "tags": ["x", "y"],
        "attempt": 3,
    }


def test_a_record_without_extras_has_no_metadata(logger: logging.Logger, db_target: str) -> None:
    handler = attach(logger, db_target)
    logger.info("plain")
    handler.flush()
    (row,) = all_rows(db_target)
    assert (row.metadata, row.strategy, row.exchange, row.symbol) == (None, None, None, None)


def test_values_json_cannot_hold_are_stored_as_their_repr(
    logger: logging.Logger, db_target: str
) -> None:
    class Order:
        def __repr__(self) -> str:
            return "Order(A1)"

    cycle: list[object] = []
    cycle.append(cycle)
    handler = attach(logger, db_target)
    logger.info("odd", extra={"order": Order(), "nan": float("nan"), "cycle": cycle})
    handler.flush()
    (row,) = all_rows(db_target)
    metadata = json.loads(row.metadata or "")  # valid JSON: no bare NaN
    assert metadata == {"order": "Order(A1)", "nan": "nan", "cycle": "[[...]]"}


def test_exception_text_follows_the_message(logger: logging.Logger, db_target: str) -> None:
    handler = attach(logger, db_target)
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        logger.exception("fill failed")
    handler.flush()
    (row,) = all_rows(db_target)
    assert row.level == "ERROR"
    assert row.message.startswith("fill failed\nTraceback (most recent call last):")
    assert row.message.endswith("ZeroDivisionError: division by zero")


def test_custom_levels_map_to_the_next_lower_of_the_five(
    logger: logging.Logger, db_target: str
) -> None:
    logging.addLevelName(25, "NOTICE")
    logger.setLevel(1)
    handler = attach(logger, db_target)
    logger.log(25, "notice")
    logger.log(5, "trace")
    logger.log(60, "beyond")
    handler.flush()
    rows = all_rows(db_target)
    assert [(r.level, r.message) for r in rows] == [
        ("INFO", "notice"),
        ("DEBUG", "trace"),
        ("CRITICAL", "beyond"),
    ]
    assert json.loads(rows[0].metadata or "") == {"level_name": "NOTICE"}


def test_the_message_is_formatted_when_logged_not_when_written(
    logger: logging.Logger, db_target: str
) -> None:
    handler = attach(logger, db_target, flush_interval=30.0)
    state = {"filled": "0.5"}
    logger.info("state %s", state)
    state["filled"] = "1"  # changed before the writer thread gets to the row
    handler.flush()
    (row,) = all_rows(db_target)
    assert row.message == "state {'filled': '0.5'}"


def test_rows_are_written_in_batches_without_flush(logger: logging.Logger, db_target: str) -> None:
    handler = attach(logger, db_target, batch_size=100, flush_interval=0.05)
    for number in range(250):
        logger.debug("tick %d", number)
    deadline = time.monotonic() + 5
    while handler.written < 250 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [row.message for row in all_rows(db_target)] == [f"tick {n}" for n in range(250)]


def test_the_caller_does_not_wait_for_a_locked_database(
    logger: logging.Logger, db_target: str
) -> None:
    """Another writer holds the database; logging still returns at once."""
    handler = attach(logger, db_target, batch_size=10, flush_interval=0.01)
    with Store.open(db_target) as other, holding_the_logs(other):
        started = time.perf_counter()
        for number in range(1000):
            logger.info("while locked %d", number)
        elapsed = time.perf_counter() - started
        assert handler.written == 0
    assert elapsed < 0.5  # 1000 calls; a blocked caller would wait seconds for the lock
    handler.flush()
    assert len(all_rows(db_target)) == 1000


def test_a_full_queue_drops_the_oldest_and_says_so_once(
    logger: logging.Logger, db_target: str
) -> None:
    handler = attach(logger, db_target, capacity=100, batch_size=100, flush_interval=30.0)
    with Store.open(db_target) as other, holding_the_logs(other):
        for number in range(250):  # the writer is stuck behind the lock
            logger.info("n%d", number)
    handler.flush()
    rows = all_rows(db_target)
    kept = [row.message for row in rows if row.module == logger.name]
    notes = [row for row in rows if row.message.startswith("bot_logs: ")]
    # Whatever the writer took before the lock, the newest rows are all kept.
    assert kept[-100:] == [f"n{n}" for n in range(150, 250)]
    assert handler.dropped == 250 - len(kept)
    assert handler.dropped >= 50
    assert len(notes) == 1
    assert notes[0].level == "WARNING"
    assert json.loads(notes[0].metadata or "")["dropped"] == handler.dropped
    assert handler.written == len(kept)


def test_close_writes_everything_still_queued(logger: logging.Logger, db_target: str) -> None:
    handler = attach(logger, db_target, flush_interval=30.0)
    for number in range(500):
        logger.info("n%d", number)
    logger.removeHandler(handler)
    handler.close()
    assert len(all_rows(db_target)) == 500
    logger.info("after close")  # a closed handler is no longer attached; nothing breaks


def test_rows_queued_at_interpreter_exit_are_written(db_target: str) -> None:
    script = (
        "import logging, sys\n"
        "from tradedb.services.ops.logs import BotLogHandler\n"
        "log = logging.getLogger('bot')\n"
        "log.addHandler(BotLogHandler(sys.argv[1], flush_interval=30.0))\n"
        "log.setLevel(logging.INFO)\n"
        "for n in range(2000):\n"
        "    log.info('n%d', n, extra={'strategy': 's'})\n"
    )
    subprocess.run([sys.executable, "-c", script, str(db_target)], check=True, timeout=60)
    rows = all_rows(db_target)
    assert [row.message for row in rows] == [f"n{n}" for n in range(2000)]


def test_a_batch_that_cannot_be_written_is_counted_and_reported_once(
    logger: logging.Logger, db_target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = attach(logger, db_target, batch_size=1, flush_interval=0.01)
    with Store.open(db_target) as store:
        store.db.connection.execute("DROP INDEX idx_logs_timestamp_level")
        store.db.connection.execute("ALTER TABLE bot_logs RENAME TO bot_logs_gone")
    logger.info("one")
    logger.info("two")
    handler.flush()
    assert (handler.failed, handler.written) == (2, 0)
    assert capsys.readouterr().err.count("could not write a batch") == 1


def test_threads_logging_at_once_lose_nothing(logger: logging.Logger, db_target: str) -> None:
    handler = attach(logger, db_target, batch_size=500)

    def work(name: str) -> None:
        for number in range(1000):
            logger.info("%s %d", name, number, extra={"strategy": name})

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handler.flush()
    rows = all_rows(db_target)
    assert len(rows) == 4000
    for name in ("t0", "t1", "t2", "t3"):
        mine = [row.message for row in rows if row.strategy == name]
        assert mine == [f"{name} {n}" for n in range(1000)]  # each thread's order is kept


# --- reading -----------------------------------------------------------------------------

T0 = 1_704_067_200_000  # 2024-01-01 UTC


def seed(store: Store) -> None:
    rows = [
        (T0 + 0, "DEBUG", "d1", "sma"),
        (T0 + 1, "INFO", "i1", "sma"),
        (T0 + 2, "WARNING", "w1", "rsi"),
        (T0 + 3, "ERROR", "e1", "sma"),
        (T0 + 86_400_000, "CRITICAL", "c1", None),
    ]
    store.logs.insert_many(
        {"timestamp": t, "level": lvl, "message": m, "strategy": s} for t, lvl, m, s in rows
    )


def test_level_means_that_level_and_above(store: Store) -> None:
    seed(store)
    found = recent(store, LogQuery.parse(level="warning"))
    assert [row.message for row in found] == ["w1", "e1", "c1"]


def test_strategy_since_and_limit_filter_and_keep_the_newest(store: Store) -> None:
    seed(store)
    assert [r.message for r in recent(store, LogQuery.parse(strategy="sma"))] == ["d1", "i1", "e1"]
    assert [r.message for r in recent(store, LogQuery.parse(since="2024-01-02"))] == ["c1"]
    assert [r.message for r in recent(store, LogQuery.parse(limit=2))] == ["e1", "c1"]


def test_until_ends_the_range_before_its_time(store: Store) -> None:
    seed(store)
    before_noon = LogQuery.parse(since="2024-01-01", until=T0 + 3)
    assert [r.message for r in recent(store, before_noon)] == ["d1", "i1", "w1"]
    # The newest `limit` rows before the end, not the newest of all.
    assert [r.message for r in recent(store, LogQuery.parse(until="2024-01-02", limit=1))] == ["e1"]


@pytest.mark.fault("bad input")
def test_a_followed_log_refuses_an_end_before_reading(store: Store) -> None:
    with pytest.raises(ValidationError) as caught:
        follow(store, LogQuery.parse(until="2024-01-02"))
    assert caught.value.field == "until"


def test_since_takes_a_span_back_from_now() -> None:
    now = T0
    assert parse_since("30m", now) == now - 30 * 60_000
    assert parse_since("2h", now) == now - 2 * 3_600_000
    assert parse_since("7d", now) == now - 7 * 86_400_000
    assert parse_since("2024-01-01T01:00:00+01:00") == T0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"level": "LOUD"}, "level"),
        ({"since": "yesterday"}, "since"),
        ({"limit": 0}, "limit"),
        ({"until": "tomorrow"}, "until"),
        ({"since": "2024-01-02", "until": "2024-01-01"}, "until"),
    ],
)
@pytest.mark.fault("bad input")
def test_bad_query_options_are_refused(options: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        LogQuery.parse(**options)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_follow_yields_the_tail_then_new_matching_rows(store: Store) -> None:
    seed(store)
    stop = threading.Event()
    seen: list[str] = []
    query = LogQuery.parse(level="error", limit=1)

    def reader() -> None:
        for row in follow(store, query, poll_seconds=0.02, stop=stop):
            seen.append(row.message)
            if len(seen) == 3:
                stop.set()

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.1)
    store.logs.insert({"timestamp": T0 + 5, "level": "INFO", "message": "not shown"})
    store.logs.insert({"timestamp": T0 + 6, "level": "ERROR", "message": "new error"})
    store.logs.insert({"timestamp": T0 + 7, "level": "CRITICAL", "message": "new critical"})
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert seen == ["c1", "new error", "new critical"]


# --- the command -------------------------------------------------------------------------


def test_cli_json_lists_the_rows_with_metadata_parsed(db_target: str) -> None:
    with Store.open(db_target) as store:
        seed(store)
        store.logs.insert(
            {"timestamp": T0 + 9, "level": "ERROR", "message": "m", "metadata": {"a": "1"}}
        )
    result = runner.invoke(
        app, ["logs", "--db", str(db_target), "--level", "ERROR", "--since", "2024-01-01", "--json"]
    )
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [(r["level"], r["message"]) for r in listed] == [
        ("ERROR", "e1"),
        ("ERROR", "m"),
        ("CRITICAL", "c1"),
    ]
    assert listed[1]["metadata"] == {"a": "1"}


def test_cli_table_shows_messages_as_text(db_target: str) -> None:
    with Store.open(db_target) as store:
        store.logs.insert({"timestamp": T0, "level": "INFO", "message": "[bold]raw[/bold] text"})
    result = runner.invoke(app, ["logs", "--db", str(db_target)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "[bold]raw[/bold] text" in result.stdout
    assert "2024-01-01 00:00:00.000" in result.stdout


def test_cli_until_ends_the_listing(db_target: str) -> None:
    with Store.open(db_target) as store:
        seed(store)
    result = runner.invoke(
        app,
        ["logs", "--db", str(db_target), "--since", "2024-01-01", "--until", "2024-01-02",
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [r["message"] for r in json.loads(result.stdout)] == ["d1", "i1", "w1", "e1"]
    followed = runner.invoke(app, ["logs", "--db", str(db_target), "--until", "2024-01-02", "-f"])
    assert followed.exit_code == USER_ERROR
    assert "until=" in followed.stderr
    assert followed.stderr.strip().count("\n") == 0


@pytest.mark.fault("bad input")
def test_cli_user_errors_are_one_line_and_exit_2(db_target: str) -> None:
    Store.open(db_target).close()
    result = runner.invoke(app, ["logs", "--db", str(db_target), "--level", "LOUD"])
    assert result.exit_code == USER_ERROR
    assert result.stderr.strip().count("\n") == 0
    assert "level='LOUD'" in result.stderr


def test_cli_follow_prints_new_rows_as_json_lines_until_interrupted(
    tmp_path: Path, db_target: str
) -> None:
    Store.open(db_target).close()
    process = subprocess.Popen(
        [sys.executable, "-m", "tradedb", "logs", "--db", str(db_target), "--follow", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=isolated_environ(tmp_path),
    )
    try:
        time.sleep(1.0)
        handler = BotLogHandler(db_target)
        log = logging.getLogger("bot.follow")
        log.propagate = False
        log.addHandler(handler)
        log.error("live one", extra={"strategy": "sma"})
        log.removeHandler(handler)
        handler.close()
        assert process.stdout is not None
        line = process.stdout.readline()
        assert json.loads(line)["message"] == "live one"
        assert json.loads(line)["strategy"] == "sma"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    if "://" not in db_target:
        assert os.path.exists(db_target)
