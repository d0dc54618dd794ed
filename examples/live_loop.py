"""A live bot's loop, run against a simulated Binance account (no account, no network):
submit an order, sync (which records its fills, settles any order whose answer was lost
and marks the positions), and check that the ledger matches the exchange.

Each order's client order id names the decision (the round), so placing it again, as a
bot restarted after a crash would, sends nothing.

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
        # The decision, and the order it places: stored, then sent once.
        price = 30000 + 100 * round_number
        decision = {
            "symbol": "BTC/USDT",
            "side": "buy",
            "order_type": "limit",
            "amount": "0.1",
            "price": str(price),
            "strategy": "loop",
            "client_order_id": f"loop-{round_number}",
        }
        placed = db.accounts.place("binance", client=account.client(), **decision)
        # As a bot restarted after a crash would: the same decision, the same id.
        again = db.accounts.place("binance", client=account.client(), **decision)
        print(f"order {placed.order.order_id}: {placed.outcome}; placed again: {again.outcome}")
        # The market fills half of it.
        account.fill(placed.order.order_id, "0.05", fee="0.00005")
        # The bookkeeping: one sync, which marks the open position to the last price too.
        report = db.accounts.sync(
            "binance", symbols=["BTC/USDT"], since=START, client=account.client()
        )
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
