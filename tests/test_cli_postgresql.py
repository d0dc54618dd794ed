"""The command line on a PostgreSQL URL, end to end, as a user moving to PostgreSQL runs
it: init, the ledger, real candles in and out, resample and gaps, paper trading, valuation,
snapshots, metrics, the report, settings, logs, retention and the database's own info;
every one through `--db postgresql://...` or TRADEDB_DB, none showing the password."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner, Result

from conftest import DATA
from tradedb.cli.app import app

pytestmark = pytest.mark.postgresql_only
PASSWORD = "cli-Secret-42"


@pytest.fixture
def url(pg_server: Any) -> Iterator[str]:
    """An empty database owned by a role that logs in with a password."""
    name = pg_server.create_database()
    with pg_server.admin() as conn:
        conn.execute("DROP ROLE IF EXISTS cli_user")
        conn.execute(f"CREATE ROLE cli_user LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f"ALTER DATABASE {name} OWNER TO cli_user")
    yield str(pg_server.url(name, user="cli_user", password=PASSWORD))
    pg_server.drop_database(name)
    with pg_server.admin() as conn:
        conn.execute("DROP ROLE cli_user")


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(app, list(args), env=env)
    assert PASSWORD not in result.output
    return result


def ok(*args: str, env: dict[str, str] | None = None) -> Result:
    result = run(*args, env=env)
    assert result.exit_code == 0, (args, result.output)
    return result


def test_a_postgresql_database_through_every_kind_of_command(url: str, tmp_path: Path) -> None:
    created = ok("init", "--db", url)
    assert "created" in created.stdout
    assert ok("init", "--db", url).stdout.count("already up to date") == 1

    # The ledger.
    ok("deposit", "--db", url, "--exchange", "binance", "--asset", "BTC", "--amount", "2")
    ok("withdraw", "--db", url, "--exchange", "binance", "--asset", "BTC", "--amount", "0.5")
    balances = json.loads(ok("balances", "--db", url, "--json").stdout)
    assert [(b["asset"], b["total_balance"]) for b in balances] == [("BTC", "1.50000000")]
    assert ok("audit", "--db", url).exit_code == 0

    # Real candles in, exactly out.
    folder = tmp_path / "binance"
    folder.mkdir()
    for name in ("ETH_BTC-5m.feather", "LTC_BTC-5m.feather"):
        shutil.copyfile(DATA / name, folder / name)
    ok("import", str(folder), "--db", url)
    listed = json.loads(ok("list-data", "--db", url, "--json").stdout)
    assert {(row["symbol"], row["timeframe"]) for row in listed} == {
        ("ETH/BTC", "5m"),
        ("LTC/BTC", "5m"),
    }
    candles = json.loads(
        ok(
            *("candles", "--db", url, "--exchange", "binance", "--symbol", "ETH/BTC"),
            *("--timeframe", "5m", "--json"),
        ).stdout
    )
    assert candles
    assert all("E" not in candle["close"].upper() for candle in candles)
    ok(
        *("resample", "--db", url, "--exchange", "binance", "--symbol", "ETH/BTC"),
        *("--timeframe", "5m", "--into", "1h"),
    )
    ok("gaps", "--db", url, "--exchange", "binance", "--symbol", "ETH/BTC", "--timeframe", "5m")

    # Paper trading, valuation, snapshots, metrics and the report.
    ok(
        *("paper", "--db", url, "--strategy", "sma_cross,rsi_revert", "--exchange", "binance"),
        *("--symbol", "ETH/BTC,LTC/BTC", "--since", "2018-01-12", "--until", "2018-01-16"),
        *("--capital", "1", "--quote-usd", "13500"),
    )
    value = ok("value", "ETH", "--db", url, "--at", "2018-01-15", "--reference-price", "BTC=13500")
    assert "ETH/BTC" in value.stdout
    ok(
        *("snapshot", "--db", url, "--daily", "--since", "2018-01-13", "--until", "2018-01-16"),
        *("--reference-price", "BTC=13500"),
    )
    ok(
        *("metrics", "--db", url, "--since", "2018-01-12", "--until", "2018-01-17"),
        *("--reference-price", "BTC=13500"),
    )
    report = json.loads(ok("report", "--db", url, "--json").stdout)
    assert {row["strategy"] for row in report["rows"]} >= {"sma_cross", "rsi_revert"}
    trades = json.loads(ok("trades", "--db", url, "--json").stdout)
    assert trades["items"]
    assert ok("audit", "--db", url).exit_code == 0

    # Settings, logs, retention and the database itself, through TRADEDB_DB this time.
    env = {"TRADEDB_DB": url, "TRADEDB_CONFIG": str(tmp_path / "none.toml")}
    ok("config", "set", "risk.max_position", "0.25", "--type", "number", env=env)
    shown = json.loads(ok("config", "get", "risk.max_position", "--json", env=env).stdout)
    assert shown["value"] == "0.25"
    refused = run("config", "set", "kraken.api_secret", "x", env=env)
    assert refused.exit_code == 2
    logs = json.loads(ok("logs", "--json", env=env).stdout)
    assert isinstance(logs, list)
    planned = json.loads(ok("retention", "run", "--dry-run", "--json", env=env).stdout)
    assert planned["dry_run"] is True
    info = json.loads(ok("info", "--json", env=env).stdout)
    assert info["row_counts"]["market_data"] > 0
    assert info["path"].startswith("postgresql://cli_user:***@")
    status = json.loads(ok("db", "status", "--json", env=env).stdout)
    assert status["up_to_date"] is True

    # What the server holds is what the commands said, exactly.
    with psycopg.connect(url) as conn:
        (count,) = conn.execute("SELECT count(*) FROM trades").fetchone()
        (btc,) = conn.execute(
            "SELECT total_balance FROM wallets WHERE exchange = 'binance' AND asset = 'BTC'"
        ).fetchone()
    assert count == info["row_counts"]["trades"] > 0
    final = {
        b["asset"]: b["total_balance"] for b in json.loads(ok("balances", "--json", env=env).stdout)
    }
    assert format(btc, "f") == final["BTC"]
