"""Downloading candles through ccxt, offline: ccxt's real parsing code reads responses in
the exchanges' own formats, served from real candles by a replaced HTTP layer."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import ccxt
import pytest

from ccxt_markets import spot_market
from conftest import DATA
from market_files import ohlcv_rows, read_feather
from targets import target_of
from tradedb.errors import ValidationError
from tradedb.models.timeframes import timeframe_of
from tradedb.services.marketdata.download import connect, download
from tradedb.store import Store

MINUTE = 60_000
ROWS = ohlcv_rows(read_feather("XRP_ETH-1m.feather"))
FIRST, LAST = ROWS[0][0], ROWS[-1][0]
AFTER = LAST + 2 * MINUTE  # "now": every candle in the file has closed


def exact(rows: list[list[Any]]) -> list[tuple[Any, ...]]:
    return [(row[0], *(Decimal(repr(value)) for value in row[1:])) for row in rows]


def stored(store: Store, exchange: str, symbol: str) -> list[tuple[Any, ...]]:
    return [
        (ts, *(Decimal(units).scaleb(-8) for units in values))
        for ts, *values in store.market.candle_units(exchange, symbol, "1m")
    ]


class Binance:
    """A binance client whose HTTP layer serves /api/v3/klines pages from ROWS."""

    def __init__(self, failures: int = 0, pages: int | None = None) -> None:
        """`failures` requests fail first; after `pages` answered, every request fails."""
        self.client = connect("binance")
        self.client.set_markets([spot_market("XRPETH", "XRP/ETH")])
        self.requests: list[int] = []
        self.failures = failures
        self.pages = pages
        self.client.fetch = self.fetch

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        if self.failures or self.pages == len(self.requests):
            self.failures = max(0, self.failures - 1)
            raise ccxt.NetworkError("connection reset by peer")
        query = parse_qs(urlparse(url).query)
        start, limit = int(query["startTime"][0]), int(query["limit"][0])
        self.requests.append(start)
        page = [row for row in ROWS if row[0] >= start][:limit]
        return [
            [ts, *(repr(v) for v in values), ts + MINUTE - 1, "0", 1, "0", "0", "0"]
            for ts, *values in page
        ]


class Kraken:
    """A kraken client whose OHLC endpoint, like Kraken's, serves only its latest 720."""

    def __init__(self) -> None:
        self.client = connect("kraken")
        self.client.set_markets([spot_market("XRPETH", "XRP/ETH")])
        self.client.fetch = self.fetch

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        latest = ROWS[-720:]
        candles = [
            [ts // 1000, *(repr(v) for v in values[:4]), repr(values[3]), repr(values[4]), 1]
            for ts, *values in latest
        ]
        return {"error": [], "result": {"XRPETH": candles, "last": latest[-1][0] // 1000}}


def test_binance_pages_through_history_and_stores_it_exactly(store: Store) -> None:
    exchange = Binance()

    [result] = download(
        store, exchange.client, symbols=["XRP/ETH"], timeframes=["1m"], since=FIRST, now=AFTER
    )

    assert result.received == result.inserted == len(ROWS) == 2469
    # 1000 a page, each starting a minute after the last candle of the page before.
    assert exchange.requests[:3] == [FIRST, ROWS[999][0] + MINUTE, ROWS[1999][0] + MINUTE]
    assert stored(store, "binance", "XRP/ETH") == exact(ROWS)
    assert not result.cut_short
    assert result.failed is None


def test_a_second_run_resumes_after_the_last_stored_candle(store: Store) -> None:
    middle = ROWS[1234][0]
    download(
        store,
        Binance().client,
        symbols=["XRP/ETH"],
        timeframes=["1m"],
        since=FIRST,
        until=middle,
        now=AFTER,
    )
    assert len(stored(store, "binance", "XRP/ETH")) == 1234

    exchange = Binance()
    [result] = download(store, exchange.client, symbols=["XRP/ETH"], timeframes=["1m"], now=AFTER)

    assert exchange.requests[0] == middle
    assert result.inserted == len(ROWS) - 1234
    assert stored(store, "binance", "XRP/ETH") == exact(ROWS)


def test_a_since_before_the_oldest_stored_candle_backfills_the_earlier_range(
    store: Store,
) -> None:
    later = ROWS[1500][0]
    download(
        store, Binance().client, symbols=["XRP/ETH"], timeframes=["1m"], since=later, now=AFTER
    )
    assert len(stored(store, "binance", "XRP/ETH")) == len(ROWS) - 1500

    exchange = Binance()
    [result] = download(
        store, exchange.client, symbols=["XRP/ETH"], timeframes=["1m"], since=FIRST, now=AFTER
    )

    # Back from the oldest stored candle, a page of 1000 minutes at a time, to FIRST.
    backwards = exchange.requests[: exchange.requests.index(FIRST) + 1]
    assert backwards[0] == later - 1000 * MINUTE
    assert all(a - b == 1000 * MINUTE for a, b in itertools.pairwise(backwards[:-1]))
    assert backwards[-1] == FIRST
    assert result.inserted == 1500
    assert stored(store, "binance", "XRP/ETH") == exact(ROWS)


def test_an_interrupted_backfill_leaves_no_hole_and_the_next_run_finishes_it(
    store: Store,
) -> None:
    later = ROWS[2400][0]
    download(
        store, Binance().client, symbols=["XRP/ETH"], timeframes=["1m"], since=later, now=AFTER
    )

    waits: list[float] = []
    [cut] = download(
        store,
        Binance(pages=1).client,
        symbols=["XRP/ETH"],
        timeframes=["1m"],
        since=FIRST,
        now=AFTER,
        sleep=waits.append,
    )
    assert waits == [1, 2, 4, 8]  # the page after the first was retried with backoff
    assert cut.failed is not None
    assert 0 < cut.inserted < 2400
    # What is stored is one unbroken stretch of the exchange's history, up to its end.
    assert stored(store, "binance", "XRP/ETH") == exact(ROWS[2400 - cut.inserted :])

    [rest] = download(
        store, Binance().client, symbols=["XRP/ETH"], timeframes=["1m"], since=FIRST, now=AFTER
    )
    assert rest.failed is None
    assert cut.inserted + rest.inserted == 2400
    assert stored(store, "binance", "XRP/ETH") == exact(ROWS)


def test_fill_gaps_fetches_the_missing_runs_inside_the_stored_span(store: Store) -> None:
    kept = ROWS[:300] + ROWS[1000:1700] + ROWS[2000:]
    store.write_candles(kept, exchange="binance", symbol="XRP/ETH", timeframe="1m")  # type: ignore[arg-type]

    without = download(store, Binance().client, symbols=["XRP/ETH"], timeframes=["1m"], now=AFTER)
    exchange = Binance()
    [filled] = download(
        store, exchange.client, symbols=["XRP/ETH"], timeframes=["1m"], fill_gaps=True, now=AFTER
    )

    assert without[0].inserted == 0  # a plain run goes on from the newest candle only
    assert (filled.inserted, filled.updated) == (700 + 300, 0)
    assert stored(store, "binance", "XRP/ETH") == exact(ROWS)
    # The exchange's own gaps (minutes without a trade: hundreds here) cost no request
    # each; a page of 1000 minutes covers all it reaches.
    assert store.market.hole_count("binance", "XRP/ETH", timeframe_of("1m")) > 300
    assert len(exchange.requests) <= (LAST - FIRST) // (1000 * MINUTE) + 2


def test_kraken_backfill_before_its_latest_720_is_reported_cut_short(store: Store) -> None:
    download(store, Kraken().client, symbols=["XRP/ETH"], timeframes=["1m"], since=FIRST, now=AFTER)

    [result] = download(
        store, Kraken().client, symbols=["XRP/ETH"], timeframes=["1m"], since=FIRST, now=AFTER
    )

    assert result.cut_short
    assert result.inserted == 0
    assert stored(store, "kraken", "XRP/ETH") == exact(ROWS[-720:])


def test_the_candle_still_open_is_left_for_later(store: Store) -> None:
    now = LAST + MINUTE // 2  # the last candle opened half a minute ago
    download(store, Binance().client, symbols=["XRP/ETH"], timeframes=["1m"], since=FIRST, now=now)
    assert stored(store, "binance", "XRP/ETH") == exact(ROWS[:-1])


def test_kraken_serving_only_its_latest_720_is_reported(store: Store) -> None:
    [result] = download(
        store, Kraken().client, symbols=["XRP/ETH"], timeframes=["1m"], since=FIRST, now=AFTER
    )
    assert result.cut_short
    assert result.received == 720
    assert stored(store, "kraken", "XRP/ETH") == exact(ROWS[-720:])


def test_network_errors_are_retried_with_backoff(store: Store) -> None:
    waits: list[float] = []
    exchange = Binance(failures=2)
    [result] = download(
        store,
        exchange.client,
        symbols=["XRP/ETH"],
        timeframes=["1m"],
        since=FIRST,
        now=AFTER,
        sleep=waits.append,
    )
    assert waits == [1.0, 2.0]
    assert result.failed is None
    assert result.inserted == len(ROWS)


def test_a_page_that_keeps_failing_stops_the_market_and_the_next_run_resumes(
    store: Store,
) -> None:
    exchange = Binance()
    calls = {"n": 0}
    serve = exchange.fetch

    def fails_after_the_first_page(url: str, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            raise ccxt.NetworkError("timed out")
        return serve(url)

    exchange.client.fetch = fails_after_the_first_page
    [result] = download(
        store,
        exchange.client,
        symbols=["XRP/ETH"],
        timeframes=["1m"],
        since=FIRST,
        now=AFTER,
        sleep=lambda _s: None,
    )
    assert result.failed is not None
    assert "timed out" in result.failed
    assert result.inserted == 1000  # the page before the failure is kept, nothing skipped

    [again] = download(store, Binance().client, symbols=["XRP/ETH"], timeframes=["1m"], now=AFTER)
    assert again.inserted == len(ROWS) - 1000
    assert stored(store, "binance", "XRP/ETH") == exact(ROWS)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda store: connect("nosuchexchange"), "exchange"),
        (lambda store: connect("Binance"), "exchange"),
        (
            lambda store: download(
                store, Binance().client, symbols=["DOGE/ETH"], timeframes=["1m"], now=AFTER
            ),
            "symbol",
        ),
        (
            lambda store: download(
                store, Binance().client, symbols=["XRP/ETH"], timeframes=["2m"], now=AFTER
            ),
            "timeframe",
        ),
    ],
    ids=["unknown exchange id", "exchange id in capitals", "unlisted symbol", "bad timeframe"],
)
@pytest.mark.fault("bad input")
def test_bad_input_is_refused_before_anything_is_written(
    store: Store, call: Any, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        call(store)
    assert caught.value.field == field
    assert store.candles.count() == 0


def test_cli_download_reports_rows_gaps_and_a_short_history(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from tradedb.cli.app import app
    from tradedb.services.marketdata import download as downloading

    client = Kraken().client
    monkeypatch.setattr(downloading, "connect", lambda exchange_id: client)
    db = target_of(store)
    store.close()
    base = ["download", "--db", db, "--exchange", "kraken", "--symbol", "XRP/ETH"]

    shown = CliRunner().invoke(app, [*base, "--timeframe", "1m", "--since", str(FIRST)])
    assert shown.exit_code == 0, shown.stderr
    assert "720 candles (720 added, 0 updated)" in shown.stdout
    assert "latest 720 candles" in shown.stdout

    again = CliRunner().invoke(app, [*base, "--json"])
    [report] = json.loads(again.stdout)
    assert (report["inserted"], report["cut_short"], report["failed"]) == (0, False, None)
    gaps_in_file = sum(
        1
        for before, after in zip(ROWS[-720:], ROWS[-719:], strict=False)
        if after[0] - before[0] > MINUTE
    )
    assert report["gaps"] == gaps_in_file


def test_cli_fill_gaps_and_backfill(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from tradedb.cli.app import app
    from tradedb.services.marketdata import download as downloading

    monkeypatch.setattr(downloading, "connect", lambda exchange_id: Binance().client)
    kept = ROWS[1000:1700] + ROWS[2000:]
    store.write_candles(kept, exchange="binance", symbol="XRP/ETH", timeframe="1m")  # type: ignore[arg-type]
    db = target_of(store)
    store.close()
    base = ["download", "--db", db, "--exchange", "binance", "--symbol", "XRP/ETH", "--json"]

    filled = CliRunner().invoke(app, [*base, "--fill-gaps"])
    backfilled = CliRunner().invoke(app, [*base, "--since", str(FIRST)])

    assert filled.exit_code == 0, filled.stderr
    assert json.loads(filled.stdout)[0]["inserted"] == 300
    assert backfilled.exit_code == 0, backfilled.stderr
    assert json.loads(backfilled.stdout)[0]["inserted"] == 1000


# --- ccxt's own recorded exchange responses -------------------------------------------------

RECORDED = json.loads((DATA / "ccxt-static-ohlcv-ticker.json").read_text())["exchanges"]
MARKET_IDS = {"kraken": "XBTUSDT", "binance": "BTCUSDT"}


@pytest.mark.parametrize("exchange_id", ["kraken", "binance"])
def test_recorded_ohlcv_responses_are_stored_exactly_as_the_exchange_wrote_them(
    store: Store, exchange_id: str
) -> None:
    case = RECORDED[exchange_id]["fetchOHLCV"][0]
    symbol, timeframe, since, _limit = case["input"]
    client = connect(exchange_id)
    client.set_markets([spot_market(MARKET_IDS[exchange_id], symbol)])
    client.fetch = lambda url, method="GET", headers=None, body=None: case["httpResponse"]
    parsed = case["parsedResponse"]

    download(
        store,
        client,
        symbols=[symbol],
        timeframes=[timeframe],
        since=since,
        now=parsed[-1][0] + 2 * 3_600_000,
    )

    rows = store.market.candle_units(exchange_id, symbol, timeframe)
    got = [(ts, *(Decimal(units).scaleb(-8) for units in values)) for ts, *values in rows]
    # ccxt's own expected parse, value by value (its floats read as the exchange's text).
    assert got[: len(parsed)] == [
        (row[0], *(Decimal(str(value)) for value in row[1:])) for row in parsed
    ]
    assert all(row[0] >= since for row in got)
