"""Crash safety of account sync: kill a process syncing a live account, again and again,
then sync to the end and check that everything was recorded once.

Run:  .venv/bin/python benchmarks/crash_sync.py [--kills N] [--seed S]
          [--db PATH_OR_URL | --engine sqlite|postgresql] [--write MD]

The long run of tests/test_sync_crash.py, made of that test's own parts (imported, so the
two cannot drift apart): its simulated Binance account (`account`, the same history in
every process, tests/sim_binance.py behind ccxt's real parsing), its opening of the ledger
at the account's balances, and its child (`CHILD`, which runs `killed_sync`: `db.accounts.sync`
over and over until its own timer sends it SIGKILL).

Child number k syncs the account's first ORDERS_PER_KILL * (k + 1) orders (8 fills each,
deposits and withdrawals between them), so each child finds history that the database
does not hold yet, as well as whatever the last child left undone, and a kill has work to
land in. After each kill the parent reopens the database, audits it and counts its trades:
a kill "landed mid-work" if the database then held fewer trades than the child's part of
the account. At the end one sync runs to completion, and the ledger must hold exactly the
account's fills, orders and transfers, once each, with every wallet equal to the exchange's
balance and `db.ledger.audit() == []`.

The exit status is non-zero if any check fails, a child ended other than by the kill, or
fewer than a third of the kills landed mid-work (then the run shows little). With --write,
the summary replaces this script's section for the engine in that markdown file
(benchmarks/results_file.py).

`--db` is an empty SQLite file or `postgresql://` URL; without it a temporary file, or with
`--engine postgresql` a throwaway server (tests/pg_server.py), as benchmarks/crash_fills.py
does. On PostgreSQL the parent waits until a killed child's sessions have left the server
before it counts: a COMMIT the child sent before it died is still carried out.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import crash_fills
import tradedb

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))
import test_sync_crash as sync_test  # noqa: E402  (the test whose long run this is)

EXCHANGE = "binance"
ENGINES = crash_fills.ENGINES
# Measured: a child's first sync records its first fill some 17 ms after it starts on
# SQLite and 90 ms on PostgreSQL (opening, the client, the first pages), and the last fill
# of four new orders at about 40 and 200 ms. A kill window twice that long puts about half
# the kills inside the recording of fills and the rest later, and the children still make
# more progress on average than the four orders each one adds, so no backlog builds up
# and leaves all the work to the final sync.
ORDERS_PER_KILL = 4
KILL_DELAY_S = {"sqlite": (0.001, 0.080), "postgresql": (0.001, 0.450)}
CHILD_TIMEOUT_S = 120.0
PAGE = 10_000

SECTIONS = {
    "sqlite": "## Sync crash safety (benchmarks/crash_sync.py)",
    "postgresql": (
        "## Sync crash safety on PostgreSQL (benchmarks/crash_sync.py --engine postgresql)"
    ),
}


class NotEmpty(Exception):
    """The database holds a ledger already, so the account cannot be compared with it."""


@dataclass
class Found:
    """One kind of record: how many the account has, and what the ledger holds of them."""

    expected: int = 0
    recorded: int = 0
    duplicates: int = 0
    missing: int = 0
    # Recorded, but not in the account.
    unexpected: int = 0

    @property
    def ok(self) -> bool:
        return (
            self.expected > 0
            and self.recorded == self.expected
            and self.duplicates == self.missing == self.unexpected == 0
        )

    def line(self, name: str) -> str:
        return (
            f"{name + ':':<11}expected {self.expected}, recorded {self.recorded}, "
            f"duplicates {self.duplicates}, missing {self.missing}, "
            f"not in the account {self.unexpected}"
        )


def found(expected: list[str], recorded: list[str]) -> Found:
    """Compare the ids the account has with the ids the ledger holds."""
    wanted, held = set(expected), set(recorded)
    return Found(
        expected=len(expected),
        recorded=len(recorded),
        duplicates=len(recorded) - len(held),
        missing=len(wanted - held),
        unexpected=len(held - wanted),
    )


def counted(expected: int, recorded: list[str]) -> Found:
    """Compare a count the account has with the ids the ledger holds (the simulator keeps
    its order and transfer ids to itself, so the test counts them too)."""
    distinct = len(set(recorded))
    return Found(
        expected=expected,
        recorded=len(recorded),
        duplicates=len(recorded) - distinct,
        missing=max(0, expected - distinct),
        unexpected=max(0, distinct - expected),
    )


@dataclass
class Summary:
    kills_asked: int = 0
    kills: int = 0
    # The database held fewer trades after the kill than the child's part of the account.
    mid_work: int = 0
    # ... and more than before the child started: it had recorded some of its fills.
    part_recorded: int = 0
    child_errors: int = 0
    # Trades in the database before the final sync: the work the killed children finished.
    recorded_by_killed: int = 0
    audit_problems: int = 0
    cycle_s: list[float] = field(default_factory=list)
    fills: Found = field(default_factory=Found)
    orders: Found = field(default_factory=Found)
    transfers: Found = field(default_factory=Found)
    wallets: int = 0
    wallets_off: int = 0
    final_in_sync: bool = False
    # PostgreSQL only, as in crash_fills: how long a killed child's sessions stayed on
    # the server, and how many outlived crash_fills.SESSION_END_TIMEOUT_S.
    session_end_waits_s: list[float] = field(default_factory=list)
    lingering_sessions: int = 0
    elapsed_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def enough_mid_work(self) -> bool:
        # Kills that all came after the work was done would test nothing.
        return self.mid_work >= self.kills_asked // 3

    @property
    def ok(self) -> bool:
        return (
            self.kills == self.kills_asked
            and self.child_errors == 0
            and self.enough_mid_work
            and self.audit_problems == 0
            and self.fills.ok
            and self.orders.ok
            and self.transfers.ok
            and self.wallets > 0
            and self.wallets_off == 0
            and self.final_in_sync
            and self.lingering_sessions == 0
        )

    def lines(self) -> list[str]:
        cycle = statistics.median(self.cycle_s) if self.cycle_s else 0.0
        lines = [
            f"kills:                       {self.kills} of {self.kills_asked}",
            f"kills that landed mid-work:  {self.mid_work} "
            f"({self.part_recorded} with some of the child's fills recorded)",
            f"child errors:                {self.child_errors}",
            f"fills recorded by the killed children: {self.recorded_by_killed} "
            f"of {self.fills.expected}",
            f"audit problems:              {self.audit_problems} "
            "(after every kill and after the final sync)",
            self.fills.line("fills"),
            self.orders.line("orders"),
            self.transfers.line("transfers"),
            f"wallets unequal to the exchange: {self.wallets_off} of {self.wallets}",
            f"final sync in sync:          {'yes' if self.final_in_sync else 'no'}",
        ]
        if self.session_end_waits_s:
            waits_ms = sorted(wait * 1000 for wait in self.session_end_waits_s)
            lines += [
                "killed child's sessions gone from the server after its exit: "
                f"median {statistics.median(waits_ms):.1f} ms, max {waits_ms[-1]:.1f} ms",
                "killed child's sessions still there after "
                f"{crash_fills.SESSION_END_TIMEOUT_S:.0f} s: {self.lingering_sessions}",
            ]
        return [
            *lines,
            f"median kill cycle:           {cycle:.2f} s (child start, kill, checks)",
            f"elapsed:                     {self.elapsed_s:.1f} s",
            f"result:                      {'OK' if self.ok else 'FAILED'}",
        ]


def _every(repository: Any, where: dict[str, Any]) -> Iterator[Any]:
    after = None
    while True:
        page = repository.list(where, after=after, limit=PAGE)
        yield from page.items
        after = page.next_after
        if after is None:
            return


def _spawn(target: str, orders: int, delay_s: float) -> subprocess.CompletedProcess[str] | str:
    """One child's life; the text of its error if it outlived CHILD_TIMEOUT_S."""
    code = sync_test.CHILD.format(tests=str(TESTS), target=target, orders=orders, delay=delay_s)
    try:
        # The program on stdin, not in argv, where `ps` would show a URL's password.
        return subprocess.run(
            [sys.executable, "-"],
            input=code,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"still running {CHILD_TIMEOUT_S:.0f} s after it started, though killed"


def _count_life(kill: int, life: subprocess.CompletedProcess[str] | str, summary: Summary) -> None:
    if isinstance(life, str):
        summary.child_errors += 1
        summary.problems.append(f"kill {kill}: child {life}")
    elif life.returncode != -signal.SIGKILL:
        # It raised or returned before its timer fired: the sync itself failed.
        summary.child_errors += 1
        tail = life.stderr.strip().splitlines()[-5:]
        summary.problems.append(f"kill {kill}: child exited {life.returncode}: {tail}")
    else:
        summary.kills += 1


def _audit(db: tradedb.TradeDB, when: str, summary: Summary) -> None:
    problems = db.ledger.audit()
    summary.audit_problems += len(problems)
    summary.problems += [f"{when}: audit: {problem}" for problem in problems[:10]]


def _check_final(target: str, orders: int, summary: Summary) -> None:
    """The final sync, then the checks of the test: everything once, balances equal."""
    sim, fills = sync_test.account(orders)
    report = sync_test.sync_once(target, sim=sim)
    summary.final_in_sync = report.in_sync
    if not report.in_sync and report.reconciliation is not None:
        summary.problems += [
            f"final sync: {d.asset}: ledger {d.ledger}, exchange {d.exchange}"
            for d in report.reconciliation.differences
        ]
    with tradedb.open(target) as db:
        tables = db.tables
        trades = [t.exchange_trade_id or "" for t in _every(tables.trades, {"exchange": EXCHANGE})]
        summary.fills = found(fills, trades)
        held_orders = [o.order_id for o in _every(tables.crypto_orders, {"exchange": EXCHANGE})]
        summary.orders = counted(orders, held_orders)
        transfers = _every(
            tables.wallet_movements, {"exchange": EXCHANGE, "kind": ["deposit", "withdrawal"]}
        )
        references = [movement.reference or "" for movement in transfers]
        summary.transfers = counted(sync_test.transfers(orders), references)
        for wallet in db.ledger.wallets(exchange=EXCHANGE):
            summary.wallets += 1
            exchange_side = sim.balance(wallet.asset)
            if (wallet.available_balance, wallet.locked_balance) != exchange_side:
                summary.wallets_off += 1
                summary.problems.append(
                    f"wallet {wallet.asset}: ledger ({wallet.available_balance}, "
                    f"{wallet.locked_balance}), exchange {exchange_side}"
                )
        _audit(db, "after the final sync", summary)
    for kind in ("fills", "orders", "transfers"):
        figures: Found = getattr(summary, kind)
        if not figures.ok:
            summary.problems.append(figures.line(kind))


def run(
    target: str | os.PathLike[str],
    kills: int = 200,
    seed: int = 0,
    *,
    progress: Callable[[str], None] | None = None,
) -> Summary:
    """Kill a syncing child `kills` times on `target`, an empty SQLite file or PostgreSQL
    database, then sync to the end and check."""
    target = os.fspath(target)
    started = time.perf_counter()
    with tradedb.open(target) as db:
        held = db.tables.trades.count() + db.tables.wallet_movements.count()
    if held:
        raise NotEmpty(f"{target} holds a ledger already: the checks need an empty database")
    sync_test.open_ledger(target)
    summary = Summary(kills_asked=kills)
    delays = random.Random(seed)
    total_orders = ORDERS_PER_KILL * kills
    engine = crash_fills.engine_of(target)
    sessions = crash_fills.ServerSessions(target) if engine == "postgresql" else None
    session = f"{time.time_ns() // 1_000_000:x}"
    trades_before = 0
    try:
        for kill in range(kills):
            cycle_started = time.perf_counter()
            orders = total_orders * (kill + 1) // kills
            # On PostgreSQL the child's sessions carry its name, for ServerSessions.
            session_name = f"crash-sync-{session}k{kill}"
            child_target = (
                target if sessions is None else crash_fills._libpq_url(target, session_name)
            )
            life = _spawn(child_target, orders, delays.uniform(*KILL_DELAY_S[engine]))
            _count_life(kill, life, summary)
            if sessions is not None:
                waited = sessions.wait_until_gone(session_name)
                if waited is None:
                    summary.lingering_sessions += 1
                    summary.problems.append(f"kill {kill}: the child's sessions outlived it")
                else:
                    summary.session_end_waits_s.append(waited)
            with tradedb.open(target) as db:
                trades = db.tables.trades.count()
                _audit(db, f"kill {kill}", summary)
            if trades < len(sync_test.account(orders)[1]):
                summary.mid_work += 1
                summary.part_recorded += trades > trades_before
            trades_before = trades
            summary.cycle_s.append(time.perf_counter() - cycle_started)
            if progress and (kill + 1) % 20 == 0:
                progress(
                    f"  {kill + 1}/{kills} kills, {summary.mid_work} mid-work, "
                    f"{len(summary.problems)} problems"
                )
    finally:
        if sessions is not None:
            sessions.close()
    summary.recorded_by_killed = trades_before
    if not summary.enough_mid_work:
        summary.problems.append(
            f"only {summary.mid_work} of {kills} kills landed mid-work, fewer than a third: "
            "the kills came after the children's work, and show little"
        )
    _check_final(target, total_orders, summary)
    summary.elapsed_s = time.perf_counter() - started
    return summary


# --- results file ------------------------------------------------------------------------


def method(engine: str) -> str:
    low, high = (round(bound * 1000) for bound in KILL_DELAY_S[engine])
    account = (
        "A child syncs a simulated Binance account (tests/sim_binance.py behind ccxt's own "
        "parsing: 2 markets, 8 fills an order, deposits and withdrawals, pages of 7) and "
        f"kills itself with SIGKILL {low}-{high} ms after its first sync began; child k "
        f"finds the first {ORDERS_PER_KILL}(k+1) orders of the account's history. "
    )
    if engine == "postgresql":
        return account + (
            "The server stays up, so after each kill the parent waits until the child's "
            "sessions have left it (pg_stat_activity), then audits the database and counts "
            "its trades; after the last kill, one sync runs to the end."
        )
    return account + (
        "After each kill the parent audits the database and counts its trades; after the "
        "last kill, one sync runs to the end."
    )


def results_markdown(command: str, summary: Summary, *, engine: str, setup: str) -> str:
    verdict = (
        "After every kill the audit was clean, and the sync that followed recorded each "
        "fill, order and transfer of the account once, with every wallet equal to the "
        "exchange's balance."
        if summary.ok
        else "FAILED: see the problems listed below."
    )
    return crash_fills.checked_markdown(command, setup, method(engine), summary, verdict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    crash_fills.add_run_options(
        parser, "an empty SQLite file or postgresql:// URL (default: a new one, see --engine)"
    )
    args = parser.parse_args()
    if args.kills < 1:
        parser.error("--kills is a whole number of at least 1")
    engine = crash_fills.chosen_engine(parser, args)
    try:
        with crash_fills.database_for_run(args.db, engine, args.dir) as (target, setup):
            summary = run(target, args.kills, args.seed, progress=crash_fills.print_progress)
    except NotEmpty as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    crash_fills.report(
        summary,
        args,
        "crash_sync.py",
        SECTIONS[engine],
        lambda command: results_markdown(command, summary, engine=engine, setup=setup),
    )


if __name__ == "__main__":
    main()
