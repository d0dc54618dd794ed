"""The ledger's invariants, checked against the database as it stands.

Run after every fault in the crash tests, by the stateful property test after every
step, and by `tradedb audit` for users. Each problem is one line naming what disagrees.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from tradedb.models.values import market_assets
from tradedb.services.ledger.arithmetic import exact
from tradedb.store import Store
from tradedb.store.ledger import Balance

ZERO = Decimal(0)
# Journal kinds that move funds into or out of the ledger without a trade.
TRANSFER_KINDS = ("opening", "deposit", "withdrawal", "sync")
# Kinds after which the exchange, not the ledger's orders, accounts for locked funds.
EXTERNAL_KINDS = ("opening", "sync")


@exact
def audit(store: Store) -> list[str]:
    """Every broken invariant, as one line each; an empty list means all hold."""
    records = store.ledger
    with store.db.snapshot():
        problems = records.integrity_problems()
        wallets = records.wallet_rows()
        problems += _journal_explains_wallets(wallets, records.journal_sums())
        problems += _trades_explain_totals(
            wallets, records.trade_flows(), records.movement_sums(TRANSFER_KINDS)
        )
        problems += _orders_match_fills(records.order_fill_sums())
        problems += _locks_match_orders(
            wallets,
            records.reserved_by_live_orders(),
            records.wallets_with_movements(EXTERNAL_KINDS),
            records.final_orders_holding_funds(),
        )
        problems += _positions_match_trades(records.position_pnl_sums())
    return problems


def _journal_explains_wallets(
    wallets: dict[tuple[str, str], Balance], journal: dict[tuple[str, str], Balance]
) -> list[str]:
    problems = []
    for key in sorted(set(wallets) | set(journal)):
        wallet = wallets.get(key, Balance(ZERO, ZERO))
        lines = journal.get(key, Balance(ZERO, ZERO))
        if wallet != lines:
            problems.append(
                f"wallet {_name(key)}: available {wallet.available} locked {wallet.locked}, "
                f"but its movements add up to {lines.available} and {lines.locked}"
            )
    return problems


def _trades_explain_totals(
    wallets: dict[tuple[str, str], Balance],
    flows: list[tuple[str, str, str, str | None, Decimal, Decimal, Decimal]],
    transfers: dict[tuple[str, str], Decimal],
) -> list[str]:
    """total = deposits - withdrawals (+ opening and sync adjustments) + trade flows - fees."""
    expected: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal, transfers)
    for exchange, symbol, side, fee_currency, amount, value, fee in flows:
        base, quote = market_assets(symbol)
        sign = 1 if side == "buy" else -1
        expected[exchange, base] += sign * amount
        expected[exchange, quote] -= sign * value
        if fee:
            expected[exchange, fee_currency or quote] -= fee
    problems = []
    for key in sorted(set(wallets) | set(expected)):
        total = wallets[key].total if key in wallets else ZERO
        if total != expected[key]:
            problems.append(
                f"wallet {_name(key)}: total {total}, but transfers, trades and fees "
                f"add up to {expected[key]}"
            )
    return problems


def _orders_match_fills(
    orders: list[tuple[str, str, Decimal, Decimal, Decimal, Decimal]],
) -> list[str]:
    problems = []
    for exchange, order_id, amount, filled, remaining, fills in orders:
        if filled != fills:
            problems.append(
                f"order {exchange}:{order_id}: filled_amount {filled}, but its fills add up "
                f"to {fills}"
            )
        if remaining != amount - filled:
            problems.append(
                f"order {exchange}:{order_id}: remaining_amount {remaining} is not amount "
                f"{amount} - filled {filled}"
            )
    return problems


def _locks_match_orders(
    wallets: dict[tuple[str, str], Balance],
    reserved: dict[tuple[str, str], Decimal],
    external: set[tuple[str, str]],
    final_holding: list[tuple[str, str, Decimal]],
) -> list[str]:
    problems = [
        f"order {exchange}:{order_id} is final but still holds {amount} locked"
        for exchange, order_id, amount in final_holding
    ]
    for key in sorted(set(wallets) | set(reserved)):
        if key in external:
            continue  # the exchange's figure, which may include orders we never saw
        locked = wallets[key].locked if key in wallets else ZERO
        if locked != reserved.get(key, ZERO):
            problems.append(
                f"wallet {_name(key)}: locked {locked}, but live orders reserve "
                f"{reserved.get(key, ZERO)}"
            )
    return problems


def _positions_match_trades(positions: list[tuple[int, str, Decimal, Decimal]]) -> list[str]:
    return [
        f"position {position_id}: realized_pnl {realized}, but its trades' profit_loss add "
        f"up to {total}"
        for position_id, _status, realized, total in positions
        if realized != total
    ]


def _name(key: tuple[str, str]) -> str:
    return f"{key[0]}:{key[1]}"
