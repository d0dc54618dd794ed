"""Crash safety, short: a process recording fills is killed 20 times (10 on PostgreSQL,
to keep the suite's time in bounds); nothing is lost.

The long runs are `benchmarks/crash_fills.py --kills 200`, with `--engine postgresql` too
(benchmarks/RESULTS.md). This runs the same code on each engine: a child process records
fills (partial fills, market orders, fees in three currencies, cancels, transfers,
re-deliveries) on shared wallets and is killed with SIGKILL at a random moment, and after
every kill the database is reopened, audited and searched for every fill the child had
acknowledged.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from faults import FaultFigures

pytestmark = pytest.mark.fault("kill")

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "crash_fills.py"
KILLS = {"sqlite": 20, "postgresql": 10}


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_fills", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: its dataclasses look their module up by name.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    return module


@pytest.mark.slow  # 20 s on both engines; benchmarks/fault_suite.py runs it
def test_killed_writer_loses_no_acknowledged_fill(
    db_target: str, engine: str, fault_figures: FaultFigures
) -> None:
    crash_fills = load_script()

    summary = crash_fills.run(db_target, kills=KILLS[engine], seed=7)
    fault_figures.killed(summary.kills)
    fault_figures.fills(summary.fills_acknowledged, lost=summary.missing_fills)

    report = "\n".join([*summary.lines(), *summary.problems])
    assert summary.child_errors == 0, report
    assert summary.kills == KILLS[engine], report
    assert summary.audit_failures == 0, report
    assert summary.missing_fills == 0, report
    assert summary.unexplained_trades == 0, report
    assert summary.fills_acknowledged > 0, report
    assert summary.fills_found == summary.fills_acknowledged, report
    # Every trade is an acknowledged fill or the one in flight at a kill that committed.
    assert summary.trades_in_db == summary.fills_acknowledged + summary.in_flight_committed
    assert summary.ok, report
