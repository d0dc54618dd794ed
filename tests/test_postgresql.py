"""What PostgreSQL is by nature: a server that can restart under a running bot, a pool of
connections, roles and passwords, read-only sessions, and versions."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

import pg_server as servers
import tradedb
from tradedb.cli.app import app
from tradedb.store import Store

pytestmark = pytest.mark.postgresql_only
TS = 1_700_000_000_000
PASSWORD = "Pa55-w0rd-never-shown"


@pytest.fixture(scope="module")
def own_server() -> Iterator[servers.Server]:
    """A server of this module's own, which its tests may restart."""
    server = servers.start_for_tests()
    try:
        yield server
    finally:
        servers.remove(server)


@pytest.fixture
def own_url(own_server: servers.Server) -> Iterator[str]:
    name = own_server.create_database()
    try:
        yield own_server.url(name)
    finally:
        own_server.drop_database(name)


def open_order(db: tradedb.TradeDB, order_id: str, amount: str = "1000") -> None:
    db.ledger.place_order(
        exchange="kraken",
        order_id=order_id,
        symbol="BTC/USD",
        side="buy",
        order_type="limit",
        amount=amount,
        price="10",
        timestamp=TS,
    )


# --- a restart in the middle of a run ----------------------------------------------------------


def test_a_server_restart_mid_run_loses_no_acknowledged_fill(
    own_server: servers.Server, own_url: str
) -> None:
    with tradedb.open(own_url) as db:
        db.ledger.deposit(exchange="kraken", asset="USD", amount="10000000", timestamp=TS)
        open_order(db, "o-1", "100000")
        acknowledged: list[str] = []
        errors: list[str] = []
        retryable: list[str] = []
        stop = threading.Event()

        def write() -> None:
            number = 0
            while not stop.is_set():
                fill_id = f"f-{number}"
                try:
                    db.ledger.record_fill(
                        exchange="kraken",
                        order_id="o-1",
                        exchange_trade_id=fill_id,
                        amount="0.5",
                        price="10",
                        timestamp=TS + number,
                    )
                except tradedb.DatabaseUnavailable as exc:
                    # The one error a broken connection may give: it says whether the fill
                    # was recorded and that it can be delivered again; so it is.
                    retryable.append(str(exc))
                    continue
                except Exception as exc:  # anything else fails the test
                    errors.append(repr(exc))
                    return
                acknowledged.append(fill_id)
                number += 1

        writer = threading.Thread(target=write)
        writer.start()
        try:
            deadline = time.monotonic() + 60
            while len(acknowledged) < 50 and time.monotonic() < deadline:
                time.sleep(0.01)
            before_restart = len(acknowledged)
            own_server.restart()
            while len(acknowledged) < before_restart + 50 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            stop.set()
            writer.join(timeout=60)
        assert errors == []
        assert len(acknowledged) >= before_restart + 50, "the writer never came back"
        assert all("retried" in message or "run it again" in message for message in retryable)
        assert all(PASSWORD not in message for message in retryable)

        stored = {trade.exchange_trade_id for trade in _all_trades(db)}
        assert set(acknowledged) <= stored
        # Nothing but acknowledged fills, and a fill whose acknowledgement was lost with
        # the connection, which its re-delivery then found (it is idempotent).
        assert len(stored - set(acknowledged)) <= 1
        assert db.ops.audit() == []


def _all_trades(db: tradedb.TradeDB) -> list[tradedb.Trade]:
    trades: list[tradedb.Trade] = []
    after = None
    while True:
        page = db.tables.trades.list(after=after, limit=1000)
        trades += page.items
        if page.next_after is None:
            return trades
        after = page.next_after


def test_the_pool_is_never_exhausted_by_failed_operations(own_url: str) -> None:
    from tradedb.store.engines import postgresql

    with Store.open(own_url) as store:
        db = tradedb.TradeDB(store)
        db.ledger.deposit(exchange="kraken", asset="USD", amount="10", timestamp=TS)
        failures: list[BaseException] = []

        def overdraw() -> None:
            for _ in range(3 * postgresql.POOL_MAX):
                try:
                    db.ledger.withdraw(exchange="kraken", asset="USD", amount="11")
                except tradedb.InsufficientFunds as exc:
                    failures.append(exc)
                try:
                    with db.snapshot():
                        raise KeyError("a reader's own error")
                except KeyError:
                    pass

        threads = [threading.Thread(target=overdraw) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(failures) == 4 * 3 * postgresql.POOL_MAX
        stats = store.db.pool.get_stats()  # type: ignore[attr-defined]
        assert stats.get("requests_waiting", 0) == 0
        assert stats["pool_size"] <= postgresql.POOL_MAX
        assert stats["pool_available"] == stats["pool_size"]
        assert db.ledger.balance("kraken", "USD").available == 10


def test_a_statement_cut_off_without_an_answer_is_run_again_as_a_lost_connection(
    own_url: str,
) -> None:
    """A batch cut off by a server restart can fail in libpq (no SQLSTATE) before the
    connection is marked broken. Nothing was committed, so the write runs again, once."""
    with Store.open(own_url) as store:
        db = tradedb.TradeDB(store)
        attempts = []

        def deposit_cut_off_once() -> None:
            with store.db.transaction():
                db.ledger.deposit(
                    exchange="kraken", asset="USD", amount="10", timestamp=TS, reference="d-1"
                )
                attempts.append(1)
                if len(attempts) == 1:
                    raise psycopg.OperationalError(
                        "sending query failed: cannot exit pipeline mode while busy"
                    )

        store.db.retrying(deposit_cut_off_once)

        assert len(attempts) == 2
        assert db.ledger.balance("kraken", "USD").available == 10
        assert db.tables.wallet_movements.count() == 1


# --- read-only sessions --------------------------------------------------------------------


@pytest.mark.fault("bad input")
def test_a_read_only_database_is_refused_writes_by_the_server_itself(own_url: str) -> None:
    Store.open(own_url).close()
    with Store.open(own_url, readonly=True) as store:
        # Past tradedb's own refusal, straight to the server: it refuses too.
        with pytest.raises(store.db.Error, match="read-only transaction"):
            store.db.connection.execute(
                "INSERT INTO bot_logs (timestamp, level, message) VALUES (1, 'INFO', 'x')"
            )
        assert store.logs.count() == 0


# --- connecting ----------------------------------------------------------------------------


@pytest.fixture
def role(own_server: servers.Server, own_url: str) -> str:
    """A role that must give its password, owning the test's database."""
    with own_server.admin() as conn:
        conn.execute("DROP ROLE IF EXISTS trader")
        conn.execute(f"CREATE ROLE trader LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f"ALTER DATABASE {own_url.rsplit('/', 1)[1]} OWNER TO trader")
    return own_url.rsplit("/", 1)[1]


@pytest.mark.fault("bad input")
def test_the_right_password_opens_and_a_wrong_one_is_one_line(
    own_server: servers.Server, role: str
) -> None:
    good = own_server.url(role, user="trader", password=PASSWORD)
    created = CliRunner().invoke(app, ["init", "--db", good])
    assert created.exit_code == 0, created.output
    assert PASSWORD not in created.output

    bad = own_server.url(role, user="trader", password="wrong-" + PASSWORD)
    for command in (["info"], ["init"], ["balances"]):
        result = CliRunner().invoke(app, [*command, "--db", bad])
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "password authentication failed" in lines[0]
        assert f"postgresql://trader:***@127.0.0.1:{own_server.port}/{role}" in lines[0]
        assert PASSWORD not in result.output


@pytest.mark.fault("bad input")
def test_a_missing_database_is_one_line_naming_it(own_server: servers.Server) -> None:
    url = own_server.url("no_such_database", user="postgres", password=PASSWORD)
    result = CliRunner().invoke(app, ["info", "--db", url])
    assert result.exit_code == 2
    assert "no_such_database" in result.stderr
    assert "does not exist" in result.stderr
    assert PASSWORD not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.fault("bad input")
def test_a_server_older_than_supported_is_refused(
    own_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradedb.store.engines import postgresql

    monkeypatch.setattr(postgresql, "MIN_SERVER_VERSION", 990000)
    result = CliRunner().invoke(app, ["init", "--db", own_url])
    assert result.exit_code == 2
    assert "tradedb needs 99.0 or newer" in result.stderr
    with pytest.raises(tradedb.DatabaseLocationError, match="the server runs PostgreSQL"):
        tradedb.open(own_url)


@pytest.mark.fault("bad input")
def test_a_database_of_other_tables_is_refused_and_left_alone(own_url: str) -> None:
    with psycopg.connect(own_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (body text)")
    with pytest.raises(tradedb.SchemaVersionError, match="not a tradedb database"):
        tradedb.open(own_url)
    with psycopg.connect(own_url, autocommit=True) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert [row[0] for row in rows] == ["notes"]


# --- processes -----------------------------------------------------------------------------

_INHERITED: dict[str, Any] = {}


def _deposit_through_the_inherited_store() -> str:
    db: tradedb.TradeDB = _INHERITED["db"]
    db.ledger.deposit(exchange="kraken", asset="USD", amount="2", reference="from-child")
    return str(db.ledger.balance("kraken", "USD").available)


def test_a_database_used_in_a_forked_process_opens_its_own_connections(own_url: str) -> None:
    db = _INHERITED["db"] = tradedb.open(own_url)
    try:
        db.ledger.deposit(exchange="kraken", asset="USD", amount="1")  # the pool is made
        with multiprocessing.get_context("fork").Pool(1) as pool:
            assert pool.apply(_deposit_through_the_inherited_store) == "3.00000000"
        # The parent's connections still work after the child has gone.
        db.ledger.deposit(exchange="kraken", asset="USD", amount="4")
        assert db.ledger.balance("kraken", "USD").available == Decimal(7)
    finally:
        _INHERITED.clear()
        db.close()


@pytest.mark.fault("bad input")
def test_replicate_on_a_postgresql_url_says_postgresql_does_that_in_one_line(
    own_url: str,
) -> None:
    for command in (["replicate"], ["replicate", "list"], ["replicate", "restore", "--to", "x"]):
        result = CliRunner().invoke(app, [*command, "--db", own_url])
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "streaming replication" in lines[0]
        assert "WAL archiving" in lines[0]


def test_closing_a_log_handler_whose_database_went_away_does_not_hang(
    own_server: servers.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradedb.services.ops.logs import BotLogHandler
    from tradedb.store.engines import postgresql

    monkeypatch.setattr(postgresql, "POOL_TIMEOUT_SECONDS", 1.0)
    name = own_server.create_database()
    handler = BotLogHandler(own_server.url(name), batch_size=10, flush_interval=30.0)
    log = logging.getLogger("bot.gone")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(handler)
    try:
        for number in range(1000):
            log.info("n%d", number)
        own_server.drop_database(name)
        started = time.monotonic()
        handler.close()
        # One batch finds the database gone; what still waits is given up with it.
        assert time.monotonic() - started < 15
        assert handler.failed > 0
        assert handler.written + handler.failed == 1000
    finally:
        log.removeHandler(handler)
