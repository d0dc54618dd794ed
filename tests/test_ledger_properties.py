"""Property tests of the ledger.

A stateful test drives random sequences of deposits, withdrawals, orders, fills (partial,
full, re-delivered, refused), cancels, expiries, marks and syncs through the Ledger, keeps
its own model of what the wallets, orders and positions must hold (plain Decimals), and
checks the database against that model, and audit(), after every step.

Property tests of the pure position arithmetic (apply_fill, unrealized_pnl) follow.
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tradedb.errors import DuplicateRecord, InsufficientFunds, InvalidTransition
from tradedb.services.ledger import Ledger
from tradedb.services.ledger.audit import audit
from tradedb.services.ledger.positions import Holding, PositionChange, apply_fill, unrealized_pnl
from tradedb.store import Store

D = Decimal
ZERO = D(0)
UNIT = D("0.00000001")
TS = 1_700_000_000_000

EXCHANGES = ("kraken", "binance")
SYMBOLS = ("BTC/USD", "ETH/BTC")
ASSETS = ("USD", "BTC", "ETH", "BNB")
STRATEGIES = ("alpha", "beta", None)
ORDER_TYPES = ("market", "limit", "stop_loss", "take_profit")
DEFAULT_RESERVE = {"kraken": D("0.0026"), "binance": D("0.001")}
LIVE = ("pending", "open")


def scaled(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    """Decimals low..high units of 10**-places."""
    return st.integers(low, high).map(lambda n: D(n).scaleb(-places))


DEPOSITS = {
    "USD": scaled(1, 500_000, 2),  # up to 5000
    "BTC": scaled(1, 10_000, 3),  # up to 10
    "ETH": scaled(1, 50_000, 3),  # up to 50
    "BNB": scaled(1, 2_000, 3),  # up to 2
}
ORDER_AMOUNTS = {"BTC/USD": scaled(1, 2_000, 3), "ETH/BTC": scaled(10, 5_000, 3)}
PRICES = {"BTC/USD": scaled(100, 30_000, 2), "ETH/BTC": scaled(1, 99, 2)}
FEE_KINDS = st.sampled_from(["none", "quote", "quote-named", "base", "third"])
FEE_RATES = st.sampled_from([D("0.001"), D("0.0026"), D("0.0075")])
SLIPPAGE = st.sampled_from([D("0.95"), D("0.99"), D(1), D(1), D("1.01"), D("1.05")])


def assets_of(symbol: str) -> tuple[str, str]:
    base, quote = symbol.split("/")
    return base, quote


def q8(value: Decimal) -> Decimal:
    return value.quantize(UNIT, rounding=ROUND_HALF_EVEN)


def ceil8(value: Decimal) -> Decimal:
    return value.quantize(UNIT, rounding=ROUND_CEILING)


def pro_rata(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """total x part / whole at 8 decimals, half-even from the exact value; all of it for
    the last part."""
    if part >= whole:
        return total
    units = round(Fraction(total) * Fraction(part) / Fraction(whole) / Fraction(UNIT))
    return D(units).scaleb(-8)


def ccxt_number(value: Decimal, form: int) -> object:
    """The same number as ccxt may give it: float, str or Decimal."""
    if form == 0 and len(value.normalize().as_tuple().digits) <= 15:
        as_float = float(value)
        assert D(repr(as_float)) == value
        return as_float
    return str(value) if form == 1 else value


_templates: list[Path] = []


def fresh_database(folder: Path) -> Path:
    """A new, empty database in `folder`: a copy of one created (and migrated) once per
    process, since running the migrations for every example would take most of the time."""
    if not _templates:
        template = Path(tempfile.mkdtemp(prefix="tradedb-template-"))
        atexit.register(shutil.rmtree, template, True)
        Store.open(template / "empty.sqlite").close()
        _templates.append(template / "empty.sqlite")
    path = folder / "ledger.sqlite"
    source, target = sqlite3.connect(_templates[0]), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return path


@dataclass
class ModelOrder:
    exchange: str
    symbol: str
    side: str
    amount: Decimal
    price: Decimal | None
    strategy: str | None
    status: str
    locked: Decimal
    locked_asset: str
    filled: Decimal = ZERO

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.filled


@dataclass(frozen=True)
class ModelFill:
    exchange: str
    order_id: str
    trade_id: str
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str | None


@dataclass
class Model:
    """What the database must hold, kept apart from it."""

    # Wallet totals: deposits - withdrawals + trade flows - fees, per (exchange, asset).
    totals: defaultdict[tuple[str, str], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )
    orders: dict[str, ModelOrder] = field(default_factory=dict)
    fills: list[ModelFill] = field(default_factory=list)
    # Signed base amount of the open position of each (exchange, symbol, strategy).
    net: defaultdict[tuple[str, str, str | None], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )
    # The trading result of each key in quote terms, from cash flows alone: what it paid
    # and received, less the fees P&L counts. Realized plus unrealized P&L must equal it
    # plus the net amount at the last price, within the rounding `tolerance` allows.
    cash: defaultdict[tuple[str, str, str | None], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )
    tolerance: defaultdict[tuple[str, str, str | None], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal)
    )
    last_price: dict[tuple[str, str, str | None], Decimal] = field(default_factory=dict)
    # Transfers recorded with a reference: (kind, exchange, reference) -> (asset, amount).
    references: dict[tuple[str, str, str], tuple[str, Decimal]] = field(default_factory=dict)

    def locked(self, exchange: str, asset: str) -> Decimal:
        return sum(
            (
                o.locked
                for o in self.orders.values()
                if o.status in LIVE and o.exchange == exchange and o.locked_asset == asset
            ),
            ZERO,
        )

    def available(self, exchange: str, asset: str) -> Decimal:
        return self.totals[exchange, asset] - self.locked(exchange, asset)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="tradedb-ledger-"))
        self.store = Store.open(fresh_database(self.folder))
        self.ledger = Ledger(self.store)
        self.model = Model()
        self.clock = TS
        self.serial = 0
        self.trade_serial = dict.fromkeys(EXCHANGES, 0)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- helpers -------------------------------------------------------------------------

    def tick(self) -> int:
        self.clock += 1_000
        return self.clock

    def contents(self) -> dict[str, list[tuple[Any, ...]]]:
        with self.store.db.snapshot() as conn:
            tables = [
                name
                for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
                )
            ]
            return {
                table: conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
                for table in tables
            }

    def refused(self, error: type[Exception], action: Any) -> Exception:
        before = self.contents()
        with pytest.raises(error) as caught:
            action()
        assert self.contents() == before
        return caught.value

    def live_orders(self) -> list[str]:
        return sorted(i for i, o in self.model.orders.items() if o.status in LIVE)

    def has_live_orders(self) -> bool:
        return bool(self.live_orders())

    def has_orders(self) -> bool:
        return bool(self.model.orders)

    def has_fills(self) -> bool:
        return bool(self.model.fills)

    def has_open_positions(self) -> bool:
        return any(self.model.net.values())

    def has_references(self) -> bool:
        return bool(self.model.references)

    # --- wallets -------------------------------------------------------------------------

    @initialize(data=st.data(), trades=st.integers(2, 6))
    def fund_and_trade(self, data: st.DataObject, trades: int) -> None:
        """Every run starts with funds on both exchanges and a few filled orders, so that
        the random steps find positions to grow, reduce and flip."""
        for exchange in EXCHANGES:
            for asset in ASSETS:
                self._deposit(exchange, asset, data.draw(DEPOSITS[asset]), None)
        for _ in range(trades):
            self.place_and_fill(
                exchange=data.draw(st.sampled_from(EXCHANGES), label="exchange"),
                symbol=data.draw(st.sampled_from(SYMBOLS), label="symbol"),
                side=data.draw(st.sampled_from(["buy", "sell"]), label="side"),
                order_type="market",
                strategy=data.draw(st.sampled_from(STRATEGIES), label="strategy"),
                fee_kind=data.draw(FEE_KINDS, label="fee kind"),
                fee_rate=data.draw(FEE_RATES, label="fee rate"),
                data=data,
            )

    def _deposit(self, exchange: str, asset: str, amount: Decimal, reference: str | None) -> None:
        result = self.ledger.deposit(
            exchange=exchange,
            asset=asset,
            amount=amount,
            timestamp=self.tick(),
            reference=reference,
        )
        assert not result.duplicate
        self.model.totals[exchange, asset] += amount
        if reference is not None:
            self.model.references["deposit", exchange, reference] = (asset, amount)

    @rule(
        exchange=st.sampled_from(EXCHANGES),
        asset=st.sampled_from(ASSETS),
        data=st.data(),
        with_reference=st.booleans(),
    )
    def deposit(self, exchange: str, asset: str, data: st.DataObject, with_reference: bool) -> None:
        reference = f"dep-{self.serial}" if with_reference else None
        self.serial += 1
        self._deposit(exchange, asset, data.draw(DEPOSITS[asset]), reference)

    @rule(
        exchange=st.sampled_from(EXCHANGES),
        asset=st.sampled_from(ASSETS),
        fraction=st.sampled_from([D("0.1"), D("0.5"), D(1), D("1.5"), D(3)]),
        extra=st.sampled_from([ZERO, UNIT, D("0.01")]),
        with_reference=st.booleans(),
    )
    def withdraw(
        self,
        exchange: str,
        asset: str,
        fraction: Decimal,
        extra: Decimal,
        with_reference: bool,
    ) -> None:
        available = self.model.available(exchange, asset)
        amount = q8(available * fraction) + extra
        if amount <= 0:
            return
        reference = f"wd-{self.serial}" if with_reference else None
        self.serial += 1
        event(f"withdrawal {'refused' if amount > available else 'done'}")
        if amount > available:
            self.refused(
                InsufficientFunds,
                lambda: self.ledger.withdraw(
                    exchange=exchange, asset=asset, amount=amount, reference=reference
                ),
            )
            return
        result = self.ledger.withdraw(
            exchange=exchange,
            asset=asset,
            amount=amount,
            timestamp=self.tick(),
            reference=reference,
        )
        assert not result.duplicate
        assert result.wallet.available_balance == available - amount
        self.model.totals[exchange, asset] -= amount
        if reference is not None:
            self.model.references["withdrawal", exchange, reference] = (asset, amount)

    @precondition(has_references)
    @rule(data=st.data())
    def repeat_transfer(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.model.references)))
        kind, exchange, reference = key
        asset, amount = self.model.references[key]
        transfer = self.ledger.deposit if kind == "deposit" else self.ledger.withdraw
        before = self.contents()
        result = transfer(
            exchange=exchange,
            asset=asset,
            amount=amount,
            timestamp=self.tick(),
            reference=reference,
        )
        assert result.duplicate
        assert self.contents() == before

    # --- orders --------------------------------------------------------------------------

    @rule(
        exchange=st.sampled_from(EXCHANGES),
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(["buy", "sell"]),
        order_type=st.sampled_from(ORDER_TYPES),
        strategy=st.sampled_from(STRATEGIES),
        status=st.sampled_from(LIVE),
        rate=st.sampled_from([None, None, ZERO, D("0.002")]),
        data=st.data(),
    )
    def place_order(
        self,
        *,
        exchange: str,
        symbol: str,
        side: str,
        order_type: str,
        strategy: str | None,
        status: str,
        rate: Decimal | None,
        data: st.DataObject,
    ) -> None:
        self._place(
            exchange=exchange,
            symbol=symbol,
            side=side,
            order_type=order_type,
            strategy=strategy,
            status=status,
            rate=rate,
            data=data,
        )

    @rule(
        exchange=st.sampled_from(EXCHANGES),
        symbol=st.sampled_from(SYMBOLS),
        side=st.sampled_from(["buy", "sell"]),
        order_type=st.sampled_from(ORDER_TYPES),
        strategy=st.sampled_from(STRATEGIES),
        fee_kind=FEE_KINDS,
        fee_rate=FEE_RATES,
        data=st.data(),
    )
    def place_and_fill(
        self,
        *,
        exchange: str,
        symbol: str,
        side: str,
        order_type: str,
        strategy: str | None,
        fee_kind: str,
        fee_rate: Decimal,
        data: st.DataObject,
    ) -> None:
        """What a bot does most: an order that fills (wholly or partly) at once."""
        order_id = self._place(
            exchange=exchange,
            symbol=symbol,
            side=side,
            order_type=order_type,
            strategy=strategy,
            status="open",
            rate=None,
            data=data,
        )
        if order_id is not None:
            self._draw_fill(data, order_id, fee_kind, fee_rate)

    @precondition(has_open_positions)
    @rule(
        data=st.data(),
        fee_kind=FEE_KINDS,
        fee_rate=FEE_RATES,
        size=st.sampled_from(["all", "half", "more"]),
    )
    def reduce_position(
        self, data: st.DataObject, fee_kind: str, fee_rate: Decimal, size: str
    ) -> None:
        """An order against an open position: closes it, reduces it, or flips it."""
        keys = sorted((key for key, net in self.model.net.items() if net), key=repr)
        exchange, symbol, strategy = data.draw(st.sampled_from(keys), label="position")
        net = self.model.net[exchange, symbol, strategy]
        amount = abs(net)
        if size == "half" and q8(amount / 2):
            amount = q8(amount / 2)
        elif size == "more":
            amount += data.draw(ORDER_AMOUNTS[symbol], label="flip by")
        side = "sell" if net > 0 else "buy"
        order_id = self._place(
            exchange=exchange,
            symbol=symbol,
            side=side,
            order_type="market",
            strategy=strategy,
            status="open",
            rate=None,
            data=data,
            amount=amount,
        )
        if order_id is not None:
            self._draw_fill(data, order_id, fee_kind, fee_rate, whole=True)

    def _place(
        self,
        *,
        exchange: str,
        symbol: str,
        side: str,
        order_type: str,
        strategy: str | None,
        status: str,
        rate: Decimal | None,
        data: st.DataObject,
        amount: Decimal | None = None,
    ) -> str | None:
        if amount is None:
            amount = data.draw(ORDER_AMOUNTS[symbol], label="amount")
        price = None if order_type == "market" else data.draw(PRICES[symbol], label="price")
        base, quote = assets_of(symbol)
        if side == "sell":
            locked_asset, reserve = base, amount
        elif price is None:
            locked_asset, reserve = quote, ZERO
        else:
            fee_rate = DEFAULT_RESERVE[exchange] if rate is None else rate
            locked_asset, reserve = quote, ceil8(amount * price * (1 + fee_rate))
        order_id = f"o{self.serial}"
        self.serial += 1

        def place() -> Any:
            return self.ledger.place_order(
                exchange=exchange,
                order_id=order_id,
                symbol=symbol,
                side=side,
                order_type=order_type,
                amount=amount,
                price=price,
                strategy=strategy,
                timestamp=self.tick(),
                status=status,
                fee_reserve_rate=rate,
            )

        if reserve > self.model.available(exchange, locked_asset):
            event("order refused: insufficient funds")
            self.refused(InsufficientFunds, place)
            return None
        event("order placed")
        order = place()
        assert (order.status, order.locked_amount, order.remaining_amount) == (
            status,
            reserve,
            amount,
        )
        self.model.orders[order_id] = ModelOrder(
            exchange, symbol, side, amount, price, strategy, status, reserve, locked_asset
        )
        return order_id

    @precondition(has_orders)
    @rule(data=st.data())
    def reuse_an_order_id(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.model.orders)))
        taken = self.model.orders[order_id]
        exchange = data.draw(st.sampled_from(EXCHANGES))
        error = self.refused(
            DuplicateRecord,
            lambda: self.ledger.place_order(
                exchange=exchange,
                order_id=order_id,
                symbol="BTC/USD",
                side="sell",
                order_type="market",
                amount="0.001",
                timestamp=self.tick(),
            ),
        )
        assert taken.exchange in str(error)

    @precondition(has_orders)
    @rule(data=st.data(), how=st.sampled_from(["cancel", "expire", "open"]))
    def end_or_open_order(self, data: st.DataObject, how: str) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.model.orders)))
        order = self.model.orders[order_id]
        call = {
            "cancel": self.ledger.cancel_order,
            "expire": self.ledger.expire_order,
            "open": self.ledger.open_order,
        }[how]
        allowed = order.status == "pending" if how == "open" else order.status in LIVE
        if not allowed:
            self.refused(InvalidTransition, lambda: call(order.exchange, order_id))
            return
        when = self.tick()
        stored = call(order.exchange, order_id, timestamp=when)
        if how == "open":
            order.status = "open"
        else:
            order.status = "canceled" if how == "cancel" else "expired"
            order.locked = ZERO
            assert stored.canceled_at == when
        assert stored.status == order.status

    # --- fills ---------------------------------------------------------------------------

    @precondition(has_live_orders)
    @rule(data=st.data(), fee_kind=FEE_KINDS, fee_rate=FEE_RATES)
    def fill(self, data: st.DataObject, fee_kind: str, fee_rate: Decimal) -> None:
        order_id = data.draw(st.sampled_from(self.live_orders()), label="order")
        self._draw_fill(data, order_id, fee_kind, fee_rate)

    def _draw_fill(
        self,
        data: st.DataObject,
        order_id: str,
        fee_kind: str,
        fee_rate: Decimal,
        *,
        whole: bool = False,
    ) -> None:
        order = self.model.orders[order_id]
        remaining = order.remaining
        quantities: st.SearchStrategy[Decimal] = st.just(remaining)
        steps = int(remaining / D("0.001"))
        if steps and not whole:
            part = st.integers(1, steps).map(lambda n: D(n).scaleb(-3))
            quantities = st.one_of(quantities, part)
        quantity = data.draw(quantities, label="quantity")
        if order.price is not None and data.draw(st.booleans(), label="near the order price"):
            price = order.price * data.draw(SLIPPAGE, label="slippage")
        else:
            price = data.draw(PRICES[order.symbol], label="price")
        base, quote = assets_of(order.symbol)
        value = q8(quantity * price)
        fee, currency = ZERO, None
        if fee_kind in ("quote", "quote-named"):
            fee = q8(value * fee_rate)
            currency = quote if fee_kind == "quote-named" else None
        elif fee_kind == "base":
            fee, currency = q8(quantity * fee_rate), base
        elif fee_kind == "third":
            fee, currency = data.draw(scaled(1, 100, 4), label="BNB fee"), "BNB"
        self._fill(order_id, quantity, price, fee, currency)

    def _fill(
        self,
        order_id: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        currency: str | None,
    ) -> None:
        model = self.model
        order = model.orders[order_id]
        exchange = order.exchange
        base, quote = assets_of(order.symbol)
        value = q8(quantity * price)
        release = pro_rata(order.locked, quantity, order.remaining)
        paid, received = (quote, base) if order.side == "buy" else (base, quote)
        spent, got = (value, quantity) if order.side == "buy" else (quantity, value)
        available: defaultdict[str, Decimal] = defaultdict(Decimal)
        available[paid] += release - spent
        available[received] += got
        if fee:
            available[currency or quote] -= fee
        trade_id = f"T{self.trade_serial[exchange]}"
        self.trade_serial[exchange] += 1

        def record() -> Any:
            return self.ledger.record_fill(
                exchange=exchange,
                order_id=order_id,
                exchange_trade_id=trade_id,
                amount=quantity,
                price=price,
                fee=fee,
                fee_currency=currency,
                timestamp=self.tick(),
            )

        short = [a for a, change in available.items() if model.available(exchange, a) + change < 0]
        if short:
            note(f"fill {trade_id} of {order_id} needs more {short}")
            event("fill refused: insufficient funds")
            self.refused(InsufficientFunds, record)
            return
        result = record()
        if result.closed_position is None:
            event("fill: opens or grows a position")
        else:
            event("fill: flips a position" if result.position else "fill: closes a position")
        assert not result.duplicate
        assert (result.trade.total_value, result.trade.amount) == (value, quantity)
        # The model: wallets, the order, the position's amount.
        for asset, change in ((paid, -spent), (received, got)):
            model.totals[exchange, asset] += change
        if fee:
            model.totals[exchange, currency or quote] -= fee
        order.filled += quantity
        order.locked -= release
        order.status = "filled" if not order.remaining else "open"
        moved = quantity
        if currency == base and fee:
            moved = quantity - fee if order.side == "buy" else quantity + fee
        key = (exchange, order.symbol, order.strategy)
        direction = 1 if order.side == "buy" else -1
        model.net[key] += direction * moved
        # A quote fee is paid in cash; a base fee is already in the net amount (bought
        # quantity - fee, sold quantity + fee); a BNB fee is not counted in P&L at all.
        model.cash[key] -= direction * quantity * price
        if currency in (None, quote):
            model.cash[key] -= fee
        # Each fill may round: an average price (by half a unit per base unit held), its
        # fee's value, its realized and unrealized results (half a unit each).
        model.tolerance[key] += (abs(model.net[key]) + 2) * UNIT
        model.last_price[key] = price
        model.fills.append(ModelFill(exchange, order_id, trade_id, quantity, price, fee, currency))
        assert result.trade.status == ("filled" if order.status == "filled" else "partial")

    @precondition(has_live_orders)
    @rule(data=st.data())
    def overfill(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(self.live_orders()))
        order = self.model.orders[order_id]
        self.refused(
            InvalidTransition,
            lambda: self.ledger.record_fill(
                exchange=order.exchange,
                order_id=order_id,
                exchange_trade_id="too-much",
                amount=order.remaining + D("0.001"),
                price="1",
                timestamp=self.tick(),
            ),
        )

    @precondition(has_fills)
    @rule(data=st.data(), changed=st.booleans())
    def redeliver_fill(self, data: st.DataObject, changed: bool) -> None:
        delivered = data.draw(st.sampled_from(self.model.fills))

        def record(amount: Decimal) -> Any:
            return self.ledger.record_fill(
                exchange=delivered.exchange,
                order_id=delivered.order_id,
                exchange_trade_id=delivered.trade_id,
                amount=amount,
                price=delivered.price,
                fee=delivered.fee,
                fee_currency=delivered.fee_currency,
                timestamp=self.tick(),
            )

        if changed:
            self.refused(DuplicateRecord, lambda: record(delivered.amount + D("0.001")))
            return
        before = self.contents()
        result = record(delivered.amount)
        assert result.duplicate
        assert result.trade.exchange_trade_id == delivered.trade_id
        assert self.contents() == before

    # --- positions and sync --------------------------------------------------------------

    @rule(
        data=st.data(),
        by_symbol=st.sets(st.sampled_from(SYMBOLS)),
        by_pair=st.sets(st.tuples(st.sampled_from(EXCHANGES), st.sampled_from(SYMBOLS))),
    )
    def mark_to_market(
        self,
        data: st.DataObject,
        by_symbol: set[str],
        by_pair: set[tuple[str, str]],
    ) -> None:
        prices: dict[str | tuple[str, str], Decimal] = {}
        for symbol in sorted(by_symbol):
            prices[symbol] = data.draw(PRICES[symbol])
        for pair in sorted(by_pair):
            prices[pair] = data.draw(PRICES[pair[1]])
        open_before = self.store.ledger.open_positions()
        result = self.ledger.mark_to_market(prices, timestamp=self.tick())
        marked = {p.id: p for p in result.updated}
        assert {p.id for p in result.unpriced} | set(marked) == {p.id for p in open_before}
        for position in open_before:
            mark = prices.get((position.exchange, position.symbol), prices.get(position.symbol))
            if mark is None:
                assert position in result.unpriced
                continue
            updated = marked[position.id]
            sign = 1 if position.side == "long" else -1
            # Value at the mark less the cost basis: not the rounded average entry price.
            expected = sign * (q8(mark * position.amount) - position.cost_basis)
            assert updated.current_price == mark
            assert updated.unrealized_pnl == expected - position.open_fees
            assert self.store.positions.get(position.id) == updated

    @rule(exchange=st.sampled_from(EXCHANGES), data=st.data())
    def sync_with_own_balances(self, exchange: str, data: st.DataObject) -> None:
        reported: dict[str, Any] = {"info": {}, "free": {}, "used": {}, "total": {}}
        for (wallet_exchange, asset), total in sorted(self.model.totals.items()):
            if wallet_exchange != exchange:
                continue
            locked = self.model.locked(exchange, asset)
            if not total and data.draw(st.booleans(), label=f"leave out empty {asset}"):
                continue
            figures = {"free": total - locked, "used": locked, "total": total}
            entry = {}
            for key, figure in figures.items():
                form = data.draw(st.integers(0, 2), label=f"{asset}.{key} form")
                entry[key] = ccxt_number(figure, form)
                reported[key][asset] = entry[key]
            reported[asset] = entry
        before = self.contents()
        result = self.ledger.sync_balances(exchange, reported, timestamp=self.tick())
        assert result.in_sync, result.differences
        assert self.contents() == before

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def wallets_match_the_model(self) -> None:
        wallets = self.store.ledger.wallet_rows()
        for key in sorted(set(wallets) | set(self.model.totals)):
            exchange, asset = key
            stored = wallets.get(key)
            total = self.model.totals[key]
            locked = self.model.locked(exchange, asset)
            if stored is None:
                assert (total, locked) == (ZERO, ZERO), key
                continue
            assert stored.total == total, key
            assert stored.locked == locked, key
            assert stored.available == total - locked, key
            assert stored.available >= 0, key

    @invariant()
    def orders_match_their_fills(self) -> None:
        conn = self.store.db.connection
        sums = dict(
            conn.execute(
                "SELECT order_id, sum(amount) FROM trades GROUP BY exchange, order_id"
            ).fetchall()
        )
        fills: defaultdict[str, Decimal] = defaultdict(Decimal)
        for delivered in self.model.fills:
            fills[delivered.order_id] += delivered.amount
        stored = {o.order_id: o for o in self.store.orders.select_all("1 = 1", ())}
        assert set(stored) == set(self.model.orders)
        for order_id, model in self.model.orders.items():
            order = stored[order_id]
            assert order.filled_amount == model.filled == fills[order_id], order_id
            assert D(sums.get(order_id, 0)).scaleb(-8) == model.filled, order_id
            assert order.remaining_amount == order.amount - order.filled_amount, order_id
            assert order.status == model.status, order_id
            assert order.locked_amount == model.locked, order_id
            if model.status not in LIVE:
                assert order.locked_amount == 0, order_id

    @invariant()
    def positions_match_their_trades(self) -> None:
        conn = self.store.db.connection
        realized = dict(
            conn.execute(
                "SELECT position_id, sum(profit_loss) FROM trades "
                "WHERE position_id IS NOT NULL GROUP BY position_id"
            ).fetchall()
        )
        net: dict[tuple[str, str, str | None], Decimal] = {}
        for position in self.store.positions.select_all("1 = 1", ()):
            pnl = D(realized.get(position.id) or 0).scaleb(-8)
            assert position.realized_pnl == pnl, position
            assert position.amount >= 0
            assert position.open_fees >= 0
            if position.status == "open":
                key = (position.exchange, position.symbol, position.strategy)
                assert key not in net, key
                assert position.amount > 0, position
                net[key] = position.amount if position.side == "long" else -position.amount
            else:
                assert position.amount == 0
                assert position.closed_at is not None
        expected = {key: amount for key, amount in self.model.net.items() if amount}
        assert net == expected

    @invariant()
    def pnl_matches_the_cash_flows(self) -> None:
        results: defaultdict[tuple[str, str, str | None], Decimal] = defaultdict(Decimal)
        for position in self.store.positions.select_all("1 = 1", ()):
            key = (position.exchange, position.symbol, position.strategy)
            results[key] += position.realized_pnl or ZERO
            if position.status == "open":
                mark = self.model.last_price[key]
                sign = 1 if position.side == "long" else -1
                unrealized = sign * (q8(mark * position.amount) - position.cost_basis)
                results[key] += unrealized - position.open_fees
        for key, price in self.model.last_price.items():
            expected = self.model.cash[key] + self.model.net[key] * price
            difference = abs(results[key] - expected)
            assert difference <= self.model.tolerance[key], (key, results[key], expected)

    @invariant()
    def audit_finds_nothing(self) -> None:
        assert audit(self.store) == []
        assert not self.store.db.in_transaction


LedgerMachine.TestCase.settings = settings(
    max_examples=75,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLedgerStateful = LedgerMachine.TestCase


# --- the position arithmetic -------------------------------------------------------------

QUANTITIES = scaled(1, 5_000, 3)  # 0.001 .. 5
FILL_PRICES = scaled(1, 1_000_000, 2)  # 0.01 .. 10000
FEES = scaled(0, 10_000, 4)  # 0 .. 1
DIRECTIONS = st.sampled_from([1, -1])


def signed(holding: Holding | None) -> Decimal:
    if holding is None:
        return ZERO
    return holding.amount if holding.side == "long" else -holding.amount


def after(change: PositionChange) -> Holding | None:
    """The open holding after a fill, as the ledger keeps it."""
    if change.opened is not None:
        return change.opened
    if change.existing is not None and change.existing.amount:
        return change.existing
    return None


@settings(max_examples=200, deadline=None)
@given(direction=DIRECTIONS, quantity=QUANTITIES, price=FILL_PRICES)
def test_a_round_trip_at_one_price_without_fees_realizes_nothing(
    direction: int, quantity: Decimal, price: Decimal
) -> None:
    opened = apply_fill(None, direction, quantity, price, ZERO).opened
    assert opened is not None
    closed = apply_fill(opened, -direction, quantity, price, ZERO)
    assert closed.profit_loss == 0
    assert closed.closed_amount == quantity
    assert closed.existing is not None
    assert (closed.existing.amount, closed.existing.realized_pnl) == (ZERO, ZERO)
    assert closed.opened is None


@settings(max_examples=200, deadline=None)
@given(
    direction=DIRECTIONS,
    quantity=QUANTITIES,
    entry=FILL_PRICES,
    exit_=FILL_PRICES,
    entry_fee=FEES,
    exit_fee=FEES,
)
def test_a_round_trip_realizes_the_price_difference_less_both_fees(
    *,
    direction: int,
    quantity: Decimal,
    entry: Decimal,
    exit_: Decimal,
    entry_fee: Decimal,
    exit_fee: Decimal,
) -> None:
    opened = apply_fill(None, direction, quantity, entry, entry_fee).opened
    assert opened is not None
    assert (opened.side, opened.amount, opened.entry_price) == (
        "long" if direction > 0 else "short",
        quantity,
        entry,
    )
    assert opened.open_fees == entry_fee
    closed = apply_fill(opened, -direction, quantity, exit_, exit_fee)
    # Every product here has at most 5 decimals: no rounding anywhere.
    expected = direction * (exit_ - entry) * quantity - entry_fee - exit_fee
    assert closed.profit_loss == expected
    assert closed.existing is not None
    assert closed.existing.realized_pnl == expected
    assert (closed.existing.amount, closed.existing.open_fees) == (ZERO, ZERO)


@settings(max_examples=200, deadline=None)
@given(
    direction=DIRECTIONS,
    entry=FILL_PRICES,
    entry_fee=FEES,
    pieces=st.lists(st.tuples(QUANTITIES, FILL_PRICES, FEES), min_size=1, max_size=6),
)
def test_closing_in_pieces_charges_the_open_fees_exactly_once(
    direction: int,
    entry: Decimal,
    entry_fee: Decimal,
    pieces: list[tuple[Decimal, Decimal, Decimal]],
) -> None:
    total = sum((amount for amount, _, _ in pieces), ZERO)
    holding = apply_fill(None, direction, total, entry, entry_fee).opened
    results = []
    for amount, price, fee in pieces:
        assert holding is not None
        change = apply_fill(holding, -direction, amount, price, fee)
        assert change.opened is None
        assert change.profit_loss is not None
        results.append(change.profit_loss)
        # Each piece is charged its own fee and its pro-rata part of the entry fee (each
        # share rounds by half a unit, and the rounding of earlier shares carries over).
        charged = direction * (price - entry) * amount - fee - change.profit_loss
        exact = Fraction(entry_fee) * Fraction(amount) / Fraction(total)
        assert abs(Fraction(charged) - exact) <= len(results) * Fraction(UNIT)
        holding = change.existing
    assert holding is not None
    assert (holding.amount, holding.open_fees) == (ZERO, ZERO)
    expected = sum(
        (direction * (price - entry) * amount - fee for amount, price, fee in pieces), ZERO
    )
    assert sum(results, ZERO) == expected - entry_fee
    assert holding.realized_pnl == expected - entry_fee


@settings(max_examples=200, deadline=None)
@given(
    side=st.sampled_from(["long", "short"]),
    held=QUANTITIES,
    entry=FILL_PRICES,
    open_fees=FEES,
    extra=QUANTITIES,
    price=FILL_PRICES,
    fee=FEES,
)
def test_a_fill_bigger_than_the_position_flips_it(
    *,
    side: str,
    held: Decimal,
    entry: Decimal,
    open_fees: Decimal,
    extra: Decimal,
    price: Decimal,
    fee: Decimal,
) -> None:
    holding = Holding(side, held, entry, open_fees)  # type: ignore[arg-type]
    direction = -1 if side == "long" else 1
    change = apply_fill(holding, direction, held + extra, price, fee)
    assert change.existing is not None
    assert change.opened is not None
    assert change.closed_amount == held
    assert change.existing.amount == 0
    assert change.existing.open_fees == 0
    opened = change.opened
    assert opened.side == ("short" if side == "long" else "long")
    assert (opened.amount, opened.entry_price, opened.realized_pnl) == (extra, price, ZERO)
    # The fee is split between the closing and the opening part, pro rata, exactly.
    closing_fee = fee - opened.open_fees
    assert 0 <= closing_fee <= fee
    exact = Fraction(fee) * Fraction(held) / Fraction(held + extra)
    assert abs(Fraction(closing_fee) - exact) <= Fraction(UNIT) / 2
    sign = 1 if side == "long" else -1
    assert change.profit_loss == sign * (price - entry) * held - closing_fee - open_fees
    assert signed(opened) == signed(holding) + direction * (held + extra)


@settings(max_examples=200, deadline=None)
@given(
    start=st.one_of(st.none(), st.tuples(DIRECTIONS, QUANTITIES)),
    price=FILL_PRICES,
    fills=st.lists(st.tuples(DIRECTIONS, QUANTITIES, FEES), min_size=1, max_size=12),
)
def test_fills_at_one_price_lose_exactly_their_fees(
    start: tuple[int, Decimal] | None,
    price: Decimal,
    fills: list[tuple[int, Decimal, Decimal]],
) -> None:
    holding = None
    if start is not None:
        holding = apply_fill(None, start[0], start[1], price, ZERO).opened
    realized = ZERO
    for direction, quantity, fee in fills:
        before = signed(holding)
        change = apply_fill(holding, direction, quantity, price, fee)
        realized += change.profit_loss or ZERO
        holding = after(change)
        assert signed(holding) == before + direction * quantity
        if holding is not None:
            assert holding.amount > 0
            assert holding.entry_price == price
    # Nothing is gained or lost but the fees: realized plus what closing at the same
    # price would add is minus every fee, to the unit.
    unrealized = unrealized_pnl(holding, price) if holding is not None else ZERO
    assert realized + unrealized == -sum((fee for _, _, fee in fills), ZERO)


@settings(max_examples=300, deadline=None)
@given(
    fills=st.lists(st.tuples(DIRECTIONS, QUANTITIES, FILL_PRICES, FEES), min_size=1, max_size=12),
    mark=FILL_PRICES,
)
def test_realized_plus_unrealized_is_the_cash_result(
    fills: list[tuple[int, Decimal, Decimal, Decimal]], mark: Decimal
) -> None:
    holding: Holding | None = None
    realized = ZERO
    cash = ZERO
    # Each average price rounds by at most half a unit, which moves the result by at most
    # half a unit per base unit held; each realized and unrealized result rounds once more.
    tolerance = UNIT
    for direction, quantity, price, fee in fills:
        before = signed(holding)
        change = apply_fill(holding, direction, quantity, price, fee)
        if change.profit_loss is not None:
            realized += change.profit_loss
            assert change.existing is not None
            assert change.existing.realized_pnl == (
                (holding.realized_pnl if holding is not None else ZERO) + change.profit_loss
            )
        holding = after(change)
        assert signed(holding) == before + direction * quantity
        if holding is not None:
            assert holding.amount > 0
            assert holding.open_fees >= 0
            tolerance += (holding.amount + 1) * UNIT
        cash += -direction * quantity * price - fee
    net = signed(holding)
    unrealized = unrealized_pnl(holding, mark) if holding is not None else ZERO
    assert abs(realized + unrealized - (cash + net * mark)) <= tolerance


@settings(max_examples=200, deadline=None)
@given(
    side=st.sampled_from(["long", "short"]),
    amount=QUANTITIES,
    entry=FILL_PRICES,
    open_fees=FEES,
    mark=FILL_PRICES,
)
def test_unrealized_pnl_is_the_mark_difference_less_open_fees(
    side: str, amount: Decimal, entry: Decimal, open_fees: Decimal, mark: Decimal
) -> None:
    holding = Holding(side, amount, entry, open_fees)  # type: ignore[arg-type]
    sign = 1 if side == "long" else -1
    assert unrealized_pnl(holding, mark) == sign * (mark - entry) * amount - open_fees
    assert unrealized_pnl(holding, entry) == -open_fees
    # Closing it all at the mark without a fee realizes exactly that.
    closing = apply_fill(holding, -sign, amount, mark, ZERO)
    assert closing.profit_loss == unrealized_pnl(holding, mark)
