"""The README's promises: its Python example runs, and its quickstart is what CI runs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_python_example_runs_and_reads_back_the_trade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "buy 0.01500000 43250.12000000" in printed
    assert (tmp_path / "example.sqlite").stat().st_mode & 0o777 == 0o600


def test_quickstart_has_two_commands_and_ci_runs_the_test_one() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", quickstart, flags=re.DOTALL)
    assert len(commands) == 2
    assert "tradedb init" in commands[0]
    test_command = commands[1].rsplit("&& ", 1)[1]
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci_script
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
