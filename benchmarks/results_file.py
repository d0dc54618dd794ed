"""benchmarks/RESULTS.md, one `## ` section per benchmark script.

Each script rewrites its own section and leaves the others as they are:

    replace_section(Path("benchmarks/RESULTS.md"), "## Ledger fills (benchmarks/bench_fills.py)",
                    body)

A section runs from its `## ` heading to the next `## ` heading (a `## ` line inside a
fenced code block does not count) or the end of the file. A heading not in the file yet is
appended at the end. The file is replaced atomically, so an interrupted run never leaves
half a file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TITLE = "# Benchmark results"
FENCES = ("```", "~~~")


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
