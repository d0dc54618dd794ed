"""Writers take turns on Windows too (issue 18, item 2).

Linux cannot call LockFileEx, so the tests that prove the writer gate, its crash
evidence and maintain's exclusivity run again in a process that sees what tradedb sees
on Windows (tests/windows_simulation/sitecustomize.py): no fcntl, no os.pread or
os.pwrite, and pywin32's LockFileEx standing on fcntl range locks. The log of lock calls
shows that the Windows branch of tradedb.file_locks did the locking, on the one byte it
promises, and that every turn it took was handed back except those of the writers the
tests kill.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tradedb import file_locks

TESTS = Path(__file__).parent
# Each proves something about the gate when it is the Windows lock that does the work.
UNDER_WINDOWS = [
    "tests/test_writer_gate.py",  # crash evidence: three writers killed inside a transaction
    "tests/test_concurrency.py::test_a_writer_committing_back_to_back_does_not_starve_another",
    "tests/test_concurrency.py::test_four_processes_write_one_database_at_once",
    "tests/test_maintain.py::test_a_second_maintain_on_the_same_database_is_refused",
]
SELECTION = "not postgresql and not paced"
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
KILLED_INSIDE_A_TRANSACTION = 3


def test_the_gate_its_crash_evidence_and_maintains_lock_work_through_lockfileex(
    tmp_path: Path,
) -> None:
    log = tmp_path / "locks.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(TESTS / "windows_simulation"), os.environ.get("PYTHONPATH", "")]
        ),
        "TRADEDB_SIMULATE_WINDOWS": "1",
        "TRADEDB_SIMULATE_WINDOWS_LOG": str(log),
    }
    ran = subprocess.run(
        [*PYTEST, *UNDER_WINDOWS, "-k", SELECTION, "--basetemp", str(tmp_path / "runs")],
        cwd=TESTS.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    summary = ran.stdout.strip().splitlines()[-1] if ran.stdout.strip() else ran.stderr
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed, summary
    assert int(passed.group(1)) >= 10, summary
    assert "skipped" not in summary, summary
    calls = Counter(
        (what, int(start), int(length))
        for _, what, start, length in (line.split() for line in log.read_text().splitlines())
    )
    byte = (file_locks.WINDOWS_LOCKED_OFFSET, 1)
    assert {(start, length) for _, start, length in calls} == {byte}
    taken, released = calls[("lock", *byte)], calls[("unlock", *byte)]
    assert taken > 1000  # every fill of four writers took its turn through LockFileEx
    assert taken - released == KILLED_INSIDE_A_TRANSACTION
    assert calls[("busy", *byte)] >= 1  # the second maintain found the first one's lock
