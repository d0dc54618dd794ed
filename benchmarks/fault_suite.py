"""The whole fault suite in one command: every crash, load, bad-input and fault test, the
long runs among them, and the fill writer and the account sync each killed 200 times on
each engine.

Run:  .venv/bin/python benchmarks/fault_suite.py [--kills N] [--engine sqlite|postgresql]...
          [--write MD] [-- PYTEST_ARGS...]

It runs, in order:

1. `pytest -m "fault or slow"`: the tests marked `fault` (tests/faults.py names the kinds:
   kill, load, bad input, damage, disk full) and the long runs marked `slow`, on SQLite and
   on a PostgreSQL server the tests start for themselves. CI=true is set, so a missing
   server fails the run instead of skipping its tests. The tests report their figures
   (processes killed, writers, bad inputs, backups restored and checked, fills lost)
   through tests/faults.py.
2. benchmarks/crash_fills.py on each engine: a fill writer killed `--kills` times, the
   database audited and searched for every acknowledged fill after each kill.
3. benchmarks/crash_sync.py on each engine: a sync of a live account killed `--kills`
   times, the database audited after each kill, then one sync to the end, after which the
   ledger must hold each of the account's fills, orders and transfers once and its
   balances.

With --write, it replaces its own section of that markdown file and the crash sections of
each engine it ran, of both scripts (benchmarks/results_file.py). The exit status is 0 only
if every test passed, no acknowledged fill was lost and every sync check held.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import crash_fills
import crash_sync
from results_file import preamble, replace_section

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import faults  # noqa: E402  (tests/ holds the suite's bookkeeping)

SECTION = "## Fault suite (benchmarks/fault_suite.py)"
SELECTION = "fault or slow"


@dataclass
class TestRun:
    exit_code: int
    elapsed_s: float
    figures: dict[str, int]
    cases: dict[str, dict[str, int]]


@dataclass
class CrashRun:
    engine: str
    setup: str
    summary: crash_fills.Summary


@dataclass
class SyncRun:
    engine: str
    setup: str
    summary: crash_sync.Summary


@dataclass
class Suite:
    tests: TestRun
    crashes: list[CrashRun] = field(default_factory=list)
    syncs: list[SyncRun] = field(default_factory=list)

    @property
    def kills(self) -> int:
        return (
            self.tests.figures.get(faults.KILLS, 0)
            + sum(run.summary.kills for run in self.crashes)
            + sum(run.summary.kills for run in self.syncs)
        )

    @property
    def fills_acknowledged(self) -> int:
        return self.tests.figures.get(faults.FILLS_ACKNOWLEDGED, 0) + sum(
            run.summary.fills_acknowledged for run in self.crashes
        )

    @property
    def fills_lost(self) -> int:
        return self.tests.figures.get(faults.FILLS_LOST, 0) + sum(
            run.summary.missing_fills for run in self.crashes
        )

    @property
    def ok(self) -> bool:
        return (
            self.tests.exit_code == 0
            and self.fills_lost == 0
            and all(run.summary.ok for run in self.crashes)
            and all(run.summary.ok for run in self.syncs)
        )


def run_tests(pytest_args: list[str]) -> TestRun:
    with tempfile.TemporaryDirectory(prefix="tradedb-faults-") as folder:
        figures_file = Path(folder) / "figures.json"
        env = {**os.environ, "CI": "true", faults.FIGURES_FILE: str(figures_file)}
        command = [sys.executable, "-m", "pytest", "-m", SELECTION, "-p", "no:cacheprovider"]
        started = time.perf_counter()
        # The output goes straight to the terminal: pytest's own progress.
        finished = subprocess.run([*command, *pytest_args], cwd=ROOT, env=env, check=False)
        elapsed = time.perf_counter() - started
        if not figures_file.exists():
            raise SystemExit(f"pytest wrote no figures (exit {finished.returncode})")
        recorded = json.loads(figures_file.read_text())
    return TestRun(finished.returncode, elapsed, recorded["figures"], recorded["cases"])


def run_crashes(engine: str, kills: int, seed: int) -> CrashRun:
    def progress(message: str) -> None:
        print(f"{engine}: {message.strip()}", file=sys.stderr, flush=True)

    with crash_fills.database_for_run(None, engine, None) as (target, setup):
        summary = crash_fills.run(target, kills, seed, progress=progress)
    return CrashRun(engine, setup, summary)


def run_syncs(engine: str, kills: int, seed: int) -> SyncRun:
    def progress(message: str) -> None:
        print(f"{engine} sync: {message.strip()}", file=sys.stderr, flush=True)

    with crash_fills.database_for_run(None, engine, None) as (target, setup):
        summary = crash_sync.run(target, kills, seed, progress=progress)
    return SyncRun(engine, setup, summary)


def figure_lines(suite: Suite) -> list[str]:
    figures = suite.tests.figures
    bad_inputs = figures.get(faults.BAD_INPUTS, 0)
    lines = [
        f"processes killed:                  {suite.kills}",
        f"fills acknowledged before a kill:  {suite.fills_acknowledged}",
        f"acknowledged fills lost:           {suite.fills_lost}",
        f"writer processes:                  {figures.get(faults.WRITERS, 0)}",
        f"most writers at once:              {figures.get(faults.MOST_WRITERS, 0)}",
        f"bad inputs tried:                  {bad_inputs}",
        f"backups restored and checked:      {figures.get(faults.BACKUPS_VERIFIED, 0)}",
        f"syncs killed, then checked:        {sum(run.summary.kills for run in suite.syncs)}",
        "sync records missing or doubled:   "
        f"{sum(_sync_faults(run.summary) for run in suite.syncs)}",
    ]
    return lines


def _sync_faults(summary: crash_sync.Summary) -> int:
    kinds = (summary.fills, summary.orders, summary.transfers)
    return sum(found.missing + found.duplicates + found.unexpected for found in kinds)


def case_table(cases: dict[str, dict[str, int]]) -> list[str]:
    lines = ["| kind | what it covers | passed | failed | skipped |", "|---|---|---:|---:|---:|"]
    for kind, covers in faults.KINDS.items():
        outcomes = cases.get(kind, {})
        lines.append(
            f"| {kind} | {covers} | {outcomes.get('passed', 0)} | {outcomes.get('failed', 0)} "
            f"| {outcomes.get('skipped', 0)} |"
        )
    return lines


def results_markdown(command: str, suite: Suite) -> str:
    lines = [
        *preamble(command, compared=None),
        f'`pytest -m "{SELECTION}"` ran for {suite.tests.elapsed_s:.0f} s, both engines, '
        f"exit status {suite.tests.exit_code}. Its cases, by the kind of fault "
        "(tests/faults.py; a case is one test on one engine with one set of parameters):",
        "",
        *case_table(suite.tests.cases),
        "",
    ]
    for run in suite.crashes:
        lines += [
            f"benchmarks/crash_fills.py on {run.engine}: "
            f"{run.summary.kills} kills in {run.summary.elapsed_s:.0f} s, "
            f"{run.summary.fills_acknowledged} fills acknowledged, "
            f"{run.summary.missing_fills} missing, {run.summary.audit_failures} audit failures. "
            f"{run.setup}",
            "",
        ]
    for sync in suite.syncs:
        summary = sync.summary
        lines += [
            f"benchmarks/crash_sync.py on {sync.engine}: "
            f"{summary.kills} kills in {summary.elapsed_s:.0f} s "
            f"({summary.mid_work} mid-work), then {summary.fills.recorded} of "
            f"{summary.fills.expected} fills, {summary.orders.recorded} of "
            f"{summary.orders.expected} orders and {summary.transfers.recorded} of "
            f"{summary.transfers.expected} transfers recorded, "
            f"{_sync_faults(summary)} missing or doubled, {summary.audit_problems} audit "
            f"problems, {summary.wallets_off} wallets unequal to the exchange. {sync.setup}",
            "",
        ]
    verdict = (
        "Every test passed, every audit after a kill was clean, no acknowledged fill was lost "
        "and every killed sync was completed by the next with each record once."
        if suite.ok
        else "FAILED: see the failed cases and figures above."
    )
    lines += ["All together:", "", "```", *figure_lines(suite), "```", "", verdict]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kills", type=int, default=200, help="kills of the fill writer, and of the sync"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--engine",
        action="append",
        choices=crash_fills.ENGINES,
        help="where the fill writer and the sync are killed (default: both)",
    )
    parser.add_argument("--write", type=Path, default=None, help="write the results here (.md)")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments, after --")
    args = parser.parse_args()
    if args.kills < 1:
        parser.error("--kills is a whole number of at least 1")

    suite = Suite(run_tests(args.pytest_args))
    for engine in args.engine or crash_fills.ENGINES:
        suite.crashes.append(run_crashes(engine, args.kills, args.seed))
    for engine in args.engine or crash_fills.ENGINES:
        suite.syncs.append(run_syncs(engine, args.kills, args.seed))

    print("\n".join(figure_lines(suite)))
    for run in suite.crashes:
        for problem in run.summary.problems[:30]:
            print(f"{run.engine}: problem: {problem}")
    for sync in suite.syncs:
        for problem in sync.summary.problems[:30]:
            print(f"{sync.engine} sync: problem: {problem}")
    if args.write:
        command = " ".join([".venv/bin/python", "benchmarks/fault_suite.py", *sys.argv[1:]])
        replace_section(args.write, SECTION, results_markdown(command, suite))
        for run in suite.crashes:
            body = crash_fills.results_markdown(
                command, run.summary, engine=run.engine, setup=run.setup
            )
            replace_section(args.write, crash_fills.SECTIONS[run.engine], body)
        for sync in suite.syncs:
            body = crash_sync.results_markdown(
                command, sync.summary, engine=sync.engine, setup=sync.setup
            )
            replace_section(args.write, crash_sync.SECTIONS[sync.engine], body)
        print(f"\nwritten to {args.write}", file=sys.stderr)
    sys.exit(0 if suite.ok else 1)


if __name__ == "__main__":
    main()
