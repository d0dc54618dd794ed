"""One strategy's share of the paper wallet: its cash, its coins and its positions.

Strategies of one session trade from one exchange wallet in the ledger, so the ledger
alone cannot stop one of them from spending another's money. Each strategy therefore has
an account here: the quote currency and base coins that are its own, what its live orders
hold of them, and its positions, kept with the ledger's own position rules
(`tradedb.services.ledger.positions.apply_fill`), so that the P&L reported per strategy is
exactly what the ledger records for it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from tradedb.models.fields import Side
from tradedb.services.ledger.arithmetic import quantize
from tradedb.services.ledger.positions import Holding, apply_fill, unrealized_pnl

ZERO = Decimal(0)


@dataclass
class Activity:
    """What a strategy did in a session."""

    orders: int = 0  # orders the exchange accepted (each recorded in the ledger)
    fills: int = 0
    canceled: int = 0
    # Orders refused before reaching the ledger: funds or coins the strategy lacked.
    rejected: int = 0
    fees: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    bought: Decimal = ZERO  # quote paid for buys, fees excluded
    sold: Decimal = ZERO  # quote received for sells, fees excluded


@dataclass
class Account:
    strategy: str
    capital: Decimal
    cash: Decimal = ZERO  # quote currency free to spend
    reserved_cash: Decimal = ZERO  # quote held by live buy orders
    coins: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    reserved_coins: defaultdict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    positions: dict[str, Holding] = field(default_factory=dict)
    activity: Activity = field(default_factory=Activity)

    @classmethod
    def funded(cls, strategy: str, capital: Decimal) -> Account:
        return cls(strategy, capital, cash=capital)

    # --- what the strategy may use -------------------------------------------------------

    def holding(self, symbol: str) -> Decimal:
        """Base coins of `symbol` the strategy holds, free or held by its live orders."""
        return self.coins[symbol] + self.reserved_coins[symbol]

    def reserve_cash(self, amount: Decimal) -> bool:
        if amount > self.cash:
            return False
        self.cash -= amount
        self.reserved_cash += amount
        return True

    def reserve_coins(self, symbol: str, amount: Decimal) -> bool:
        if amount > self.coins[symbol]:
            return False
        self.coins[symbol] -= amount
        self.reserved_coins[symbol] += amount
        return True

    def release(self, side: Side, symbol: str, amount: Decimal) -> None:
        """An order gave up what it held: it was canceled, or it filled."""
        if side == "buy":
            self.reserved_cash -= amount
            self.cash += amount
        else:
            self.reserved_coins[symbol] -= amount
            self.coins[symbol] += amount

    # --- fills ---------------------------------------------------------------------------

    def settle(
        self,
        side: Side,
        symbol: str,
        amount: Decimal,
        price: Decimal,
        *,
        value: Decimal,
        fee: Decimal,
    ) -> Decimal | None:
        """Book a fill whose order's holding has already been released; return the P&L
        it realised (None for a fill that opened or grew the position), as the ledger's
        position rules compute it."""
        direction = 1 if side == "buy" else -1
        change = apply_fill(self.positions.get(symbol), direction, amount, price, fee, value=value)
        after = change.existing if change.existing is not None else change.opened
        if after is None or not after.amount:
            self.positions.pop(symbol, None)
        else:
            self.positions[symbol] = after
        if side == "buy":
            self.cash -= value + fee
            self.coins[symbol] += amount
            self.activity.bought += value
        else:
            self.coins[symbol] -= amount
            self.cash += value - fee
            self.activity.sold += value
        self.activity.fills += 1
        self.activity.fees += fee
        if change.profit_loss is not None:
            self.activity.realized_pnl += change.profit_loss
        return change.profit_loss

    # --- valuation -----------------------------------------------------------------------

    def equity(self, marks: dict[str, Decimal]) -> Decimal:
        """Cash plus coins at their marks, in the quote currency, half-even at 1e-8."""
        value = self.cash + self.reserved_cash
        for symbol, held in self.coins.items():
            coins = held + self.reserved_coins[symbol]
            if coins:
                value += quantize(coins * marks[symbol])
        return value

    def unrealized_pnl(self, marks: dict[str, Decimal]) -> Decimal:
        return sum(
            (unrealized_pnl(held, marks[symbol]) for symbol, held in self.positions.items()),
            ZERO,
        )
