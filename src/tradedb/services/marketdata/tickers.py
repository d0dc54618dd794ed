"""Recording tickers from exchanges through ccxt.

A poll fetches the tickers of the requested markets (one `fetch_tickers` request where the
exchange has it, else one `fetch_ticker` per market) and writes them in one transaction.
Amounts go in exactly as ccxt parsed them (the client parses into Decimals); the one
derived value, ccxt's change percentage, is rounded half-even to the 4 decimals of its
column. The rest of ccxt's unified ticker (open, high, low, vwap, quote volume, the best
bid's and ask's volumes, the previous close) goes into the extra columns rounded half-even
to their 8 decimals: ccxt computes several of them (Kraken's quote volume is its vwap times
its base volume, with 12 decimals), and a value beyond the spec's own must not cost a
market its ticker. A market whose ticker cannot be stored (no price, a value the column cannot hold)
is reported and left out of that poll, so one odd market does not cost the others their
rows. Network errors are retried with backoff; a poll that still fails writes nothing and
is reported, and the recorder goes on with the next poll.

Polls keep to a fixed schedule, start + k * every, so a recording does not drift by the
time each poll takes. A poll that overruns its interval is followed at once by the next,
and slots passed over entirely are skipped (and counted), not fired back to back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import partial
from typing import Any

from tradedb.errors import ValidationError
from tradedb.models.values import (
    AMOUNT,
    EXACT,
    MAX_EVERY_MS,
    PERCENT,
    check_symbol,
    now_epoch_ms,
)
from tradedb.services.marketdata.download import call_with_retries, load_markets, network_errors
from tradedb.store import Store
from tradedb.store.bulk import ticker_rows

PERCENT_STEP = Decimal(1).scaleb(-PERCENT.scale)
AMOUNT_STEP = Decimal(1).scaleb(-AMOUNT.scale)
# The extra columns of `tickers` and the keys of ccxt's unified ticker they keep.
DETAILS = {
    "open_price": "open",
    "high_price": "high",
    "low_price": "low",
    "vwap": "vwap",
    "quote_volume_24h": "quoteVolume",
    "bid_volume": "bidVolume",
    "ask_volume": "askVolume",
    "previous_close": "previousClose",
}


@dataclass(frozen=True)
class Clock:
    """Where the recorder reads the time and waits; tests give it a fake one."""

    # Nanoseconds that only ever grow, for the schedule: wall-clock corrections must not
    # stretch or squeeze an interval, and integers keep slot arithmetic exact.
    monotonic_ns: Callable[[], int] = time.monotonic_ns
    sleep: Callable[[float], None] = time.sleep
    # Epoch milliseconds, for tickers the exchange sends without a time of their own.
    epoch_ms: Callable[[], int] = now_epoch_ms


SYSTEM_CLOCK = Clock()


@dataclass(frozen=True)
class Poll:
    """What one poll did."""

    started: int  # epoch ms
    received: int = 0
    inserted: int = 0
    updated: int = 0
    # Markets this poll has no row for, with the reason; the other markets were stored.
    skipped: tuple[tuple[str, str], ...] = ()
    # Why nothing was stored (the exchange still failed after retries, or no market gave
    # a ticker that could be stored).
    failed: str | None = None


@dataclass(frozen=True)
class Recording:
    """What a recording did, poll by poll."""

    exchange: str
    symbols: tuple[str, ...]
    polls: tuple[Poll, ...]
    # Slots passed over entirely because a poll (with its retries) outlasted its interval.
    missed_slots: int = 0
    # Stopped by Ctrl-C before the requested number of polls.
    interrupted: bool = False

    @property
    def received(self) -> int:
        return sum(p.received for p in self.polls)

    @property
    def inserted(self) -> int:
        return sum(p.inserted for p in self.polls)

    @property
    def updated(self) -> int:
        return sum(p.updated for p in self.polls)

    @property
    def failed_polls(self) -> int:
        return sum(1 for p in self.polls if p.failed is not None)

    @property
    def all_failed(self) -> bool:
        return bool(self.polls) and self.failed_polls == len(self.polls)


def ticker_row(ticker: Mapping[str, Any], *, fetched_at: int) -> dict[str, object]:
    """A ccxt unified ticker as a row of `tickers`, its amounts exactly as ccxt gave them.

    Some exchanges (Kraken) send no time with their tickers; `fetched_at`, the epoch ms at
    which the reply arrived, stands in for it.
    """
    last = ticker.get("last")
    if last is None:
        last = ticker.get("close")
    if last is None:
        raise ValidationError("last", None, "the exchange gave neither a last nor a close price")
    timestamp = ticker.get("timestamp")
    return {
        "symbol": ticker.get("symbol"),
        "bid_price": ticker.get("bid"),
        "ask_price": ticker.get("ask"),
        "last_price": last,
        "volume_24h": ticker.get("baseVolume"),
        "price_change_24h": ticker.get("change"),
        "price_change_percent_24h": rounded_percent(ticker.get("percentage")),
        "timestamp": fetched_at if timestamp is None else timestamp,
        **{column: rounded(ticker.get(key), key, AMOUNT_STEP) for column, key in DETAILS.items()},
    }


def rounded_percent(value: object) -> Decimal | None:
    """ccxt's change percentage, half-even to 4 decimals. ccxt often derives it (change /
    open x 100, Kraken's has 16 decimals), so unlike the amounts it is a derived value,
    and the column holds 4."""
    return rounded(value, "percentage", PERCENT_STEP)


def rounded(value: object, field: str, step: Decimal) -> Decimal | None:
    """A number of ccxt's ticker half-even to `step`; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str | float):
        raise ValidationError(field, value, "must be a number")
    try:
        # A float means its shortest repr, as everywhere in tradedb.
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ValidationError(field, value, "is not a decimal number") from None
    if not number.is_finite():
        raise ValidationError(field, value, "NaN and infinity are not numbers")
    return number.quantize(step, rounding=ROUND_HALF_EVEN, context=EXACT)


def check_markets(client: Any, symbols: Sequence[str], sleep: Callable[[float], None]) -> None:
    """Refuse a market the exchange does not list, before any ticker is fetched or
    anything written."""
    markets = load_markets(client, sleep)
    for symbol in symbols:
        if symbol not in markets:
            raise ValidationError("symbol", symbol, f"is not listed on {client.id}")


def poll(store: Store, client: Any, symbols: Sequence[str], *, clock: Clock | None = None) -> Poll:
    """Fetch the tickers of `symbols` once and store them in one transaction."""
    clock = clock or SYSTEM_CLOCK
    started = clock.epoch_ms()
    try:
        fetched, skipped = _fetch(client, symbols, clock)
    except exchange_errors() as exc:
        return Poll(started, failed=_describe(exc))
    rows = []
    for symbol in symbols:
        if symbol in skipped:
            continue
        if symbol not in fetched:
            skipped[symbol] = "the exchange's reply has no ticker for it"
            continue
        ticker, arrived = fetched[symbol]
        try:
            row = ticker_row({**ticker, "symbol": symbol}, fetched_at=arrived)
            # Checked one by one so that a bad market is left out rather than failing the
            # batch; the write checks the whole batch again.
            ticker_rows([row], exchange=client.id)
        except ValidationError as exc:
            skipped[symbol] = str(exc).removeprefix("rows[0].")
            continue
        rows.append(row)
    left_out = tuple(skipped.items())
    if not rows:
        return Poll(started, skipped=left_out, failed="no market gave a ticker that can be stored")
    written = store.write_tickers(rows, exchange=client.id)
    return Poll(started, written.received, written.inserted, written.updated, left_out)


def _fetch(
    client: Any, symbols: Sequence[str], clock: Clock
) -> tuple[dict[str, tuple[Mapping[str, Any], int]], dict[str, str]]:
    """The tickers by symbol, each with the epoch ms its reply arrived, and the markets
    the exchange refused. A network failure (after retries) fails the whole poll."""
    if (getattr(client, "has", None) or {}).get("fetchTickers"):
        tickers = call_with_retries(partial(client.fetch_tickers, list(symbols)), clock.sleep)
        arrived = clock.epoch_ms()
        return {s: (t, arrived) for s, t in tickers.items() if s in symbols}, {}
    fetched: dict[str, tuple[Mapping[str, Any], int]] = {}
    refused: dict[str, str] = {}
    for symbol in symbols:
        try:
            ticker = call_with_retries(partial(client.fetch_ticker, symbol), clock.sleep)
        except network_errors():
            # Still unreachable after the retries: waiting them out again for each market
            # left would only delay the next poll.
            raise
        except exchange_errors() as exc:
            refused[symbol] = _describe(exc)
            continue
        fetched[symbol] = (ticker, clock.epoch_ms())
    return fetched, refused


def record(
    store: Store,
    client: Any,
    symbols: Sequence[str],
    *,
    every_ms: int | None = None,
    count: int | None = None,
    clock: Clock | None = None,
    on_poll: Callable[[Poll], None] | None = None,
) -> Recording:
    """Poll the tickers of `symbols` `count` times, every `every_ms` milliseconds.

    Without `every_ms` there is one poll; with it and without `count` the recording runs
    until interrupted (Ctrl-C), which ends it cleanly with what it recorded so far.
    """
    clock = clock or SYSTEM_CLOCK
    markets = tuple(dict.fromkeys(check_symbol(symbol) for symbol in symbols))
    if not markets:
        raise ValidationError("symbols", list(symbols), "name at least one market")
    if every_ms is not None and (isinstance(every_ms, bool) or not 0 < every_ms <= MAX_EVERY_MS):
        raise ValidationError("every", every_ms, "must be from 1 ms to 24 h")
    if count is not None and (isinstance(count, bool) or count < 1):
        raise ValidationError("count", count, "must be at least 1")
    count = planned_polls(every_ms, count)
    if count is not None and count > 1 and every_ms is None:
        raise ValidationError("count", count, "more than one poll needs an interval (every)")

    polls: list[Poll] = []
    missed = 0
    interrupted = False
    slot = 0
    try:
        check_markets(client, markets, clock.sleep)
        start = clock.monotonic_ns()
        interval = (every_ms or 0) * 1_000_000
        while count is None or len(polls) < count:
            if polls:
                latest_due = (clock.monotonic_ns() - start) // interval
                if latest_due > slot:
                    # Late: poll at once, and skip the slots passed over entirely rather
                    # than firing them back to back.
                    missed += latest_due - slot - 1
                    slot = latest_due
                else:
                    slot += 1
                    clock.sleep((start + slot * interval - clock.monotonic_ns()) / 1e9)
            done = poll(store, client, markets, clock=clock)
            polls.append(done)
            if on_poll is not None:
                on_poll(done)
    except KeyboardInterrupt:
        # A recorder is stopped with Ctrl-C: what it stored so far is the result. A poll
        # cut short wrote all of its batch or none of it.
        interrupted = True
    return Recording(client.id, markets, tuple(polls), missed, interrupted)


def planned_polls(every_ms: int | None, count: int | None) -> int | None:
    """How many polls a recording makes: `count`, else one, or with an interval as many
    as it gets until interrupted (None)."""
    if count is None and every_ms is None:
        return 1
    return count


def exchange_errors() -> tuple[type[BaseException], ...]:
    """Every error ccxt raises on purpose (network errors and the exchange's refusals)."""
    import ccxt

    return (ccxt.BaseError,)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
