"""The ledger service: orders, fills, positions, wallets and their invariants."""

from tradedb.services.ledger.ledger import (
    BalanceDifference,
    FillResult,
    Ledger,
    MarkResult,
    Reconciliation,
    Transfer,
    TransferResult,
)

__all__ = [
    "BalanceDifference",
    "FillResult",
    "Ledger",
    "MarkResult",
    "Reconciliation",
    "Transfer",
    "TransferResult",
]
