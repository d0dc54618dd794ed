"""Recording tickers through ccxt, offline: ccxt's own recorded Kraken and Binance ticker
replies (tests/data/README.md) run through ccxt's real parsers, served by a replaced HTTP
layer, and the recorder's clock is a fake one, so nothing waits and nothing touches the
network."""

from __future__ import annotations

import copy
import json
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from ccxt_markets import spot_market
from conftest import DATA
from tradedb.cli.app import app
from tradedb.errors import ValidationError
from tradedb.models.values import parse_every
from tradedb.services.marketdata import download as fetching
from tradedb.services.marketdata import tickers as recording
from tradedb.services.marketdata.download import connect
from tradedb.services.marketdata.tickers import (
    Clock,
    poll,
    record,
    rounded_percent,
    ticker_row,
)
from tradedb.store import Store

RECORDED = json.loads((DATA / "ccxt-static-ohlcv-ticker.json").read_text())["exchanges"]
REQUESTS = json.loads((DATA / "ccxt-static-ticker-requests.json").read_text())["exchanges"]
MARKET_IDS = {
    "kraken": {"BTC/USDT": "XBTUSDT", "ETH/USDT": "ETHUSDT"},
    "binance": {"BTC/USDT": "BTCUSDT", "ETH/USDT": "ETHUSDT"},
}
EXCHANGES = ["kraken", "binance"]
FETCHED_AT = 1_767_225_600_000  # 2026-01-01 00:00 UTC, the fake wall clock's start
USER_ERROR = 2


class FakeClock:
    """Time passes only when the recorder sleeps or a request takes time."""

    def __init__(self) -> None:
        self.ns = 0
        self.sleeps: list[float] = []
        self.interrupt_on_sleep: int | None = None  # Ctrl-C during this sleep (1-based)

    def monotonic_ns(self) -> int:
        return self.ns

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.interrupt_on_sleep == len(self.sleeps):
            raise KeyboardInterrupt
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.ns += round(seconds * 1e9)

    def epoch_ms(self) -> int:
        return FETCHED_AT + self.ns // 1_000_000

    @property
    def clock(self) -> Clock:
        return Clock(monotonic_ns=self.monotonic_ns, sleep=self.sleep, epoch_ms=self.epoch_ms)


class Replay:
    """A real ccxt client whose HTTP layer serves the exchange's recorded ticker reply."""

    def __init__(
        self,
        exchange_id: str,
        clock: FakeClock | None = None,
        *,
        batch: bool = True,
        failures: int = 0,
        request_s: float = 0.0,
    ) -> None:
        self.exchange_id = exchange_id
        self.reply: Any = copy.deepcopy(RECORDED[exchange_id]["fetchTicker"][0]["httpResponse"])
        self.clock = clock or FakeClock()
        self.failures = failures  # the next this many requests fail with a network error
        self.request_s = request_s
        self.urls: list[str] = []
        self.client = connect(exchange_id)
        # ccxt's own limiter spaces requests with real sleeps; nothing to space out here.
        self.client.enableRateLimit = False
        self.client.set_markets([_market(exchange_id, s) for s in MARKET_IDS[exchange_id]])
        if not batch:
            self.client.has = {**self.client.has, "fetchTickers": False}
        self.client.fetch = self.fetch

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        self.urls.append(url)
        self.clock.advance(self.request_s)
        if self.failures:
            self.failures -= 1
            raise ccxt.NetworkError("connection reset by peer")
        if self.exchange_id == "binance" and "symbols=" in url:
            return [copy.deepcopy(self.reply)]  # the many-markets endpoint replies with a list
        return copy.deepcopy(self.reply)


def _market(exchange_id: str, symbol: str) -> dict[str, Any]:
    return spot_market(MARKET_IDS[exchange_id][symbol], symbol)


def ccxt_parse(exchange_id: str) -> dict[str, Any]:
    """ccxt's own parse of the recorded reply, with Decimals (tradedb's client setting)."""
    client = connect(exchange_id)
    client.set_markets([_market(exchange_id, "BTC/USDT")])
    reply = RECORDED[exchange_id]["fetchTicker"][0]["httpResponse"]
    raw = reply["result"]["XBTUSDT"] if exchange_id == "kraken" else reply
    parsed: dict[str, Any] = client.parse_ticker(raw, client.market("BTC/USDT"))
    return parsed


def stored(store: Store, exchange_id: str) -> list[dict[str, Any]]:
    columns = (
        "symbol",
        "bid_price",
        "ask_price",
        "last_price",
        "volume_24h",
        "price_change_24h",
        "price_change_percent_24h",
        "timestamp",
    )
    rows = store.tickers.list({"exchange": exchange_id}).items
    return [{name: getattr(row, name) for name in columns} for row in rows]


def half_even(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)


# --- the recorded replies, stored exactly ----------------------------------------------


@pytest.mark.parametrize("exchange_id", EXCHANGES)
def test_recorded_replies_are_stored_exactly_as_ccxt_parsed_them(
    store: Store, exchange_id: str
) -> None:
    exchange = Replay(exchange_id)

    result = record(store, exchange.client, ["BTC/USDT"], clock=exchange.clock.clock)

    parsed = ccxt_parse(exchange_id)
    assert isinstance(parsed["bid"], Decimal)  # no float was ever created
    [row] = stored(store, exchange_id)
    assert row == {
        "symbol": "BTC/USDT",
        "bid_price": parsed["bid"],
        "ask_price": parsed["ask"],
        "last_price": parsed["last"],
        "volume_24h": parsed["baseVolume"],
        "price_change_24h": parsed["change"],
        "price_change_percent_24h": half_even(parsed["percentage"]),
        "timestamp": parsed["timestamp"] or FETCHED_AT,
    }
    # The same values as ccxt's recorded expectation (its floats read as the exchange's text).
    expected = RECORDED[exchange_id]["fetchTicker"][0]["parsedResponse"]
    for column, key in [
        ("bid_price", "bid"),
        ("ask_price", "ask"),
        ("last_price", "last"),
        ("volume_24h", "baseVolume"),
        ("price_change_24h", "change"),
    ]:
        assert row[column] == Decimal(repr(expected[key])), column
    assert row["price_change_percent_24h"] == half_even(Decimal(repr(expected["percentage"])))
    assert (result.received, result.inserted, result.updated, result.failed_polls) == (1, 1, 0, 0)


def test_kraken_sends_no_time_so_the_fetch_time_stands_in_and_its_percentage_is_rounded(
    store: Store,
) -> None:
    clock = FakeClock()
    clock.advance(12.3456)
    exchange = Replay("kraken", clock)

    record(store, exchange.client, ["BTC/USDT"], clock=clock.clock)

    [row] = stored(store, "kraken")
    assert ccxt_parse("kraken")["timestamp"] is None
    assert row["timestamp"] == FETCHED_AT + 12_345
    # ccxt derives it: 1929.9 / 71450.7 x 100 = 2.7010232230055128...; the column holds 4.
    assert ccxt_parse("kraken")["percentage"] == Decimal("2.7010232230055128")
    assert row["price_change_percent_24h"] == Decimal("2.7010")
    # The exchange's own text, every digit kept.
    assert (row["bid_price"], row["ask_price"], row["last_price"]) == (
        Decimal("73380.6"),
        Decimal("73380.7"),
        Decimal("73380.6"),
    )
    assert row["volume_24h"] == Decimal("598.03698452")


def test_binance_keeps_its_own_time_and_percentage(store: Store) -> None:
    record(store, Replay("binance").client, ["BTC/USDT"], clock=FakeClock().clock)
    [row] = stored(store, "binance")
    assert row["timestamp"] == 1_710_328_245_391  # closeTime, not the fetch time
    assert row["price_change_percent_24h"] == Decimal("1.647")
    assert row["volume_24h"] == Decimal("72140.348628")


@pytest.mark.parametrize("exchange_id", EXCHANGES)
def test_one_request_fetches_every_market_of_a_poll_as_ccxt_records_it(
    store: Store, exchange_id: str
) -> None:
    exchange = Replay(exchange_id)
    [case] = REQUESTS[exchange_id]["fetchTickers"]
    [symbols] = case["input"]

    poll(store, exchange.client, symbols, clock=exchange.clock.clock)

    assert exchange.urls == [case["url"]]


@pytest.mark.parametrize("exchange_id", EXCHANGES)
def test_without_fetch_tickers_each_market_is_fetched_alone(store: Store, exchange_id: str) -> None:
    exchange = Replay(exchange_id, batch=False)
    [case] = REQUESTS[exchange_id]["fetchTicker"]

    done = poll(store, exchange.client, case["input"], clock=exchange.clock.clock)

    assert exchange.urls == [case["url"]]
    assert done.inserted == 1
    assert stored(store, exchange_id)[0]["last_price"] == ccxt_parse(exchange_id)["last"]


def test_a_poll_is_written_in_one_batch(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    exchange = Replay("binance")
    # The recorded BTCUSDT ticker, served a second time under ETHUSDT: two markets, one reply.
    second = {**exchange.reply, "symbol": "ETHUSDT"}
    exchange.client.fetch = lambda *args, **kwargs: [copy.deepcopy(exchange.reply), second]
    batches: list[int] = []
    write = store.write_tickers

    def counted(rows: Any, **kwargs: Any) -> Any:
        rows = list(rows)
        batches.append(len(rows))
        return write(rows, **kwargs)

    monkeypatch.setattr(store, "write_tickers", counted)

    done = poll(store, exchange.client, ["BTC/USDT", "ETH/USDT"], clock=FakeClock().clock)

    assert batches == [2]
    assert (done.received, done.inserted) == (2, 2)
    assert {row["symbol"] for row in stored(store, "binance")} == {"BTC/USDT", "ETH/USDT"}


# --- idempotency -------------------------------------------------------------------------


@pytest.mark.parametrize("exchange_id", EXCHANGES)
def test_storing_the_same_poll_twice_adds_nothing(store: Store, exchange_id: str) -> None:
    clock = FakeClock()
    exchange = Replay(exchange_id, clock)

    first = poll(store, exchange.client, ["BTC/USDT"], clock=clock.clock)
    again = poll(store, exchange.client, ["BTC/USDT"], clock=clock.clock)

    assert (first.inserted, first.updated) == (1, 0)
    assert (again.received, again.inserted, again.updated) == (1, 0, 0)
    assert store.tickers.count() == 1


def test_a_corrected_ticker_for_the_same_moment_replaces_the_stored_one(store: Store) -> None:
    exchange = Replay("binance")
    poll(store, exchange.client, ["BTC/USDT"], clock=exchange.clock.clock)
    exchange.reply["bidPrice"] = "73369.82000000"

    again = poll(store, exchange.client, ["BTC/USDT"], clock=exchange.clock.clock)

    assert (again.inserted, again.updated) == (0, 1)
    assert stored(store, "binance")[0]["bid_price"] == Decimal("73369.82")


# --- what cannot be stored ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stored_as"),
    [("1.23455", "1.2346"), ("1.23445", "1.2344"), ("-0.00005", "0.0000"), ("-7.5", "-7.5")],
)
def test_the_exchanges_percentage_is_rounded_half_even_to_4_decimals(
    store: Store, text: str, stored_as: str
) -> None:
    exchange = Replay("binance")
    exchange.reply["priceChangePercent"] = text

    poll(store, exchange.client, ["BTC/USDT"], clock=exchange.clock.clock)

    assert stored(store, "binance")[0]["price_change_percent_24h"] == Decimal(stored_as)


@settings(max_examples=300, deadline=None)
@given(
    value=st.decimals(
        min_value=Decimal("-999999.99994"),
        max_value=Decimal("999999.99994"),
        places=10,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_rounding_a_percentage_is_half_even_and_changes_it_by_at_most_half_a_unit(
    value: Decimal,
) -> None:
    rounded = rounded_percent(value)
    assert rounded is not None
    assert rounded == half_even(value)
    assert abs(rounded - value) <= Decimal("0.00005")
    assert rounded_percent(str(value)) == rounded


def test_amounts_are_never_rounded_a_market_that_needs_it_is_left_out(store: Store) -> None:
    exchange = Replay("binance")
    exchange.reply["bidPrice"] = "73369.830000001"  # 9 decimals: DECIMAL(20,8) holds 8

    done = poll(store, exchange.client, ["BTC/USDT"], clock=exchange.clock.clock)

    assert done.failed is not None
    [(symbol, why)] = done.skipped
    assert symbol == "BTC/USDT"
    assert why.startswith("bid_price=73369.830000001")
    assert store.tickers.count() == 0


@pytest.mark.fault("bad input")
def test_without_last_the_close_is_stored_and_without_either_it_is_refused() -> None:
    row = ticker_row({"symbol": "BTC/USD", "close": Decimal("5.1")}, fetched_at=FETCHED_AT)
    assert (row["last_price"], row["timestamp"]) == (Decimal("5.1"), FETCHED_AT)
    with pytest.raises(ValidationError) as caught:
        ticker_row({"symbol": "BTC/USD", "bid": Decimal(1)}, fetched_at=FETCHED_AT)
    assert caught.value.field == "last"


def test_a_reply_without_a_price_leaves_that_market_out(store: Store) -> None:
    exchange = Replay("kraken")
    del exchange.reply["result"]["XBTUSDT"]["c"]  # Kraken's last trade closed

    done = poll(store, exchange.client, ["BTC/USDT"], clock=exchange.clock.clock)

    assert done.skipped == (
        ("BTC/USDT", "last=None: the exchange gave neither a last nor a close price"),
    )
    assert done.failed is not None
    assert store.tickers.count() == 0


def test_a_market_missing_from_the_reply_is_reported_and_the_others_are_stored(
    store: Store,
) -> None:
    exchange = Replay("kraken")  # the recorded reply holds XBTUSDT only

    done = poll(store, exchange.client, ["BTC/USDT", "ETH/USDT"], clock=exchange.clock.clock)

    assert done.failed is None
    assert done.inserted == 1
    assert done.skipped == (("ETH/USDT", "the exchange's reply has no ticker for it"),)


# --- refused before anything is written -------------------------------------------------


@pytest.mark.fault("bad input")
def test_a_market_the_exchange_does_not_list_is_refused_before_any_request(
    store: Store,
) -> None:
    exchange = Replay("binance")

    with pytest.raises(ValidationError) as caught:
        record(store, exchange.client, ["BTC/USDT", "DOGE/USDT"], clock=exchange.clock.clock)

    assert (caught.value.field, caught.value.value) == ("symbol", "DOGE/USDT")
    assert "binance" in caught.value.rule
    assert exchange.urls == []
    assert store.tickers.count() == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"symbols": []}, "symbols"),
        ({"symbols": ["btc/usdt"]}, "symbol"),
        ({"count": 0}, "count"),
        ({"count": 3}, "count"),  # several polls without an interval
        ({"every_ms": 0}, "every"),
    ],
    ids=["no market", "lower-case symbol", "zero polls", "count without every", "zero every"],
)
@pytest.mark.fault("bad input")
def test_bad_arguments_are_refused_before_any_request(
    store: Store, kwargs: dict[str, Any], field: str
) -> None:
    exchange = Replay("binance")
    arguments: dict[str, Any] = {"symbols": ["BTC/USDT"], **kwargs}
    with pytest.raises(ValidationError) as caught:
        record(store, exchange.client, clock=exchange.clock.clock, **arguments)
    assert caught.value.field == field
    assert exchange.urls == []
    assert store.tickers.count() == 0


@pytest.mark.fault("bad input")
def test_an_unknown_exchange_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        connect("nosuchexchange")
    assert (caught.value.field, caught.value.value) == ("exchange", "nosuchexchange")


@pytest.mark.parametrize(
    ("text", "millis"),
    [("500ms", 500), ("10s", 10_000), ("1m", 60_000), ("2h", 7_200_000), (" 24h ", 86_400_000)],
)
def test_every_reads_a_duration(text: str, millis: int) -> None:
    assert parse_every(text) == millis


@pytest.mark.parametrize("text", ["10", "ten", "10x", "0s", "-1s", "1.5s", "25h", "", "1 s"])
@pytest.mark.fault("bad input")
def test_every_refuses_junk(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_every(text)
    assert (caught.value.field, caught.value.value) == ("every", text)


# --- schedule ---------------------------------------------------------------------------


def test_polls_keep_to_the_schedule_whatever_each_one_takes(store: Store) -> None:
    clock = FakeClock()
    exchange = Replay("binance", clock, request_s=3.0)

    result = record(
        store, exchange.client, ["BTC/USDT"], every_ms=10_000, count=4, clock=clock.clock
    )

    assert [p.started - FETCHED_AT for p in result.polls] == [0, 10_000, 20_000, 30_000]
    assert clock.sleeps == [7.0, 7.0, 7.0]
    assert result.missed_slots == 0
    assert not result.interrupted


def test_a_poll_that_overruns_is_followed_at_once_and_whole_missed_slots_are_skipped(
    store: Store,
) -> None:
    clock = FakeClock()
    exchange = Replay("binance", clock)
    durations = iter([25.0, 1.0, 1.0])
    served = exchange.fetch

    def slow(url: str, *args: Any, **kwargs: Any) -> Any:
        clock.advance(next(durations))
        return served(url)

    exchange.client.fetch = slow

    result = record(
        store, exchange.client, ["BTC/USDT"], every_ms=10_000, count=3, clock=clock.clock
    )

    # 0 s: the poll takes 25 s, so the 10 s slot passes entirely and the 20 s one is late.
    assert [p.started - FETCHED_AT for p in result.polls] == [0, 25_000, 30_000]
    assert result.missed_slots == 1


@settings(max_examples=200, deadline=None)
@given(
    every_ms=st.integers(min_value=1, max_value=60_000),
    durations_ms=st.lists(st.integers(min_value=0, max_value=200_000), min_size=1, max_size=12),
)
def test_polls_never_drift_from_their_slots(every_ms: int, durations_ms: list[int]) -> None:
    """Each poll starts on its slot (start + k * every), or at once when the one before
    ran past it; slots are never fired twice or back to back."""
    clock = FakeClock()
    durations = iter(durations_ms)
    polled_at: list[int] = []

    def one_poll(*_args: Any, **_kwargs: Any) -> recording.Poll:
        polled_at.append(clock.ns)
        clock.advance(next(durations) / 1000)
        return recording.Poll(started=clock.epoch_ms())

    class Listed:
        id = "binance"

        def load_markets(self) -> dict[str, Any]:
            return {"BTC/USDT": {}}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recording, "poll", one_poll)
        result = recording.record(
            None,  # type: ignore[arg-type]
            Listed(),
            ["BTC/USDT"],
            every_ms=every_ms,
            count=len(durations_ms),
            clock=clock.clock,
        )

    interval = every_ms * 1_000_000
    assert len(polled_at) == len(durations_ms)
    for k in range(1, len(polled_at)):
        end_before = polled_at[k - 1] + durations_ms[k - 1] * 1_000_000
        next_slot = (polled_at[k - 1] // interval + 1) * interval
        # On the next slot when the poll before ended in time, else at once, never waiting.
        assert polled_at[k] == max(next_slot, end_before)
    assert polled_at[0] == 0
    assert result.missed_slots == polled_at[-1] // interval + 1 - len(polled_at)


def test_every_without_count_records_until_ctrl_c_and_keeps_what_it_stored(
    store: Store,
) -> None:
    clock = FakeClock()
    clock.interrupt_on_sleep = 3
    exchange = Replay("kraken", clock)  # Kraken: each poll is a new moment, a new row

    result = record(store, exchange.client, ["BTC/USDT"], every_ms=1_000, clock=clock.clock)

    assert result.interrupted
    assert len(result.polls) == 3
    assert result.inserted == store.tickers.count() == 3


# --- network errors -------------------------------------------------------------------


def test_a_network_error_is_retried_with_backoff(store: Store) -> None:
    clock = FakeClock()
    exchange = Replay("binance", clock, failures=2)

    done = poll(store, exchange.client, ["BTC/USDT"], clock=clock.clock)

    assert clock.sleeps == [1.0, 2.0]
    assert done.failed is None
    assert done.inserted == 1


def test_a_poll_that_keeps_failing_is_counted_and_the_recording_goes_on(store: Store) -> None:
    clock = FakeClock()
    exchange = Replay("binance", clock, failures=5)  # the first try and all 4 retries

    result = record(
        store, exchange.client, ["BTC/USDT"], every_ms=10_000, count=3, clock=clock.clock
    )

    first, second, third = result.polls
    assert first.failed is not None
    assert first.failed.startswith("NetworkError: ")
    assert clock.sleeps[:4] == [1.0, 2.0, 4.0, 8.0]
    # 15 s of backoff outlasted the 10 s interval: the next poll follows at once.
    assert second.started - FETCHED_AT == 15_000
    assert (second.failed, second.inserted) == (None, 1)
    assert (third.started - FETCHED_AT, third.failed) == (20_000, None)  # back on schedule
    assert (len(result.polls), result.failed_polls, result.inserted) == (3, 1, 1)
    assert not result.all_failed


# --- the command ----------------------------------------------------------------------


@pytest.fixture
def cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, FakeClock, dict[str, Replay]]:
    """The tickers command against replayed exchanges and a fake clock."""
    clock = FakeClock()
    exchanges: dict[str, Replay] = {}

    def replayed(exchange_id: str) -> Any:
        if exchange_id not in exchanges:
            exchanges[exchange_id] = Replay(exchange_id, clock)
        return exchanges[exchange_id].client

    real_connect = fetching.connect
    monkeypatch.setattr(
        fetching,
        "connect",
        lambda exchange_id: (
            replayed(exchange_id) if exchange_id in EXCHANGES else real_connect(exchange_id)
        ),
    )
    monkeypatch.setattr(recording, "SYSTEM_CLOCK", clock.clock)
    return tmp_path / "tradedb.sqlite", clock, exchanges


def run(db: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["tickers", "--db", str(db), *args])


def one_line_error(result: Result) -> str:
    assert result.exit_code == USER_ERROR, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def test_cli_records_and_reports_the_polls(cli: tuple[Path, FakeClock, dict[str, Replay]]) -> None:
    db, clock, _ = cli
    shown = run(
        db, "--exchange", "kraken", "--symbol", "BTC/USDT", "--every", "10s", "--count", "3"
    )
    assert shown.exit_code == 0, shown.stderr
    assert "3 polls, 3 tickers (3 added, 0 updated), 0 failed polls" in shown.stdout
    assert clock.sleeps == [10.0, 10.0]
    with Store.open(db) as store:
        assert [row["timestamp"] - FETCHED_AT for row in stored(store, "kraken")] == [
            0,
            10_000,
            20_000,
        ]


def test_cli_json_summary(cli: tuple[Path, FakeClock, dict[str, Replay]]) -> None:
    db, _, _ = cli
    args = ["--exchange", "binance", "--symbol", "BTC/USDT,ETH/USDT", "--json"]

    first = json.loads(run(db, *args).stdout)
    again = run(db, *args)

    assert again.exit_code == 0
    assert first == {
        "exchange": "binance",
        "symbols": ["BTC/USDT", "ETH/USDT"],
        "polls": 1,
        "failed_polls": 0,
        "received": 1,
        "inserted": 1,
        "updated": 0,
        "missed_slots": 0,
        "interrupted": False,
        "results": [
            {
                "started": FETCHED_AT,
                "received": 1,
                "inserted": 1,
                "updated": 0,
                "skipped": {"ETH/USDT": "the exchange's reply has no ticker for it"},
                "failed": None,
            }
        ],
    }
    summary = json.loads(again.stdout)
    assert (summary["received"], summary["inserted"], summary["updated"]) == (1, 0, 0)


def test_cli_stops_cleanly_on_ctrl_c_with_a_summary(
    cli: tuple[Path, FakeClock, dict[str, Replay]],
) -> None:
    db, clock, _ = cli
    clock.interrupt_on_sleep = 2

    shown = run(db, "--exchange", "kraken", "--symbol", "BTC/USDT", "--every", "1m")

    assert shown.exit_code == 0, shown.stderr
    assert "2 polls, 2 tickers (2 added, 0 updated)" in shown.stdout
    assert "stopped by Ctrl-C" in shown.stdout
    assert "Traceback" not in shown.stdout + shown.stderr


def test_cli_exits_1_when_every_poll_failed(
    cli: tuple[Path, FakeClock, dict[str, Replay]], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, _, exchanges = cli

    def down(*_args: Any, **_kwargs: Any) -> Any:
        raise ccxt.RequestTimeout("timed out")

    fetching.connect("binance").fetch = down  # the markets are known; every request fails

    shown = run(
        db,
        "--exchange",
        "binance",
        "--symbol",
        "BTC/USDT",
        "--every",
        "10s",
        "--count",
        "2",
        "--json",
    )

    assert shown.exit_code == 1
    summary = json.loads(shown.stdout)
    assert (summary["polls"], summary["failed_polls"], summary["inserted"]) == (2, 2, 0)
    assert all(p["failed"].startswith("RequestTimeout: ") for p in summary["results"])
    assert "poll failed: RequestTimeout" in shown.stderr
    assert exchanges["binance"].urls == []  # the replay was bypassed, nothing served


@pytest.mark.parametrize("every", ["10", "ten", "0s", "1.5s", "25h"])
@pytest.mark.fault("bad input")
def test_cli_refuses_a_bad_every_in_one_line_before_opening_anything(
    cli: tuple[Path, FakeClock, dict[str, Replay]], every: str
) -> None:
    db, _, exchanges = cli
    line = one_line_error(
        run(db, "--exchange", "binance", "--symbol", "BTC/USDT", "--every", every)
    )
    assert f"every={every!r}" in line
    assert not db.exists()
    assert exchanges == {}


@pytest.mark.fault("bad input")
def test_cli_refuses_an_unlisted_market_and_writes_nothing(
    cli: tuple[Path, FakeClock, dict[str, Replay]],
) -> None:
    db, _, exchanges = cli
    line = one_line_error(run(db, "--exchange", "binance", "--symbol", "BTC/USDT,DOGE/USDT"))
    assert "symbol='DOGE/USDT': is not listed on binance" in line
    assert exchanges["binance"].urls == []
    with Store.open(db) as store:
        assert store.tickers.count() == 0


@pytest.mark.fault("bad input")
def test_cli_refuses_an_unknown_exchange(cli: tuple[Path, FakeClock, dict[str, Replay]]) -> None:
    db, _, _ = cli
    line = one_line_error(run(db, "--exchange", "nosuchexchange", "--symbol", "BTC/USDT"))
    assert "exchange='nosuchexchange': is not an exchange ccxt knows" in line


@pytest.mark.fault("bad input")
def test_cli_says_so_in_one_line_when_the_exchange_cannot_be_reached(
    cli: tuple[Path, FakeClock, dict[str, Replay]],
) -> None:
    db, clock, _ = cli

    def unreachable(*_args: Any, **_kwargs: Any) -> Any:
        raise ccxt.ExchangeNotAvailable("503 Service Unavailable")

    fetching.connect("kraken").load_markets = unreachable

    shown = run(db, "--exchange", "kraken", "--symbol", "BTC/USDT")

    assert shown.exit_code == 2
    assert shown.stderr.splitlines() == [
        "error: kraken could not be asked for its markets (ExchangeNotAvailable: 503 Service "
        "Unavailable); nothing was written: try again later"
    ]
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]  # retried first
