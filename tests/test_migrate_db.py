"""`tradedb migrate-db` as a user runs it: copies between SQLite and PostgreSQL (both ways,
and within each engine) that keep every row, id and amount; refusals that write nothing;
copies killed with SIGKILL at chosen moments that a rerun finishes exactly.

The source is built once per engine from real data (tests/data: Binance's XRP/ETH 5m and
1m candles, a paper session of two shipped strategies trading them through the ledger,
snapshots, daily metrics, tickers and logs, see mcp_database.py), plus ledger steps of
their own (a deposit near SQLite's largest amount, a partial fill, a cancel, an expiry, a
withdrawal of 1e-8), settings of each type, and a log row deleted again, so that the
source's id counter is past its largest id. Each test copies that template.

PostgreSQL URLs carry a password (the role `migrator`) wherever a test reads the output,
and no output, error or progress record may ever show it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner, Result

import mcp_database
from conftest import DATA, sha256
from faults import FaultFigures
from tradedb.cli.app import app
from tradedb.schema.migrate import head_revision
from tradedb.services.ledger import Ledger
from tradedb.services.marketdata.importing import import_path
from tradedb.services.ops.config import set_value
from tradedb.store import Store, copying
from tradedb.store.copying import COPIED_TABLES

USER_ERROR = 2
ROLE = "migrator"
PASSWORD = "Pw-never-printed-7Q"
PAGE = "100"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# --- running the command ------------------------------------------------------------------


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    # Anything but a clean exit would show up as an exception other than SystemExit.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert PASSWORD not in result.stdout + result.stderr
    return result


def migrate(source: str, target: str, *extra: str) -> dict[str, Any]:
    result = invoke("migrate-db", "--db", source, "--to", target, "--json", *extra)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def refused(*args: str) -> str:
    """Exit 2, exactly one line on stderr, nothing on stdout, no traceback: that line."""
    result = invoke("migrate-db", *args)
    assert result.exit_code == USER_ERROR, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    return lines[0]


# --- the source ---------------------------------------------------------------------------


def build_source(target: str, work: Path) -> None:
    mcp_database.build(target, work)  # type: ignore[arg-type]
    minutes = work / "minutes" / "binance"
    minutes.mkdir(parents=True)
    shutil.copyfile(DATA / "XRP_ETH-1m.feather", minutes / "XRP_ETH-1m.feather")
    with Store.open(target) as store:
        import_path(store, minutes)
        # A meme coin's hour: a volume past DECIMAL(20,8), DECIMAL(38,8) holds it.
        hour = [ms("2019-10-14T00:00"), "0.00000812", "0.0000083", "0.000008", "0.0000082"]
        volume = "420690000000000000.12345678"
        store.write_candles(
            [[*hour, volume]], exchange="binance", symbol="SHIB/USDT", timeframe="1h"
        )
        ledger = Ledger(store)
        ledger.deposit(
            exchange="kraken",
            asset="USD",
            amount="500000000000.12345678",  # past int64 units: SQLite's overflow form
            timestamp=ms("2019-10-14T00:00"),
            reference="wire-1",
        )
        ledger.place_order(
            exchange="kraken", order_id="k-buy", symbol="BTC/USD", side="buy",
            order_type="limit", amount="0.5", price="8300", strategy="manual",
            timestamp=ms("2019-10-14T01:00"), fee_reserve_rate="0.0026",
        )  # fmt: skip
        ledger.record_fill(
            exchange="kraken", order_id="k-buy", exchange_trade_id="kt-1", amount="0.2",
            price="8299.5", fee="4.31974", timestamp=ms("2019-10-14T01:05"),
        )  # fmt: skip
        ledger.cancel_order("kraken", "k-buy", timestamp=ms("2019-10-14T02:00"))
        ledger.place_order(
            exchange="kraken", order_id="k-sell", symbol="BTC/USD", side="sell",
            order_type="limit", amount="0.1", price="9000", strategy="manual",
            timestamp=ms("2019-10-14T03:00"),
        )  # fmt: skip
        ledger.expire_order("kraken", "k-sell", timestamp=ms("2019-10-15T03:00"))
        ledger.withdraw(
            exchange="kraken", asset="USD", amount="0.00000001",
            timestamp=ms("2019-10-15T04:00"), reference="out-1",
        )  # fmt: skip
        set_value(store, "risk.max_fraction", "0.25", config_type="number", description="risk")
        set_value(store, "paper.enabled", True, active=False)
        set_value(store, "grid.levels", '{"count": 12}', config_type="json")
        store.write_tickers(
            [
                {
                    "symbol": "BTC/USD",
                    "last_price": "8299.5",
                    "price_change_24h": "-120.25",
                    "price_change_percent_24h": "-1.4281",
                    "timestamp": ms("2019-10-14T01:05"),
                }
            ],
            exchange="kraken",
        )
        # Text that COPY's text format must escape, and text that looks like its NULL.
        store.logs.insert(
            {
                "timestamp": ms("2019-10-15T04:30"),
                "level": "WARNING",
                "message": "tab\there, new\nline, cr\r, back\\slash, \\N, ünïcødé ✓",
                "module": "\\N",
                "metadata": {"path": "C:\\bot\\logs", "note": "a\tb"},
            }
        )
        with store.db.transaction() as conn:
            # A row whose id was given by hand, below any id tradedb hands out.
            conn.execute(
                "INSERT INTO bot_logs (id, timestamp, level, message) VALUES (?, ?, ?, ?)",
                (-5, ms("2019-10-15T04:45"), "ERROR", "an id given by hand"),
            )
        # A row inserted and deleted again: the counter is past the largest id, and an id
        # once handed out must not come back in the copy.
        gone = store.logs.insert(
            {"timestamp": ms("2019-10-15T05:00"), "level": "INFO", "message": "gone"}
        )
        with store.db.transaction() as conn:
            conn.execute("DELETE FROM bot_logs WHERE id = ?", (gone.id,))


@pytest.fixture(scope="session")
def sqlite_source_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("source-sqlite")
    built = work / "built.sqlite"
    build_source(str(built), work)
    template = work / "template.sqlite"
    conn = sqlite3.connect(built)
    try:
        conn.execute("VACUUM INTO ?", (str(template),))  # one self-contained file
    finally:
        conn.close()
    conn = sqlite3.connect(template)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # as tradedb makes its files
    finally:
        conn.close()
    return template


@pytest.fixture(scope="session")
def migrator(pg_server: Any) -> None:
    """A role that must give its password (the superuser is trusted on loopback)."""
    with pg_server.admin() as conn, contextlib.suppress(psycopg.errors.DuplicateObject):
        conn.execute(f"CREATE ROLE {ROLE} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")


@pytest.fixture(scope="session")
def pg_source_template(
    pg_server: Any, pg_template: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    name = pg_server.create_database(pg_template)
    build_source(pg_server.url(name), tmp_path_factory.mktemp("source-pg"))
    return str(name)


def pg_database(request: pytest.FixtureRequest, template: str | None = None) -> str:
    """A new database (a copy of `template`, or empty) for one test, as a URL with the
    migrator's password."""
    server = request.getfixturevalue("pg_server")
    request.getfixturevalue("migrator")
    name = server.create_database(template)
    request.addfinalizer(lambda: server.drop_database(name))
    return str(server.url(name, user=ROLE, password=PASSWORD))


@pytest.fixture
def sqlite_source(sqlite_source_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "source.sqlite"
    shutil.copyfile(sqlite_source_template, path)
    return str(path)


@pytest.fixture
def pg_source(request: pytest.FixtureRequest, pg_source_template: str) -> str:
    return pg_database(request, pg_source_template)


@pytest.fixture
def pg_empty(request: pytest.FixtureRequest) -> str:
    return pg_database(request)


@pytest.fixture
def source(engine: str, request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{'pg' if engine == 'postgresql' else 'sqlite'}_source"))


def empty_target(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if engine == "postgresql":
        return pg_database(request)
    return str(tmp_path / "target.sqlite")


# --- what a database holds ----------------------------------------------------------------


def records(target: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every copied table, field by field (amounts as Decimals), by id."""
    with Store.open(target, readonly=True) as store:
        return {
            table.name: sorted(
                (row.model_dump() for row in store.repo(table.name).list(limit=100_000).items),
                key=lambda row: row["id"],
            )
            for table in COPIED_TABLES
        }


def progress_left(target: str) -> dict[str, copying.TableProgress] | None:
    """The progress record of an unfinished copy in `target`, or None."""
    with Store.open(target, readonly=True) as store, store.db.snapshot():
        if not copying.has_progress(store.db):
            return None
        return copying.read_progress(store.db)


def row_counts(target: str) -> dict[str, int]:
    with Store.open(target, readonly=True) as store:
        return store.row_counts()


def assert_same_rows(expected: dict[str, list[dict[str, Any]]], target: str) -> None:
    copied = records(target)
    for table in COPIED_TABLES:
        assert len(copied[table.name]) == len(expected[table.name]), table.name
        for mine, theirs in zip(copied[table.name], expected[table.name], strict=True):
            assert mine == theirs, table.name


def assert_verified(report: dict[str, Any]) -> None:
    assert report["equal"] is True
    assert report["ok"] is True
    assert report["audit"] == {"ok": True, "problems": []}
    assert report["source_changed"] is False
    assert [entry["table"] for entry in report["tables"]] == [t.name for t in COPIED_TABLES]
    for entry in report["tables"]:
        assert entry["equal"] is True
        assert entry["rows"]["source"] == entry["rows"]["target"]
        for sums in entry["sums"].values():
            assert sums["source"] == sums["target"]
            # Fixed-point text with the column's decimals, never '1E-8'.
            assert "E" not in sums["source"]
            assert "e" not in sums["source"]
            assert "." in sums["source"]


# --- round trips --------------------------------------------------------------------------


def test_sqlite_to_postgresql_and_back_keeps_every_row(
    sqlite_source: str, pg_empty: str, tmp_path: Path
) -> None:
    expected = records(sqlite_source)
    there = migrate(sqlite_source, pg_empty, "--page-rows", "500")
    assert_verified(there)
    assert there["resumed"] is False
    assert there["rows_copied"] == sum(len(rows) for rows in expected.values())
    assert_same_rows(expected, pg_empty)
    back = tmp_path / "back.sqlite"
    assert_verified(migrate(pg_empty, str(back)))
    assert_same_rows(expected, str(back))
    # The exact sums of the real candles and of the amounts at both ends of the range.
    by_table = {entry["table"]: entry for entry in there["tables"]}
    assert by_table["market_data"]["rows"]["target"] == 706 + 2469 + 1
    volume = by_table["market_data"]["sums"]["volume"]
    assert volume["source"] == volume["target"]
    assert Decimal(volume["target"]) > Decimal("420690000000000000.12345678")
    percent = by_table["tickers"]["sums"]["price_change_percent_24h"]
    assert percent["source"] == percent["target"] == "-1.4281"
    for target in (pg_empty, str(back)):
        assert progress_left(target) is None
        assert invoke("audit", "--db", target).exit_code == 0
        with Store.open(target, readonly=True) as store:
            assert store.schema_status().current == head_revision()


def test_postgresql_to_sqlite_keeps_every_row(pg_source: str, tmp_path: Path) -> None:
    expected = records(pg_source)
    target = str(tmp_path / "copy.sqlite")
    result = invoke("migrate-db", "--db", pg_source, "--to", target)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    # For people: the comparison, the audit and the verdict.
    assert "source and target compared" in result.stdout
    assert "sum available_change" in result.stdout
    assert "✓ audit of the target: ledger invariants hold" in result.stdout
    assert "✓ row counts and amount sums agree: the copy is complete" in result.stdout
    assert "postgresql://migrator:***@" in result.stdout
    assert_same_rows(expected, target)
    assert progress_left(target) is None


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_copy_within_one_engine_keeps_every_row(
    engine: str, source: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    expected = records(source)
    target = empty_target(engine, request, tmp_path)
    # An empty database at the schema (`tradedb init`) is as good a target as a new one.
    assert invoke("init", "--db", target).exit_code == 0
    assert_verified(migrate(source, target, "--page-rows", "333"))
    assert_same_rows(expected, target)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_new_rows_in_the_copy_take_fresh_ids(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Both directions: into PostgreSQL from SQLite, into SQLite from PostgreSQL."""
    source = str(
        request.getfixturevalue("sqlite_source" if engine == "postgresql" else "pg_source")
    )
    target = empty_target(engine, request, tmp_path)
    migrate(source, target)
    before = records(target)
    with Store.open(target) as store:
        ledger = Ledger(store)
        ledger.place_order(
            exchange="kraken", order_id="after-1", symbol="BTC/USD", side="buy",
            order_type="limit", amount="0.01", price="8000", timestamp=ms("2019-10-16T00:00"),
        )  # fmt: skip
        fill = ledger.record_fill(
            exchange="kraken", order_id="after-1", exchange_trade_id="after-t1",
            amount="0.01", price="8000", fee="0.208", timestamp=ms("2019-10-16T00:01"),
        )  # fmt: skip
        log = store.logs.insert(
            {"timestamp": ms("2019-10-16T00:02"), "level": "INFO", "message": "x"}
        )
        candles = store.write_candles(
            [[ms("2019-10-16T00:00"), "1", "2", "0.5", "1.5", "10"]],
            exchange="kraken", symbol="BTC/USD", timeframe="1m",
        )  # fmt: skip
    assert candles.inserted == 1
    assert fill.trade.id == max(row["id"] for row in before["trades"]) + 1
    assert fill.order.id == max(row["id"] for row in before["crypto_orders"]) + 1
    # The source handed out one more log id than it kept (a row deleted): not reused.
    assert log.id == max(row["id"] for row in before["bot_logs"]) + 2
    after = records(target)
    assert max(row["id"] for row in after["market_data"]) == len(before["market_data"]) + 1
    assert invoke("audit", "--db", target).exit_code == 0


def test_a_failed_audit_of_the_target_exits_1(sqlite_source: str, pg_empty: str) -> None:
    with Store.open(sqlite_source) as store, store.db.transaction() as conn:
        # One unit (0.00000001) that no wallet movement explains.
        conn.execute("UPDATE wallets SET available_balance = available_balance + 1 WHERE id = 1")
    result = invoke("migrate-db", "--db", sqlite_source, "--to", pg_empty, "--json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    assert report["equal"] is True  # an exact copy of a ledger that fails its audit
    assert report["ok"] is False
    assert report["audit"]["ok"] is False
    assert any("movements add up to" in problem for problem in report["audit"]["problems"])
    shown = invoke(
        "migrate-db",
        "--db",
        sqlite_source,
        "--to",
        str(Path(sqlite_source).with_name("t.sqlite")),
    )
    assert shown.exit_code == 1
    assert "✗ audit of the target: wallet" in shown.stdout


def test_a_source_written_during_the_copy_exits_1_and_keeps_the_record(
    sqlite_source: str, pg_empty: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer adds a row once the pages are copied: the comparison (of the source as it
    is then) differs, the report says the source changed, and the record stays, so that a
    rerun refuses to call the copy finished."""
    moving_counters = copying.advance_id_counters

    def a_writer_meanwhile(*args: Any, **kwargs: Any) -> None:
        with Store.open(sqlite_source) as writer:
            writer.logs.insert(
                {"timestamp": ms("2019-10-16T00:00"), "level": "INFO", "message": "late"}
            )
        moving_counters(*args, **kwargs)

    monkeypatch.setattr(copying, "advance_id_counters", a_writer_meanwhile)
    result = invoke("migrate-db", "--db", sqlite_source, "--to", pg_empty, "--json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    assert report["equal"] is False
    assert report["source_changed"] is True
    logs = next(entry for entry in report["tables"] if entry["table"] == "bot_logs")
    assert logs["equal"] is False
    assert logs["rows"]["source"] == logs["rows"]["target"] + 1
    assert all(entry["equal"] for entry in report["tables"] if entry["table"] != "bot_logs")
    assert progress_left(pg_empty) is not None
    monkeypatch.undo()
    assert "has changed since the unfinished copy" in refused(
        "--db", sqlite_source, "--to", pg_empty
    )


# --- refusals: one line, exit 2, nothing written -------------------------------------------


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
@pytest.mark.fault("bad input")
def test_a_non_empty_target_is_refused_and_left_as_it_was(
    engine: str, sqlite_source: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    target = empty_target(engine, request, tmp_path)
    with Store.open(target) as store:
        Ledger(store).deposit(exchange="binance", asset="ETH", amount="1", reference="mine")
    kept = records(target)
    checksum = sha256(Path(target)) if engine == "sqlite" else None
    line = refused("--db", sqlite_source, "--to", target)
    assert "is not empty" in line
    assert "--into-non-empty" in line
    assert records(target) == kept
    assert progress_left(target) is None
    if checksum is not None:
        assert sha256(Path(target)) == checksum
    # With the flag, the target's own wallet and movement (ids 1) collide: still refused,
    # found by a trial copy that is rolled back.
    line = refused("--db", sqlite_source, "--to", target, "--into-non-empty")
    assert "collide" in line
    assert "nothing was written" in line
    assert records(target) == kept
    assert progress_left(target) is None


def test_into_non_empty_adds_the_rows_when_nothing_collides(
    sqlite_source: str, pg_empty: str
) -> None:
    with Store.open(pg_empty) as store, store.db.transaction() as conn:
        # A row of the target's own, with an id far past the source's.
        conn.execute(
            "INSERT INTO bot_logs (id, timestamp, level, message) VALUES (?, ?, ?, ?)",
            (1000, ms("2019-09-01T00:00"), "INFO", "the target's own"),
        )
    expected = records(sqlite_source)
    report = migrate(sqlite_source, pg_empty, "--into-non-empty")
    assert report["into_non_empty"] is True
    assert report["equal"] is True
    assert report["ok"] is True
    logs = next(entry for entry in report["tables"] if entry["table"] == "bot_logs")
    assert logs["rows"] == {
        "source": len(expected["bot_logs"]),
        "target": len(expected["bot_logs"]) + 1,
        "before": 1,
    }
    copied = records(pg_empty)
    assert copied["bot_logs"][:-1] == expected["bot_logs"]
    assert copied["bot_logs"][-1]["message"] == "the target's own"
    for table in COPIED_TABLES:
        if table.name != "bot_logs":
            assert copied[table.name] == expected[table.name]
    with Store.open(pg_empty) as store:
        assert (
            store.logs.insert(
                {"timestamp": ms("2019-10-16T00:00"), "level": "INFO", "message": "n"}
            ).id
            == 1001
        )


@pytest.mark.fault("bad input")
def test_a_source_at_an_older_schema_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "old.sqlite"
    shutil.copyfile(DATA / "tradedb-0002.sqlite", source)
    checksum = sha256(source)
    target = tmp_path / "new.sqlite"
    line = refused("--db", str(source), "--to", str(target))
    assert f"run `tradedb init --db {source}` first" in line
    assert not target.exists()
    assert sha256(source) == checksum


@pytest.mark.fault("bad input")
def test_the_same_database_is_refused(sqlite_source: str, pg_source: str, tmp_path: Path) -> None:
    checksum = sha256(Path(sqlite_source))
    link = tmp_path / "link.sqlite"
    link.symlink_to(sqlite_source)
    for target in (sqlite_source, str(link), f"sqlite:///{sqlite_source}"):
        assert "the same database" in refused("--db", sqlite_source, "--to", target)
    assert sha256(Path(sqlite_source)) == checksum
    kept = row_counts(pg_source)
    other_spelling = pg_source.replace("@127.0.0.1:", "@localhost:")
    assert other_spelling != pg_source
    line = refused("--db", pg_source, "--to", other_spelling)
    assert "the same database" in line
    assert "migrator:***@" in line
    assert row_counts(pg_source) == kept
    assert progress_left(pg_source) is None


@pytest.mark.fault("bad input")
def test_unreachable_databases_and_wrong_passwords_are_one_line(
    sqlite_source: str, pg_empty: str, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    nowhere = f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{closed_port}/tradedb"
    line = refused("--db", sqlite_source, "--to", nowhere)
    assert "cannot connect" in line
    assert f"{ROLE}:***@127.0.0.1:{closed_port}" in line
    line = refused("--db", nowhere, "--to", str(tmp_path / "t.sqlite"))
    assert "cannot connect" in line
    wrong = pg_empty.replace(PASSWORD, "not-the-password")
    line = refused("--db", sqlite_source, "--to", wrong)
    assert "password authentication failed" in line
    assert "not-the-password" not in line
    assert "***" in line
    missing = tmp_path / "missing.sqlite"
    assert "does not exist" in refused("--db", str(missing), "--to", pg_empty)
    assert not missing.exists()
    no_folder = tmp_path / "no" / "such" / "t.sqlite"
    assert "does not exist" in refused("--db", sqlite_source, "--to", str(no_folder))
    assert not (tmp_path / "no").exists()
    assert not (tmp_path / "t.sqlite").exists()
    assert pg_tables(pg_empty) == []


def pg_tables(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    return sorted(str(row[0]) for row in rows)


# --- killed copies ------------------------------------------------------------------------

# A child that runs the real command and kills itself with SIGKILL at a chosen moment:
# inside the transaction of its Nth page (rows written, not committed), or as the copy,
# compared and audited, is about to remove its progress record.
KILLING_CHILD = r"""
import os, signal, sys
from tradedb.store import copying

when = os.environ["KILL_AT"]
if when == "finish":
    def drop_progress(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    copying.drop_progress = drop_progress
else:
    original = copying.write_page
    pages = [0]
    def write_page(*args, **kwargs):
        original(*args, **kwargs)
        pages[0] += 1
        if pages[0] == int(when):
            os.kill(os.getpid(), signal.SIGKILL)
    copying.write_page = write_page
from tradedb.cli.app import main
sys.argv = ["tradedb", *sys.argv[1:]]
main()
"""


def killed_run(source: str, target: str, kill_at: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", KILLING_CHILD, "migrate-db", "--db", source, "--to", target,
         "--page-rows", PAGE],
        env={**os.environ, "KILL_AT": kill_at},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, (child.returncode, child.stdout, child.stderr)
    assert PASSWORD not in child.stdout + child.stderr


def assert_consistent_progress(target: str, source: str) -> dict[str, copying.TableProgress]:
    """The record an interrupted copy left: it names the source (no password), and the
    target holds exactly the rows it lists, no more."""
    progress = progress_left(target)
    assert progress is not None
    counts = row_counts(target)
    for entry in progress.values():
        assert PASSWORD not in entry.source
        assert entry.source.startswith("postgresql://") or entry.source == str(
            Path(source).resolve()
        )
        assert counts[entry.table] == entry.rows_copied
    return progress


DIRECTIONS = [("sqlite_source", "postgresql"), ("pg_source", "sqlite")]


@pytest.mark.parametrize(("source_fixture", "engine"), DIRECTIONS)
@pytest.mark.fault("kill")
def test_a_copy_killed_at_any_step_ends_exact_when_run_again(
    source_fixture: str,
    engine: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    fault_figures: FaultFigures,
) -> None:
    source = str(request.getfixturevalue(source_fixture))
    expected = records(source)
    target = empty_target(engine, request, tmp_path)
    # Killed inside its 2nd page (positions), then, run again, inside its 17th (candles).
    killed_run(source, target, "2")
    first = assert_consistent_progress(target, source)
    killed_run(source, target, "17")
    second = assert_consistent_progress(target, source)
    assert sum(entry.rows_copied for entry in second.values()) > sum(
        entry.rows_copied for entry in first.values()
    )
    # Killed after everything was copied, compared and audited, before it was marked done.
    killed_run(source, target, "finish")
    assert_consistent_progress(target, source)
    fault_figures.killed(3)
    report = migrate(source, target, "--page-rows", PAGE)
    assert_verified(report)
    assert report["resumed"] is True
    assert report["rows_copied"] == 0
    assert_same_rows(expected, target)
    assert progress_left(target) is None
    # Finished: a further run sees a non-empty target that is not an unfinished copy.
    assert "is not empty" in refused("--db", source, "--to", target)


@pytest.mark.fault("kill")
def test_a_copy_killed_at_a_random_moment_ends_exact(
    sqlite_source: str, pg_empty: str, fault_figures: FaultFigures
) -> None:
    """The real command, no hooks: killed by its parent once it has copied some pages."""
    expected = records(sqlite_source)
    for at_least, delay in ((200, 0.0), (800, 0.02)):
        child = subprocess.Popen(
            [sys.executable, "-m", "tradedb", "migrate-db", "--db", sqlite_source,
             "--to", pg_empty, "--page-rows", "50"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_rows(pg_empty, at_least=at_least)
            time.sleep(delay)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        fault_figures.killed(1)
        assert_consistent_progress(pg_empty, sqlite_source)
    report = migrate(sqlite_source, pg_empty, "--page-rows", "50")
    assert_verified(report)
    assert report["resumed"] is True
    assert_same_rows(expected, pg_empty)


def wait_for_rows(url: str, *, at_least: int) -> None:
    """Until the copy into `url` has recorded at least this many rows."""
    deadline = time.monotonic() + 60
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            try:
                row = conn.execute("SELECT sum(rows_copied) FROM tradedb_migration").fetchone()
            except psycopg.errors.UndefinedTable:
                row = None
            if row is not None and row[0] is not None and row[0] >= at_least:
                return
            time.sleep(0.002)
    pytest.fail(f"the copy did not reach {at_least} rows")


@pytest.mark.fault("kill")
def test_a_lost_connection_is_one_line_and_a_rerun_finishes(
    sqlite_source: str, pg_empty: str, pg_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the copy's sessions inside its 4th page (as a restart or a network
    failure would): one line, exit 2, and the same command then finishes the copy."""
    expected = records(sqlite_source)
    recording = copying.record_page
    pages = [0]

    def record_then_lose_the_connection(*args: Any, **kwargs: Any) -> None:
        pages[0] += 1
        if pages[0] == 4:
            database = pg_empty.rsplit("/", 1)[1]
            with pg_server.admin() as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (database,),
                )
        recording(*args, **kwargs)

    monkeypatch.setattr(copying, "record_page", record_then_lose_the_connection)
    line = refused("--db", sqlite_source, "--to", pg_empty, "--page-rows", PAGE)
    assert "connection broke" in line
    assert "run the same command to continue" in line
    assert "migrator:***@" in line
    monkeypatch.undo()
    progress = assert_consistent_progress(pg_empty, sqlite_source)
    assert sum(entry.rows_copied for entry in progress.values()) > 0
    report = migrate(sqlite_source, pg_empty, "--page-rows", PAGE)
    assert_verified(report)
    assert report["resumed"] is True
    assert_same_rows(expected, pg_empty)


@pytest.mark.fault("bad input")
def test_a_resumed_copy_refuses_a_changed_source_or_another_source(
    sqlite_source: str, pg_source: str, tmp_path: Path
) -> None:
    target = str(tmp_path / "target.sqlite")
    killed_run(sqlite_source, target, "5")
    kept = records(target), progress_left(target)
    # Another source: the record names the one it copies.
    line = refused("--db", pg_source, "--to", target)
    assert "holds an unfinished copy of" in line
    assert str(Path(sqlite_source).resolve()) in line
    # The same source, changed since the copy began: it cannot be finished exactly.
    with Store.open(sqlite_source) as store:
        Ledger(store).deposit(exchange="binance", asset="ETH", amount="0.5", reference="late")
    line = refused("--db", sqlite_source, "--to", target)
    assert "has changed since the unfinished copy" in line
    assert (records(target), progress_left(target)) == kept
