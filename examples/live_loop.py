"""A live bot's bookkeeping loop, run against a simulated Binance account (no account, no
network): something trades on the account, the bot syncs (which marks its positions), and
checks that the ledger matches the exchange.

Run from the repository:  .venv/bin/python examples/live_loop.py [DATABASE]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# The simulated account lives with the tests.
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

import tradedb
from sim_binance import SimulatedBinance

START = 1_700_000_000_000


def run(database: Path, rounds: int = 3) -> tradedb.TradeDB:
    account = SimulatedBinance(balances={"USDT": "50000", "BTC": "1"}, start_ms=START)
    db = tradedb.open(database)
    # The first sync opens the ledger's wallets at the account's balances.
    db.accounts.sync(
        "binance", symbols=["BTC/USDT"], since=START, apply=True, client=account.client()
    )
    for round_number in range(rounds):
        # What the bot (or a person on the website) does on the exchange.
        price = 30000 + 100 * round_number
        order_id = account.place("BTC/USDT", "buy", "limit", "0.1", str(price))
        account.fill(order_id, "0.05", fee="0.00005")
        # The bookkeeping: one sync.
        report = db.accounts.sync(
            "binance",
            symbols=["BTC/USDT"],
            since=START,
            default_strategy="loop",
            client=account.client(),
        )
        # The sync marked the open position to the market's last price as well.
        print(report.summary())
    return db


def main() -> None:
    folder = tempfile.mkdtemp(prefix="tradedb-live-")
    database = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(folder) / "live.sqlite"
    with run(database) as db:
        problems = db.ledger.audit()
        print(f"audit: {problems or 'clean'}")
        for wallet in db.ledger.wallets(exchange="binance"):
            print(
                f"{wallet.asset}: {wallet.available_balance:f} available, "
                f"{wallet.locked_balance:f} locked"
            )


if __name__ == "__main__":
    main()
