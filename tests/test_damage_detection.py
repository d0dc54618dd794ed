"""A database with a damaged page: `tradedb maintain` finds it (quick_check daily,
integrity_check weekly), exits 1 and leaves a CRITICAL row in bot_logs; `backup snapshot`
refuses to copy it. The damage is real: bytes of crypto_orders' root page overwritten in
the file, which `info` and `deposit` used to accept without complaint."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import tradedb
from cli_harness import isolated_environ
from tradedb.services.ops import maintain

pytestmark = pytest.mark.fault("damage")

TIMESTAMP = 1_700_000_000_000


def damage_orders_page(path: Path) -> None:
    """Overwrite the second half of crypto_orders' root page (its cells) with garbage."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'crypto_orders'"
        ).fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    finally:
        conn.close()
    content = bytearray(path.read_bytes())
    start = (root - 1) * page_size
    content[start + page_size // 2 : start + page_size] = b"\xa5" * (page_size // 2)
    path.write_bytes(bytes(content))


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    path = tmp_path / "bot.sqlite"
    with tradedb.open(path) as db:
        db.ledger.deposit(
            exchange="kraken", asset="EUR", amount="100000", timestamp=TIMESTAMP, reference="d"
        )
        for n in range(30):
            db.ledger.place_order(
                exchange="kraken",
                order_id=f"o{n}",
                symbol="BCH/EUR",
                side="buy",
                order_type="limit",
                amount=Decimal("0.5"),
                price=Decimal("200.1"),
                strategy="s",
                status="open",
                timestamp=TIMESTAMP + n,
            )
    damage_orders_page(path)
    return path


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradedb", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def critical_rows(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT message FROM bot_logs WHERE level = 'CRITICAL'").fetchall()
    finally:
        conn.close()
    return [message for (message,) in rows]


def test_maintain_finds_the_damage_exits_1_and_logs_it(damaged: Path, tmp_path: Path) -> None:
    env = isolated_environ(tmp_path)

    ran = run("maintain", "--once", "--json", "--db", str(damaged), env=env)

    assert ran.returncode == 1, ran.stderr
    outcomes = {o["name"]: o for o in json.loads(ran.stdout)}
    assert outcomes["quick_check"]["status"] == "failed"
    assert outcomes["integrity_check"]["status"] == "failed"
    assert "is damaged" in outcomes["quick_check"]["detail"]
    # Nothing that would copy or change the damaged database runs after it.
    for job in ("retention", "snapshot", "full"):
        assert outcomes[job]["status"] == "skipped", outcomes[job]
    assert not (tmp_path / "backups").exists()
    [message] = critical_rows(damaged)[:1]
    assert "found the database damaged" in message


def test_maintain_checks_quickly_every_day_and_thoroughly_every_week(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite"
    tradedb.open(database).close()
    checks = [job for job in maintain.default_jobs() if job.checks_database]
    monday = datetime(2024, 1, 29, 3, tzinfo=UTC)

    first = maintain.run_due(database, checks, now=monday, env={})
    tuesday = maintain.run_due(database, checks, now=monday.replace(day=30), env={})
    next_monday = maintain.run_due(database, checks, now=datetime(2024, 2, 5, tzinfo=UTC), env={})

    def statuses(outcomes: list[maintain.JobOutcome]) -> dict[str, str]:
        return {o.name: o.status for o in outcomes}

    assert statuses(first) == {"integrity_check": "done", "quick_check": "done"}
    assert statuses(tuesday) == {"integrity_check": "not due", "quick_check": "done"}
    assert statuses(next_monday) == {"integrity_check": "done", "quick_check": "done"}


def test_backup_snapshot_refuses_a_damaged_database(damaged: Path, tmp_path: Path) -> None:
    env = isolated_environ(tmp_path)
    env["TRADEDB_BACKUP_DIR"] = str(tmp_path / "backups")

    refused = run("backup", "snapshot", "--db", str(damaged), env=env)

    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert f"database {damaged} is damaged" in refused.stderr
    assert "nothing was backed up" in refused.stderr
    assert not (tmp_path / "backups").exists()
