"""Mistakes and mishaps a user meets, each one line on stderr and exit status 2, with no
traceback, no hang and nothing written: a database of a newer schema, import files that
are not JSON, an exchange that cannot be reached, a `--db` that is a named pipe, and file
names with `#`, `?`, `%` and spaces, which must simply work, read-only and over MCP too.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import ccxt
import pytest
from mcp import Client
from typer.testing import CliRunner

import tradedb
from cli_harness import run_cli as run
from mcp_database import anyio_backend, call, refusal  # noqa: F401
from tradedb.cli.app import app
from tradedb.mcp import build_server
from tradedb.services.marketdata import download as fetching

pytestmark = pytest.mark.fault("bad input")

USER_ERROR = 2


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line(returncode: int, stdout: str, stderr: str) -> str:
    assert returncode == USER_ERROR, (returncode, stdout, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr + stdout
    return lines[0]


def refused(result: subprocess.CompletedProcess[str]) -> str:
    return one_line(result.returncode, result.stdout, result.stderr)


# --- a newer schema ------------------------------------------------------------------------


def test_init_on_a_database_of_a_newer_schema_says_upgrade_tradedb(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite"
    tradedb.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = '0099'")
    conn.commit()
    conn.close()
    before = sha256(path)

    line = refused(run(tmp_path, "init", "--db", str(path)))

    assert "at schema 0099, which is newer than this tradedb knows" in line
    assert "upgrade tradedb" in line
    assert sha256(path) == before


# --- import files that are not JSON -------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("[[1514764800000, 1, 1, 1, 1, 1],\n [1514765100000, 1, 1", "is not valid JSON"),
        ("[[1514764800000, NaN, 1, 1, 1, 1]]", "row 1.open=nan: is not a finite number"),
        ("[[1514764800000, 1, Infinity, 1, 1, 1]]", "row 1.high=inf: is not a finite number"),
        ("[[1514764800000, 1, 1, -Infinity, 1, 1]]", "row 1.low=-inf: is not a finite number"),
        ("[" * 100_000 + "]" * 100_000, "is nested too deeply"),
        ('{"date": [1514764800000]}', "is not a freqtrade JSON list of candles"),
        ('[[1514764800000, "abc", 1, 1, 1, 1]]', "is not a decimal number"),
    ],
    ids=["malformed", "NaN", "Infinity", "-Infinity", "nested", "object", "text"],
)
def test_an_import_of_bad_json_is_one_line_and_writes_nothing(
    tmp_path: Path, content: str, says: str
) -> None:
    folder = tmp_path / "binance"
    folder.mkdir()
    (folder / "ETH_BTC-5m.json").write_text(content)
    database = tmp_path / "bot.sqlite"
    tradedb.open(database).close()

    line = refused(run(tmp_path, "import", str(folder / "ETH_BTC-5m.json"), "--db", str(database)))

    assert line.startswith("error: ETH_BTC-5m.json: ")
    assert says in line
    with tradedb.open(database, readonly=True) as db:
        assert db.tables.market_data.count({}) == 0


# --- an exchange that cannot be reached -----------------------------------------------------


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """ccxt's HTTP layer replaced by one that fails as a network without the exchange does,
    without the waits between retries; the requests it was asked for."""
    requests: list[str] = []

    def fetch(self: Any, url: str, *_args: Any, **_kwargs: Any) -> Any:
        requests.append(url)
        raise ccxt.NetworkError(f"{self.id} GET {url} failed: [Errno -3] Temporary failure")

    monkeypatch.setattr(ccxt.Exchange, "fetch", fetch)
    monkeypatch.setattr(fetching, "FIRST_BACKOFF_S", 0.0)
    return requests


def test_download_from_an_unreachable_exchange_is_one_line(
    tmp_path: Path, unreachable: list[str]
) -> None:
    database = tmp_path / "bot.sqlite"
    tradedb.open(database).close()

    result = CliRunner().invoke(
        app,
        ["download", "--exchange", "binance", "--symbol", "BTC/USDT", "--db", str(database)],
    )

    line = one_line(result.exit_code, result.stdout, result.stderr)
    assert line.startswith("error: binance could not be asked for its markets (NetworkError: ")
    assert "nothing was written" in line
    assert len(unreachable) == 1 + fetching.RETRIES  # retried before giving up
    with tradedb.open(database, readonly=True) as db:
        assert db.tables.market_data.count({}) == 0


def test_the_library_raises_exchange_unavailable(tmp_path: Path, unreachable: list[str]) -> None:
    with tradedb.open(tmp_path / "bot.sqlite") as db:
        with pytest.raises(tradedb.ExchangeUnavailable, match="binance could not be asked"):
            db.market.download("binance", symbols=["BTC/USDT"], timeframes=["1m"])
        with pytest.raises(tradedb.ExchangeUnavailable):
            db.market.record_tickers("binance", ["BTC/USDT"])


# --- a --db that is not a file ----------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
@pytest.mark.parametrize(
    "command",
    [
        ["info"],
        ["init"],
        ["deposit", "--exchange", "kraken", "--asset", "USD", "--amount", "5"],
        ["mcp"],
    ],
    ids=lambda command: command[0],
)
def test_a_named_pipe_as_the_database_is_refused_not_waited_on(
    tmp_path: Path, command: list[str]
) -> None:
    pipe = tmp_path / "pipe.sqlite"
    os.mkfifo(pipe)

    line = refused(run(tmp_path, *command, "--db", str(pipe)))

    assert f"{pipe} is a named pipe (FIFO), not a regular file" in line
    assert sorted(item.name for item in tmp_path.iterdir() if item.name != "home") == [
        "pipe.sqlite"
    ]


# --- file names with #, ?, % and spaces --------------------------------------------------------

ODD_NAMES = ["my#db.sqlite", "live?1.sqlite", "100%.sqlite", "a%20b c.sqlite", "#?%.sqlite"]
# Each name runs every command (about 6 s): the first always, the rest with -m slow.
EVERY_COMMAND_NAMES = [
    ODD_NAMES[0],
    *(pytest.param(name, marks=pytest.mark.slow) for name in ODD_NAMES[1:]),
]


@pytest.mark.parametrize("name", EVERY_COMMAND_NAMES)
def test_a_database_named_with_uri_characters_works_with_every_command(
    tmp_path: Path, name: str
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / name

    def ok(*args: str) -> str:
        result = run(tmp_path, *args, "--db", str(path))
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "created" in ok("init")
    assert "already up to date" in ok("init")
    ok("deposit", "--exchange", "kraken", "--asset", "USD", "--amount", "12.5")
    info = json.loads(ok("info", "--json"))
    assert info["row_counts"]["wallet_movements"] == 1
    assert json.loads(ok("balances", "--json"))[0]["available_balance"] == "12.50000000"
    assert "up to date" in ok("db", "status")
    # Only the database and its own companions: no stray file named after part of it.
    assert {item.name for item in folder.iterdir()} <= {
        name,
        f"{name}-wal",
        f"{name}-shm",
        f"{name}-writer.lock",
    }


@pytest.mark.parametrize("name", ODD_NAMES)
def test_the_library_opens_such_a_database_read_only(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with tradedb.open(path) as db:
        db.ledger.deposit(exchange="kraken", asset="USD", amount="1")

    with tradedb.open(path, readonly=True) as db:
        assert db.tables.wallet_movements.count({}) == 1
        assert db.schema().up_to_date
    companions = {name, f"{name}-wal", f"{name}-shm", f"{name}-writer.lock", "home"}
    assert {item.name for item in tmp_path.iterdir()} <= companions


@pytest.mark.anyio
async def test_the_mcp_server_serves_such_a_database(tmp_path: Path) -> None:
    path = tmp_path / "live#1 100%?.sqlite"
    with tradedb.open(path) as db:
        db.ledger.deposit(exchange="kraken", asset="BTC", amount="0.00000001")

    server = build_server(path)
    try:
        async with Client(server.mcp) as client:
            balances = await call(client, "balances", {})
    finally:
        server.close()

    assert [(row["asset"], row["available_balance"]) for row in balances["items"]] == [
        ("BTC", "0.00000001")
    ]


# --- MCP: an over-long exchange id ------------------------------------------------------------


@pytest.mark.anyio
async def test_get_candles_refuses_an_over_long_exchange_or_symbol_in_one_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.sqlite"
    tradedb.open(path).close()
    server = build_server(path)
    try:
        async with Client(server.mcp) as client:
            exchange = await refusal(
                client,
                "get_candles",
                {"exchange": "a" * 100_000, "symbol": "BTC/USDT", "timeframe": "1m"},
            )
            symbol = await refusal(
                client,
                "get_candles",
                {"exchange": "binance", "symbol": "B" * 10_000 + "/USDT", "timeframe": "1m"},
            )
    finally:
        server.close()

    for text, field in ((exchange, "exchange"), (symbol, "symbol")):
        assert f"{field}=" in text
        assert "of at most 64 characters" in text
        assert "File name too long" not in text
        assert "\n" not in text
        assert len(text) < 400
