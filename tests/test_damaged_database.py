"""A damaged database file: whatever meets the damage says so in one line (the file is
damaged, restore it from a backup) and writes nothing more: the command line (exit 2),
the library (`tradedb.DatabaseDamaged`) and the MCP server alike.

The damage is real: after a checkpoint, a page of `crypto_orders` is overwritten in the
file, found from the table's root page in sqlite_master (or dbstat for a page in the
middle) and the page size, as a failing disk or a stray write would leave it.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client

import tradedb
from cli_harness import run_cli as run
from mcp_database import anyio_backend, refusal  # noqa: F401
from tradedb.mcp import build_server

pytestmark = pytest.mark.fault("damage")

USER_ERROR = 2
GARBAGE = b"\xa5"
RESTORE_HINT = "`tradedb backup list` shows the backups, `tradedb restore` brings one back"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def with_orders(path: Path, count: int) -> None:
    """A database holding a deposit and `count` open orders, checkpointed into its file."""
    with tradedb.open(path) as db, db.transaction():
        db.ledger.deposit(exchange="kraken", asset="USD", amount="1000000", reference="w-1")
        for number in range(count):
            db.ledger.place_order(
                exchange="kraken",
                order_id=f"O-{number:04d}",
                symbol="BTC/USD",
                side="buy",
                order_type="limit",
                amount="0.01",
                price="30000",
                strategy="sma_cross",
            )
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()


def overwrite_page(path: Path, choose: Callable[[sqlite3.Connection], int]) -> bytes:
    """Overwrite one page of the file with garbage; what the page held."""
    conn = sqlite3.connect(path)
    try:
        page = choose(conn)
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    with open(path, "r+b") as handle:
        handle.seek((page - 1) * size)
        held = handle.read(size)
        handle.seek((page - 1) * size)
        handle.write(GARBAGE * size)
    return held


def root_page(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'crypto_orders'"
    ).fetchone()
    return int(row[0])


def middle_leaf(conn: sqlite3.Connection) -> int:
    """A leaf of crypto_orders that is neither its first nor its last, among the pages
    of its newest hundred orders."""
    try:
        leaves = [
            int(page)
            for (page,) in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'crypto_orders' AND pagetype = 'leaf' "
                "ORDER BY path"
            )
        ]
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat to find a leaf page with")
    assert len(leaves) >= 5, leaves
    return leaves[-3]


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """A small database whose crypto_orders (one page: its root) is damaged."""
    path = tmp_path / "damaged.sqlite"
    with_orders(path, 3)
    overwrite_page(path, root_page)
    return path


@pytest.fixture
def damaged_inside(tmp_path: Path) -> tuple[Path, str]:
    """crypto_orders spans many pages, and one in the middle is damaged: the check at open
    (first and last row of each table) passes, a read of the orders meets it. The path,
    and an order that was on the damaged page."""
    path = tmp_path / "inside.sqlite"
    with_orders(path, 300)
    held = overwrite_page(path, middle_leaf)
    lost = re.findall(rb"O-[0-9]{4}", held)
    assert lost
    return path, lost[0].decode()


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == USER_ERROR, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def says_damaged(line: str, path: Path) -> None:
    assert f"{path.name} is damaged" in line, line
    assert "database disk image is malformed" in line or "file is not a database" in line
    assert RESTORE_HINT in line


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["info"],
        ["info", "--json"],
        ["deposit", "--exchange", "kraken", "--asset", "USD", "--amount", "5"],
        ["orders"],
        ["balances"],
        ["init"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_a_command_on_a_damaged_database_says_so_in_one_line_and_writes_nothing(
    damaged: Path, tmp_path: Path, command: list[str]
) -> None:
    before = sha256(damaged)

    line = one_line(run(tmp_path, *command, "--db", str(damaged)))

    says_damaged(line, damaged)
    assert sha256(damaged) == before
    wal = Path(f"{damaged}-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_damage_inside_a_table_is_reported_when_a_command_reads_it(
    damaged_inside: tuple[Path, str], tmp_path: Path
) -> None:
    path, _ = damaged_inside
    before = sha256(path)

    line = one_line(run(tmp_path, "orders", "--limit", "300", "--db", str(path)))

    says_damaged(line, path)
    assert sha256(path) == before


def test_a_damaged_header_is_damage_but_a_file_that_never_was_a_database_is_not(
    tmp_path: Path,
) -> None:
    header = tmp_path / "header.sqlite"
    with_orders(header, 1)
    with open(header, "r+b") as handle:
        handle.seek(16)  # the page size: 1 is no power of two
        handle.write(b"\x00\x01")
    text = tmp_path / "notes.sqlite"
    text.write_text("these are my notes, not a database\n" * 200)

    says_damaged(one_line(run(tmp_path, "info", "--db", str(header))), header)
    foreign = one_line(run(tmp_path, "info", "--db", str(text)))
    assert "is not a SQLite database" in foreign
    assert "is damaged" not in foreign


# --- the library -----------------------------------------------------------------------------


@pytest.mark.parametrize("readonly", [False, True])
def test_opening_a_damaged_database_raises_database_damaged(damaged: Path, readonly: bool) -> None:
    with pytest.raises(tradedb.DatabaseDamaged) as caught:
        tradedb.open(damaged, readonly=readonly)

    assert isinstance(caught.value, tradedb.TradeDBError)
    assert str(damaged) in str(caught.value)
    assert RESTORE_HINT in str(caught.value)


def test_damage_met_by_a_read_or_a_write_is_database_damaged(
    damaged_inside: tuple[Path, str],
) -> None:
    path, lost_order = damaged_inside
    with tradedb.open(path) as db:
        movements = db.tables.wallet_movements.count({})
        with pytest.raises(tradedb.DatabaseDamaged):
            db.tables.crypto_orders.list({}, limit=1000)  # outside any transaction
        with pytest.raises(tradedb.DatabaseDamaged), db.snapshot():
            db.tables.crypto_orders.list({}, limit=1000)
        with pytest.raises(tradedb.DatabaseDamaged):
            # Cancelling an order on the damaged page reads it in a write transaction.
            db.ledger.cancel_order(exchange="kraken", order_id=lost_order)
    with tradedb.open(path, readonly=True) as db:
        assert db.tables.wallet_movements.count({}) == movements


# --- the MCP server --------------------------------------------------------------------------


def test_the_mcp_server_refuses_to_start_on_a_damaged_database(damaged: Path) -> None:
    with pytest.raises(tradedb.DatabaseDamaged):
        build_server(damaged)


@pytest.mark.anyio
async def test_an_mcp_tool_that_meets_damage_says_so_in_one_line(
    damaged_inside: tuple[Path, str],
) -> None:
    path, _ = damaged_inside
    server = build_server(path)
    try:
        async with Client(server.mcp) as client:
            text = await refusal(client, "list_orders", {"limit": 100})
    finally:
        server.close()

    assert f"{path} is damaged" in text
    assert RESTORE_HINT in text
    assert "\n" not in text
