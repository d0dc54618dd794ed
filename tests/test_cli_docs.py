"""docs/cli.md is the commands' own help: regenerated here and compared, so a changed
option or help text without `python -m tradedb.cli.docs docs/cli.md` fails."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tradedb.cli import docs

ROOT = Path(__file__).parents[1]
CLI_MD = ROOT / "docs" / "cli.md"


def test_docs_cli_md_is_what_the_commands_say() -> None:
    written = CLI_MD.read_text(encoding="utf-8")
    assert written == docs.reference(), (
        "docs/cli.md is stale: run `python -m tradedb.cli.docs docs/cli.md`"
    )


@pytest.mark.parametrize("columns", ["40", "300"])
def test_the_reference_is_plain_text_whatever_the_terminal(columns: str, tmp_path: Path) -> None:
    written = tmp_path / "cli.md"
    subprocess.run(
        [sys.executable, "-m", "tradedb.cli.docs", str(written)],
        env={"COLUMNS": columns, "TERM": "xterm-256color", "FORCE_COLOR": "1", "PATH": ""},
        check=True,
        timeout=60,
    )
    text = written.read_text(encoding="utf-8")
    assert text == docs.reference()
    assert "\x1b[" not in text
    assert not re.search(r"[│╭╮╰╯]", text)
    assert max(len(line) for line in text.splitlines()) <= max(docs.WIDTH, 100)


def test_every_command_has_its_section_and_the_readme_links_it() -> None:
    text = docs.reference()
    for path in ("tradedb backup list", "tradedb replicate restore", "tradedb paper"):
        assert f"### {path}\n" in text
    assert "[docs/cli.md](docs/cli.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
