"""Retention: candles past the horizon move to Parquet archives and read back exactly;
tickers, DEBUG logs and old balance history go; trading records never do."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from faults import FaultFigures
from market_files import ohlcv_rows, read_feather
from tradedb.cli.app import app
from tradedb.services.marketdata.candles import exact_rows, get_candles
from tradedb.services.ops import archive, retention
from tradedb.store import Store
from tradedb.store.retention import PERMANENT, PermanentTable, RetentionRecords

ETH = "ETH/BTC"
DAY = 86_400_000
# ETH_BTC-5m.feather runs 2018-01-10 04:55 -> 2018-01-30 04:50 UTC.
JAN_20_2018 = 1_516_406_400_000
JAN_1_2019 = 1_546_300_800_000


def one_year_after(moment: int) -> int:
    return moment + 365 * DAY


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config.toml"
    monkeypatch.setenv("TRADEDB_CONFIG", str(config))
    return config


@pytest.fixture
def eth(store: Store) -> list[list[Any]]:
    # The file carries float noise past the 8th decimal (see tests/data/README.md).
    rows = [
        [ms, *(f"{value:.8f}" for value in values)]
        for ms, *values in ohlcv_rows(read_feather("ETH_BTC-5m.feather"))
    ]
    store.write_candles(rows, exchange="binance", symbol=ETH, timeframe="5m")
    return rows


def exact_table(store: Store, symbol: str = ETH, timeframe: str = "5m") -> pa.Table:
    return get_candles(store, "binance", symbol, timeframe, output="arrow", exact=True)


def test_old_candles_move_to_a_parquet_archive_and_read_back_bit_exact(
    store: Store, eth: list[list[Any]]
) -> None:
    before = exact_table(store)
    text_before = exact_rows(store, "binance", ETH, "5m")

    report = retention.run(store, retention.Policy(), now=one_year_after(JAN_20_2018))

    archived = sum(1 for row in eth if row[0] < JAN_20_2018)
    assert [(p.year, p.rows, p.status) for p in report.partitions] == [(2018, archived, "moved")]
    assert store.candles.count() == len(eth) - archived
    # Reads span the archive and the database as if nothing had moved.
    assert exact_table(store).equals(before)
    assert exact_rows(store, "binance", ETH, "5m") == text_before
    floats = get_candles(store, "binance", ETH, "5m")
    assert floats["close"].tolist() == [float(row[4]) for row in eth]
    # A range across the boundary: one ordered result, no duplicates.
    part = exact_rows(store, "binance", ETH, "5m", start=JAN_20_2018 - DAY, end=JAN_20_2018 + DAY)
    assert [r[0] for r in part] == [
        r[0] for r in eth if JAN_20_2018 - DAY <= r[0] < JAN_20_2018 + DAY
    ]


@pytest.mark.fault("disk full")
def test_a_disk_that_fills_while_archiving_leaves_no_temporary_file(
    store: Store, eth: list[list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pq.write_table

    def write_until_full(table: pa.Table, where: Any, **options: Any) -> None:
        real(table.slice(0, 10), where, **options)  # part of the file is there
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pq, "write_table", write_until_full)

    with pytest.raises(OSError, match="No space left"):
        retention.run(store, retention.Policy(), now=one_year_after(JAN_20_2018))

    folder = archive.archive_folder(store.db.companion_base)
    assert archive.leftover_temporaries(folder) == []
    assert store.candles.count() == len(eth)


def test_the_archive_is_hive_partitioned_zstd_decimal_with_a_checked_manifest(
    store: Store, eth: list[list[Any]], db_path: Path
) -> None:
    retention.run(store, retention.Policy(), now=one_year_after(JAN_20_2018))

    folder = archive.archive_folder(store.db.companion_base)
    if store.db.engine == "sqlite":
        assert folder == db_path.parent / "tradedb-archives"
    relative = (
        "market_data/exchange=binance/symbol=ETH%2FBTC/timeframe=5m/year=2018/candles.parquet"
    )
    path = folder / relative
    meta = pq.ParquetFile(path).metadata
    assert meta.row_group(0).column(1).compression == "ZSTD"
    manifest = json.loads((folder / "manifest.json").read_text())
    (entry,) = manifest["files"]
    assert entry["path"] == relative
    assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    archived = [row for row in eth if row[0] < JAN_20_2018]
    assert entry["rows"] == len(archived) == meta.num_rows
    # Any Hive-aware reader finds the market in the path and exact decimals in the file.
    dataset = ds.dataset(folder / "market_data", format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert set(table.column("symbol").to_pylist()) == {ETH}
    assert table.schema.field("close_price").type == pa.decimal128(38, 8)
    assert table.column("close_price").to_pylist() == [Decimal(r[4]) for r in archived]


def test_a_range_read_from_the_archive_reads_only_the_row_groups_it_touches(
    store: Store, eth: list[list[Any]], db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small row groups, so that the file of 20 days of 5m candles has a dozen of them.
    monkeypatch.setattr(archive, "ROWS_PER_GROUP", 500)
    last = eth[-1][0]
    windows = [
        (JAN_20_2018, JAN_20_2018 + DAY),
        (JAN_20_2018 + 7, JAN_20_2018 + 3 * DAY + 300_000),
        (eth[0][0], eth[0][0] + 300_000),
        (last, last + 300_000),
        (eth[499][0], eth[500][0] + 1),  # across the first row groups' boundary
        (None, None),
    ]
    before = [exact_table(store).filter(_between(*window)) for window in windows]

    retention.run(store, retention.Policy(), now=one_year_after(last + DAY))

    path = archive.archive_folder(store.db.companion_base) / (
        "market_data/exchange=binance/symbol=ETH%2FBTC/timeframe=5m/year=2018/candles.parquet"
    )
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == len(eth)
    assert meta.num_row_groups == -(-len(eth) // 500)
    for window, expected in zip(windows, before, strict=True):
        read = get_candles(store, "binance", ETH, "5m", *window, output="arrow", exact=True)
        assert read.equals(expected), window
    # A day is 288 candles: at most two row groups are read, not the whole file.
    assert len(archive._groups_touching(meta, JAN_20_2018, JAN_20_2018 + DAY) or []) in (1, 2)


def _between(since: int | None, until: int | None) -> Any:
    stamps = ds.field("date").cast(pa.int64())
    condition = ds.scalar(True)
    if since is not None:
        condition = condition & (stamps >= since)
    if until is not None:
        condition = condition & (stamps < until)
    return condition


def test_a_later_run_extends_the_partition_without_duplicates(
    store: Store, eth: list[list[Any]], db_path: Path
) -> None:
    before = exact_table(store)
    retention.run(store, retention.Policy(), now=one_year_after(JAN_20_2018))
    retention.run(store, retention.Policy(), now=one_year_after(JAN_20_2018 + 5 * DAY))

    columns = archive.read_columns(
        next(archive.partition_files(archive.archive_folder(store.db.companion_base)))
    )[0]
    stamps = columns[0].tolist()
    assert stamps == sorted(set(stamps))
    assert stamps == [row[0] for row in eth if row[0] < JAN_20_2018 + 5 * DAY]
    assert store.candles.count() == len(eth) - len(stamps)
    assert exact_table(store).equals(before)


def test_partitions_split_at_the_utc_new_year(store: Store, db_path: Path) -> None:
    hour = 3_600_000
    rows = [[JAN_1_2019 + k * hour, "1.5", "2", "1", "1.75", "0.00000001"] for k in range(-48, 48)]
    store.write_candles(rows, exchange="kraken", symbol="BTC/USD", timeframe="1h")
    before = exact_table_of(store, "kraken", "BTC/USD", "1h")

    report = retention.run(store, retention.Policy(), now=one_year_after(JAN_1_2019 + 48 * hour))

    assert [(p.year, p.rows) for p in report.partitions] == [(2018, 48), (2019, 48)]
    assert store.candles.count() == 0
    assert exact_table_of(store, "kraken", "BTC/USD", "1h").equals(before)


def exact_table_of(store: Store, exchange: str, symbol: str, timeframe: str) -> pa.Table:
    return get_candles(store, exchange, symbol, timeframe, output="arrow", exact=True)


def test_the_dry_run_reports_what_would_move_or_go_and_changes_nothing(
    store: Store, eth: list[list[Any]], db_path: Path
) -> None:
    now = one_year_after(JAN_20_2018)
    add_logs_tickers_balances(store, now)
    counts = store.row_counts()

    report = retention.plan(store, retention.Policy(), now=now)

    assert report.dry_run
    assert [(p.symbol, p.rows) for p in report.partitions] == [
        (ETH, sum(1 for row in eth if row[0] < JAN_20_2018))
    ]
    assert {(d.table, d.rows) for d in report.deletions} == {
        ("bot_logs", 1),
        ("balance_history", 1),
    }
    # Tickers are archived, as candles are.
    assert [(p.symbol, p.rows) for p in report.ticker_partitions] == [(ETH, 1)]
    assert report.database_bytes_freed_estimate > 0
    assert report.archive_bytes_estimate > 0
    assert store.row_counts() == counts
    assert not archive.archive_folder(store.db.companion_base).exists()


def add_logs_tickers_balances(store: Store, now: int) -> None:
    """One row past each horizon and one inside it, and an old INFO log that stays."""
    for age in (366 * DAY, 10 * DAY):
        store.tickers.insert(
            {"symbol": ETH, "last_price": "0.1", "timestamp": now - age, "exchange": "binance"}
        )
    for level, age in (("DEBUG", 31 * DAY), ("DEBUG", 29 * DAY), ("INFO", 400 * DAY)):
        store.logs.insert({"timestamp": now - age, "level": level, "message": "m"})
    for age in (731 * DAY, 729 * DAY):
        store.balance_history.insert(
            {"exchange": "binance", "asset": "BTC", "balance": "1", "timestamp": now - age}
        )


def test_tickers_debug_logs_and_old_balances_go_at_their_horizons(store: Store) -> None:
    now = 1_700_000_000_000
    add_logs_tickers_balances(store, now)

    retention.run(store, retention.Policy(), now=now)

    assert [t.timestamp for t in store.tickers.list().items] == [now - 10 * DAY]
    assert sorted((log.level, log.timestamp) for log in store.logs.list().items) == [
        ("DEBUG", now - 29 * DAY),
        ("INFO", now - 400 * DAY),
    ]
    assert [b.timestamp for b in store.balance_history.list().items] == [now - 729 * DAY]


def test_the_horizons_come_from_the_config_file(store: Store, no_user_config: Path) -> None:
    no_user_config.write_text("[retention.keep_days]\ntickers = 5\n")
    now = 1_700_000_000_000
    add_logs_tickers_balances(store, now)

    policy = retention.Policy.from_config()
    retention.run(store, policy, now=now)

    assert policy.keep_days["tickers"] == 5
    assert policy.keep_days["market_data"] == 365
    assert store.tickers.count() == 0


@pytest.mark.parametrize("table", sorted(PERMANENT))
@pytest.mark.fault("bad input")
def test_a_policy_naming_a_permanent_table_is_refused(
    table: str, store: Store, no_user_config: Path
) -> None:
    with pytest.raises(PermanentTable, match="permanent"):
        retention.Policy({table: 30})
    no_user_config.write_text(f"[retention.keep_days]\n{table} = 30\n")
    with pytest.raises(PermanentTable):
        retention.Policy.from_config()
    records = RetentionRecords(store.db)
    with pytest.raises(PermanentTable):
        records.delete_before(table, 10**13)
    with pytest.raises(PermanentTable):
        records.count_before(table, 10**13)


def test_the_archive_folder_comes_from_the_config(
    store: Store, eth: list[list[Any]], tmp_path: Path, no_user_config: Path
) -> None:
    elsewhere = tmp_path / "cold"
    no_user_config.write_text(f'[retention]\narchive_dir = "{elsewhere}"\n')
    before = exact_table(store)

    retention.run(store, retention.Policy(), now=one_year_after(JAN_20_2018))

    assert (elsewhere / "manifest.json").is_file()
    assert exact_table(store).equals(before)


def test_a_candle_changed_after_archiving_stays_in_the_database_and_wins(
    store: Store, eth: list[list[Any]], db_path: Path
) -> None:
    first = eth[0]
    corrected = [first[0], first[1], first[2], first[3], "0.09850000", first[5]]

    def writer_in_between(step: str, span: object) -> None:
        if step == "manifest":
            store.write_candles([corrected], exchange="binance", symbol=ETH, timeframe="5m")

    now = one_year_after(JAN_20_2018)
    report = retention.run(store, retention.Policy(), now=now, on_event=writer_in_between)

    assert report.partitions[0].status == "changed"
    rows = exact_rows(store, "binance", ETH, "5m")
    assert len(rows) == len(eth)
    assert rows[0][4] == Decimal("0.0985")
    # The next run archives the corrected candle in place of the old one.
    retention.run(store, retention.Policy(), now=now)
    rows = exact_rows(store, "binance", ETH, "5m")
    assert len(rows) == len(eth)
    assert rows[0][4] == Decimal("0.0985")
    assert store.candles.count() == sum(1 for row in eth if row[0] >= JAN_20_2018)


@pytest.mark.fault("damage")
def test_a_damaged_archive_stops_the_run_and_deletes_nothing(
    store: Store, eth: list[list[Any]], db_path: Path
) -> None:
    retention.run(store, retention.Policy(), now=one_year_after(JAN_20_2018))
    path = next(archive.partition_files(archive.archive_folder(store.db.companion_base)))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    left = store.candles.count()

    with pytest.raises(archive.ArchiveError, match=r"damaged|cannot be read"):
        retention.run(store, retention.Policy(), now=one_year_after(JAN_20_2018 + 5 * DAY))
    assert store.candles.count() == left


def test_archived_spans_lose_their_read_cache_blocks(store: Store, eth: list[list[Any]]) -> None:
    exact_table(store)  # builds the blocks
    assert store.db.connection.execute("SELECT count(*) FROM candle_blocks").fetchone()[0] > 0

    retention.run(store, retention.Policy(), now=one_year_after(JAN_20_2018))

    stale = store.db.connection.execute(
        "SELECT count(*) FROM candle_blocks WHERE first_ts < ?", (JAN_20_2018 - 28 * DAY,)
    ).fetchone()[0]
    assert stale == 0


# --- the CLI ---------------------------------------------------------------------------


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_cli_dry_run_then_run_as_json(
    runner: CliRunner, store: Store, eth: list[list[Any]], db_target: str
) -> None:
    # The CLI works at the real clock: every 2018 candle is past its year.
    store.close()
    dry = runner.invoke(app, ["retention", "run", "--dry-run", "--json", "--db", db_target])
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True
    assert planned["candles_moved"] == len(eth)

    done = runner.invoke(app, ["retention", "run", "--json", "--db", db_target])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert [p["status"] for p in result["partitions"]] == ["moved"]
    shown = runner.invoke(
        app,
        [
            *("candles", "--exchange", "binance", "--symbol", ETH, "--timeframe", "5m"),
            *("--json", "--db", db_target),
        ],
    )
    assert shown.exit_code == 0, shown.output
    candles = json.loads(shown.stdout)
    assert len(candles) == len(eth)
    assert candles[0]["close"] == eth[0][4]


@pytest.mark.fault("bad input")
def test_cli_refuses_a_permanent_table_in_one_line(
    runner: CliRunner, db_path: Path, store: Store, no_user_config: Path
) -> None:
    no_user_config.write_text("[retention.keep_days]\ntrades = 30\n")
    result = runner.invoke(app, ["retention", "run", "--db", str(db_path)])
    assert result.exit_code == 2
    assert "trades is permanent" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- killed mid-archive ----------------------------------------------------------------

KILL_SCRIPT = """
import os, signal, sys
from tradedb.store import Store
from tradedb.services.ops import retention

path, step, nth, now = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
seen = []

def kill_at(name, span):
    if name == step:
        seen.append(span)
        if len(seen) == nth:
            os.kill(os.getpid(), signal.SIGKILL)

with Store.open(path) as store:
    retention.run(store, retention.Policy(), now=now, on_event=kill_at)
"""
MARKETS = ("ETH/BTC", "LTC/BTC")


def load_two_markets(store: Store) -> dict[str, pa.Table]:
    for symbol in MARKETS:
        name = symbol.replace("/", "_") + "-5m.feather"
        rows = [
            [ms, *(f"{value:.8f}" for value in values)]
            for ms, *values in ohlcv_rows(read_feather(name))
        ]
        store.write_candles(rows, exchange="binance", symbol=symbol, timeframe="5m")
    return {symbol: exact_table(store, symbol) for symbol in MARKETS}


def run_killed(db_path: Path, step: str, nth: int, now: int) -> int:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(db_path), step, str(nth), str(now)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode


def assert_nothing_lost_or_doubled(
    store: Store, originals: dict[str, pa.Table], cutoff: int
) -> None:
    folder = archive.archive_folder(store.db.companion_base)
    manifest = archive.read_manifest(folder)
    for symbol in MARKETS:
        assert exact_table(store, symbol).equals(originals[symbol])
        relative = archive.partition_path("binance", symbol, "5m", 2018)
        columns = archive.check_file(folder / relative, manifest[relative])
        stamps = columns[0].tolist()
        in_database = [row[0] for row in store.market.candle_units("binance", symbol, "5m")]
        assert stamps == sorted(set(stamps))
        assert not set(stamps) & set(in_database)
        assert all(ts < cutoff for ts in stamps)
        assert all(ts >= cutoff for ts in in_database)
        assert len(stamps) + len(in_database) == originals[symbol].num_rows


@pytest.mark.parametrize(
    ("step", "nth"),
    [("written", 1), ("written", 2), ("renamed", 2), ("manifest", 2), ("deleted", 1)],
)
@pytest.mark.fault("kill")
def test_a_run_killed_mid_archive_loses_and_doubles_nothing_when_rerun(
    step: str, nth: int, db_path: Path, fault_figures: FaultFigures
) -> None:
    now = one_year_after(JAN_20_2018)
    with Store.open(db_path) as store:
        originals = load_two_markets(store)
        # A first run archived part of the year already: the killed run extends a file.
        retention.run(store, retention.Policy(), now=now - 5 * DAY)

    assert run_killed(db_path, step, nth, now) == -9
    fault_figures.killed(1)

    with Store.open(db_path) as store:
        # Between the kill and the rerun, reads already see every candle once.
        for symbol in MARKETS:
            assert exact_table(store, symbol).equals(originals[symbol])
        report = retention.run(store, retention.Policy(), now=now)
        assert all(p.status == "moved" for p in report.partitions)
        assert_nothing_lost_or_doubled(store, originals, JAN_20_2018)


@pytest.mark.slow
@pytest.mark.fault("kill")
def test_runs_killed_at_random_moments_lose_and_double_nothing(
    tmp_path: Path, fault_figures: FaultFigures
) -> None:
    import random
    import shutil
    import subprocess
    import sys
    import time

    template = tmp_path / "template.sqlite"
    now = one_year_after(JAN_20_2018)
    with Store.open(template) as store:
        originals = load_two_markets(store)
        retention.run(store, retention.Policy(), now=now - 5 * DAY)
    # How long an unkilled run takes, start-up included, on a copy.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    shutil.copy(template, scratch / "tradedb.sqlite")
    shutil.copytree(template.with_name("template-archives"), scratch / "tradedb-archives")
    started = time.perf_counter()
    assert run_killed(scratch / "tradedb.sqlite", "none", 1, now) == 0
    full_run = time.perf_counter() - started
    generator = random.Random(6)
    for attempt in range(40):
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        db_path = folder / "tradedb.sqlite"
        shutil.copy(template, db_path)
        shutil.copytree(template.with_name("template-archives"), folder / "tradedb-archives")
        process = subprocess.Popen(
            [sys.executable, "-c", KILL_SCRIPT, str(db_path), "none", "1", str(now)]
        )
        time.sleep(generator.uniform(0.2, full_run))
        process.kill()
        if process.wait() == -signal.SIGKILL:
            fault_figures.killed(1)
        with Store.open(db_path) as store:
            for symbol in MARKETS:
                assert exact_table(store, symbol).equals(originals[symbol])
            retention.run(store, retention.Policy(), now=now)
            assert_nothing_lost_or_doubled(store, originals, JAN_20_2018)


# --- trading records are permanent ------------------------------------------------------


def test_a_run_far_in_the_future_deletes_no_trading_record(tmp_path: Path) -> None:
    from tradedb.services.demo import run_demo

    result = run_demo(tmp_path / "demo.sqlite", tmp_path / "report.html")

    def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
        conn = store.db.connection
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            for table in sorted(PERMANENT)
        }

    with Store.open(result.database) as store:
        before = dump(store)
        assert all(before[t] for t in ("trades", "crypto_orders", "positions", "wallet_movements"))
        assert before["performance_metrics"]
        candles = {(c.exchange, c.symbol, c.timeframe): c.candles for c in store.market.coverage()}
        ada = exact_table_of(store, "binance", "ADA/BTC", "5m")

        report = retention.run(store, retention.Policy(), now=one_year_after(1_893_456_000_000))

        assert dump(store) == before
        assert store.candles.count() == 0
        assert report.candles_moved == sum(candles.values())
        assert exact_table_of(store, "binance", "ADA/BTC", "5m").equals(ada)
