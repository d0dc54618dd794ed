"""The runnable examples under examples/ run, offline, and end with a clean ledger."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_the_live_loop_syncs_marks_and_ends_matching_the_exchange(tmp_path: Path) -> None:
    database = tmp_path / "live.sqlite"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "live_loop.py"), str(database)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    placed, synced = lines[0:6:2], lines[1:6:2]
    assert all(line.endswith(": acknowledged; placed again: existing") for line in placed)
    assert (
        synced
        == [
            "sync of binance: 1 new fills, 0 deposits, 0 withdrawals, 0 adopted orders; "
            "balances match"
        ]
        * 3
    )
    assert "audit: clean" in lines
    # 1 BTC, plus three fills of 0.05 less their 0.00005 fees.
    assert "BTC: 1.14985000 available, 0.00000000 locked" in lines
    assert database.exists()
