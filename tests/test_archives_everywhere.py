"""Archives everywhere: every reader of market data sees the candles and tickers retention
moved to Parquet archives as if they were still in the database.

Each reader runs before and after `tradedb retention run` and gives the same answer:
list-data, gaps, resample, candles, the tickers' listing, valuation at a past time,
snapshots, metrics, a paper session (replayed: its fills must come out identical), the
report, MCP's list_data, and a backfill download (no request for what is archived). Also:
a full backup restored elsewhere reads its restored archives with nothing configured;
tickers are archived, not deleted; an archive on S3 (moto's server) shared by two
databases; archives written before decimal128(38, 8) still read and check.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import anyio
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mcp import Client
from typer.testing import CliRunner

import tradedb
from ccxt_markets import spot_market
from cli_harness import isolated_environ
from market_files import ohlcv_rows, read_feather
from mcp_database import call
from moto_s3 import CREDENTIALS, moto_s3
from tradedb.api import TradeDB
from tradedb.cli.app import app
from tradedb.mcp import build_server
from tradedb.services.marketdata.download import connect
from tradedb.services.ops import archive
from tradedb.services.paper.direct import latest_price

EXCHANGE = "binance"
ETH = "ETH/BTC"
LTC = "LTC/BTC"
BTC_USDT = "BTC/USDT"
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
FIVE_MINUTES = 5 * MINUTE
JAN_12_2018 = 1_515_715_200_000
JAN_15_2018 = 1_515_974_400_000
JAN_20_2018 = 1_516_406_400_000
JAN_25_2018 = 1_516_838_400_000


def exact_rows(name: str) -> list[list[Any]]:
    # The files carry float noise past the 8th decimal (see tests/data/README.md).
    return [
        [ms, *(f"{value:.8f}" for value in values)]
        for ms, *values in ohlcv_rows(read_feather(name))
    ]


ETH_ROWS = exact_rows("ETH_BTC-5m.feather")
FIRST, LAST = ETH_ROWS[0][0], ETH_ROWS[-1][0]


def btc_tickers(start: int = FIRST - FIRST % HOUR, end: int = LAST) -> list[dict[str, Any]]:
    """Hourly BTC/USDT tickers over the candles' weeks, some values missing (NULL)."""
    rows = []
    for k, timestamp in enumerate(range(start, end, HOUR)):
        last = Decimal(14000) + Decimal(k % 97) * Decimal("3.25")
        rows.append(
            {
                "symbol": BTC_USDT,
                "bid_price": last - 1,
                "ask_price": last + 1 if k % 3 else None,
                "last_price": last,
                "volume_24h": None if k % 5 == 0 else Decimal("1234.56789012") + k,
                "price_change_24h": Decimal(k % 11) - 5,
                "price_change_percent_24h": Decimal("-0.0123") if k % 2 else None,
                "timestamp": timestamp,
                # The rest of ccxt's ticker, which tickers recorded before 0009 lack.
                "open_price": last - 5 if k % 4 else None,
                "high_price": last + 7,
                "low_price": last - 9,
                "vwap": last - Decimal("0.12345678") if k % 3 else None,
                "quote_volume_24h": Decimal("17283950.61728395") + k,
                "bid_volume": Decimal("0.5") if k % 2 else None,
                "ask_volume": Decimal("1.25"),
                "previous_close": None if k % 6 else last - 1,
            }
        )
    return rows


def keep_days_to(cutoff: int) -> int:
    """The horizon in days that puts retention's cutoff, now, in the day after `cutoff`."""
    return (int(time.time() * 1000) - cutoff) // DAY


def write_config(path: Path, archive_dir: str, **extra: str) -> Path:
    """A config whose retention horizons fall on 2018-01-20 (the candles' middle)."""
    days = keep_days_to(JAN_20_2018)
    lines = [
        "[retention]",
        f'archive_dir = "{archive_dir}"',
        *(f'{key} = "{value}"' for key, value in extra.items()),
        "[retention.keep_days]",
        f"market_data = {days}",
        f"tickers = {days}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tradedb_cli(root: Path, config: Path, *args: str, **env: str) -> Any:
    """`tradedb *args` in a subprocess with the isolated environment and `config`."""
    environ = {**isolated_environ(root), "TRADEDB_CONFIG": str(config), **env}
    done = subprocess.run(
        [sys.executable, "-m", "tradedb", *args],
        env=environ,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


def load_market_data(db: TradeDB) -> None:
    db.market.write_candles(ETH_ROWS, exchange=EXCHANGE, symbol=ETH, timeframe="5m")
    db.market.write_tickers(btc_tickers(), exchange=EXCHANGE)


class Binance:
    """A binance client whose HTTP layer serves /api/v3/klines from ETH_ROWS and records
    where each request started."""

    def __init__(self) -> None:
        self.client = connect("binance")
        self.client.set_markets([spot_market("ETHBTC", ETH)])
        self.requests: list[int] = []
        self.client.fetch = self.fetch

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        query = parse_qs(urlparse(url).query)
        start, limit = int(query["startTime"][0]), int(query["limit"][0])
        self.requests.append(start)
        page = [row for row in ETH_ROWS if row[0] >= start][:limit]
        return [[ts, *values, ts + FIVE_MINUTES - 1, "0", 1, "0", "0", "0"] for ts, *values in page]


async def _mcp_list_data(target: str) -> Any:
    server = build_server(target)
    try:
        async with Client(server.mcp) as client:
            return await call(client, "list_data", {"limit": 100})
    finally:
        server.close()


def cli_json(*args: str) -> Any:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def every_reader(db: TradeDB, target: str) -> dict[str, Any]:
    """What each reader of market data answers, in an order that makes the second round
    write nothing the first did not (the paper session's replay records nothing new)."""
    store = db._store
    found: dict[str, Any] = {}
    found["resample"] = [
        (r.timeframe, r.source_candles)
        for r in db.market.resample(exchange=EXCHANGE, symbol=ETH, source="5m", targets=["1h"])
    ]
    found["candles 5m"] = db.market.exact_candles(EXCHANGE, ETH, "5m")
    found["candles 1h"] = db.market.exact_candles(EXCHANGE, ETH, "1h")
    found["arrow"] = db.market.candles(
        EXCHANGE, ETH, "5m", JAN_15_2018, JAN_25_2018, output="arrow"
    )
    found["page"] = [
        (c.timestamp, c.close_price)
        for c in db.market.candle_page(
            exchange=EXCHANGE, symbol=ETH, timeframe="5m", since=JAN_20_2018 - DAY, limit=500
        ).candles
    ]
    found["list-data"] = [(s.coverage, s.missing, s.gaps) for s in db.market.list_data()]
    found["gaps"] = db.market.gaps(exchange=EXCHANGE, symbol=ETH, timeframe="5m")
    found["gaps in a range"] = db.market.gaps(
        exchange=EXCHANGE, symbol=ETH, timeframe="5m", since=JAN_15_2018, until=JAN_25_2018
    )
    found["cli list-data"] = cli_json("list-data", "--db", target)
    found["tickers"] = [
        t.model_dump(exclude={"id", "created_at"})
        for t in db.market.tickers(
            exchange=EXCHANGE, symbol=BTC_USDT, since=FIRST, limit=1000
        ).tickers
    ]
    found["newest tickers"] = [
        t.timestamp for t in db.market.tickers(exchange=EXCHANGE, symbol=BTC_USDT, limit=5).tickers
    ]
    found["cli ticker-history"] = cli_json(
        "ticker-history", "--exchange", EXCHANGE, "--symbol", BTC_USDT, "--since",
        str(JAN_12_2018), "--until", str(JAN_25_2018), "--limit", "1000", "--db", target,
    )  # fmt: skip
    found["latest ticker"] = db.market.latest_ticker(symbol=BTC_USDT).last_price
    found["valuations"] = [
        db.analytics.value(asset, at, exchange=EXCHANGE)
        for asset in ("ETH", "BTC")
        for at in (JAN_12_2018 + 7 * HOUR, JAN_15_2018, JAN_20_2018 - MINUTE, JAN_25_2018)
    ]
    found["paper order price"] = [
        latest_price(store, EXCHANGE, symbol, at, DAY)
        for symbol in (ETH, BTC_USDT)
        for at in (JAN_15_2018, JAN_25_2018)
    ]
    plan = db.analytics.plan_paper_session(
        strategies=["sma_cross"],
        exchange=EXCHANGE,
        symbols=[ETH],
        since=JAN_12_2018,
        until=JAN_25_2018,
        capital="1",
    )
    session = db.analytics.run_paper_session(plan)
    found["paper"] = (session.candles, session.strategies)
    found["snapshot"] = [
        (
            [(r.exchange, r.asset, r.amount, r.price_per_unit, r.usd_value) for r in shot.rows],
            shot.valuations,
            shot.unvalued,
        )
        for shot in (db.analytics.snapshot(JAN_15_2018), db.analytics.snapshot(JAN_25_2018))
    ]
    metrics = db.analytics.compute_metrics("2018-01-12", "2018-01-25")
    found["metrics"] = (
        [row.model_dump(exclude={"id", "created_at"}) for row in metrics.rows],
        metrics.skipped,
    )
    found["report"] = db.analytics.report()
    found["mcp list_data"] = anyio.run(_mcp_list_data, target)
    binance = Binance()
    downloaded = db.market.download(
        binance.client,
        symbols=[ETH],
        timeframes=["5m"],
        since=FIRST - DAY,
        until=LAST + FIVE_MINUTES,
    )
    found["download"] = (
        [(d.received, d.inserted, d.cut_short) for d in downloaded],
        binance.requests,
    )
    return found


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = write_config(tmp_path / "config.toml", str(tmp_path / "archive"))
    monkeypatch.setenv("TRADEDB_CONFIG", str(path))
    return path


def test_every_reader_answers_the_same_after_retention_archives_half_the_data(
    db_target: str, config: Path, tmp_path: Path
) -> None:
    with tradedb.open(db_target) as db:
        load_market_data(db)
        before = every_reader(db, db_target)
        stored = db.tables.market_data.count()
        tickers = db.tables.tickers.count()

    moved = tradedb_cli(tmp_path, config, "retention", "run", "--json", "--db", db_target)

    with tradedb.open(db_target) as db:
        assert moved["candles_moved"] > 0
        assert moved["tickers_moved"] > 0
        assert db.tables.market_data.count() < stored
        assert db.tables.tickers.count() == tickers - moved["tickers_moved"]
        after = every_reader(db, db_target)
    assert after["paper"] == before["paper"]
    for reader in before:
        assert after[reader] == before[reader], reader
    # The first round's backfill had nothing to fetch before the first candle; the
    # archived weeks were not asked for again.
    assert before["download"][1] == [FIRST - DAY]


@pytest.mark.sqlite_only
def test_a_restored_full_backup_reads_its_restored_archives(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = tmp_path / "live" / "bot.sqlite"
    live.parent.mkdir()
    with tradedb.open(live) as db:
        load_market_data(db)
    tradedb_cli(tmp_path, config, "retention", "run", "--db", str(live))
    with tradedb.open(live) as db:
        candles = db.market.exact_candles(EXCHANGE, ETH, "5m")
        listed = db.market.list_data()
        tickers = db.market.tickers(exchange=EXCHANGE, symbol=BTC_USDT, since=FIRST, limit=1000)
    assert len(candles) == len(ETH_ROWS)
    backups = ("--backup-dir", str(tmp_path / "backups"))
    full = tradedb_cli(tmp_path, config, "backup", "full", "--json", "--db", str(live), *backups)
    restored = tmp_path / "restored"
    # Another machine: the config there names no archive folder.
    bare = tmp_path / "bare.toml"
    bare.write_text("", encoding="utf-8")
    tradedb_cli(tmp_path, bare, "restore", full["id"], "--to", str(restored), *backups)

    monkeypatch.setenv("TRADEDB_CONFIG", str(bare))
    with tradedb.open(restored / "tradedb.sqlite", readonly=True) as db:
        assert db.market.exact_candles(EXCHANGE, ETH, "5m") == candles
        assert db.market.list_data() == listed
        assert (
            db.market.tickers(exchange=EXCHANGE, symbol=BTC_USDT, since=FIRST, limit=1000)
            == tickers
        )
    link = json.loads((restored / "tradedb-archives.json").read_text())
    assert link["folder"] == "archives"
    # The folder moves with its database: the link names it relative to the database.
    moved = tmp_path / "moved"
    restored.rename(moved)
    with tradedb.open(moved / "tradedb.sqlite", readonly=True) as db:
        assert db.market.exact_candles(EXCHANGE, ETH, "5m") == candles


def test_tickers_are_archived_not_deleted_and_read_through_the_api_and_the_cli(
    db_target: str, config: Path, tmp_path: Path
) -> None:
    rows = btc_tickers()
    with tradedb.open(db_target) as db:
        db.market.write_tickers(rows, exchange=EXCHANGE)

    tradedb_cli(tmp_path, config, "retention", "run", "--db", db_target)

    folder = tmp_path / "archive"
    files = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*.parquet"))
    assert files == ["tickers/exchange=binance/symbol=BTC%2FUSDT/year=2018/tickers.parquet"]
    table = pq.read_table(folder / files[0])
    assert table.schema.field("last_price").type == pa.decimal128(38, 8)
    assert table.schema.field("price_change_percent_24h").type == pa.decimal128(38, 4)
    archived = [row for row in rows if row["timestamp"] < JAN_20_2018]
    assert table.num_rows >= len(archived)
    with tradedb.open(db_target, readonly=True) as db:
        assert db.tables.tickers.count() == len(rows) - table.num_rows
        since = rows[0]["timestamp"]
        page = db.market.tickers(exchange=EXCHANGE, symbol=BTC_USDT, since=since, limit=1000)
        assert not page.truncated
        assert [t.model_dump(exclude={"id", "created_at", "exchange"}) for t in page.tickers] == [
            row for row in rows
        ]
        newest_archived = db.market.tickers(
            exchange=EXCHANGE, symbol=BTC_USDT, until=JAN_20_2018, limit=3
        )
        assert [t.timestamp for t in newest_archived.tickers] == [
            r["timestamp"] for r in archived[-3:]
        ]
        assert newest_archived.truncated
    shown = cli_json(
        "ticker-history", "--exchange", EXCHANGE, "--symbol", BTC_USDT, "--until",
        str(JAN_12_2018 + HOUR), "--limit", "2", "--db", db_target,
    )  # fmt: skip
    assert shown == [
        {
            "timestamp": row["timestamp"],
            **{
                key: None if row[key] is None else _text(key, row[key])
                for key in row
                if key not in ("timestamp", "symbol")
            },
        }
        for row in rows
        if JAN_12_2018 - HOUR <= row["timestamp"] <= JAN_12_2018
    ]


def _text(key: str, value: Decimal) -> str:
    places = 4 if key == "price_change_percent_24h" else 8
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


@pytest.mark.sqlite_only
def test_all_tickers_archived_still_give_the_latest_ticker_and_valuation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bot.sqlite"
    config = tmp_path / "config.toml"
    config.write_text("[retention.keep_days]\ntickers = 1\n", encoding="utf-8")
    monkeypatch.setenv("TRADEDB_CONFIG", str(config))
    with tradedb.open(path) as db:
        db.market.write_tickers(btc_tickers(), exchange=EXCHANGE)
        latest = db.market.latest_ticker(symbol=BTC_USDT, exchange=EXCHANGE)
        value = db.analytics.value("BTC", JAN_15_2018, exchange=EXCHANGE)
    tradedb_cli(tmp_path, config, "retention", "run", "--db", str(path))
    with tradedb.open(path, readonly=True) as db:
        assert db.tables.tickers.count() == 0
        archived = db.market.latest_ticker(symbol=BTC_USDT)
        assert archived.model_dump(exclude={"id", "created_at"}) == latest.model_dump(
            exclude={"id", "created_at"}
        )
        assert db.analytics.value("BTC", JAN_15_2018, exchange=EXCHANGE) == value


# --- an archive on S3 shared by two hosts -------------------------------------------------------

BUCKET = "tradedb-archives"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    with moto_s3(BUCKET) as endpoint:
        yield endpoint


@pytest.mark.sqlite_only
def test_two_hosts_share_one_market_data_history_on_s3(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3fs

    url = f"s3://{BUCKET}/shared"
    config = write_config(tmp_path / "config.toml", url, endpoint_url=s3)
    monkeypatch.setenv("TRADEDB_CONFIG", str(config))
    ltc_rows = exact_rows("LTC_BTC-5m.feather")
    hosts = {"a": tmp_path / "a" / "bot.sqlite", "b": tmp_path / "b" / "bot.sqlite"}
    for name, symbol, rows in (("a", ETH, ETH_ROWS), ("b", LTC, ltc_rows)):
        hosts[name].parent.mkdir()
        with tradedb.open(hosts[name]) as db:
            db.market.write_candles(rows, exchange=EXCHANGE, symbol=symbol, timeframe="5m")
    with tradedb.open(hosts["a"]) as db:
        eth = db.market.exact_candles(EXCHANGE, ETH, "5m")
    with tradedb.open(hosts["b"]) as db:
        ltc = db.market.exact_candles(EXCHANGE, LTC, "5m")

    for name, path in hosts.items():
        tradedb_cli(tmp_path / name, config, "retention", "run", "--db", str(path))

    remote = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3}, skip_instance_cache=True)
    manifest = json.loads(remote.cat_file(f"{BUCKET}/shared/manifest.json"))
    assert sorted(entry["symbol"] for entry in manifest["files"]) == [ETH, LTC]
    assert not remote.exists(f"{BUCKET}/shared/.lock")
    for path in hosts.values():
        with tradedb.open(path, readonly=True) as db:
            # Each host reads both markets: its own, and the other's archived weeks.
            assert (
                db.market.exact_candles(EXCHANGE, ETH, "5m")[: len(eth) // 4]
                == (eth[: len(eth) // 4])
            )
            assert (
                db.market.exact_candles(EXCHANGE, LTC, "5m")[: len(ltc) // 4]
                == (ltc[: len(ltc) // 4])
            )
            assert {s.coverage.symbol for s in db.market.list_data()} == {ETH, LTC}
    with tradedb.open(hosts["a"], readonly=True) as db:
        assert db.market.exact_candles(EXCHANGE, ETH, "5m") == eth

    # A run while another host holds the lock is refused, and writes nothing.
    remote.pipe_file(f"{BUCKET}/shared/.lock", json.dumps(
        {"host": "elsewhere", "pid": 7, "since_ms": JAN_20_2018, "token": "x"}
    ).encode())  # fmt: skip
    with tradedb.open(hosts["a"]) as db:
        db.market.write_candles(
            [[JAN_12_2018, "1", "1", "1", "1", "1"]], exchange=EXCHANGE, symbol="XRP/BTC",
            timeframe="5m",
        )  # fmt: skip
        counts = db.tables.counts()
    before = remote.cat_file(f"{BUCKET}/shared/manifest.json")
    refused = subprocess.run(
        [sys.executable, "-m", "tradedb", "retention", "run", "--db", str(hosts["a"])],
        env={**isolated_environ(tmp_path / "a"), "TRADEDB_CONFIG": str(config)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2, refused.stderr
    assert "host elsewhere (pid 7)" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    with tradedb.open(hosts["a"], readonly=True) as db:
        assert db.tables.counts() == counts
    assert remote.cat_file(f"{BUCKET}/shared/manifest.json") == before
    assert not remote.exists(f"{BUCKET}/shared/market_data/exchange=binance/symbol=XRP%2FBTC")


# --- the file format ---------------------------------------------------------------------------


def test_amounts_beyond_64_bit_units_archive_and_check_exactly(tmp_path: Path) -> None:
    import numpy as np

    huge = 10**22  # units: 100 trillion, beyond int64's 9.2e18 and DECIMAL(20, 8)
    columns = np.array(
        [[JAN_12_2018, JAN_12_2018 + FIVE_MINUTES], [1, 2], [3, huge], [1, 1], [2, 3], [huge, 5]],
        dtype=object,
    )
    market = {"exchange": EXCHANGE, "symbol": ETH, "timeframe": "5m", "year": "2018"}
    relative = archive.partition_path(EXCHANGE, ETH, "5m", 2018)

    entry = archive.write_partition(tmp_path, relative, columns, market)

    back = archive.check_file(tmp_path / relative, entry)
    assert back.tolist() == columns.tolist()
    table = pq.read_table(tmp_path / relative)
    assert table.column("volume").to_pylist()[0] == Decimal(huge).scaleb(-8)
    # One unit more in the biggest value changes the rows' checksum.
    changed = columns.copy()
    changed[5, 0] = huge + 1
    assert archive.table_sha256(archive.candle_table(changed, {})) != entry.rows_sha256


def test_an_archive_written_before_decimal128_38_still_reads_checks_and_extends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The layout of earlier releases: decimal128(20, 8), rows hashed as int64 units."""
    import numpy as np

    monkeypatch.setenv("TRADEDB_CONFIG", str(tmp_path / "none.toml"))
    path = tmp_path / "bot.sqlite"
    rows = ETH_ROWS
    older = [row for row in rows if row[0] < JAN_15_2018]
    units = np.array(
        [[row[0], *(int(Decimal(v).scaleb(8)) for v in row[1:])] for row in older], dtype=np.int64
    ).T.copy()
    folder = tmp_path / "bot-archives"
    relative = archive.partition_path(EXCHANGE, ETH, "5m", 2018)
    (folder / relative).parent.mkdir(parents=True)
    arrays = [pa.array(units[0]).cast(pa.timestamp("ms", tz="UTC"))]
    arrays += [pa.array([Decimal(int(u)).scaleb(-8) for u in units[i]], pa.decimal128(20, 8))
               for i in range(1, 6)]  # fmt: skip
    metadata = {
        "exchange": EXCHANGE, "symbol": ETH, "timeframe": "5m", "year": "2018",
        "rows": str(units.shape[1]), "rows_sha256": archive.rows_sha256(units), "scale": "8",
    }  # fmt: skip
    names = ["timestamp", *archive.AMOUNT_COLUMNS]
    table = pa.Table.from_arrays(arrays, names=names).replace_schema_metadata(metadata)
    pq.write_table(table, folder / relative, compression="zstd")
    entry = archive.entry_of_file(folder, relative)
    manifest = {"format": "tradedb-archive", "version": 1, "files": [
        {key: value for key, value in entry.__dict__.items() if key != "bytes"}
    ]}  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with tradedb.open(path) as db:
        db.market.write_candles(
            [row for row in rows if row[0] >= JAN_15_2018],
            exchange=EXCHANGE,
            symbol=ETH,
            timeframe="5m",
        )
        assert [tuple(map(str, r)) for r in db.market.exact_candles(EXCHANGE, ETH, "5m")] == [
            (str(row[0]), *(str(Decimal(v)) for v in row[1:])) for row in rows
        ]
        config = write_config(tmp_path / "config.toml", str(folder))
        monkeypatch.setenv("TRADEDB_CONFIG", str(config))
        report = db.ops.run_retention()
        assert [p.status for p in report.partitions] == ["moved"]
        assert len(db.market.exact_candles(EXCHANGE, ETH, "5m")) == len(rows)
    rewritten = pq.read_table(folder / relative)
    assert rewritten.schema.field("open_price").type == pa.decimal128(38, 8)
    assert rewritten.schema.metadata[b"rows_sha256_of"] == b"decimal128"


def test_a_candle_and_a_ticker_past_64_bit_units_are_archived_and_read_back_exactly(
    db_target: str, config: Path, tmp_path: Path
) -> None:
    huge = "123456789012345.12345678"  # units past int64: a meme coin's volume
    rows = [[JAN_12_2018 + k * HOUR, "0.1", "0.2", "0.1", "0.15", "1"] for k in range(4)]
    rows[1][5] = huge
    ticker = {"symbol": "SHIB/USDT", "last_price": "0.00001", "volume_24h": huge}
    with tradedb.open(db_target) as db:
        db.market.write_candles(rows, exchange=EXCHANGE, symbol="SHIB/USDT", timeframe="1h")
        db.market.write_tickers([{**ticker, "timestamp": JAN_12_2018}], exchange=EXCHANGE)
        candles = db.market.exact_candles(EXCHANGE, "SHIB/USDT", "1h")

    moved = tradedb_cli(tmp_path, config, "retention", "run", "--json", "--db", db_target)

    assert (moved["candles_moved"], moved["tickers_moved"]) == (4, 1)
    with tradedb.open(db_target, readonly=True) as db:
        assert db.tables.market_data.count() == 0
        assert db.market.exact_candles(EXCHANGE, "SHIB/USDT", "1h") == candles
        assert candles[1][5] == Decimal(huge)
        frame = db.market.candles(EXCHANGE, "SHIB/USDT", "1h", output="arrow", exact=True)
        assert frame.column("volume").to_pylist() == [candle[5] for candle in candles]
        assert db.market.latest_ticker(symbol="SHIB/USDT").volume_24h == Decimal(huge)
