"""The fault suite's bookkeeping (tests/faults.py), on which the figures of
benchmarks/fault_suite.py rest: the cases and figures it records, the slow runs it lets
through, and the marker kinds it accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SUITE = """
import pytest

@pytest.mark.fault("kill")
def test_killed(fault_figures):
    fault_figures.killed(3)
    fault_figures.fills(acknowledged=40, lost=0)

@pytest.mark.fault("bad input")
@pytest.mark.parametrize("value", ["x", "NaN"])
def test_one_bad_input_each(value):
    assert value

@pytest.mark.fault("bad input")
def test_many_bad_inputs(fault_figures):
    fault_figures.bad_inputs(10)

@pytest.mark.fault("load")
def test_writers(fault_figures):
    fault_figures.writers(at_once=4, rounds=2)
    fault_figures.writers(at_once=3)

@pytest.mark.fault("damage")
def test_that_fails():
    assert False

@pytest.mark.slow
@pytest.mark.fault("kill")
def test_long_run(fault_figures):
    fault_figures.killed(5)

def test_not_a_fault():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest('pytest_plugins = ["faults"]')
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def figures_of(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[pytest.RunResult, dict[str, dict[str, int]]]:
    path = pytester.path / "figures.json"
    monkeypatch.setenv("TRADEDB_FAULT_FIGURES", str(path))
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    return result, json.loads(Path(path).read_text())


def test_the_fault_selection_records_cases_by_kind_and_the_tests_figures(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, recorded = figures_of(suite, monkeypatch, "-m", "fault or slow")

    result.assert_outcomes(passed=6, failed=1, deselected=1)
    assert recorded["cases"] == {
        "kill": {"passed": 2},
        "load": {"passed": 1},
        "bad input": {"passed": 3},
        "damage": {"failed": 1},
        "disk full": {},
    }
    assert recorded["figures"] == {
        "processes killed": 8,
        "fills acknowledged before a kill": 40,
        "acknowledged fills lost": 0,
        # Two cases that name no count are one bad input each; the third tried ten.
        "bad inputs tried": 12,
        "writer processes": 11,
        "most writers at once": 4,
    }


def test_slow_runs_are_skipped_unless_the_selection_asks_for_them(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, recorded = figures_of(suite, monkeypatch, "-m", "fault and not slow")

    result.assert_outcomes(passed=5, failed=1, deselected=2)
    assert recorded["figures"]["processes killed"] == 3

    everything, _ = figures_of(suite, monkeypatch, "-rs")
    everything.assert_outcomes(passed=6, failed=1, skipped=1)
    everything.stdout.fnmatch_lines(["*a long run: select it with -m slow*"])


def test_a_fault_marker_of_an_unknown_kind_stops_the_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["faults"]')
    pytester.makepyfile(
        test_wrong="import pytest\n\n@pytest.mark.fault('meteor')\ndef test_x():\n    pass\n"
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*fault takes one kind of*not ('meteor',)*"])
