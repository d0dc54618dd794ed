"""Crash safety of the ledger: kill a process recording fills, again and again, and check.

Run:  .venv/bin/python benchmarks/crash_fills.py [--kills N] [--seed S]
          [--db PATH_OR_URL | --engine sqlite|postgresql] [--write MD]

A child process (this script with --child) opens the database with `tradedb.open` and
records fills through `db.ledger` as fast as it can: buys and sells of a few strategies on
shared wallets, partial fills, new orders when one fills, market orders, fees in the quote,
base or a third currency, cancels, deposits, withdrawals and re-delivered fills. It prints
`F <exchange_trade_id>` only after `record_fill` returned, so every such id is a fill the
ledger acknowledged; before each call it prints `P <exchange_trade_id>`, so the fill in
flight at a kill is known too.

The parent starts the child, waits for its READY line, kills it with SIGKILL 20-300 ms
later (most kills land inside a transaction or its commit), reopens the database and checks:

- `db.ledger.audit() == []` (wallets = journal, totals = transfers + trades - fees,
  orders = their fills, locks = live orders, positions = their trades, integrity, foreign
  keys);
- every acknowledged fill is in `trades`;
- no other trade is there, except the one fill in flight at a kill, which may have committed
  just before the kill (then its ack was never printed) or not at all.

Then it starts a new child on the same database, which resumes with the orders still live.
The exit status is non-zero on any failure. With --write, the summary replaces this
script's section for the engine in that markdown file and leaves the others alone
(benchmarks/results_file.py).

`--db` is a SQLite file or a `postgresql://` URL. Without it, `--engine sqlite` (the
default) uses a file in a temporary folder, and `--engine postgresql` starts a throwaway
server for the run (tests/pg_server.py, fsync on) and removes it at the end.

SIGKILL ends the process, not the machine: what the kernel was given survives it, so this
checks atomicity and recovery of interrupted transactions, not synchronous=FULL (or the
server's fsync) against a power loss. On PostgreSQL the kill ends the client, not the
server: the server rolls back the killed session's open transaction when it sees the
socket close, but a COMMIT already sent is still carried out. So before each check the
parent waits until the killed child's sessions have left the server
(pg_stat_activity), and only then reads whether the fill in flight committed.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

import tradedb

EXCHANGE = "binance"
# (strategy, symbol): two strategies share BTC/USDT, and all share the USDT wallet.
STRATEGIES = (("crash-a", "BTC/USDT"), ("crash-b", "ETH/USDT"), ("crash-c", "BTC/USDT"))
REFERENCE_PRICE = {"BTC/USDT": Decimal("100.00"), "ETH/USDT": Decimal("20.00")}
OPENING_FUNDS = {"USDT": "10000000", "BTC": "100000", "ETH": "500000", "BNB": "10000"}
THIRD_FEE_ASSET = "BNB"
LIVE = ["pending", "open"]
CENT = Decimal("0.01")
LOT = Decimal("0.0001")
UNIT = Decimal("0.00000001")
READY = "READY"
READY_TIMEOUT_S = 120.0
KILL_DELAY_S = (0.020, 0.300)
ID_CHUNK = 500
ENGINES = ("sqlite", "postgresql")
# The child finds its database here rather than in its argv, where `ps` would show a
# URL's password to every user of the machine.
TARGET_VARIABLE = "TRADEDB_CRASH_TARGET"
# A killed client's server sessions end as soon as the server reads the closed socket;
# one still there after this long is reported, not waited for.
SESSION_END_TIMEOUT_S = 30.0


# --- the child: records fills until it is killed -----------------------------------------


def _say(line: str) -> None:
    # One write(2) of a short line to a pipe is atomic: a kill never leaves half of it.
    os.write(1, f"{line}\n".encode())


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Child:
    """One life of the trading process: resumes the ledger it finds, then trades."""

    def __init__(self, target: str, seed: int, tag: str) -> None:
        self.db = tradedb.open(target)
        self.ledger = self.db.ledger
        self.rng = random.Random(seed)
        self.tag = tag
        self.serial = 0
        self.live: dict[str, list[tradedb.Order]] = {}
        self.acked: list[dict[str, Any]] = []  # recent acknowledged fills, for re-delivery

    def next_id(self, kind: str) -> str:
        self.serial += 1
        return f"{self.tag}-{kind}{self.serial}"

    def resume(self) -> None:
        """Fund the wallets on first start; pick up the orders a killed life left live."""
        for asset, amount in OPENING_FUNDS.items():
            # A reference makes the opening deposit idempotent across lives.
            self.ledger.deposit(
                exchange=EXCHANGE,
                asset=asset,
                amount=amount,
                timestamp=_now_ms(),
                reference=f"opening-{asset}",
            )
        for strategy, _symbol in STRATEGIES:
            page = self.db.tables.crypto_orders.list(
                {"exchange": EXCHANGE, "strategy": strategy, "status": LIVE}, limit=1000
            )
            self.live[strategy] = list(page.items)
        # The newest fills of earlier lives: the exchange may well send them again.
        newest = self.db.tables.trades.list({"exchange": EXCHANGE}, newest_first=True, limit=20)
        for trade in newest.items:
            assert trade.order_id is not None
            assert trade.exchange_trade_id is not None
            self.acked.append(
                {
                    "exchange": EXCHANGE,
                    "order_id": trade.order_id,
                    "exchange_trade_id": trade.exchange_trade_id,
                    "amount": trade.amount,
                    "price": trade.price,
                    "fee": trade.fee or Decimal(0),
                    "fee_currency": trade.fee_currency,
                    "timestamp": trade.timestamp,
                }
            )

    def run(self) -> None:
        self.resume()
        _say(READY)
        rng = self.rng
        while True:
            strategy, symbol = rng.choice(STRATEGIES)
            orders = self.live[strategy]
            roll = rng.random()
            if not orders or (len(orders) < 3 and roll < 0.12):
                self.place(strategy, symbol)
            elif roll < 0.15:
                self.cancel(strategy)
            elif roll < 0.17:
                self.acknowledge(strategy)
            elif roll < 0.19 and self.acked:
                self.redeliver()
            elif roll < 0.20:
                self.transfer()
            else:
                self.fill(strategy)

    def place(self, strategy: str, symbol: str) -> None:
        rng = self.rng
        side = rng.choice(("buy", "sell"))
        market = rng.random() < 0.15
        amount = Decimal(rng.randint(1000, 20000)) * LOT
        reference = REFERENCE_PRICE[symbol]
        price = None if market else _cents(reference * Decimal(rng.uniform(0.98, 1.02)))
        kwargs: dict[str, Any] = {
            "exchange": EXCHANGE,
            "order_id": self.next_id("o"),
            "symbol": symbol,
            "side": side,
            "order_type": "market" if market else "limit",
            "amount": amount,
            "price": price,
            "strategy": strategy,
            "status": "pending" if rng.random() < 0.1 else "open",
        }
        try:
            order = self.ledger.place_order(**kwargs, timestamp=_now_ms())
        except tradedb.InsufficientFunds:
            # The random walk ran a wallet low: top it up (a deposit), then place again.
            base, quote = symbol.split("/")
            self.deposit(base if side == "sell" else quote, Decimal(1_000_000))
            order = self.ledger.place_order(**kwargs, timestamp=_now_ms())
        self.live[strategy].append(order)

    def cancel(self, strategy: str) -> None:
        orders = self.live[strategy]
        order = orders.pop(self.rng.randrange(len(orders)))
        self.ledger.cancel_order(EXCHANGE, order.order_id, timestamp=_now_ms())

    def acknowledge(self, strategy: str) -> None:
        orders = self.live[strategy]
        for index, order in enumerate(orders):
            if order.status == "pending":
                orders[index] = self.ledger.open_order(EXCHANGE, order.order_id)
                return

    def transfer(self) -> None:
        asset = self.rng.choice(("USDT", "BTC", "ETH", "BNB"))
        if self.rng.random() < 0.7:
            self.deposit(asset, Decimal(self.rng.randint(1, 1000)))
        else:
            self.ledger.withdraw(
                exchange=EXCHANGE,
                asset=asset,
                amount=Decimal(self.rng.randint(1, 100)) * CENT,
                timestamp=_now_ms(),
                reference=self.next_id("w"),
            )

    def deposit(self, asset: str, amount: Decimal) -> None:
        self.ledger.deposit(
            exchange=EXCHANGE,
            asset=asset,
            amount=amount,
            timestamp=_now_ms(),
            reference=self.next_id("d"),
        )

    def fill(self, strategy: str) -> None:
        rng = self.rng
        orders = self.live[strategy]
        index = rng.randrange(len(orders))
        order = orders[index]
        remaining = order.remaining_amount
        assert remaining is not None
        assert remaining > 0, order
        quantity = remaining
        if rng.random() < 0.65:
            part = (remaining * Decimal(rng.uniform(0.1, 0.9))).quantize(LOT, ROUND_DOWN)
            quantity = part if part > 0 else remaining
        reference = REFERENCE_PRICE[order.symbol]
        slip = Decimal(rng.randint(0, 50)) * CENT
        if order.price is None:
            price = _cents(reference * Decimal(rng.uniform(0.98, 1.02)))
        elif order.side == "buy":
            price = max(CENT, order.price - slip)  # a limit buy fills at or below its price
        else:
            price = order.price + slip
        base, quote = order.symbol.split("/")
        which = rng.random()
        if which < 0.78:
            fee, fee_currency = _units(quantity * price * Decimal("0.001")), quote
        elif which < 0.90:
            fee, fee_currency = _units(quantity * Decimal("0.001")), base
        elif which < 0.97:
            fee, fee_currency = Decimal(rng.randint(1, 100)) * UNIT * 1000, THIRD_FEE_ASSET
        else:
            fee, fee_currency = Decimal(0), None
        kwargs: dict[str, Any] = {
            "exchange": EXCHANGE,
            "order_id": order.order_id,
            "exchange_trade_id": self.next_id("f"),
            "amount": quantity,
            "price": price,
            "fee": fee,
            "fee_currency": fee_currency,
            "timestamp": _now_ms(),
        }
        _say(f"P {kwargs['exchange_trade_id']}")
        result = self.ledger.record_fill(**kwargs)
        _say(f"F {kwargs['exchange_trade_id']}")
        if result.duplicate:
            raise AssertionError(f"a new fill came back as a duplicate: {kwargs}")
        self.acked = [*self.acked[-49:], kwargs]
        if result.order.status == "filled":
            orders.pop(index)
        else:
            orders[index] = result.order

    def redeliver(self) -> None:
        """The exchange sends an acknowledged fill again: nothing may change."""
        kwargs = self.rng.choice(self.acked)
        result = self.ledger.record_fill(**kwargs)
        if not result.duplicate:
            raise AssertionError(f"a re-delivered fill was recorded again: {kwargs}")


def _cents(value: Decimal) -> Decimal:
    return max(CENT, value.quantize(CENT))


def _units(value: Decimal) -> Decimal:
    return value.quantize(UNIT, ROUND_DOWN)


def child_main(seed: int, tag: str) -> None:
    Child(os.environ[TARGET_VARIABLE], seed, tag).run()


# --- the parent: kills, checks, counts ---------------------------------------------------


@dataclass
class Summary:
    kills: int = 0
    fills_acknowledged: int = 0
    fills_found: int = 0
    missing_fills: int = 0
    audit_failures: int = 0
    # Trades that are neither acknowledged nor the fill in flight at a kill.
    unexplained_trades: int = 0
    child_errors: int = 0
    # The fill in flight at a kill: committed before the kill (ack lost) or not at all.
    in_flight_committed: int = 0
    in_flight_not_committed: int = 0
    trades_in_db: int = 0
    elapsed_s: float = 0.0
    # PostgreSQL only: how long each killed child's sessions stayed on the server after
    # it died, and how many outlived SESSION_END_TIMEOUT_S (the next child's ledger
    # writes would wait for them, as they hold the ledger's advisory lock).
    session_end_waits_s: list[float] = field(default_factory=list)
    lingering_sessions: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.missing_fills == 0
            and self.audit_failures == 0
            and self.unexplained_trades == 0
            and self.child_errors == 0
            and self.lingering_sessions == 0
            and self.fills_acknowledged > 0
            and self.fills_found == self.fills_acknowledged
        )

    def lines(self) -> list[str]:
        lines = [
            f"kills:                        {self.kills}",
            f"fills acknowledged:           {self.fills_acknowledged}",
            f"acknowledged fills found:     {self.fills_found}",
            f"missing acknowledged fills:   {self.missing_fills}",
            f"audit failures:               {self.audit_failures}",
            f"unexplained trades:           {self.unexplained_trades}",
            f"child errors:                 {self.child_errors}",
            f"fill in flight at kill, committed (ack lost): {self.in_flight_committed}",
            f"fill in flight at kill, not committed:        {self.in_flight_not_committed}",
        ]
        if self.session_end_waits_s:
            waits_ms = sorted(wait * 1000 for wait in self.session_end_waits_s)
            lines += [
                "killed child's sessions gone from the server after its exit: "
                f"median {statistics.median(waits_ms):.1f} ms, max {waits_ms[-1]:.1f} ms",
                f"killed child's sessions still there after {SESSION_END_TIMEOUT_S:.0f} s: "
                f"{self.lingering_sessions}",
            ]
        return [
            *lines,
            f"trades in the database:       {self.trades_in_db}",
            f"elapsed:                      {self.elapsed_s:.1f} s",
            f"result:                       {'OK' if self.ok else 'FAILED'}",
        ]


@dataclass
class Life:
    """What one child printed before it was killed."""

    acked: list[str]
    in_flight: str | None
    exited_by_itself: bool
    stderr: str


def engine_of(target: str) -> str:
    """'postgresql' for a postgresql:// (or postgres://, postgresql+driver://) URL, else
    'sqlite': a path or a sqlite:/// URL."""
    if "://" not in target:
        return "sqlite"
    scheme = urlsplit(target).scheme.split("+")[0]
    return "postgresql" if scheme in ("postgresql", "postgres") else "sqlite"


def _libpq_url(target: str, application_name: str) -> str:
    """The URL with this session name, in the form libpq reads (no +driver)."""
    url = make_url(target).set(drivername="postgresql")
    url = url.update_query_dict({"application_name": application_name})
    return url.render_as_string(hide_password=False)


def _without_password(argument: str) -> str:
    """A command-line argument fit for the results file: a URL's password masked."""
    option, equals, value = "", "", argument
    if argument.startswith("--"):
        option, equals, value = argument.partition("=")  # --db=URL; the URL may hold "="
    if "://" not in value:
        return argument
    return option + equals + make_url(value).render_as_string(hide_password=True)


class ServerSessions:
    """PostgreSQL: whether a killed child's sessions are still on the server. A COMMIT the
    child sent just before it died is carried out after its death, so whether the fill in
    flight committed can only be read once its sessions are gone. Watched from a connection
    of the parent's own: the public API has no view of other sessions."""

    def __init__(self, target: str) -> None:
        import psycopg  # only PostgreSQL runs need the driver

        self._conn = psycopg.connect(_libpq_url(target, "crash-fills-parent"), autocommit=True)

    def wait_until_gone(self, application_name: str) -> float | None:
        """Seconds until no session of that name is left, or None if one outlived
        SESSION_END_TIMEOUT_S."""
        started = time.perf_counter()
        pause = 0.001
        while True:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (application_name,),
            ).fetchone()
            waited = time.perf_counter() - started
            if row is not None and row[0] == 0:
                return waited
            if waited > SESSION_END_TIMEOUT_S:
                return None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def close(self) -> None:
        self._conn.close()


def _spawn(target: str, seed: int, tag: str, errors: Path, delay: float) -> Life:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--seed",
        str(seed),
        "--tag",
        tag,
    ]
    environment = {**os.environ, TARGET_VARIABLE: target}
    lines: list[str] = []
    ready = threading.Event()
    with errors.open("w+", encoding="utf-8") as stderr:
        # Buffered reads: a line cut short by the kill still comes back without its "\n".
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=environment)

        def read() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode()
                if not line.endswith("\n"):
                    break  # cut short by the kill: never acknowledged
                lines.append(line[:-1])
                if line == f"{READY}\n":
                    ready.set()
            ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        if not ready.wait(READY_TIMEOUT_S):
            proc.kill()
        else:
            time.sleep(delay)
        exited = proc.poll() is not None
        if not exited:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join()
        assert proc.stdout is not None
        proc.stdout.close()
        exited = exited or READY not in lines
        stderr.seek(0)
        text = stderr.read()
    acked: list[str] = []
    in_flight: str | None = None
    for line in lines:
        kind, _, trade_id = line.partition(" ")
        if kind == "P":
            in_flight = trade_id
        elif kind == "F":
            acked.append(trade_id)
            in_flight = None
    return Life(acked, in_flight, exited, text)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _found(db: tradedb.TradeDB, trade_ids: list[str]) -> set[str]:
    """Which of these fills the trades table holds."""
    found: set[str] = set()
    for chunk in _chunks(trade_ids, ID_CHUNK):
        page = db.tables.trades.list(
            {"exchange": EXCHANGE, "exchange_trade_id": chunk}, limit=len(chunk) + 1
        )
        found.update(trade.exchange_trade_id for trade in page.items if trade.exchange_trade_id)
    return found


def _check(db: tradedb.TradeDB, kill: int, life: Life, fresh: list[str], summary: Summary) -> int:
    """Audit the database after a kill and look for the fills this life acknowledged.
    Returns 1 if the fill in flight at the kill was committed, else 0."""
    problems = db.ledger.audit()
    if problems:
        summary.audit_failures += 1
        summary.problems += [f"kill {kill}: audit: {p}" for p in problems[:10]]
    missing = sorted(set(fresh) - _found(db, fresh))
    if missing:
        summary.missing_fills += len(missing)
        summary.problems.append(f"kill {kill}: acknowledged fills missing: {missing}")
    if life.in_flight is None:
        return 0
    if _found(db, [life.in_flight]):
        summary.in_flight_committed += 1
        return 1
    summary.in_flight_not_committed += 1
    return 0


def _count_life(kill: int, life: Life, summary: Summary) -> None:
    """A kill, or a child error if the child died before the kill or raised."""
    if life.exited_by_itself:
        summary.child_errors += 1
        tail = life.stderr.strip().splitlines()[-5:]
        summary.problems.append(f"kill {kill}: child exited by itself: {tail}")
        return
    summary.kills += 1
    if "Traceback" in life.stderr:
        # It raised, and the kill came while it was still on its way out.
        summary.child_errors += 1
        tail = life.stderr.strip().splitlines()[-5:]
        summary.problems.append(f"kill {kill}: child raised: {tail}")


def _wait_for_sessions(
    sessions: ServerSessions, application_name: str, kill: int, summary: Summary
) -> None:
    waited = sessions.wait_until_gone(application_name)
    if waited is None:
        summary.lingering_sessions += 1
        summary.problems.append(
            f"kill {kill}: the child's sessions were still on the server "
            f"{SESSION_END_TIMEOUT_S:.0f} s after it died"
        )
    else:
        summary.session_end_waits_s.append(waited)


def run(
    target: str | os.PathLike[str],
    kills: int = 200,
    seed: int = 0,
    *,
    progress: Callable[[str], None] | None = None,
) -> Summary:
    """Kill a fill-recording child `kills` times on `target` (a SQLite path or a
    PostgreSQL URL), checking after each kill."""
    target = os.fspath(target)
    started = time.perf_counter()
    delays = random.Random(seed)
    session = f"{_now_ms():x}"
    summary = Summary()
    with tradedb.open(target) as db:
        baseline = db.tables.trades.count()
    acknowledged: set[str] = set()
    committed_in_flight = 0
    sessions = ServerSessions(target) if engine_of(target) == "postgresql" else None
    try:
        # Beside the database would not do: a URL has no folder.
        with tempfile.TemporaryDirectory(prefix="tradedb-crash-") as folder:
            errors = Path(folder) / "child-stderr.txt"
            for kill in range(kills):
                delay = delays.uniform(*KILL_DELAY_S)
                tag = f"{session}k{kill}"
                # On PostgreSQL the child's sessions carry its tag, for ServerSessions.
                session_name = f"crash-child-{tag}"
                child_target = target if sessions is None else _libpq_url(target, session_name)
                life = _spawn(child_target, seed * 1_000_003 + kill, tag, errors, delay)
                _count_life(kill, life, summary)
                if sessions is not None:
                    _wait_for_sessions(sessions, session_name, kill, summary)
                fresh = [trade_id for trade_id in life.acked if trade_id not in acknowledged]
                acknowledged.update(fresh)
                with tradedb.open(target) as db:
                    committed_in_flight += _check(db, kill, life, fresh, summary)
                    count = db.tables.trades.count()
                expected = baseline + len(acknowledged) + committed_in_flight
                if count != expected:
                    summary.unexplained_trades += abs(count - expected)
                    summary.problems.append(
                        f"kill {kill}: {count} trades, expected {expected} (acknowledged "
                        "plus fills in flight that committed)"
                    )
                    baseline += count - expected  # count each surprise once, not at every kill
                if progress and (kill + 1) % 20 == 0:
                    progress(
                        f"  {kill + 1}/{kills} kills, {len(acknowledged)} fills acknowledged, "
                        f"{len(summary.problems)} problems"
                    )
        # Once more at the end, every acknowledged fill of the whole run.
        with tradedb.open(target) as db:
            every = sorted(acknowledged)
            summary.fills_found = len(_found(db, every))
            summary.trades_in_db = db.tables.trades.count()
            if db.ledger.audit():
                summary.audit_failures += 1
                summary.problems.append("final audit failed")
    finally:
        if sessions is not None:
            sessions.close()
    summary.fills_acknowledged = len(acknowledged)
    summary.missing_fills = max(summary.missing_fills, len(acknowledged) - summary.fills_found)
    summary.elapsed_s = time.perf_counter() - started
    return summary


# --- where the run happens ---------------------------------------------------------------

LOCAL_DISK = "Database on local disk."
THROWAWAY_SERVER = "a throwaway cluster on loopback started by tests/pg_server.py"


def describe_database(target: str, where: str = "") -> str:
    """The setup sentence of the results: for PostgreSQL, the server's version and the
    settings a commit's durability rests on, read from the server itself."""
    if engine_of(target) == "sqlite":
        return LOCAL_DISK
    import psycopg

    with psycopg.connect(_libpq_url(target, "crash-fills-parent"), autocommit=True) as conn:
        settings = {}
        for name in ("server_version", "fsync", "synchronous_commit", "full_page_writes"):
            row = conn.execute(f"SHOW {name}").fetchone()
            settings[name] = str(row[0]) if row else "?"
    where = where or f"the server at {make_url(target).host or 'the local socket'}"
    return (
        f"PostgreSQL {settings['server_version']}, {where}; fsync={settings['fsync']}, "
        f"synchronous_commit={settings['synchronous_commit']}, "
        f"full_page_writes={settings['full_page_writes']}."
    )


@contextmanager
def database_for_run(db: str | None, engine: str, folder: Path | None) -> Iterator[tuple[str, str]]:
    """The database to kill children on, and the setup sentence for the results."""
    if db is not None:
        yield db, describe_database(db)
    elif engine == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tradedb-crash-", dir=folder) as temporary:
            yield str(Path(temporary) / "crash.sqlite"), LOCAL_DISK
    else:
        sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
        import pg_server

        # fsync on: a commit the server acknowledged is on disk, as in production.
        server = pg_server.start_server(fsync=True)
        try:
            target = server.url(server.create_database())
            yield target, describe_database(target, THROWAWAY_SERVER)
        finally:
            pg_server.remove(server)


# --- results file ------------------------------------------------------------------------

SECTIONS = {
    "sqlite": "## Crash safety (benchmarks/crash_fills.py)",
    "postgresql": "## Crash safety on PostgreSQL (benchmarks/crash_fills.py --engine postgresql)",
}
WORKLOAD = (
    "A child records fills (3 strategies, 2 symbols, shared wallets; partial fills, market "
    "orders, fees in quote, base and BNB, cancels, deposits, withdrawals, re-deliveries) "
)
METHOD = {
    "sqlite": (
        "and is killed with SIGKILL 20-300 ms after it is ready; after each kill the parent "
        "reopens the database and checks it. SIGKILL tests atomicity and recovery of "
        "interrupted transactions, not the fsync against a power loss."
    ),
    "postgresql": (
        "and is killed with SIGKILL 20-300 ms after it is ready. The server stays up: it "
        "rolls back the killed session's open transaction, and carries out a COMMIT the "
        "child sent before it died. So after each kill the parent waits until the child's "
        "sessions have left the server (pg_stat_activity), then reopens the database and "
        "checks it. SIGKILL tests atomicity and recovery of interrupted transactions, not "
        "the server's fsync against a power loss."
    ),
}


def results_markdown(command: str, summary: Summary, *, engine: str, setup: str) -> str:
    verdict = (
        "Every kill left a database that passed the audit, and every acknowledged fill was "
        "there, with no trade that was neither acknowledged nor in flight."
        if summary.ok
        else "FAILED: see the problems listed below."
    )
    return checked_markdown(command, setup, WORKLOAD + METHOD[engine], summary, verdict)


def checked_markdown(command: str, setup: str, method: str, summary: Any, verdict: str) -> str:
    """A crash run's section of RESULTS.md: the command, the method, the summary's lines,
    the verdict and the first problems."""
    # Imported here: tests load this file by path, without benchmarks/ on sys.path.
    from results_file import preamble

    lines = [
        # A check of correctness, not of speed: no word on the machine's noise.
        *preamble(command, setup=setup, compared=None),
        method,
        "",
        "```",
        *summary.lines(),
        "```",
        "",
        verdict,
    ]
    if summary.problems:
        lines += ["", "```", *summary.problems[:30], "```"]
    return "\n".join(lines) + "\n"


def add_run_options(parser: argparse.ArgumentParser, db_help: str) -> None:
    """The options every crash run takes: kills, seed, the database and the results file."""
    parser.add_argument("--kills", type=int, default=200, help="how many times to kill")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", default=None, help=db_help)
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="without --db: a temporary SQLite file (default), or a database on a "
        "throwaway PostgreSQL server started for the run",
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="folder for the temporary SQLite database"
    )
    parser.add_argument("--write", type=Path, default=None, help="record the summary here (.md)")


def chosen_engine(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    engine = engine_of(args.db) if args.db is not None else (args.engine or "sqlite")
    if args.engine is not None and args.engine != engine:
        parser.error(f"--engine {args.engine} does not match --db, a {engine} database")
    return engine


def print_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def report(
    summary: Any,
    args: argparse.Namespace,
    script: str,
    section: str,
    markdown: Callable[[str], str],
) -> None:
    """Print the summary and its problems; with --write, replace `section` of that file
    with `markdown(command)`, the command shown without a password. Exits 1 on failure."""
    print("\n".join(summary.lines()))
    for problem in summary.problems[:30]:
        print(f"problem: {problem}")
    if args.write:
        arguments = [_without_password(argument) for argument in sys.argv[1:]]
        command = " ".join([".venv/bin/python", f"benchmarks/{script}", *arguments])
        # Imported here: tests load this file by path, without benchmarks/ on sys.path.
        from results_file import replace_section

        replace_section(args.write, section, markdown(command))
        print(f"\nwritten to {args.write}", file=sys.stderr)
    sys.exit(0 if summary.ok else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_options(
        parser, "a SQLite file or a postgresql:// URL (default: a new one, see --engine)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="x", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        child_main(args.seed, args.tag)
        return
    engine = chosen_engine(parser, args)
    with database_for_run(args.db, engine, args.dir) as (target, setup):
        summary = run(target, args.kills, args.seed, progress=print_progress)
    report(
        summary,
        args,
        "crash_fills.py",
        SECTIONS[engine],
        lambda command: results_markdown(command, summary, engine=engine, setup=setup),
    )


if __name__ == "__main__":
    main()
