"""One market's trades split over several files, as Kraken publishes them (a full-history
CSV plus incremental ones): imported together, they make the candles of all their trades."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import DATA
from targets import target_of
from tradedb.errors import ValidationError
from tradedb.services.marketdata.importing import import_path
from tradedb.store import Store

BCH = "BCH/EUR"
FULL = "BCHEUR.csv"
INCREMENTAL = "BCHEUR-incremental_q2.csv"
STEP = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000, "1d": 86_400_000}
# Inside the minute 2023-01-02 01:06 UTC, which has trades at 01:06:09..01:06:14 and
# 01:06:31..01:06:51: a split here puts that minute's trades in two files.
SPLIT = 1672621580
BOUNDARY = 1672621560_000

Trade = tuple[int, Decimal, Decimal]


def trades_of(*lines: str) -> list[Trade]:
    return [(int(t) * 1000, Decimal(p), Decimal(v)) for t, p, v in csv.reader(lines)]


def real_lines(name: str) -> list[str]:
    return (DATA / name).read_text().splitlines()


def buckets(trades: list[Trade], step: int) -> list[tuple[Any, ...]]:
    """What the candles of trades in time order are, computed here on its own terms."""
    grouped: dict[int, list[Trade]] = {}
    for trade in trades:
        grouped.setdefault(trade[0] - trade[0] % step, []).append(trade)
    return [
        (
            start,
            inside[0][1],
            max(t[1] for t in inside),
            min(t[1] for t in inside),
            inside[-1][1],
            sum((t[2] for t in inside), Decimal(0)),
        )
        for start, inside in sorted(grouped.items())
    ]


def stored(store: Store, timeframe: str = "1m") -> list[tuple[Any, ...]]:
    return [
        (ts, *(Decimal(units).scaleb(-8) for units in values))
        for ts, *values in store.market.candle_units("kraken", BCH, timeframe)
    ]


def everything(store: Store) -> list[tuple[Any, ...]]:
    return store.db.connection.execute("SELECT * FROM market_data ORDER BY id").fetchall()


def market_refused(store: Store, folder: Path) -> str:
    """The one reason a folder's import gives for failing every file of its market."""
    results = import_path(store, folder)
    assert {r.status for r in results} == {"failed"}
    [reason] = {r.failed for r in results}
    assert reason is not None
    return reason


def kraken_folder(tmp_path: Path, files: dict[str, list[str]]) -> Path:
    folder = tmp_path / "kraken"
    folder.mkdir()
    for name, lines in files.items():
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def split_at(seconds: int) -> dict[str, list[str]]:
    """The real trades of both files, cut at another time: the full file runs on into
    the incremental file's first hour and ends in the middle of a minute."""
    incremental = real_lines(INCREMENTAL)
    return {
        FULL: real_lines(FULL) + [line for line in incremental if int(line[:10]) < seconds],
        INCREMENTAL: [line for line in incremental if int(line[:10]) >= seconds],
    }


ALL_TRADES = trades_of(*real_lines(FULL), *real_lines(INCREMENTAL))


@pytest.mark.parametrize("timeframe", ["1m", "5m", "1h", "1d"])
def test_kraken_full_and_incremental_files_make_the_candles_of_all_their_trades(
    store: Store, tmp_path: Path, timeframe: str
) -> None:
    folder = kraken_folder(tmp_path, {FULL: real_lines(FULL), INCREMENTAL: real_lines(INCREMENTAL)})

    results = import_path(store, folder, timeframe=timeframe)

    expected = buckets(ALL_TRADES, STEP[timeframe])
    assert stored(store, timeframe) == expected
    # One result per file, in time order, each with its own trades; the market's write
    # is counted once, so the results add up to what was written.
    assert [(r.path.name, r.trades) for r in results] == [(FULL, 148), (INCREMENTAL, 486)]
    assert [r.carries_write for r in results] == [False, True]
    assert sum(r.written.inserted for r in results) == len(expected)


def test_a_candle_spanning_two_files_holds_the_trades_of_both(store: Store, tmp_path: Path) -> None:
    files = split_at(SPLIT)
    folder = kraken_folder(tmp_path, files)

    import_path(store, folder)

    # However the trades are split over files, the candles are those of all of them.
    assert stored(store) == buckets(ALL_TRADES, 60_000)
    before, after = (
        [t for t in trades_of(*files[name]) if BOUNDARY <= t[0] < BOUNDARY + 60_000]
        for name in (FULL, INCREMENTAL)
    )
    # The minute really is split between the two files.
    assert before
    assert after
    boundary = next(c for c in stored(store) if c[0] == BOUNDARY)
    assert boundary == (
        BOUNDARY,
        before[0][1],  # the first file's open, 90.00
        max(t[1] for t in before + after),
        min(t[1] for t in before + after),
        after[-1][1],
        sum(t[2] for t in before) + sum(t[2] for t in after),
    )
    assert boundary[1:3] == (Decimal("90"), Decimal("90"))


@pytest.mark.fault("bad input")
def test_overlapping_trade_files_are_refused_naming_both_and_nothing_is_written(
    store: Store, tmp_path: Path
) -> None:
    import_path(store, DATA / FULL, exchange="kraken", symbol="BCH/USD")  # another market
    before = everything(store)
    # The full file runs to 01:06:14, the real incremental file starts at 00:48:56.
    folder = kraken_folder(
        tmp_path, {FULL: split_at(SPLIT)[FULL], INCREMENTAL: real_lines(INCREMENTAL)}
    )

    message = market_refused(store, folder)

    assert f"{FULL} (trades from 2023-01-01 00:03:56.000 UTC to 2023-01-02 01:06:14.000" in message
    assert (
        f"{INCREMENTAL} (trades from 2023-01-02 00:48:56.000 UTC to 2023-01-02 23:17:03.000"
        in message
    )
    assert everything(store) == before


@pytest.mark.fault("bad input")
def test_files_sharing_one_second_of_trades_are_refused(store: Store, tmp_path: Path) -> None:
    # Six trades at 01:06:31; a file ending after the third of them and one starting with
    # the fourth look exactly like two files listing the same second twice.
    files = split_at(SPLIT)
    shared = [line for line in files[INCREMENTAL] if line.startswith("1672621591,")]
    assert len(shared) == 6
    files[FULL] += shared[:3]
    files[INCREMENTAL] = files[INCREMENTAL][3:]
    folder = kraken_folder(tmp_path, files)

    assert "overlaps" in market_refused(store, folder)
    assert store.candles.count() == 0


@pytest.mark.fault("bad input")
def test_a_trade_file_out_of_time_order_is_refused(store: Store, tmp_path: Path) -> None:
    lines = real_lines(FULL)
    lines[10], lines[11] = lines[11], lines[10]
    folder = kraken_folder(tmp_path, {FULL: lines})

    reason = market_refused(store, folder)

    assert reason.startswith(f"{FULL}: line 12.time=")
    assert "time order" in reason
    assert store.candles.count() == 0
    with pytest.raises(ValidationError, match="time order"):
        import_path(store, folder / FULL)  # one file alone is refused outright


def test_separate_imports_keep_the_stored_boundary_candle_and_report_it(
    store: Store, tmp_path: Path
) -> None:
    files = split_at(SPLIT)
    folder = kraken_folder(tmp_path, files)
    first_part = buckets(trades_of(*files[FULL]), 60_000)

    [first] = import_path(store, folder / FULL)
    [second] = import_path(store, folder / INCREMENTAL)

    # The second file's partial minute neither replaces the stored one nor adds to it
    # (which would double-count on a re-import); it is reported instead.
    assert first.boundary_kept == ()
    assert second.boundary_kept == (BOUNDARY,)
    candles = {c[0]: c for c in stored(store)}
    assert candles[BOUNDARY] == first_part[-1]
    assert second.written.inserted == len(candles) - len(first_part)
    exact = {c[0]: c for c in buckets(ALL_TRADES, 60_000)}
    assert {ts: c for ts, c in candles.items() if ts != BOUNDARY} == {
        ts: c for ts, c in exact.items() if ts != BOUNDARY
    }

    # Imported together, the files rebuild it exactly: it is no longer at an edge.
    together = import_path(store, folder)
    assert together[-1].boundary_kept == ()
    assert (together[-1].written.inserted, together[-1].written.updated) == (0, 1)
    assert stored(store) == list(exact.values())

    # A later import of one file alone does not degrade the exact candle either.
    [again] = import_path(store, folder / INCREMENTAL)
    assert again.boundary_kept == (BOUNDARY,)
    assert stored(store) == list(exact.values())


def test_cli_counts_a_markets_candles_once_and_warns_of_a_kept_boundary(
    store: Store, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from tradedb.cli.app import app

    folder = kraken_folder(tmp_path, split_at(SPLIT))
    db = target_of(store)
    store.close()
    runner = CliRunner()

    alone = runner.invoke(app, ["import", str(folder / FULL), "--db", db])
    assert alone.exit_code == 0, alone.stderr
    later = runner.invoke(app, ["import", str(folder / INCREMENTAL), "--db", db])
    assert later.exit_code == 0, later.stderr
    assert "kept the stored candle of 2023-01-02 01:06:00.000 UTC" in later.stderr
    assert "together" in later.stderr

    done = runner.invoke(app, ["import", str(folder), "--db", db, "--json"])
    assert done.exit_code == 0, done.stderr
    report = json.loads(done.stdout)
    assert [(Path(r["file"]).name, r["trades"]) for r in report] == [
        (FULL, 153),
        (INCREMENTAL, 481),
    ]
    assert sum(r["candles"] for r in report) == len(buckets(ALL_TRADES, 60_000))
    assert sum(r["updated"] for r in report) == 1  # the boundary minute, now exact
    assert all(Path(r["market_files"][-1]).name == INCREMENTAL for r in report)

    table = runner.invoke(app, ["import", str(folder), "--db", db])
    assert table.exit_code == 0, table.stderr
    assert "counted once" in table.stdout
