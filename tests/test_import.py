"""Importing candle and trade files: freqtrade, Binance and Kraken formats, on real data."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import DATA
from market_files import ohlcv_rows, read_feather
from targets import target_of
from tradedb.errors import ValidationError
from tradedb.services.marketdata.files import BINANCE_HEADER
from tradedb.services.marketdata.importing import import_path
from tradedb.store import Store

XRP = "XRP/ETH"
FIVE = "XRP_ETH-5m.feather"


def exact(rows: list[list[Any]]) -> list[tuple[Any, ...]]:
    """What float rows mean: each value by its shortest repr."""
    return [
        (row[0], *(Decimal(repr(v)) if isinstance(v, float) else Decimal(v) for v in row[1:]))
        for row in rows
    ]


def stored(store: Store, exchange: str, symbol: str, timeframe: str) -> list[tuple[Any, ...]]:
    return [
        (ts, *(Decimal(units).scaleb(-8) for units in values))
        for ts, *values in store.market.candle_units(exchange, symbol, timeframe)
    ]


def everything(store: Store) -> list[tuple[Any, ...]]:
    return store.db.connection.execute("SELECT * FROM market_data ORDER BY id").fetchall()


def freqtrade_folder(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "user_data" / "data" / "binance"
    folder.mkdir(parents=True)
    for name in names:
        shutil.copyfile(DATA / name, folder / name)
    return folder


# --- formats ---------------------------------------------------------------------------------


def test_a_freqtrade_folder_imports_every_file_exactly(store: Store, tmp_path: Path) -> None:
    folder = freqtrade_folder(tmp_path, "XRP_ETH-1m.feather", FIVE)

    results = import_path(store, folder)

    assert [(r.exchange, r.symbol, r.timeframe, r.written.inserted) for r in results] == [
        ("binance", XRP, "1m", 2469),
        ("binance", XRP, "5m", 706),
    ]
    for name, timeframe in (("XRP_ETH-1m.feather", "1m"), (FIVE, "5m")):
        assert stored(store, "binance", XRP, timeframe) == exact(ohlcv_rows(read_feather(name)))


@pytest.mark.fault("bad input")
def test_a_whole_freqtrade_data_folder_imports_what_it_can_and_says_why_not_the_rest(
    store: Store, tmp_path: Path
) -> None:
    data = tmp_path / "user_data" / "data"
    binance = freqtrade_folder(tmp_path, "XRP_ETH-1m.feather", FIVE)
    futures = binance / "futures"
    futures.mkdir()
    shutil.copyfile(DATA / FIVE, futures / "XRP_USDT_USDT-5m-futures.feather")
    shutil.copyfile(DATA / FIVE, futures / "XRP_USDT_USDT-8h-mark.feather")
    shutil.copyfile(DATA / FIVE, futures / "XRP_USDT_USDT-8h-funding_rate.feather")
    (binance / "LTC_BTC-5m.feather").write_bytes(b"")  # unreadable
    (binance / "XRP_ETH-5m.h5").write_bytes(b"HDF")
    (binance / "notes.txt").write_text("mine")
    trades_csv = data / "kraken" / "trades_csv"
    trades_csv.mkdir(parents=True)
    shutil.copyfile(DATA / "BCHEUR.csv", trades_csv / "BCHEUR.csv")
    shutil.copyfile(DATA / FIVE, data / FIVE)  # no exchange folder above it

    results = import_path(store, data)

    status = {
        r.path.relative_to(data).as_posix(): (r.status, r.failed or r.skipped) for r in results
    }
    assert {name: state for name, (state, _) in status.items()} == {
        "binance/XRP_ETH-1m.feather": "imported",
        "binance/XRP_ETH-5m.feather": "imported",
        "binance/futures/XRP_USDT_USDT-5m-futures.feather": "imported",
        "binance/futures/XRP_USDT_USDT-8h-mark.feather": "skipped",
        "binance/futures/XRP_USDT_USDT-8h-funding_rate.feather": "skipped",
        "binance/LTC_BTC-5m.feather": "failed",
        "binance/XRP_ETH-5m.h5": "skipped",
        "binance/notes.txt": "skipped",
        "XRP_ETH-5m.feather": "failed",
        "kraken/trades_csv/BCHEUR.csv": "imported",
    }
    assert "mark-price" in str(status["binance/futures/XRP_USDT_USDT-8h-mark.feather"][1])
    assert "exchange=EXCHANGE" in str(status["XRP_ETH-5m.feather"][1])
    # freqtrade's futures folder is the exchange's futures market, not an exchange.
    assert stored(store, "binance", "XRP/USDT:USDT", "5m") == exact(ohlcv_rows(read_feather(FIVE)))
    assert stored(store, "binance", XRP, "5m") == exact(ohlcv_rows(read_feather(FIVE)))
    assert {r.exchange for r in results if r.status == "imported"} == {"binance", "kraken"}


def test_public_trades_become_the_exchanges_own_1m_candles(store: Store, tmp_path: Path) -> None:
    folder = freqtrade_folder(tmp_path, "XRP_ETH-trades.feather")

    [result] = import_path(store, folder)

    assert (result.format, result.timeframe, result.trades) == ("freqtrade-trades", "1m", 12477)
    # Binance's 1m candles are exactly what its trades make.
    assert stored(store, "binance", XRP, "1m") == exact(
        ohlcv_rows(read_feather("XRP_ETH-1m.feather"))
    )


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
def test_freqtrade_trades_in_json_become_the_same_candles(
    store: Store, tmp_path: Path, suffix: str
) -> None:
    # freqtrade writes trades as JSON lists too: [timestamp, id, type, side, price, amount,
    # cost] per trade.
    table = read_feather("XRP_ETH-trades.feather")
    columns = ("timestamp", "id", "type", "side", "price", "amount", "cost")
    trades = [[row[name] for name in columns] for row in table.to_pylist()]
    path = write_json(tmp_path / f"XRP_ETH-trades{suffix}", trades, gz=suffix.endswith(".gz"))

    [result] = import_path(store, path, exchange="binance")

    assert (result.format, result.trades) == ("freqtrade-trades", 12477)
    assert stored(store, "binance", XRP, "1m") == exact(
        ohlcv_rows(read_feather("XRP_ETH-1m.feather"))
    )


def test_freqtrade_trades_in_parquet_become_the_same_candles(store: Store, tmp_path: Path) -> None:
    from pyarrow import parquet

    path = tmp_path / "XRP_ETH-trades.parquet"
    parquet.write_table(read_feather("XRP_ETH-trades.feather"), path)

    [result] = import_path(store, path, exchange="binance")

    assert (result.format, result.trades) == ("freqtrade-trades", 12477)
    assert stored(store, "binance", XRP, "1m") == exact(
        ohlcv_rows(read_feather("XRP_ETH-1m.feather"))
    )


def test_kraken_trade_history_becomes_candles(store: Store) -> None:
    [result] = import_path(store, DATA / "BCHEUR.csv", exchange="kraken", timeframe="5m")

    assert (result.format, result.symbol) == ("kraken-trades", "BCH/EUR")
    trades = [
        (int(line[0]) * 1000, Decimal(line[1]), Decimal(line[2]))
        for line in csv.reader((DATA / "BCHEUR.csv").read_text().splitlines())
    ]
    assert result.trades == len(trades) == 148
    candles = stored(store, "kraken", "BCH/EUR", "5m")
    first = candles[0][0]
    inside = [t for t in trades if first <= t[0] < first + 300_000]
    assert candles[0] == (
        first,
        inside[0][1],
        max(t[1] for t in inside),
        min(t[1] for t in inside),
        inside[-1][1],
        sum(t[2] for t in inside),
    )
    assert sum(c[5] for c in candles) == sum(t[2] for t in trades)


def write_json(path: Path, rows: list[list[Any]], *, gz: bool = False) -> Path:
    text = json.dumps(rows)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("gz", [False, True], ids=["json", "json.gz"])
def test_freqtrade_json_imports_like_feather(store: Store, tmp_path: Path, gz: bool) -> None:
    rows = ohlcv_rows(read_feather(FIVE))
    name = "XRP_ETH-5m.json" + (".gz" if gz else "")
    path = write_json(tmp_path / name, rows, gz=gz)

    import_path(store, path, exchange="binance")

    assert stored(store, "binance", XRP, "5m") == exact(rows)


def binance_klines(rows: list[list[Any]], *, micro: bool, header: bool = False) -> str:
    factor = 1000 if micro else 1
    lines = [",".join(BINANCE_HEADER)] if header else []
    for ts, *values in rows:
        cells = [str(ts * factor), *(repr(v) for v in values)]
        cells += [str((ts + 299_999) * factor), "0", "1", "0", "0", "0"]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("micro", [False, True], ids=["milliseconds", "microseconds"])
@pytest.mark.parametrize("header", [False, True], ids=["bare", "header"])
def test_binance_kline_csv_in_milli_or_microseconds(
    store: Store, tmp_path: Path, micro: bool, header: bool
) -> None:
    rows = ohlcv_rows(read_feather(FIVE))
    path = tmp_path / "XRPETH-5m-2019-10.csv"
    path.write_text(binance_klines(rows, micro=micro, header=header))

    [result] = import_path(store, path, exchange="binance", symbol=XRP, timeframe="5m")

    assert result.format == "binance-klines"
    assert stored(store, "binance", XRP, "5m") == exact(rows)


def test_kraken_ohlcvt_csv_counts_seconds(store: Store, tmp_path: Path) -> None:
    rows = ohlcv_rows(read_feather(FIVE))
    path = tmp_path / "XRPETH_5.csv"
    path.write_text(
        "".join(f"{ts // 1000},{','.join(repr(v) for v in values)},7\n" for ts, *values in rows)
    )

    [result] = import_path(store, path, exchange="kraken", symbol=XRP, timeframe="5m")

    assert result.format == "kraken-ohlcvt"
    assert stored(store, "kraken", XRP, "5m") == exact(rows)


# --- a candle listed twice in one file ----------------------------------------------------------


def test_a_candle_listed_twice_alike_is_stored_once_and_reported(
    store: Store, tmp_path: Path
) -> None:
    rows = ohlcv_rows(read_feather(FIVE))
    # Binance's monthly file and its daily file pasted together share a day's candles.
    listed = rows + rows[-288:]
    path = tmp_path / "XRPETH-5m-2019-10.csv"
    path.write_text(binance_klines(listed, micro=False))

    [result] = import_path(store, path, exchange="binance", symbol=XRP, timeframe="5m")

    assert result.repeated == 288
    assert result.written.received == len(rows)
    assert stored(store, "binance", XRP, "5m") == exact(rows)


@pytest.mark.fault("bad input")
def test_a_candle_listed_twice_with_other_values_is_refused_naming_both(
    store: Store, tmp_path: Path
) -> None:
    rows = ohlcv_rows(read_feather(FIVE))
    ts, open_, high, low, close, volume = rows[2]
    corrected = [ts, open_, high, low, low if close != low else high, volume]
    path = write_json(tmp_path / "XRP_ETH-5m.json", [*rows[:5], corrected, *rows[5:]])

    with pytest.raises(ValidationError) as caught:
        import_path(store, path, exchange="binance")

    assert caught.value.field == "XRP_ETH-5m.json: candle 6.time"
    assert caught.value.value == rows[2][0]
    assert caught.value.rule.startswith("is also the time of candle 3 of the file, with other")
    assert store.candles.count() == 0


def test_cli_import_says_how_many_candles_were_listed_twice(store: Store, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tradedb.cli.app import app

    rows = ohlcv_rows(read_feather(FIVE))
    path = write_json(tmp_path / "XRP_ETH-5m.json", [*rows, rows[0], rows[1]])
    db = target_of(store)
    store.close()

    shown = CliRunner().invoke(app, ["import", str(path), "--exchange", "binance", "--db", db])
    as_json = CliRunner().invoke(
        app, ["import", str(path), "--exchange", "binance", "--db", db, "--json"]
    )

    assert shown.exit_code == 0, shown.stderr
    assert shown.stderr.splitlines() == [
        "XRP_ETH-5m.json: 2 candles listed again with the same time and values; each was "
        "stored once"
    ]
    [report] = json.loads(as_json.stdout)
    assert (report["repeated"], report["candles"], report["unchanged"]) == (2, 706, 706)


# --- floats, conflicts -------------------------------------------------------------------------


@pytest.mark.fault("bad input")
def test_float_noise_is_rounded_and_counted_unless_strict(store: Store, tmp_path: Path) -> None:
    folder = freqtrade_folder(tmp_path, "TRX_BTC-5m.feather")
    with pytest.raises(ValidationError) as caught:
        import_path(store, folder / "TRX_BTC-5m.feather", strict=True)
    assert caught.value.field == "TRX_BTC-5m.feather: row 2.close"
    # The library names its own argument; the command line names its option (below).
    assert "`strict=True`" in caught.value.rule
    assert "--strict" not in caught.value.rule
    assert store.candles.count() == 0

    [result] = import_path(store, folder)

    assert result.rounded == 10118
    assert result.written.inserted == 5754
    second = store.market.candle_units("binance", "TRX/BTC", "5m")[1]
    assert second[4] == 10756  # 0.00010756000000000001 rounded half-even to 0.00010756


def test_on_conflict_keep_or_replace_is_explicit_and_counted(store: Store, tmp_path: Path) -> None:
    rows = ohlcv_rows(read_feather(FIVE))
    original = write_json(tmp_path / "XRP_ETH-5m.json", rows)
    import_path(store, original, exchange="binance")
    changed = [[rows[0][0], rows[0][1], rows[0][2] * 2, rows[0][3], rows[0][4], 1.0], *rows[1:]]
    other = (
        write_json(tmp_path / "other" / "XRP_ETH-5m.json", changed)
        if (tmp_path / "other").mkdir() is None
        else None
    )
    assert other is not None

    [kept] = import_path(store, other, exchange="binance", on_conflict="keep")
    assert (kept.written.inserted, kept.written.updated) == (0, 0)
    assert stored(store, "binance", XRP, "5m") == exact(rows)

    [replaced] = import_path(store, other, exchange="binance", on_conflict="replace")
    assert (replaced.written.inserted, replaced.written.updated) == (0, 1)
    assert stored(store, "binance", XRP, "5m") == exact(changed)


# --- bad input ----------------------------------------------------------------------------------


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, dict[str, Any], str]]:
    rows = ohlcv_rows(read_feather(FIVE))[:10]
    klines = binance_klines(rows, micro=False).splitlines()
    truncated = tmp_path / "truncated" / "XRPETH-5m.csv"
    truncated.parent.mkdir()
    truncated.write_text("\n".join([*klines[:5], klines[5][:30], *klines[6:]]) + "\n")
    shuffled = tmp_path / "shuffled" / "XRPETH-5m.csv"
    shuffled.parent.mkdir()
    header = ",".join(("open_time", "high", "open", *BINANCE_HEADER[3:]))  # high before open
    shuffled.write_text(header + "\n" + "\n".join(klines) + "\n")
    seconds = write_json(tmp_path / "XRP_ETH-5m.json", [[ts // 1000, *v] for ts, *v in rows])
    empty = tmp_path / "empty" / "XRPETH-5m.csv"
    empty.parent.mkdir()
    empty.write_text("")
    corrupt = tmp_path / "corrupt" / "XRP_ETH-5m.json.gz"
    corrupt.parent.mkdir()
    corrupt.write_bytes(gzip.compress(json.dumps(rows).encode())[:-20] + b"garbage!")
    good = (
        write_json(tmp_path / "good" / "XRP_ETH-5m.json", rows)
        if (tmp_path / "good").mkdir() is None
        else tmp_path
    )
    kline_options = {"exchange": "binance", "symbol": XRP, "timeframe": "5m"}
    return {
        "unknown exchange id": (good, {"exchange": "Binance!"}, "exchange"),
        "unsupported timeframe": (good, {"exchange": "binance", "timeframe": "2m"}, "timeframe"),
        "truncated csv line": (truncated, kline_options, "line 6"),
        "columns in an unexpected order": (shuffled, kline_options, "header"),
        "timestamps in seconds": (seconds, {"exchange": "binance"}, "time"),
        "empty file": (empty, kline_options, "path"),
        "corrupt gzip": (corrupt, {"exchange": "binance"}, "path"),
    }


CASES = [
    "unknown exchange id",
    "unsupported timeframe",
    "truncated csv line",
    "columns in an unexpected order",
    "timestamps in seconds",
    "empty file",
    "corrupt gzip",
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.fault("bad input")
def test_bad_input_gets_one_clear_error_and_writes_nothing(
    store: Store, tmp_path: Path, case: str
) -> None:
    import_path(store, DATA / "BCHEUR.csv", exchange="kraken")  # something already stored
    before = everything(store)
    path, options, field = bad_files(tmp_path)[case]

    with pytest.raises(ValidationError) as caught:
        import_path(store, path, **options)

    assert field in caught.value.field
    assert caught.value.rule
    assert everything(store) == before


# --- command line ---------------------------------------------------------------------------


@pytest.mark.fault("bad input")
def test_cli_import_reports_each_file_and_refuses_bad_input(store: Store, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tradedb.cli.app import app

    folder = freqtrade_folder(tmp_path, "XRP_ETH-1m.feather", FIVE, "TRX_BTC-5m.feather")
    db = target_of(store)
    store.close()
    runner = CliRunner()

    partial = runner.invoke(app, ["import", str(folder), "--db", db, "--strict", "--json"])
    assert partial.exit_code == 1, partial.stderr
    rows = {Path(row["file"]).name: row for row in json.loads(partial.stdout)}
    assert rows["TRX_BTC-5m.feather"]["status"] == "failed"
    assert "`--strict`" in rows["TRX_BTC-5m.feather"]["reason"]
    assert "strict=True" not in rows["TRX_BTC-5m.feather"]["reason"]
    assert rows["XRP_ETH-1m.feather"]["status"] == "imported"  # one bad file stops no other

    refused = runner.invoke(
        app, ["import", str(folder / "TRX_BTC-5m.feather"), "--db", db, "--strict"]
    )
    assert refused.exit_code == 2
    assert "TRX_BTC-5m.feather" in refused.stderr
    assert "`--strict`" in refused.stderr

    done = runner.invoke(app, ["import", str(folder), "--db", db, "--json"])
    assert done.exit_code == 0, done.stderr
    report = {line["symbol"] + " " + line["timeframe"]: line for line in json.loads(done.stdout)}
    # The partial run wrote the XRP files already.
    assert report["XRP/ETH 1m"]["unchanged"] == 2469
    assert report["XRP/ETH 5m"]["unchanged"] == 706
    assert report["TRX/BTC 5m"]["inserted"] == 5754
    assert report["TRX/BTC 5m"]["rounded"] == 10118
