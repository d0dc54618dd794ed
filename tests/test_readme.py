"""The README's promises: its Python example runs, and its quickstart is what CI runs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_python_example_runs_and_reads_back_the_trade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = python_blocks(README)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "buy 0.01500000 43250.12000000" in printed
    assert (tmp_path / "example.sqlite").stat().st_mode & 0o777 == 0o600
    for internal in ("tradedb.store", "tradedb.services"):
        assert internal not in blocks[0]


def test_quickstart_has_two_commands_and_ci_runs_the_test_one() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", quickstart, flags=re.DOTALL)
    assert len(commands) == 2
    assert "'.[demo]'" in commands[0]
    assert commands[0].endswith("tradedb demo")
    test_command = commands[1].rsplit("&& ", 1)[1]
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci_script
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def test_ledger_example_prints_what_the_readme_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from decimal import Decimal

    import tradedb

    monkeypatch.chdir(tmp_path)
    exec(compile(python_blocks(README)[1], "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["2999.00000000 filled 29990", "re-delivered: True"]
    assert "prints `2999.00000000 filled 29990` and `re-delivered: True`" in README
    with tradedb.open(tmp_path / "ledger.sqlite", readonly=True) as db:
        wallets = {w.asset: w for w in db.ledger.wallets()}
    assert wallets["USD"].available_balance == Decimal("6993.2026")
    assert wallets["USD"].locked_balance == 0
    assert wallets["BTC"].total_balance == Decimal("0.1")


def test_ledger_guide_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guide = (ROOT / "docs" / "ledger.md").read_text(encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    exec(compile(python_blocks(guide)[0], "docs/ledger.md", "exec"), {})
    assert (tmp_path / "bot.sqlite").exists()
