"""Every ccxt standard timeframe: where candles start (weeks on Mondays, months on the
1st), and that download, import, resample, gaps, list-data and reads take all of them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyarrow import feather
from typer.testing import CliRunner

from ccxt_markets import spot_market
from market_files import ohlcv_rows, read_feather
from targets import target_of
from tradedb.cli.app import app
from tradedb.errors import ValidationError
from tradedb.models.timeframes import SPEC_TIMEFRAMES, TIMEFRAME_NAMES, timeframe_of
from tradedb.models.values import MAX_EPOCH_MS, MIN_EPOCH_MS
from tradedb.services.marketdata.download import connect, download
from tradedb.services.marketdata.importing import import_path
from tradedb.services.marketdata.quality import gaps, list_data
from tradedb.services.marketdata.resample import resample, resample_units
from tradedb.store import Store

DAY = 86_400_000
CCXT_STANDARD = (
    *("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h"),
    *("1d", "3d", "1w", "1M"),
)
ETH = "ETH/BTC"
UNIT = Decimal("0.00000001")
# 2018-01-10 to 2018-01-30, freqtrade's floats rounded to 8 decimals as an import does.
ETH_5M = [
    [row[0], *(Decimal(repr(v)).quantize(UNIT) for v in row[1:])]
    for row in ohlcv_rows(read_feather("ETH_BTC-5m.feather"))
]


def utc(moment_ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=moment_ms)


def ms(*parts: int) -> int:
    return (datetime(*parts, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        milliseconds=1
    )


def stored(store: Store, timeframe: str, symbol: str = ETH) -> list[tuple[Any, ...]]:
    return [
        (ts, *(Decimal(units).scaleb(-8) for units in values))
        for ts, *values in store.market.candle_units("binance", symbol, timeframe)
    ]


# --- where candles start ---------------------------------------------------------------------


def test_the_set_is_ccxts_standard_one_with_the_specs_six_in_it() -> None:
    assert TIMEFRAME_NAMES == CCXT_STANDARD
    assert set(SPEC_TIMEFRAMES) < set(TIMEFRAME_NAMES)


moments = st.integers(MIN_EPOCH_MS, MAX_EPOCH_MS)


@given(moments, st.sampled_from(CCXT_STANDARD))
def test_every_moment_lies_in_exactly_one_candle_of_every_timeframe(moment: int, name: str) -> None:
    frame = timeframe_of(name)
    start = frame.floor(moment)
    assert start <= moment < frame.end(start)
    assert frame.aligned(start)
    assert frame.floor(frame.end(start)) == frame.end(start)
    assert frame.shift(frame.end(start), -1) == start
    assert frame.count(start, frame.shift(start, 5)) == 6


@given(moments)
def test_weeks_start_on_monday_and_months_on_the_first_at_midnight_utc(moment: int) -> None:
    week, month = utc(timeframe_of("1w").floor(moment)), utc(timeframe_of("1M").floor(moment))
    assert (week.weekday(), week.time()) == (0, datetime.min.time())
    assert utc(moment) - week < timedelta(days=7)
    assert (month.day, month.time()) == (1, datetime.min.time())
    assert (month.year, month.month) == (utc(moment).year, utc(moment).month)


def test_months_last_28_to_31_days_and_three_days_count_from_the_epoch() -> None:
    month = timeframe_of("1M")
    assert [month.end(ms(2024, m, 1)) - ms(2024, m, 1) for m in (1, 2, 4)] == [
        31 * DAY,
        29 * DAY,
        30 * DAY,
    ]
    assert month.shift(ms(2023, 12, 1), 1) == ms(2024, 1, 1)
    assert month.count(ms(2023, 11, 1), ms(2024, 2, 1)) == 4
    # Binance's 3d candles: 2018-01-01 starts one.
    assert timeframe_of("3d").aligned(ms(2018, 1, 1))
    assert not timeframe_of("1w").aligned(ms(2018, 1, 4))  # a Thursday, as the epoch was


def test_a_candle_not_at_its_start_is_refused_naming_the_rule(store: Store) -> None:
    thursday = ms(2018, 1, 11)
    with pytest.raises(ValidationError) as caught:
        store.write_candles(
            [[thursday, "1", "1", "1", "1", "1"]], exchange="binance", symbol=ETH, timeframe="1w"
        )
    assert caught.value.field == "rows[0].timestamp"
    assert "weeks on Monday" in str(caught.value)
    with pytest.raises(ValidationError, match="must be one of 1m, 3m"):
        store.write_candles([], exchange="binance", symbol=ETH, timeframe="1y")  # type: ignore[arg-type]
    assert store.market.coverage() == []


# --- resample, gaps and list-data ------------------------------------------------------------


def test_resampling_to_weeks_and_months_sums_exactly_in_calendar_buckets(store: Store) -> None:
    store.write_candles(ETH_5M, exchange="binance", symbol=ETH, timeframe="5m")

    results = resample(
        store, exchange="binance", symbol=ETH, source="5m", targets=["30m", "8h", "1w", "1M"]
    )

    assert [r.timeframe for r in results] == ["30m", "8h", "1w", "1M"]
    weeks = stored(store, "1w")
    assert [utc(ts).date().isoformat() for ts, *_ in weeks] == [
        "2018-01-08",
        "2018-01-15",
        "2018-01-22",
        "2018-01-29",
    ]
    [month] = stored(store, "1M")
    exact = ETH_5M
    assert month == (
        ms(2018, 1, 1),
        exact[0][1],
        max(row[2] for row in exact),
        min(row[3] for row in exact),
        exact[-1][4],
        sum((row[5] for row in exact), Decimal(0)),
    )
    # The weeks' volumes add up to the month's, to the last unit.
    assert sum(week[5] for week in weeks) == month[5]


def test_a_timeframe_that_does_not_fit_whole_is_refused_before_anything_is_written(
    store: Store,
) -> None:
    store.write_candles(ETH_5M, exchange="binance", symbol=ETH, timeframe="5m")
    with pytest.raises(ValidationError) as caught:
        resample(store, exchange="binance", symbol=ETH, source="5m", targets=["1d", "1M", "3m"])
    assert (caught.value.field, caught.value.value) == ("target", "3m")
    # 3 days do not divide into weeks that start on Mondays, nor weeks into months.
    for source, target in (("3d", "1w"), ("1w", "1M")):
        with pytest.raises(ValidationError):
            resample(store, exchange="binance", symbol=ETH, source=source, targets=[target])
    assert {c.timeframe for c in store.market.coverage()} == {"5m"}


def test_gaps_and_list_data_count_calendar_months(store: Store) -> None:
    months = [ms(2023, m, 1) for m in (1, 2, 3, 6, 7, 12)]
    rows = [[start, "1", "2", "0.5", "1.5", "10"] for start in months]
    store.write_candles(rows, exchange="binance", symbol=ETH, timeframe="1M")

    found = gaps(store, exchange="binance", symbol=ETH, timeframe="1M")

    assert [(utc(g.start).date(), utc(g.end).date(), g.missing) for g in found] == [
        (datetime(2023, 4, 1).date(), datetime(2023, 5, 1).date(), 2),
        (datetime(2023, 8, 1).date(), datetime(2023, 11, 1).date(), 4),
    ]
    [summary] = list_data(store)
    assert (summary.expected, summary.missing, summary.gaps) == (12, 6, 2)


# --- import and download ---------------------------------------------------------------------


def freqtrade_file(path: Path, rows: list[tuple[Any, ...]]) -> None:
    table = pa.table(
        {
            "date": pa.array([r[0] for r in rows], pa.timestamp("ms", tz="UTC")),
            **{
                name: pa.array([float(r[i]) for r in rows], pa.float64())
                for i, name in enumerate(("open", "high", "low", "close", "volume"), start=1)
            },
        }
    )
    feather.write_feather(table, path)


def test_a_freqtrade_folder_with_every_timeframe_imports_whole(
    store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "user_data" / "data" / "binance"
    folder.mkdir(parents=True)
    built = {}
    # Timeframes whose candles are exact in float64 (their volume sums have few digits).
    for name in ("30m", "2h", "8h", "12h", "1w", "1M"):
        built[name] = resample_units([tuple(r) for r in ETH_5M], timeframe_of(name))
        # freqtrade names a month 1Mo, so that case-insensitive file systems tell it from 1m.
        file_name = f"ETH_BTC-{'1Mo' if name == '1M' else name}.feather"
        freqtrade_file(folder / file_name, built[name])

    results = import_path(store, folder)

    assert {r.timeframe: r.status for r in results} == dict.fromkeys(built, "imported")
    for name, rows in built.items():
        assert [row[0] for row in stored(store, name)] == [row[0] for row in rows]
    summaries = {s.coverage.timeframe: s for s in list_data(store)}
    assert set(summaries) == set(built)
    assert all(s.missing == 0 for s in summaries.values())


class WeeklyBinance:
    """A binance client serving weekly klines (Monday-aligned, as Binance's are)."""

    def __init__(self, weeks: list[tuple[Any, ...]]) -> None:
        self.weeks = weeks
        self.client = connect("binance")
        self.client.set_markets([spot_market("ETHBTC", ETH)])
        self.client.fetch = self.fetch
        self.requests: list[tuple[str, int]] = []

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        query = parse_qs(urlparse(url).query)
        interval, start = query["interval"][0], int(query["startTime"][0])
        self.requests.append((interval, start))
        page = [row for row in self.weeks if row[0] >= start][: int(query["limit"][0])]
        return [[ts, *(str(v) for v in values), ts, "0", 1, "0", "0", "0"] for ts, *values in page]


def test_download_of_weekly_candles_leaves_the_week_still_open_for_later(store: Store) -> None:
    weeks = resample_units([tuple(r) for r in ETH_5M], timeframe_of("1w"))
    exchange = WeeklyBinance(weeks)
    # Wednesday 2018-01-31: the week of Monday 2018-01-29 has not closed yet.
    now = ms(2018, 1, 31)

    [result] = download(
        store, exchange.client, symbols=[ETH], timeframes=["1w"], since=ms(2018, 1, 8), now=now
    )

    assert exchange.requests[0] == ("1w", ms(2018, 1, 8))
    assert result.inserted == 3
    assert stored(store, "1w") == [tuple(week) for week in weeks[:3]]


def test_the_cli_reads_and_lists_monthly_candles(store: Store) -> None:
    rows = [[ms(2024, m, 1), "1", "2", "0.5", "1.5", "10"] for m in (1, 2, 3)]
    store.write_candles(rows, exchange="kraken", symbol=ETH, timeframe="1M")
    db = target_of(store)
    runner = CliRunner()

    listed = runner.invoke(app, ["list-data", "--db", db, "--json"])
    read = runner.invoke(
        app,
        [
            "candles",
            "--exchange",
            "kraken",
            "--symbol",
            ETH,
            "--timeframe",
            "1M",
            "--db",
            db,
            "--json",
        ],
    )

    assert listed.exit_code == 0, listed.output
    [entry] = json.loads(listed.stdout)
    assert (entry["timeframe"], entry["candles"], entry["missing"]) == ("1M", 3, 0)
    assert read.exit_code == 0, read.output
    assert [c["timestamp"] for c in json.loads(read.stdout)] == [row[0] for row in rows]


def test_a_file_whose_timeframe_cannot_be_read_is_one_line_naming_it_and_the_option(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "eth-prices.feather"
    freqtrade_file(path, [tuple(row) for row in ETH_5M[:3]])

    result = CliRunner().invoke(
        app,
        [
            *("import", str(path), "--format", "freqtrade-feather", "--exchange", "binance"),
            *("--symbol", ETH, "--db", target_of(store)),
        ],
    )

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: eth-prices.feather: timeframe=None: cannot be told from eth-prices.feather; "
        "give `--timeframe TIMEFRAME`"
    ]
    assert store.market.coverage() == []
