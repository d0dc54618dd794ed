"""Resampling, coverage and gaps of stored candles, on real Binance data."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from market_files import ohlcv_rows, read_feather
from targets import target_of
from tradedb.cli.app import app
from tradedb.errors import ValidationError
from tradedb.models.timeframes import timeframe_of
from tradedb.services.marketdata.quality import gaps, list_data
from tradedb.services.marketdata.resample import resample, resample_units
from tradedb.store import Store

EXCHANGE = "binance"
XRP = "XRP/ETH"
TRX = "TRX/BTC"
DAY = 86_400_000
FIVE_MINUTES = 300_000


def load(store: Store, name: str, symbol: str, timeframe: str) -> list[list[Any]]:
    rows = ohlcv_rows(read_feather(name))
    if symbol == TRX:
        # This file holds float noise past 8 decimals (0.00010756000000000001), which the
        # store refuses rather than round; these tests need its timestamps, not its prices.
        rows = [[row[0], *(f"{value:.8f}" for value in row[1:])] for row in rows]
    store.write_candles(rows, exchange=EXCHANGE, symbol=symbol, timeframe=timeframe)  # type: ignore[arg-type]
    return rows


def stored(store: Store, symbol: str, timeframe: str) -> list[tuple[int, ...]]:
    return store.market.candle_units(EXCHANGE, symbol, timeframe)


# --- resampling ----------------------------------------------------------------------------


def test_binance_5m_candles_equal_those_built_from_its_1m_candles(store: Store) -> None:
    load(store, "XRP_ETH-1m.feather", XRP, "1m")
    official = ohlcv_rows(read_feather("XRP_ETH-5m.feather"))

    [result] = resample(store, exchange=EXCHANGE, symbol=XRP, source="1m", targets=["5m"])

    assert result.source_candles == 2469
    assert result.written.received == len(official) == 706
    built = store.candles.list(
        {"exchange": EXCHANGE, "symbol": XRP, "timeframe": "5m"}, limit=1000
    ).items
    # Every value exactly as Binance published it (the floats' shortest repr).
    assert [
        (c.timestamp, c.open_price, c.high_price, c.low_price, c.close_price, c.volume)
        for c in built
    ] == [(row[0], *(Decimal(repr(value)) for value in row[1:])) for row in official]


def test_resampling_again_changes_nothing(store: Store) -> None:
    load(store, "XRP_ETH-1m.feather", XRP, "1m")
    resample(store, exchange=EXCHANGE, symbol=XRP, source="1m", targets=["5m", "1h"])
    before = stored(store, XRP, "1h")

    again = resample(store, exchange=EXCHANGE, symbol=XRP, source="1m", targets=["5m", "1h"])

    assert [(r.written.inserted, r.written.updated) for r in again] == [(0, 0), (0, 0)]
    assert stored(store, XRP, "1h") == before


def test_daily_buckets_start_at_midnight_utc_and_sum_volume_exactly(store: Store) -> None:
    rows = load(store, "XRP_ETH-1m.feather", XRP, "1m")
    resample(store, exchange=EXCHANGE, symbol=XRP, source="1m", targets=["4h", "1d"])

    days = stored(store, XRP, "1d")
    assert [ts % DAY for ts, *_ in days] == [0, 0, 0]
    for ts, _open, high, low, _close, volume in days:
        inside = [row for row in rows if ts <= row[0] < ts + DAY]
        assert Decimal(volume).scaleb(-8) == sum(Decimal(repr(row[5])) for row in inside)
        assert Decimal(high).scaleb(-8) == max(Decimal(repr(row[2])) for row in inside)
        assert Decimal(low).scaleb(-8) == min(Decimal(repr(row[3])) for row in inside)
    assert all(ts % (4 * 3_600_000) == 0 for ts, *_ in stored(store, XRP, "4h"))


def test_a_time_range_is_widened_to_whole_buckets(store: Store) -> None:
    load(store, "XRP_ETH-1m.feather", XRP, "1m")
    everything = resample(store, exchange=EXCHANGE, symbol=XRP, source="1m", targets=["1h"])
    full = stored(store, XRP, "1h")
    with store.db.transaction(durable=False) as conn:
        conn.execute("DELETE FROM market_data WHERE timeframe = '1h'")

    # 00:30 to 01:30 covers parts of two hours: both are built from all their minutes.
    t0 = full[0][0]
    [part] = resample(
        store,
        exchange=EXCHANGE,
        symbol=XRP,
        source="1m",
        targets=["1h"],
        since=t0 + 1_800_000,
        until=t0 + 5_400_000,
    )

    assert part.written.received == 2
    assert stored(store, XRP, "1h") == full[:2]
    assert everything[0].written.received == len(full)


def test_resample_units_keeps_first_open_last_close_extremes_and_exact_sum() -> None:
    minute = 60_000
    rows = [
        (0, 10, 12, 9, 11, 1),
        (minute, 11, 15, 10, 14, 2),
        (3 * minute, 14, 14, 7, 8, 3),  # 00:02 missing: no trades that minute
        (5 * minute, 8, 9, 8, 9, 4),
    ]
    five = timeframe_of("5m")
    assert resample_units(rows, five) == [(0, 10, 15, 7, 8, 6), (5 * minute, 8, 9, 8, 9, 4)]
    assert resample_units([], five) == []


@pytest.mark.parametrize(
    ("source", "targets", "field"),
    [
        ("5m", ["1m"], "target"),  # shorter
        ("5m", ["5m"], "target"),  # same
        ("5m", ["1d", "7m"], "target"),  # one good target, one unsupported
        ("2m", ["1h"], "source"),
    ],
)
@pytest.mark.fault("bad input")
def test_impossible_resampling_is_refused_and_writes_nothing(
    store: Store, source: str, targets: list[str], field: str
) -> None:
    load(store, "XRP_ETH-5m.feather", XRP, "5m")
    before = store.candles.count()
    with pytest.raises(ValidationError) as caught:
        resample(store, exchange=EXCHANGE, symbol=XRP, source=source, targets=targets)
    assert caught.value.field == field
    assert store.candles.count() == before


# --- coverage and gaps --------------------------------------------------------------------


def test_gaps_in_real_trx_candles_are_listed_exactly(store: Store) -> None:
    rows = load(store, "TRX_BTC-5m.feather", TRX, "5m")
    stamps = [row[0] for row in rows]
    expected = [
        (before + FIVE_MINUTES, after - FIVE_MINUTES, (after - before) // FIVE_MINUTES - 1)
        for before, after in itertools.pairwise(stamps)
        if after - before > FIVE_MINUTES
    ]
    assert expected, "the TRX file is known to have gaps"

    found = gaps(store, exchange=EXCHANGE, symbol=TRX, timeframe="5m")

    assert [(g.start, g.end, g.missing) for g in found] == expected
    [summary] = list_data(store)
    assert summary.coverage.candles == len(rows) == 5754
    assert summary.missing == sum(g.missing for g in found)
    assert summary.gaps == len(found) == len(expected)
    assert (summary.coverage.first, summary.coverage.last) == (stamps[0], stamps[-1])


def test_list_data_has_a_line_per_exchange_symbol_and_timeframe(store: Store) -> None:
    load(store, "XRP_ETH-1m.feather", XRP, "1m")
    five = load(store, "XRP_ETH-5m.feather", XRP, "5m")
    load(store, "TRX_BTC-5m.feather", TRX, "5m")
    lines = {(s.coverage.symbol, s.coverage.timeframe): s for s in list_data(store)}
    assert set(lines) == {(XRP, "1m"), (XRP, "5m"), (TRX, "5m")}
    span = (five[-1][0] - five[0][0]) // FIVE_MINUTES + 1
    assert lines[XRP, "5m"].missing == span - len(five) == 6
    assert lines[XRP, "1m"].coverage.candles == 2469
    assert lines[XRP, "1m"].missing == lines[XRP, "1m"].expected - 2469 > 0
    assert lines[XRP, "1m"].gaps > 0
    assert list_data(store, exchange="kraken") == []


@pytest.mark.sqlite_only
def test_coverage_is_answered_from_an_index(store: Store) -> None:
    plan = store.db.connection.execute(
        "EXPLAIN QUERY PLAN SELECT exchange, symbol, timeframe, min(timestamp), "
        "max(timestamp), count(*) FROM market_data GROUP BY exchange, symbol, timeframe"
    ).fetchall()
    assert "COVERING INDEX" in " ".join(str(row[-1]) for row in plan)


# --- command line ---------------------------------------------------------------------------


def run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def test_cli_resample_gaps_and_list_data(store: Store) -> None:
    load(store, "XRP_ETH-1m.feather", XRP, "1m")
    load(store, "TRX_BTC-5m.feather", TRX, "5m")
    db = target_of(store)
    store.close()

    made = run(
        *("resample", "--db", db, "--exchange", EXCHANGE, "--symbol", XRP),
        *("--timeframe", "1m", "--into", "5m", "--into", "1d", "--json"),
    )
    assert made.exit_code == 0, made.stderr
    assert [(r["timeframe"], r["candles"]) for r in json.loads(made.stdout)] == [
        ("5m", 706),
        ("1d", 3),
    ]
    # The same timeframes comma-separated: the same candles, now all unchanged.
    again = run(
        *("resample", "--db", db, "--exchange", EXCHANGE, "--symbol", XRP),
        *("--timeframe", "1m", "--into", "5m,1d", "--json"),
    )
    assert [(r["timeframe"], r["candles"], r["unchanged"]) for r in json.loads(again.stdout)] == [
        ("5m", 706, 706),
        ("1d", 3, 3),
    ]
    listed = json.loads(run("list-data", "--db", db, "--json").stdout)
    assert {(line["symbol"], line["timeframe"]) for line in listed} == {
        (XRP, "1m"),
        (XRP, "5m"),
        (XRP, "1d"),
        (TRX, "5m"),
    }
    holes = json.loads(
        run(
            "gaps",
            "--db",
            db,
            "--exchange",
            EXCHANGE,
            "--symbol",
            TRX,
            "--timeframe",
            "5m",
            "--json",
        ).stdout
    )
    [trx] = [line for line in listed if line["symbol"] == TRX]
    assert sum(hole["missing"] for hole in holes) == trx["missing"]
    assert len(holes) == trx["gaps"]
    table = run("list-data", "--db", db).stdout
    assert "TRX/BTC" in table
    assert "5,754" in table


@pytest.mark.parametrize(
    "args",
    [
        ["gaps", "--exchange", "Binance", "--symbol", XRP, "--timeframe", "5m"],
        ["gaps", "--exchange", EXCHANGE, "--symbol", XRP, "--timeframe", "2m"],
        ["resample", "--exchange", EXCHANGE, "--symbol", XRP, "--timeframe", "5m", "--into", "1m"],
        ["list-data", "--exchange", "Kraken!"],
    ],
)
@pytest.mark.fault("bad input")
def test_cli_bad_input_is_one_line_exit_2(store: Store, args: list[str]) -> None:
    db = target_of(store)
    store.close()
    result = run(*args, "--db", db)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1


def test_a_complete_series_shows_no_gaps_without_walking_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = load(store, "XRP_ETH-5m.feather", XRP, "5m")
    complete = [row for row in rows if rows[0][0] <= row[0] < rows[0][0] + 60 * FIVE_MINUTES]
    store.write_candles(complete, exchange="kraken", symbol=XRP, timeframe="5m")
    walked: list[str] = []
    counting = store.market.hole_count
    monkeypatch.setattr(
        store.market, "hole_count", lambda *args: walked.append(args[0]) or counting(*args)
    )

    lines = {s.coverage.exchange: s for s in list_data(store)}

    assert (lines["kraken"].missing, lines["kraken"].gaps) == (0, 0)
    assert lines[EXCHANGE].gaps > 0
    assert walked == [EXCHANGE]


@pytest.mark.sqlite_only
def test_a_markets_newest_candle_is_read_from_an_index_of_its_own(store: Store) -> None:
    """A market that stopped long before the same symbol on another exchange must not step
    over the other exchange's newer rows to find its newest candle."""
    plan = store.db.connection.execute(
        "EXPLAIN QUERY PLAN SELECT max(timestamp) FROM market_data "
        "WHERE symbol = ? AND timeframe = ? AND exchange = ?",
        (XRP, "1m", "kraken"),
    ).fetchall()
    assert "idx_market_data_exchange_symbol_timeframe" in " ".join(str(row[-1]) for row in plan)
