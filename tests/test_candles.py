"""Reading candles out: pandas, Arrow and polars, floats or exact decimals, and the CLI."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from market_files import ohlcv_rows, read_feather
from targets import target_of
from tradedb.cli.app import app
from tradedb.errors import ValidationError
from tradedb.services.marketdata.candles import get_candles
from tradedb.store import Store

EXCHANGE = "binance"
XRP = "XRP/ETH"


@pytest.fixture
def rows(store: Store) -> list[list[Any]]:
    rows = ohlcv_rows(read_feather("XRP_ETH-1m.feather"))
    store.write_candles(rows, exchange=EXCHANGE, symbol=XRP, timeframe="1m")
    return rows


def test_pandas_floats_are_bit_for_bit_the_original_floats(
    store: Store, rows: list[list[Any]]
) -> None:
    frame = get_candles(store, EXCHANGE, XRP, "1m")

    assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert str(frame["date"].dtype) == "datetime64[ms, UTC]"
    assert [int(ts.timestamp() * 1000) for ts in frame["date"]] == [row[0] for row in rows]
    # units / 1e8 is the double nearest the stored decimal, which is the float it came from.
    for index, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
        assert frame[name].tolist() == [row[index] for row in rows]


def test_exact_output_holds_every_digit(store: Store, rows: list[list[Any]]) -> None:
    table = get_candles(store, EXCHANGE, XRP, "1m", output="arrow", exact=True)
    assert table.schema.field("open").type == pa.decimal128(20, 8)
    assert table.column("close").to_pylist() == [Decimal(repr(row[4])) for row in rows]

    frame = get_candles(store, EXCHANGE, XRP, "1m", exact=True)
    assert frame["volume"].tolist() == [Decimal(repr(row[5])) for row in rows]


def test_exact_output_is_exact_at_the_extremes(store: Store) -> None:
    top = "92233720368.54775807"
    store.write_candles(
        [[1_700_006_400_000, "0.00000001", top, "0.00000001", "0.00000001", top]],
        exchange=EXCHANGE,
        symbol="BTC/USDT",
        timeframe="1m",
    )
    table = get_candles(store, EXCHANGE, "BTC/USDT", "1m", output="arrow", exact=True)
    assert table.column("high").to_pylist() == [Decimal(top)]
    assert table.column("low").to_pylist() == [Decimal("0.00000001")]


def test_polars_and_a_time_range(store: Store, rows: list[list[Any]]) -> None:
    start, end = rows[10][0], rows[20][0]
    frame = get_candles(store, EXCHANGE, XRP, "1m", start, end, output="polars")
    assert frame.height == 10
    assert frame["close"].to_list() == [row[4] for row in rows[10:20]]


def test_an_empty_range_is_an_empty_frame(store: Store, rows: list[list[Any]]) -> None:
    frame = get_candles(store, EXCHANGE, XRP, "1m", "2030-01-01")
    assert len(frame) == 0
    assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("Binance", XRP, "1m"), "exchange"),
        ((EXCHANGE, "xrp/eth", "1m"), "symbol"),
        ((EXCHANGE, XRP, "2m"), "timeframe"),
    ],
)
@pytest.mark.fault("bad input")
def test_bad_arguments_are_named(store: Store, args: tuple[str, str, str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        get_candles(store, *args)
    assert caught.value.field == field


def test_cli_candles_json_and_csv_are_fixed_point(store: Store, rows: list[list[Any]]) -> None:
    db = target_of(store)
    store.close()
    runner = CliRunner()
    base = ["candles", "--db", db, "--exchange", EXCHANGE, "--symbol", XRP, "--timeframe", "1m"]

    as_json = json.loads(runner.invoke(app, [*base, "--json"]).stdout)
    assert len(as_json) == len(rows)
    assert as_json[0] == {
        "timestamp": rows[0][0],
        **{
            name: format(Decimal(repr(value)).quantize(Decimal("1E-8")), "f")
            for name, value in zip(
                ("open", "high", "low", "close", "volume"), rows[0][1:], strict=True
            )
        },
    }
    assert all("E" not in value for line in as_json for value in map(str, line.values()))

    as_csv = list(csv.reader(io.StringIO(runner.invoke(app, [*base, "--csv"]).stdout)))
    assert as_csv[0] == ["timestamp", "open", "high", "low", "close", "volume"]
    assert len(as_csv) == len(rows) + 1
    assert as_csv[1][1] == as_json[0]["open"]

    table = runner.invoke(app, [*base, "--limit", "3"]).stdout
    assert format(Decimal(repr(rows[-1][4])), "f").rstrip("0") in table
