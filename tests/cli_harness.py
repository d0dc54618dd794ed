"""What the CLI tests share: an environment cut off from the user's own, and the real
command run in it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path


def isolated_environ(root: Path, drop: Iterable[str] = ("TRADEDB_DB",)) -> dict[str, str]:
    """The current environment without `drop`, with HOME, the XDG folders and the config
    file inside `root`, so that the default database and config live there."""
    home = root / "home"
    variables = {
        "HOME": home,
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_CONFIG_HOME": home / ".config",
        "TRADEDB_CONFIG": root / "no-such-config.toml",
    }
    for folder in (home, variables["XDG_CONFIG_HOME"]):
        folder.mkdir(parents=True, exist_ok=True)
    dropped = set(drop)
    environ = {key: value for key, value in os.environ.items() if key not in dropped}
    environ.update({key: str(value) for key, value in variables.items()})
    return environ


def run_cli(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`tradedb *args` in a subprocess, in `root` with the isolated environment; the
    timeout turns a hang into a failure."""
    return subprocess.run(
        [sys.executable, "-m", "tradedb", *args],
        env=isolated_environ(root),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
