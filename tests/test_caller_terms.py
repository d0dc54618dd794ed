"""Errors speak the caller's language: they name the caller's own field (`amount`, not the
journal's `available_change` or a CHECK constraint), and an argument that would make the
call succeed as the caller spells it: `strict=True` from Python, `--strict` on the
command line, `"force": true` to an MCP agent.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from mcp.server.mcpserver.exceptions import ToolError
from typer.testing import CliRunner

import tradedb
from tradedb.cli.app import app
from tradedb.errors import AmountOutOfRange, TradeDBError, ValidationError
from tradedb.mcp.errors import tool_errors

pytestmark = pytest.mark.fault("bad input")

USER_ERROR = 2
# DECIMAL(20,8)'s largest value: what a wallet holds on either engine.
WALLET_CAP = "999999999999.99999999"


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line(code: int, stdout: str, stderr: str) -> str:
    assert code == USER_ERROR, (code, stdout, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def journal(db: tradedb.TradeDB) -> tuple[int, int, list[Decimal]]:
    wallets = db.tables.wallets.list({}, limit=100).items
    return (
        db.tables.wallet_movements.count({}),
        db.tables.balance_history.count({}),
        [wallet.available_balance for wallet in wallets],
    )


# --- amounts beyond what a wallet holds -------------------------------------------------------


def test_a_deposit_over_the_cap_names_amount_on_the_command_line(tmp_path: Path) -> None:
    database = str(tmp_path / "bot.sqlite")
    deposit = ("deposit", "--exchange", "kraken", "--asset", "USD", "--db", database)

    line = one_line(*cli(*deposit, "--amount", "1000000000000"))

    assert line.startswith("error: amount='1000000000000': does not fit DECIMAL(20,8)")
    assert "available_change" not in line
    assert not Path(database).exists()  # refused before the database was created


def test_a_deposit_that_overflows_the_wallet_names_amount_the_balance_and_the_limit(
    tmp_path: Path,
) -> None:
    database = str(tmp_path / "bot.sqlite")
    deposit = ("deposit", "--exchange", "kraken", "--asset", "USD", "--db", database)
    assert cli(*deposit, "--amount", "900000000000")[0] == 0
    with tradedb.open(database, readonly=True) as db:
        before = journal(db)

    line = one_line(*cli(*deposit, "--amount", "900000000000"))

    assert line == (
        "error: amount=900000000000: depositing 900000000000 USD would make the available "
        f"balance of USD on kraken 1800000000000, beyond ±{WALLET_CAP}, the most a wallet "
        "holds (DECIMAL(20,8))"
    )
    with tradedb.open(database, readonly=True) as db:
        assert journal(db) == before


def test_the_library_names_amount_on_both_engines(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        cap = WALLET_CAP
        nearly = Decimal(cap).to_integral_value() - 1
        db.ledger.deposit(exchange="kraken", asset="USD", amount=nearly)
        before = journal(db)

        with pytest.raises(AmountOutOfRange) as caught:
            db.ledger.deposit(exchange="kraken", asset="USD", amount="5")

        assert (caught.value.field, caught.value.value) == ("amount", Decimal(5))
        assert "balance of USD on kraken" in caught.value.rule
        assert f"beyond ±{cap}, the most a wallet holds (DECIMAL(20,8))" in caught.value.rule
        assert "CHECK" not in str(caught.value)
        assert "ck_wallets" not in str(caught.value)
        assert journal(db) == before


# --- arguments as each caller spells them -------------------------------------------------------


def test_an_argument_is_named_as_the_library_spells_it_and_as_the_cli_does(
    tmp_path: Path,
) -> None:
    data = tmp_path / "kraken"
    data.mkdir()
    (data / "prices.csv").write_text("1514764800,1,1,1,1,1,1\n")
    database = str(tmp_path / "bot.sqlite")

    with tradedb.open(database) as db, pytest.raises(ValidationError) as caught:
        db.market.import_path(data / "prices.csv")
    line = one_line(*cli("import", str(data / "prices.csv"), "--db", database))

    assert "give `symbol=SYMBOL`" in str(caught.value)
    assert "give `--symbol SYMBOL`" in line
    assert "symbol=SYMBOL" not in line


def test_an_mcp_tool_names_its_own_argument() -> None:
    @tool_errors
    def tool(*, force: bool = False) -> None:
        raise TradeDBError("it exists; give `force=True` to replace it, or `db=PATH`")

    with pytest.raises(ToolError) as caught:
        tool()

    assert str(caught.value) == 'it exists; give `"force": true` to replace it, or `db=PATH`'


def test_a_restore_over_an_existing_file_names_force_as_each_caller_spells_it(
    tmp_path: Path,
) -> None:
    from tradedb.api.backups import Backups

    database = tmp_path / "bot.sqlite"
    tradedb.open(database).close()
    folder = tmp_path / "backups"
    manifest = Backups(folder, database=database).snapshot()
    existing = tmp_path / "existing.sqlite"
    tradedb.open(existing).close()

    with pytest.raises(TradeDBError) as caught:
        Backups(folder).restore(manifest.id, existing)
    line = one_line(
        *cli("restore", manifest.id, "--to", str(existing), "--backup-dir", str(folder))
    )

    assert "give `force=True` to replace it" in str(caught.value)
    assert "give `--force` to replace it" in line
    assert "force=True" not in line
