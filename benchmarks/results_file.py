"""benchmarks/RESULTS.md, one `## ` section per benchmark script.

Each script rewrites its own section and leaves the others as they are:

    replace_section(Path("benchmarks/RESULTS.md"), "## Ledger fills (benchmarks/bench_fills.py)",
                    body)

and opens its body with `preamble(command)`: the command, the date and the versions, and
how far the machine's figures can be trusted.

A section runs from its `## ` heading to the next `## ` heading (a `## ` line inside a
fenced code block does not count) or the end of the file. A heading not in the file yet is
appended at the end. The file is replaced atomically, so an interrupted run never leaves
half a file.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

TITLE = "# Benchmark results"
FENCES = ("```", "~~~")
MACHINE = "Machine: 2 cores, shared with other work and noisy."
SAME_DATA = "runs made in the same process on the same data"


def preamble(
    command: str,
    *,
    versions: str = "",
    setup: str = "",
    compared: str | None = SAME_DATA,
    caveat: str = "",
) -> list[str]:
    """The opening lines of a section body: the command, the date and versions, the machine.

    `versions` names further libraries after SQLite ("pandas 3.1.1"); `setup` is a sentence
    on where the files were, ending the date line. `compared` says what the ratios compare,
    for the sentence on how noisy the machine is; None leaves that sentence out (a check of
    correctness, not of speed). `caveat` is said after it.
    """
    versions = f", {versions}" if versions else ""
    date = (
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}{versions}, {platform.system()} {platform.machine()}."
    )
    lines = [f"Command: `{command}`", "", f"{date} {setup}".rstrip(), ""]
    if compared is not None:
        machine = (
            f"{MACHINE} Read the medians and above all the ratios, which compare {compared}; "
            f"the absolute figures move from run to run. {caveat}"
        )
        lines += [machine.rstrip(), ""]
    return lines


def replace_section(path: Path, heading: str, body: str) -> None:
    """Put `body` under `heading` (a `## ` line) in the markdown file at `path`.

    Replaces the section of that heading, or appends it if the file has none; creates the
    file with the results title if it does not exist. Other sections are kept byte for byte.
    """
    heading = heading.strip()
    if not heading.startswith("## ") or "\n" in heading:
        raise ValueError(f"a section heading is one line starting with '## ', not {heading!r}")
    text = path.read_text(encoding="utf-8") if path.exists() else f"{TITLE}\n"
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    section = [heading, "", *body.strip("\n").split("\n"), ""]
    starts = _heading_lines(lines)
    matches = [index for index in starts if lines[index].rstrip() == heading]
    if len(matches) > 1:
        raise ValueError(f"{path} has the heading {heading!r} {len(matches)} times")
    if matches:
        start = matches[0]
        end = next((index for index in starts if index > start), len(lines))
        lines[start:end] = section
    else:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", *section]
    while lines and not lines[-1].strip():
        lines.pop()
    _write_atomically(path, "\n".join(lines) + "\n")


def _heading_lines(lines: list[str]) -> list[int]:
    """Indexes of the `## ` headings, skipping fenced code blocks."""
    found = []
    fence: str | None = None
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if fence is not None:
            if stripped.startswith(fence):
                fence = None
            continue
        opening = next((mark for mark in FENCES if stripped.startswith(mark)), None)
        if opening is not None:
            fence = opening
        elif line.startswith("## "):
            found.append(index)
    return found


def _write_atomically(path: Path, text: str) -> None:
    # mkstemp makes the file owner-only; keep the mode the results file had (or 0644).
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
