"""The fault suite's bookkeeping: which tests are fault tests, and what they did.

A fault test carries `@pytest.mark.fault(kind)`, the kind being one of KINDS. The whole
suite runs with `-m "fault or slow"` (benchmarks/fault_suite.py does that, and more).

Tests whose work is more than one case add figures through the `fault_figures` fixture:

    fault_figures.killed(summary.kills)
    fault_figures.writers(at_once=4)

A bad-input test that names no count of its own counts as one bad input tried.

With TRADEDB_FAULT_FIGURES naming a file, the session writes there, as JSON, the figures
and each kind's passed, failed and skipped cases.

Tests marked slow run only when the -m expression asks for slow ones ("slow",
"fault or slow"), not with "not slow" or without -m.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

KINDS = {
    "kill": "a process killed (SIGKILL) while it writes, or a connection lost",
    "load": "several writers, readers or snapshots at once",
    "bad input": "input a user or a caller gets wrong, refused in one line with nothing written",
    "damage": "damaged databases, backups, manifests and archives",
    "disk full": "a disk that fills during a write",
}
BAD_INPUTS = "bad inputs tried"
FIGURES_FILE = "TRADEDB_FAULT_FIGURES"


KILLS = "processes killed"
WRITERS = "writer processes"
MOST_WRITERS = "most writers at once"
FILLS_ACKNOWLEDGED = "fills acknowledged before a kill"
FILLS_LOST = "acknowledged fills lost"
BACKUPS_VERIFIED = "backups restored and checked"


class FaultFigures:
    """What the fault tests of one session did: figures, and cases per kind and outcome."""

    def __init__(self) -> None:
        self.figures: Counter[str] = Counter()
        self.cases: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}

    def killed(self, processes: int) -> None:
        self.figures[KILLS] += processes

    def writers(self, at_once: int, rounds: int = 1) -> None:
        self.figures[WRITERS] += at_once * rounds
        self.figures[MOST_WRITERS] = max(self.figures[MOST_WRITERS], at_once)

    def fills(self, acknowledged: int, lost: int) -> None:
        self.figures[FILLS_ACKNOWLEDGED] += acknowledged
        self.figures[FILLS_LOST] += lost

    def backups_verified(self, count: int) -> None:
        self.figures[BACKUPS_VERIFIED] += count

    def bad_inputs(self, count: int) -> None:
        self.figures[BAD_INPUTS] += count

    def as_json(self) -> dict[str, object]:
        return {
            "figures": dict(self.figures),
            "cases": {kind: dict(outcomes) for kind, outcomes in self.cases.items()},
        }


FIGURES = pytest.StashKey[FaultFigures]()


def long_runs_selected(config: pytest.Config) -> bool:
    selection = config.getoption("-m") or ""
    return "slow" in selection and "not slow" not in selection


def kind_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("fault")
    return None if marker is None else str(marker.args[0])


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a long soak, crash or load run (-m slow)")
    config.addinivalue_line(
        "markers", "fault(kind): a test of the fault suite; kinds: " + ", ".join(KINDS)
    )
    config.stash[FIGURES] = FaultFigures()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("fault")
        if marker is not None and (len(marker.args) != 1 or marker.args[0] not in KINDS):
            raise pytest.UsageError(
                f"{item.nodeid}: fault takes one kind of {sorted(KINDS)}, not {marker.args!r}"
            )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("slow") and not long_runs_selected(item.config):
        pytest.skip("a long run: select it with -m slow")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    figures = item.config.stash[FIGURES]
    before = figures.figures[BAD_INPUTS]
    outcome = yield
    if kind_of(item) == "bad input" and figures.figures[BAD_INPUTS] == before:
        figures.bad_inputs(1)
    return outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    kind = kind_of(item)
    counted = report.when == "call" or (report.outcome != "passed" and report.when != "teardown")
    if kind is not None and counted:
        item.config.stash[FIGURES].cases[kind][report.outcome] += 1
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(FIGURES_FILE)
    if path:
        Path(path).write_text(json.dumps(session.config.stash[FIGURES].as_json(), indent=2))


@pytest.fixture(scope="session")
def fault_figures(pytestconfig: pytest.Config) -> FaultFigures:
    return pytestconfig.stash[FIGURES]
