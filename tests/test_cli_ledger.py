"""The ledger commands as a user runs them: orders, trades, positions, balances, deposit,
withdraw and audit.

The listings read one ledger built through the library (module scope: it is only read).
Most cases run in-process through typer's CliRunner; a few run the real console command in
a subprocess, with the environment cut off from the user's own and no terminal (COLUMNS
unset, stdout a pipe), so that rich's tables come out whole and can be read cell by cell.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cli_harness import isolated_environ
from tradedb.cli import common
from tradedb.cli.app import app
from tradedb.services.ledger import Ledger
from tradedb.store import Store

USER_ERROR = 2
# Variables that would point tradedb elsewhere, or make rich think it writes to a terminal
# of some width (and squeeze its tables).
UNWANTED = (
    "TRADEDB_DB",
    "COLUMNS",
    "LINES",
    "FORCE_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
)
FIXED_POINT = re.compile(r"-?\d+\.\d{8}")


def ms(text: str) -> int:
    """Epoch milliseconds of a UTC time written without its offset."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# --- harness -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which the default database and config live inside tmp."""
    return isolated_environ(tmp_path_factory.mktemp("env"), drop=UNWANTED)


@pytest.fixture(autouse=True)
def isolated(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The same environment for in-process runs, and the console width of a piped run
    without COLUMNS (tradedb fixes it when first imported, from pytest's own terminal)."""
    for key in UNWANTED:
        monkeypatch.delenv(key, raising=False)
    for key in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "TRADEDB_CONFIG"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setattr(common.out, "width", common.PIPED_WIDTH)


def console_command() -> list[str]:
    """The `tradedb` script installed next to this Python, else `python -m tradedb`."""
    script = shutil.which("tradedb", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "tradedb"]


def run_console(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*console_command(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    # Anything but a clean exit would show up as an exception other than SystemExit.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def as_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json"))


def assert_user_error(returncode: int, stdout: str, stderr: str) -> str:
    """Exit 2, exactly one non-empty line on stderr, no traceback; return that line."""
    assert returncode == USER_ERROR, (returncode, stdout, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].strip()
    assert "Traceback" not in stderr
    assert "Traceback" not in stdout
    return lines[0]


def user_error(*args: str) -> str:
    result = invoke(*args)
    return assert_user_error(result.exit_code, result.stdout, result.stderr)


def table(text: str) -> list[dict[str, str]]:
    """The rows of a rich table as {header: cell}; a row wrapped over lines fails here."""
    headers: list[str] | None = None
    rows = []
    for line in text.splitlines():
        if line.startswith("┃"):
            assert headers is None, f"header wrapped over lines:\n{text}"
            headers = [cell.strip() for cell in line.strip("┃").split("┃")]
        elif line.startswith("│"):
            assert headers is not None
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            rows.append(dict(zip(headers, cells, strict=True)))
    assert headers is not None, text
    return rows


# --- a ledger with something of everything --------------------------------------------

# Orders newest first (o6 and o7 share a timestamp; the later id comes first).
ALL_ORDERS = ["o8", "o7", "o6", "o5", "o4", "o3", "o2", "o1"]
ALL_TRADES = ["o8", "o7", "o4", "o2", "o1"]  # by the order each trade filled
ALL_POSITIONS = ["kraken ETH/USD", "binance ETH/USDT", "kraken BTC/USD"]


FUNDS = [("kraken", "USD", "100000"), ("kraken", "BTC", "1"), ("binance", "USDT", "50000"),
         ("binance", "ETH", "10")]  # fmt: skip
# What happened, in order. Orders reserve a 0.1% fee on buys.
# place: exchange, order id, symbol, side, type, amount, price, strategy, time, status
# fill: exchange, order id, exchange trade id, amount, price, fee (quote), time
# cancel / expire: exchange, order id, time
HISTORY: list[tuple[Any, ...]] = [
    ("place", "kraken", "o1", "BTC/USD", "buy", "limit", "0.004", "60000", "grid",
     "2024-03-01T10:00", "open"),
    ("fill", "kraken", "o1", "k1", "0.004", "60000", "0.24", "2024-03-01T10:05"),
    ("place", "kraken", "o2", "BTC/USD", "sell", "limit", "0.002", "61000", "grid",
     "2024-03-02T09:00", "open"),
    ("fill", "kraken", "o2", "k2", "0.001", "61000", "0.061", "2024-03-02T09:30"),
    ("place", "binance", "o3", "ETH/USDT", "buy", "limit", "1.5", "3000", "momentum",
     "2024-03-02T12:00", "open"),
    ("cancel", "binance", "o3", "2024-03-02T13:00"),
    ("place", "binance", "o4", "ETH/USDT", "sell", "market", "0.25", None, None,
     "2024-03-03T06:00", "open"),
    ("fill", "binance", "o4", "b1", "0.25", "3100", "0.775", "2024-03-03T06:00"),
    ("place", "kraken", "o5", "ETH/USD", "buy", "limit", "0.1", "3050", "momentum",
     "2024-03-04T00:00", "pending"),
    ("place", "kraken", "o6", "BTC/USD", "buy", "limit", "0.01", "50000", None,
     "2024-03-04T12:00", "open"),
    ("expire", "kraken", "o6", "2024-03-04T13:00"),
    ("place", "kraken", "o7", "ETH/USD", "buy", "limit", "0.1", "3000", "momentum",
     "2024-03-04T12:00", "open"),
    ("fill", "kraken", "o7", "k3", "0.1", "3000", "0.3", "2024-03-04T12:01"),
    ("place", "kraken", "o8", "ETH/USD", "sell", "limit", "0.1", "3200", "momentum",
     "2024-03-05T00:00", "open"),
    ("fill", "kraken", "o8", "k4", "0.1", "3200", "0.32", "2024-03-05T00:01"),
]  # fmt: skip


def build_ledger(path: Path) -> None:
    with Store.open(path) as store:
        ledger = Ledger(store)
        for exchange, asset, amount in FUNDS:
            ledger.deposit(
                exchange=exchange, asset=asset, amount=amount, timestamp=ms("2024-02-01T00:00")
            )
        for step in HISTORY:
            action, exchange, order_id, *rest = step
            if action == "place":
                symbol, side, order_type, amount, price, strategy, when, status = rest
                ledger.place_order(
                    exchange=exchange,
                    order_id=order_id,
                    symbol=symbol,
                    side=side,
                    order_type=order_type,
                    amount=amount,
                    price=price,
                    strategy=strategy,
                    timestamp=ms(when),
                    status=status,
                    fee_reserve_rate="0.001",
                )
            elif action == "fill":
                trade_id, amount, price, fee, when = rest
                ledger.record_fill(
                    exchange=exchange,
                    order_id=order_id,
                    exchange_trade_id=trade_id,
                    amount=amount,
                    price=price,
                    fee=fee,
                    timestamp=ms(when),
                )
            else:
                [when] = rest
                end = ledger.cancel_order if action == "cancel" else ledger.expire_order
                end(exchange, order_id, timestamp=ms(when))


@pytest.fixture(scope="module")
def ledger_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ledger") / "ledger.sqlite"
    build_ledger(path)
    return str(path)


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A database path that does not exist yet: the first deposit creates it."""
    return str(tmp_path / "wallets.sqlite")


def fund(path: str) -> str:
    with Store.open(path) as store:
        Ledger(store).deposit(exchange="kraken", asset="BTC", amount="2", reference="seed")
    return path


@pytest.fixture
def funded(db: str) -> str:
    return fund(db)


@pytest.fixture(scope="module")
def funded_shared(tmp_path_factory: pytest.TempPathFactory) -> str:
    """For refused input only: each test checks that it changed nothing."""
    return fund(str(tmp_path_factory.mktemp("funded") / "wallets.sqlite"))


def ids(listing: dict[str, Any], key: Callable[[dict[str, Any]], str]) -> list[str]:
    return [key(item) for item in listing["items"]]


def order_key(item: dict[str, Any]) -> str:
    return str(item["order_id"])


def position_key(item: dict[str, Any]) -> str:
    return f"{item['exchange']} {item['symbol']}"


KEYS = {"orders": order_key, "trades": order_key, "positions": position_key}
EVERYTHING = {"orders": ALL_ORDERS, "trades": ALL_TRADES, "positions": ALL_POSITIONS}


# --- deposit and withdraw ---------------------------------------------------------------


def transfer(kind: str, db: str, amount: str, *extra: str, asset: str = "BTC") -> str:
    return ok(
        kind, "--exchange", "kraken", "--asset", asset, "--amount", amount, "--db", db, *extra
    )


def balances(db: str) -> list[dict[str, Any]]:
    return as_json("balances", "--db", db)  # type: ignore[no-any-return]


def test_deposits_and_withdrawal_change_balances_exactly(db: str) -> None:
    transfer("deposit", db, "1.5")
    transfer("deposit", db, "0.00000001")
    transfer("withdraw", db, "0.5")
    [wallet] = balances(db)
    assert (wallet["exchange"], wallet["asset"]) == ("kraken", "BTC")
    assert wallet["available_balance"] == "1.00000001"
    assert wallet["locked_balance"] == "0.00000000"
    assert wallet["total_balance"] == "1.00000001"


def test_transfer_output_tells_the_amount_and_the_wallet_after_it(db: str) -> None:
    transfer("deposit", db, "1.5")
    said = transfer("deposit", db, "0.00000001")
    assert said.strip() == (
        "deposit of 0.00000001 BTC on kraken: recorded. "
        "available 1.50000001, locked 0, total 1.50000001"
    )
    said = transfer("withdraw", db, "0.5")
    assert said.strip() == (
        "withdrawal of 0.5 BTC on kraken: recorded. "
        "available 1.00000001, locked 0, total 1.00000001"
    )
    shown = json.loads(transfer("withdraw", db, "0.00000001", "--json"))
    assert shown["duplicate"] is False
    assert shown["movement"]["kind"] == "withdrawal"
    assert shown["movement"]["available_change"] == "-0.00000001"
    assert shown["wallet"]["available_balance"] == "1.00000000"


@pytest.mark.parametrize("kind", ["deposit", "withdraw"])
def test_repeated_reference_is_already_recorded_and_changes_nothing(funded: str, kind: str) -> None:
    first = json.loads(transfer(kind, funded, "0.25", "--reference", "tx-1", "--json"))
    assert first["duplicate"] is False
    before = balances(funded)
    said = transfer(kind, funded, "0.25", "--reference", "tx-1")
    assert "already recorded, nothing changed" in said
    again = json.loads(transfer(kind, funded, "0.25", "--reference", "tx-1", "--json"))
    assert again["duplicate"] is True
    assert again["movement"] == first["movement"]
    assert balances(funded) == before


@pytest.mark.parametrize("kind", ["deposit", "withdraw"])
@pytest.mark.fault("bad input")
def test_reference_reused_for_another_amount_is_refused(funded: str, kind: str) -> None:
    transfer(kind, funded, "0.25", "--reference", "tx-1")
    before = balances(funded)
    line = user_error(
        kind, "--exchange", "kraken", "--asset", "BTC", "--amount", "0.5",
        "--reference", "tx-1", "--db", funded,
    )  # fmt: skip
    assert "reference" in line
    assert "tx-1" in line
    assert balances(funded) == before


@pytest.mark.fault("bad input")
def test_withdrawal_beyond_the_available_is_refused_and_changes_nothing(db: str) -> None:
    transfer("deposit", db, "1.00000001")
    before = balances(db)
    line = user_error(
        "withdraw", "--exchange", "kraken", "--asset", "BTC", "--amount", "1.00000002",
        "--db", db,
    )  # fmt: skip
    assert "1.00000002" in line
    assert "1.00000001" in line
    assert "available" in line
    assert balances(db) == before


def test_withdrawal_of_an_asset_never_held_leaves_no_wallet_behind(db: str) -> None:
    transfer("deposit", db, "1")
    before = balances(db)
    line = user_error(
        "withdraw", "--exchange", "kraken", "--asset", "ETH", "--amount", "0.1", "--db", db
    )
    assert "available" in line
    assert "ETH" in line
    assert balances(db) == before


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2024-03-01T12:00:00+02:00", ms("2024-03-01T10:00")),
        ("2024-03-01T10:00:00Z", ms("2024-03-01T10:00")),
        ("2024-03-01", ms("2024-03-01T00:00")),
        (str(ms("2024-03-01T10:00:00.123")), ms("2024-03-01T10:00:00.123")),
    ],
)
def test_at_sets_the_time_of_the_movement(db: str, at: str, expected: int) -> None:
    shown = json.loads(transfer("deposit", db, "1", "--at", at, "--json"))
    assert shown["movement"]["timestamp"] == expected
    assert shown["wallet"]["last_updated"] == expected


BAD_TRANSFERS = [
    ("--amount", "abc", "amount"),
    ("--amount", "1e-9", "amount"),
    ("--amount", "0.000000001", "amount"),
    ("--amount", "-1", "amount"),
    ("--amount", "0", "amount"),
    ("--amount", "NaN", "amount"),
    ("--amount", "1e12", "amount"),
    ("--asset", "btc", "asset"),
    ("--exchange", "Kraken", "exchange"),
    ("--at", "2024-13-01", "at"),
    ("--at", "2024-03-01T10:00:00", "at"),
    ("--at", "1709287200", "at"),
    ("--reference", " tx ", "reference"),
]


@pytest.mark.parametrize("kind", ["deposit", "withdraw"])
@pytest.mark.parametrize(("option", "value", "field"), BAD_TRANSFERS)
@pytest.mark.fault("bad input")
def test_bad_transfer_input_is_one_line_and_changes_nothing(
    funded_shared: str, kind: str, option: str, value: str, field: str
) -> None:
    before = balances(funded_shared)
    given = {"--exchange": "kraken", "--asset": "BTC", "--amount": "0.1", option: value}
    args = [part for pair in given.items() for part in pair]
    line = user_error(kind, *args, "--db", funded_shared)
    assert line.startswith(f"error: {field}="), line
    assert balances(funded_shared) == before


@pytest.mark.fault("bad input")
def test_refused_deposit_does_not_create_the_database(tmp_path: Path) -> None:
    target = tmp_path / "typo.sqlite"
    user_error(
        "deposit", "--exchange", "kraken", "--asset", "BTC", "--amount", "abc",
        "--db", str(target),
    )  # fmt: skip
    assert not target.exists()


# --- listings ---------------------------------------------------------------------------

ORDER_CASES = [
    ([], ALL_ORDERS),
    (["--exchange", "kraken"], ["o8", "o7", "o6", "o5", "o2", "o1"]),
    (["--exchange", "binance"], ["o4", "o3"]),
    (["--exchange", "bitstamp"], []),
    (["--symbol", "BTC/USD"], ["o6", "o2", "o1"]),
    (["--symbol", "ETH/USD"], ["o8", "o7", "o5"]),
    (["--strategy", "grid"], ["o2", "o1"]),
    (["--strategy", "momentum"], ["o8", "o7", "o5", "o3"]),
    (["--status", "filled"], ["o8", "o7", "o4", "o1"]),
    (["--status", "open"], ["o2"]),
    (["--status", "pending"], ["o5"]),
    (["--status", "canceled"], ["o3"]),
    (["--status", "expired"], ["o6"]),
    (["--exchange", "kraken", "--symbol", "ETH/USD", "--status", "filled"], ["o8", "o7"]),
    (["--strategy", "momentum", "--exchange", "binance"], ["o3"]),
    # Dates are UTC midnights; --since is inclusive, --until exclusive.
    (["--since", "2024-03-04"], ["o8", "o7", "o6", "o5"]),
    (["--since", "2024-03-02", "--until", "2024-03-04"], ["o4", "o3", "o2"]),
    (["--until", "2024-03-01"], []),
    # 14:00 at +02:00 is 12:00 UTC, o3's time exactly.
    (["--since", "2024-03-02T14:00:00+02:00"], ["o8", "o7", "o6", "o5", "o4", "o3"]),
    (["--until", "2024-03-02T11:00:00+02:00"], ["o1"]),
    (["--since", "2024-03-04T12:00:00Z", "--until", "2024-03-04T12:00:00.001Z"], ["o7", "o6"]),
    (
        ["--since", str(ms("2024-03-02T09:00")), "--until", str(ms("2024-03-03T06:00"))],
        ["o3", "o2"],
    ),
    (["--since", "2024-03-02", "--strategy", "momentum", "--status", "pending"], ["o5"]),
]


@pytest.mark.parametrize(("args", "expected"), ORDER_CASES)
def test_order_filters(ledger_db: str, args: list[str], expected: list[str]) -> None:
    listing = as_json("orders", *args, "--db", ledger_db)
    assert ids(listing, order_key) == expected
    assert listing["next_after"] is None


TRADE_CASES = [
    ([], ALL_TRADES),
    (["--exchange", "kraken"], ["o8", "o7", "o2", "o1"]),
    (["--exchange", "binance"], ["o4"]),
    (["--symbol", "BTC/USD"], ["o2", "o1"]),
    (["--symbol", "ETH/USDT"], ["o4"]),
    (["--strategy", "momentum"], ["o8", "o7"]),
    (["--strategy", "grid"], ["o2", "o1"]),
    (["--status", "partial"], ["o2"]),
    (["--status", "filled"], ["o8", "o7", "o4", "o1"]),
    (["--status", "canceled"], []),
    (["--since", "2024-03-02", "--until", "2024-03-04"], ["o4", "o2"]),
    # 07:00 at +01:00 is 06:00 UTC, o4's fill exactly: excluded by --until.
    (["--until", "2024-03-03T07:00:00+01:00"], ["o2", "o1"]),
    (["--since", "2024-03-03T07:00:00+01:00"], ["o8", "o7", "o4"]),
    (["--since", str(ms("2024-03-01T10:05")), "--until", str(ms("2024-03-02T09:30"))], ["o1"]),
    (["--exchange", "kraken", "--status", "filled", "--since", "2024-03-02"], ["o8", "o7"]),
]


@pytest.mark.parametrize(("args", "expected"), TRADE_CASES)
def test_trade_filters(ledger_db: str, args: list[str], expected: list[str]) -> None:
    listing = as_json("trades", *args, "--db", ledger_db)
    assert ids(listing, order_key) == expected
    assert listing["next_after"] is None


POSITION_CASES = [
    ([], ALL_POSITIONS),
    (["--status", "open"], ["binance ETH/USDT", "kraken BTC/USD"]),
    (["--status", "closed"], ["kraken ETH/USD"]),
    (["--exchange", "kraken"], ["kraken ETH/USD", "kraken BTC/USD"]),
    (["--symbol", "ETH/USDT"], ["binance ETH/USDT"]),
    (["--strategy", "grid"], ["kraken BTC/USD"]),
    (["--strategy", "momentum", "--status", "open"], []),
    # Positions are bounded by when they opened.
    (["--since", "2024-03-02"], ["kraken ETH/USD", "binance ETH/USDT"]),
    (["--until", "2024-03-03T06:00:00+00:00"], ["kraken BTC/USD"]),
    (["--until", "2024-03-03T06:00:00.001+00:00"], ["binance ETH/USDT", "kraken BTC/USD"]),
    (["--since", "2024-03-04T13:01:00+01:00"], ["kraken ETH/USD"]),
    (["--since", str(ms("2024-03-03T06:00")), "--exchange", "binance"], ["binance ETH/USDT"]),
]


@pytest.mark.parametrize(("args", "expected"), POSITION_CASES)
def test_position_filters(ledger_db: str, args: list[str], expected: list[str]) -> None:
    listing = as_json("positions", *args, "--db", ledger_db)
    assert ids(listing, position_key) == expected
    assert listing["next_after"] is None


def test_position_json_holds_what_the_ledger_computed(ledger_db: str) -> None:
    listing = as_json("positions", "--db", ledger_db)
    shown = {position_key(item): item for item in listing["items"]}
    closed = shown["kraken ETH/USD"]
    assert closed["status"] == "closed"
    assert closed["realized_pnl"] == "19.38000000"  # 320 - 300 - fees 0.3 and 0.32
    assert closed["opened_at"] == ms("2024-03-04T12:01")
    assert closed["closed_at"] == ms("2024-03-05T00:01")
    btc = shown["kraken BTC/USD"]
    assert (btc["side"], btc["amount"], btc["realized_pnl"]) == ("long", "0.00300000", "0.87900000")
    assert btc["closed_at"] is None


def test_json_amounts_are_fixed_point_strings(ledger_db: str) -> None:
    amounts = {
        "orders": ("amount", "price", "filled_amount", "remaining_amount", "locked_amount"),
        "trades": ("amount", "price", "total_value", "fee"),
        "positions": ("amount", "entry_price", "current_price", "unrealized_pnl"),
    }
    for command, fields in amounts.items():
        for item in as_json(command, "--db", ledger_db)["items"]:
            for name in fields:
                value = item[name]
                assert value is None or FIXED_POINT.fullmatch(value), (command, name, value)
    for wallet in balances(ledger_db):
        for name in ("available_balance", "locked_balance", "total_balance"):
            assert FIXED_POINT.fullmatch(wallet[name]), wallet
    [o5] = as_json("orders", "--status", "pending", "--db", ledger_db)["items"]
    assert (o5["locked_amount"], o5["locked_asset"]) == ("305.30500000", "USD")
    assert o5["remaining_amount"] == "0.10000000"
    assert o5["filled_amount"] == "0.00000000"


@pytest.mark.parametrize("command", ["orders", "trades", "positions"])
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_limit_and_after_page_through_everything_once(
    ledger_db: str, command: str, limit: int
) -> None:
    seen: list[str] = []
    after: list[str] = []
    pages = 0
    while True:
        page = as_json(command, "--limit", str(limit), *after, "--db", ledger_db)
        pages += 1
        seen += ids(page, KEYS[command])
        if page["next_after"] is None:
            break
        assert len(page["items"]) == limit
        after = ["--after", page["next_after"]]
        assert pages <= 10, "paging does not end"
    assert seen == EVERYTHING[command]
    assert pages == -(-len(seen) // limit)  # ceil: no empty last page


def test_paging_keeps_the_filters(ledger_db: str) -> None:
    first = as_json("orders", "--exchange", "kraken", "--limit", "4", "--db", ledger_db)
    assert ids(first, order_key) == ["o8", "o7", "o6", "o5"]
    rest = as_json(
        "orders", "--exchange", "kraken", "--limit", "4", "--after", first["next_after"],
        "--db", ledger_db,
    )  # fmt: skip
    assert ids(rest, order_key) == ["o2", "o1"]
    assert rest["next_after"] is None


def test_table_tells_how_to_get_the_next_page(ledger_db: str) -> None:
    result = invoke("orders", "--limit", "3", "--db", ledger_db)
    assert result.exit_code == 0, result.stderr
    hint = re.fullmatch(r"more rows: add --after (\S+)", result.stderr.strip())
    assert hint is not None, result.stderr
    rest = as_json("orders", "--limit", "3", "--after", hint.group(1), "--db", ledger_db)
    assert ids(rest, order_key) == ["o5", "o4", "o3"]
    last = invoke("orders", "--limit", "8", "--db", ledger_db)
    assert last.stderr == ""


def test_an_exact_fit_has_no_next_page(ledger_db: str) -> None:
    listing = as_json("orders", "--limit", str(len(ALL_ORDERS)), "--db", ledger_db)
    assert len(listing["items"]) == len(ALL_ORDERS)
    assert listing["next_after"] is None


BALANCES = {
    ("binance", "ETH"): ("9.75000000", "0.00000000", "9.75000000"),
    ("binance", "USDT"): ("50774.22500000", "0.00000000", "50774.22500000"),
    ("kraken", "BTC"): ("1.00200000", "0.00100000", "1.00300000"),
    ("kraken", "ETH"): ("0.00000000", "0.00000000", "0.00000000"),
    ("kraken", "USD"): ("99534.77400000", "305.30500000", "99840.07900000"),
}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], list(BALANCES)),
        (["--exchange", "kraken"], [("kraken", "BTC"), ("kraken", "ETH"), ("kraken", "USD")]),
        (["--asset", "ETH"], [("binance", "ETH"), ("kraken", "ETH")]),
        (["--exchange", "binance", "--asset", "USDT"], [("binance", "USDT")]),
        (["--asset", "DOGE"], []),
    ],
)
def test_balances_json(ledger_db: str, args: list[str], expected: list[tuple[str, str]]) -> None:
    wallets = as_json("balances", *args, "--db", ledger_db)
    assert [(w["exchange"], w["asset"]) for w in wallets] == expected
    for wallet in wallets:
        figures = (wallet["available_balance"], wallet["locked_balance"], wallet["total_balance"])
        assert figures == BALANCES[wallet["exchange"], wallet["asset"]]


BAD_LISTINGS = [
    (["--since", "2024-13-01"], "since"),
    (["--until", "2024-02-30"], "until"),
    (["--since", "2024-03-01T10:00:00"], "since"),  # no offset
    (["--since", str(ms("2024-03-01T10:00") // 1000)], "since"),  # epoch seconds
    (["--until", "tomorrow"], "until"),
    (["--status", "bogus"], "status"),
    (["--limit", "0"], "limit"),
    (["--limit", "-5"], "limit"),
    (["--limit", "100001"], "limit"),
    (["--exchange", "Kraken"], "exchange"),
    (["--symbol", "btc/usd"], "symbol"),
    (["--strategy", " grid"], "strategy"),
    (["--after", "garbage"], "after"),
]


@pytest.mark.parametrize("command", ["orders", "trades", "positions"])
@pytest.mark.parametrize(("args", "field"), BAD_LISTINGS)
@pytest.mark.fault("bad input")
def test_bad_listing_input_is_one_line(
    ledger_db: str, command: str, args: list[str], field: str
) -> None:
    line = user_error(command, *args, "--db", ledger_db)
    assert line.startswith(f"error: {field}="), line


@pytest.mark.parametrize(
    ("args", "field"), [(["--exchange", "Kraken"], "exchange"), (["--asset", "btc"], "asset")]
)
@pytest.mark.fault("bad input")
def test_bad_balances_input_is_one_line(ledger_db: str, args: list[str], field: str) -> None:
    line = user_error("balances", *args, "--db", ledger_db)
    assert line.startswith(f"error: {field}="), line


@pytest.mark.parametrize("command", ["orders", "trades", "positions"])
@pytest.mark.fault("bad input")
def test_malformed_page_token_is_refused(ledger_db: str, command: str) -> None:
    line = user_error(command, "--after", "x:1", "--db", ledger_db)
    assert line.startswith("error: after="), line


@pytest.mark.parametrize("command", ["orders", "trades", "positions", "balances", "audit"])
@pytest.mark.fault("bad input")
def test_reading_a_missing_database_is_one_line_and_creates_nothing(
    tmp_path: Path, command: str
) -> None:
    target = tmp_path / "missing.sqlite"
    line = user_error(command, "--db", str(target))
    assert str(target) in line
    assert list(tmp_path.iterdir()) == []


# --- audit ------------------------------------------------------------------------------


def test_audit_passes_a_healthy_ledger(ledger_db: str) -> None:
    assert ok("audit", "--db", ledger_db).strip() == "✓ ledger invariants hold"
    assert as_json("audit", "--db", ledger_db) == {"ok": True, "problems": []}


@pytest.mark.fault("damage")
def test_audit_exits_1_and_names_a_corrupted_wallet(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.sqlite"
    build_ledger(path)
    with Store.open(path) as store, store.db.transaction() as conn:
        # One unit (0.00000001 BTC) that no movement explains.
        conn.execute(
            "UPDATE wallets SET available_balance = available_balance + 1 "
            "WHERE exchange = 'kraken' AND asset = 'BTC'"
        )
    result = invoke("audit", "--db", str(path))
    assert result.exit_code == 1, (result.stdout, result.stderr)
    problems = result.stdout.splitlines()
    assert problems
    assert all(line.startswith("✗ ") for line in problems), problems
    assert any("wallet kraken:BTC" in line and "1.00200001" in line for line in problems)
    assert "Traceback" not in result.stdout + result.stderr
    shown = invoke("audit", "--json", "--db", str(path))
    assert shown.exit_code == 1
    report = json.loads(shown.stdout)
    assert report["ok"] is False
    assert len(report["problems"]) == len(problems)
    assert all("kraken:BTC" in problem for problem in report["problems"])


# --- the real console command -----------------------------------------------------------


@pytest.fixture(scope="module")
def console(
    env: dict[str, str], ledger_db: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One run of the installed `tradedb` per command, started together: each spends most
    of a second importing, so this keeps the suite fast."""
    wallets = str(tmp_path_factory.mktemp("console") / "wallets.sqlite")
    btc = ["--exchange", "kraken", "--asset", "BTC"]

    def transfers() -> dict[str, Any]:
        deposit = run_console(env, "deposit", *btc, "--amount", "1.5", "--db", wallets)
        withdraw = run_console(env, "withdraw", *btc, "--amount", "2", "--db", wallets)
        return {"deposit": deposit, "withdraw": withdraw, "db": wallets}

    jobs: dict[str, Callable[[], Any]] = {
        name: functools.partial(run_console, env, name, "--db", ledger_db)
        for name in ("orders", "trades", "positions", "balances", "audit")
    }
    jobs["transfers"] = transfers
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def finished(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 0, (run.stdout, run.stderr)
    assert run.stderr == ""
    return run.stdout


def test_console_orders_table(console: dict[str, Any]) -> None:
    rows = table(finished(console["orders"]))
    assert [row["order id"] for row in rows] == ALL_ORDERS
    shown = {row["order id"]: row for row in rows}
    assert shown["o1"] == {
        "time": "2024-03-01 10:00:00.000",
        "exchange": "kraken",
        "order id": "o1",
        "symbol": "BTC/USD",
        "side": "buy",
        "type": "limit",
        "amount": "0.004",
        "price": "60000",
        "filled": "0.004",
        "remaining": "0.000",
        "locked": "0.000 USD",
        "status": "filled",
        "strategy": "grid",
    }
    assert shown["o5"]["locked"] == "305.305 USD"
    assert (shown["o2"]["filled"], shown["o2"]["remaining"]) == ("0.001", "0.001")
    assert (shown["o4"]["type"], shown["o4"]["price"], shown["o4"]["strategy"]) == (
        "market",
        "",
        "",
    )


def test_console_trades_table(console: dict[str, Any]) -> None:
    rows = table(finished(console["trades"]))
    assert [row["order id"] for row in rows] == ALL_TRADES
    shown = {row["order id"]: row for row in rows}
    assert shown["o2"] == {
        "time": "2024-03-02 09:30:00.000",
        "exchange": "kraken",
        "symbol": "BTC/USD",
        "side": "sell",
        "amount": "0.001",
        "price": "61000",
        "value": "61",
        "fee": "0.061 USD",
        "P&L": "0.879",
        "status": "partial",
        "order id": "o2",
        "strategy": "grid",
    }
    assert (shown["o1"]["amount"], shown["o1"]["value"], shown["o1"]["P&L"]) == ("0.004", "240", "")
    assert shown["o4"]["fee"] == "0.775 USDT"
    assert shown["o8"]["P&L"] == "19.38"


def test_console_positions_table(console: dict[str, Any]) -> None:
    rows = table(finished(console["positions"]))
    assert [f"{row['exchange']} {row['symbol']}" for row in rows] == ALL_POSITIONS
    assert rows[0] == {
        "opened": "2024-03-04 12:01:00.000",
        "exchange": "kraken",
        "symbol": "ETH/USD",
        "side": "long",
        "amount": "0",
        "entry": "3000",
        "mark": "3200",
        "unrealized": "0",
        "realized": "19.38",
        "status": "closed",
        "closed": "2024-03-05 00:01:00.000",
        "strategy": "momentum",
    }
    assert (rows[1]["side"], rows[1]["amount"], rows[1]["unrealized"]) == (
        "short",
        "0.25",
        "-0.775",
    )
    assert (rows[2]["amount"], rows[2]["unrealized"], rows[2]["closed"]) == ("0.003", "2.82", "")


def test_console_balances_table(console: dict[str, Any]) -> None:
    rows = table(finished(console["balances"]))
    shown = {(row["exchange"], row["asset"]): row for row in rows}
    assert list(shown) == list(BALANCES)
    assert shown["kraken", "USD"] == {
        "exchange": "kraken",
        "asset": "USD",
        "available": "99534.774",
        "locked": "305.305",
        "total": "99840.079",
        "updated": "2024-03-05 00:01:00.000",
    }
    assert (shown["kraken", "BTC"]["available"], shown["kraken", "BTC"]["locked"]) == (
        "1.002",
        "0.001",
    )
    assert shown["kraken", "ETH"]["total"] == "0.00"


def test_console_audit(console: dict[str, Any]) -> None:
    assert finished(console["audit"]).strip() == "✓ ledger invariants hold"


def test_console_deposit_and_withdraw(console: dict[str, Any]) -> None:
    runs = console["transfers"]
    assert finished(runs["deposit"]).strip() == (
        "deposit of 1.5 BTC on kraken: recorded. available 1.5, locked 0, total 1.5"
    )
    withdraw = runs["withdraw"]
    line = assert_user_error(withdraw.returncode, withdraw.stdout, withdraw.stderr)
    assert line.startswith("error: amount=2:"), line
    assert "1.5 is available" in line
    [wallet] = balances(runs["db"])
    assert (wallet["available_balance"], wallet["total_balance"]) == ("1.50000000", "1.50000000")


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["orders", "--limit", "abc"], "'--limit'"),
        (["deposit", "--asset", "BTC", "--amount", "1"], "'--exchange'"),
        (["no-such-command"], "'no-such-command'"),
    ],
)
@pytest.mark.fault("bad input")
def test_usage_mistakes_typer_catches_are_one_line_too(
    env: dict[str, str], args: list[str], names: str
) -> None:
    result = run_console(env, *args)
    line = assert_user_error(result.returncode, result.stdout, result.stderr)
    assert names in line
