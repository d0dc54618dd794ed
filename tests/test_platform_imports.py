"""tradedb imports where POSIX-only modules do not exist (issue 18, item 3).

Windows has no fcntl, termios, pwd, grp, resource or syslog. Every tradedb module must
import without them, and a database must still open and take writes: only
tradedb.file_locks may reach for fcntl, and it reports the platform without it."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

POSIX_ONLY = ("fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "syslog")
IMPORTS_POSIX_ONLY = re.compile(
    rf"^\s*(?:import|from) (?:{'|'.join(POSIX_ONLY)})\b", flags=re.MULTILINE
)

SCRIPT = textwrap.dedent(
    """
    import importlib, pkgutil, sys, traceback
    for name in {blocked!r}:
        sys.modules[name] = None  # `import name` now raises ImportError
    import tradedb
    failed = []
    for module in pkgutil.walk_packages(tradedb.__path__, "tradedb."):
        if ".migrations.versions." in module.name or module.name.endswith("__main__"):
            continue  # revisions are loaded by Alembic; a __main__ runs the command
        try:
            importlib.import_module(module.name)
        except ImportError as exc:
            # A dependency's own `if sys.platform != "win32": import fcntl` (the MCP SDK's
            # stdio server has one) takes its other branch on Windows: only an import made
            # by tradedb's own code is a failure here.
            frames = [f for f in traceback.extract_tb(exc.__traceback__)
                      if not f.filename.startswith("<frozen")]
            if frames and "site-packages" not in frames[-1].filename:
                failed.append(f"{{module.name}}: {{exc}} ({{frames[-1].filename}})")
        except Exception as exc:
            failed.append(f"{{module.name}}: {{type(exc).__name__}}: {{exc}}")
    print("\\n".join(failed) or "all imported")
    from tradedb import file_locks
    assert not file_locks.SUPPORTED
    with tradedb.open(sys.argv[1]) as db:
        db.ledger.deposit(exchange="kraken", asset="USD", amount="1.5")
        print("balance", db.ledger.balance("kraken", "USD").available)
    """
).format(blocked=POSIX_ONLY)


def test_every_module_imports_and_a_database_works_without_posix_only_modules(
    tmp_path: Path,
) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "no-fcntl.sqlite")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0] == "all imported", ran.stdout
    assert lines[-1] == "balance 1.50000000"


def test_only_the_file_lock_module_names_fcntl() -> None:
    source = Path(__file__).parents[1] / "src" / "tradedb"
    naming = sorted(
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if IMPORTS_POSIX_ONLY.search(path.read_text(encoding="utf-8"))
    )
    assert naming == ["file_locks.py"]
