"""Transactions have modes: a write never hides inside a read snapshot, and the store's
write helpers refuse to run outside a write transaction. Either way nothing is written,
and no operation reports success that is later rolled back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradedb.services.ledger import Ledger
from tradedb.store import Store
from tradedb.store.database import TransactionModeError
from tradedb.store.ledger import WalletChange

pytestmark = pytest.mark.fault("bad input")


def test_a_deposit_inside_a_read_snapshot_is_refused_and_writes_nothing(store: Store) -> None:
    ledger = Ledger(store)
    ledger.deposit(exchange="kraken", asset="USD", amount="1")
    with store.db.snapshot(), pytest.raises(TransactionModeError, match="read snapshot"):
        ledger.deposit(exchange="kraken", asset="USD", amount="5")
    assert store.ledger.balances("kraken")["USD"].available == 1
    assert store.movements.count() == 1


def test_a_write_transaction_inside_a_snapshot_is_refused(store: Store) -> None:
    with store.db.snapshot(), pytest.raises(TransactionModeError), store.db.transaction():
        pass  # pragma: no cover - never entered


def test_a_snapshot_inside_a_write_transaction_sees_its_writes(store: Store) -> None:
    ledger = Ledger(store)
    with store.db.transaction():
        ledger.deposit(exchange="kraken", asset="USD", amount="2")
        with store.db.snapshot():
            assert store.ledger.balances("kraken")["USD"].available == 2
    assert store.ledger.balances("kraken")["USD"].available == 2


@pytest.mark.parametrize("where", ["outside", "snapshot"])
def test_write_helpers_refuse_to_run_outside_a_write_transaction(store: Store, where: str) -> None:
    change = [WalletChange("USD", "deposit", available=Decimal(3))]
    calls = [
        lambda: store.ledger.change_wallets("kraken", change, 1_700_000_000_000),
        lambda: store.trades.insert_checked({"symbol": "BTC/USD"}),
    ]
    for call in calls:
        if where == "snapshot":
            with store.db.snapshot(), pytest.raises(TransactionModeError, match="read snapshot"):
                call()
        else:
            with pytest.raises(TransactionModeError, match="no transaction"):
                call()
    assert store.wallets.count() == 0
    assert store.movements.count() == 0
    assert store.trades.count() == 0
