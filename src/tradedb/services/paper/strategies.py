"""Strategies: small classes that see candles one at a time and answer with orders.

A strategy gets `on_candle(context)` once for every candle of every market of its session,
when that candle has closed, and returns the orders (and cancels) it wants. The context
holds only what is known at that moment: the candles seen so far, the strategy's own
account and its live orders. Nothing later is reachable from it, so a strategy cannot
look ahead.

Two ship with tradedb, both long-only (they buy with an equal share of their capital per
market, then sell all of it):

- `sma_cross`: buys when the fast simple moving average of closes crosses above the slow
  one, sells when it crosses back below.
- `rsi_revert`: buys when RSI (Wilder, 14 candles) falls below 30, sells when it rises
  above 70.

Both take `stop_loss`: a fraction (0.05 is 5 %) below the entry price at which a stop-loss
order protects each holding; 0, the default, places none.

Write your own by subclassing `Strategy` (or `LongOnlyStrategy`, which turns "buy"/"sell"
signals into orders) and decorating it with `@register`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from typing import ClassVar, Literal, overload

from tradedb.errors import ValidationError
from tradedb.models.fields import OrderType, Side
from tradedb.models.values import to_decimal
from tradedb.services.ledger.arithmetic import UNIT, quantize
from tradedb.services.paper.account import Account
from tradedb.services.paper.candles import Candle
from tradedb.services.paper.indicators import RollingSum, WilderRsi, above
from tradedb.services.paper.orders import Action, CancelRequest, OrderRequest, PaperOrder

ZERO = Decimal(0)
Signal = Literal["buy", "sell"] | None
# How a strategy's view asks the exchange for its live orders on one market.
LiveOrders = Callable[[str, str], list[PaperOrder]]


# --- what a strategy sees -----------------------------------------------------------------


class History:
    """The candles seen so far, per market. Only the session appends to it, and only
    candles that have closed."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self._candles: dict[str, list[Candle]] = {symbol: [] for symbol in symbols}

    def append(self, candle: Candle) -> None:
        self._candles[candle.symbol].append(candle)

    def candles(self, symbol: str) -> Seen:
        """The market's closed candles, oldest first."""
        return Seen(self._candles[symbol])


class Seen(Sequence[Candle]):
    """A read-only view of a market's closed candles."""

    def __init__(self, candles: list[Candle]) -> None:
        self._candles = candles

    @overload
    def __getitem__(self, index: int) -> Candle: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Candle]: ...

    def __getitem__(self, index: int | slice) -> Candle | Sequence[Candle]:
        return self._candles[index]

    def __len__(self) -> int:
        return len(self._candles)

    def __iter__(self) -> Iterator[Candle]:
        return iter(self._candles)

    def closes(self, last: int | None = None) -> list[Decimal]:
        chosen = self._candles if last is None else self._candles[-last:]
        return [candle.close for candle in chosen]


@dataclass(frozen=True)
class LiveOrder:
    order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    amount: Decimal | None
    price: Decimal | None


class AccountView:
    """A strategy's own funds and orders, read-only."""

    def __init__(self, account: Account, symbols: Sequence[str], live: LiveOrders) -> None:
        self._account = account
        self._symbols = tuple(symbols)
        self._live = live

    @property
    def capital(self) -> Decimal:
        return self._account.capital

    @property
    def cash(self) -> Decimal:
        """Quote currency free to spend (not held by live orders)."""
        return self._account.cash

    def holding(self, symbol: str) -> Decimal:
        """Base coins held, free or held by live sell orders."""
        return self._account.holding(symbol)

    def entry_price(self, symbol: str) -> Decimal | None:
        position = self._account.positions.get(symbol)
        return None if position is None else position.entry_price

    def live_orders(self, symbol: str) -> list[LiveOrder]:
        return [
            LiveOrder(o.order_id, o.symbol, o.side, o.order_type, o.amount, o.price)
            for o in self._live(self._account.strategy, symbol)
        ]

    def stake(self) -> Decimal:
        """An equal share of the strategy's capital per market it trades (rounded down to
        1e-8), or its free cash if that is less."""
        share = Fraction(self._account.capital) / len(self._symbols)
        whole = Decimal(int(share * 10**8)).scaleb(-8).quantize(UNIT, rounding=ROUND_FLOOR)
        return min(whole, self._account.cash)


@dataclass(frozen=True)
class Context:
    candle: Candle  # the candle that just closed
    now: int  # its close time: when the strategy decides, epoch ms UTC
    history: History
    account: AccountView


# --- strategies ---------------------------------------------------------------------------


class Strategy:
    """Base of every strategy: a name, parameters with defaults, and `on_candle`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    defaults: ClassVar[Mapping[str, Decimal]] = {}

    def __init__(self, **parameters: object) -> None:
        unknown = sorted(set(parameters) - set(self.defaults))
        if unknown:
            known = ", ".join(self.defaults) or "none"
            raise ValidationError(
                "parameters", unknown[0], f"{self.name} has no such parameter (it has: {known})"
            )
        self.parameters: dict[str, Decimal] = dict(self.defaults)
        for key, value in parameters.items():
            self.parameters[key] = to_decimal(value, f"{self.name}.{key}")
        self.check()

    def check(self) -> None:
        """Refuse parameters that make no sense (ValidationError naming the parameter)."""

    def on_candle(self, context: Context) -> Sequence[Action]:
        raise NotImplementedError

    def _whole(self, key: str, least: int = 1) -> int:
        value = self.parameters[key]
        if value != value.to_integral_value() or value < least:
            raise ValidationError(
                f"{self.name}.{key}", value, f"must be a whole number of candles, at least {least}"
            )
        return int(value)

    def _fraction(self, key: str, low: Decimal, high: Decimal) -> Decimal:
        value = self.parameters[key]
        if not low <= value < high:
            raise ValidationError(
                f"{self.name}.{key}", value, f"must be from {low} to below {high}"
            )
        return value


class LongOnlyStrategy(Strategy):
    """Turns a signal per candle into orders, long only: on "buy", when it holds nothing
    of the market and has no order there, it buys with its stake at market; on "sell"
    it cancels its orders there and sells everything it holds at market. With a
    `stop_loss` parameter above 0, a holding gets a stop-loss order that far below its
    entry price."""

    defaults: ClassVar[Mapping[str, Decimal]] = {"stop_loss": ZERO}

    def signal(self, context: Context) -> Signal:
        raise NotImplementedError

    def on_candle(self, context: Context) -> Sequence[Action]:
        signal = self.signal(context)
        symbol = context.candle.symbol
        account = context.account
        held = account.holding(symbol)
        live = account.live_orders(symbol)
        if signal == "sell" and held:
            cancels: list[Action] = [CancelRequest(order.order_id) for order in live]
            return [*cancels, OrderRequest(symbol, "sell", amount=held)]
        if signal == "buy" and not held and not live:
            stake = account.stake()
            return [OrderRequest(symbol, "buy", spend=stake)] if stake else []
        stop = self.parameters["stop_loss"]
        entry = account.entry_price(symbol)
        if stop and held and not live and entry is not None:
            price = quantize(entry * (1 - stop))
            if price > 0:
                return [OrderRequest(symbol, "sell", "stop_loss", amount=held, price=price)]
        return []

    def check(self) -> None:
        self._fraction("stop_loss", ZERO, Decimal(1))


STRATEGIES: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Make a strategy class available by its name (`tradedb paper --strategy NAME`)."""
    STRATEGIES[cls.name] = cls
    return cls


def create(name: str, parameters: Mapping[str, object] | None = None) -> Strategy:
    """A strategy by its registered name, with parameters over its defaults."""
    cls = STRATEGIES.get(name)
    if cls is None:
        known = ", ".join(sorted(STRATEGIES))
        raise ValidationError("strategy", name, f"is not a paper strategy (known: {known})")
    return cls(**dict(parameters or {}))


@register
class SmaCross(LongOnlyStrategy):
    name = "sma_cross"
    description = "fast/slow simple moving average crossover, long only"
    defaults: ClassVar[Mapping[str, Decimal]] = {
        "fast": Decimal(12),
        "slow": Decimal(48),
        **LongOnlyStrategy.defaults,
    }

    def check(self) -> None:
        super().check()
        self.fast = self._whole("fast")
        self.slow = self._whole("slow", least=2)
        if self.fast >= self.slow:
            raise ValidationError(
                "sma_cross.fast", self.fast, f"must be shorter than slow ({self.slow})"
            )
        self._averages: dict[str, tuple[RollingSum, RollingSum]] = {}
        self._was_above: dict[str, bool] = {}

    def signal(self, context: Context) -> Signal:
        candle = context.candle
        fast, slow = self._averages.setdefault(
            candle.symbol, (RollingSum(self.fast), RollingSum(self.slow))
        )
        fast.push(candle.close)
        slow.push(candle.close)
        if not slow.full:
            return None
        now_above = above(fast, slow)
        was_above = self._was_above.get(candle.symbol)
        self._was_above[candle.symbol] = now_above
        # The first full window only sets the side; a signal needs a crossing.
        if was_above is None or was_above == now_above:
            return None
        return "buy" if now_above else "sell"


@register
class RsiRevert(LongOnlyStrategy):
    name = "rsi_revert"
    description = "RSI mean reversion: buy below 30, sell above 70, long only"
    defaults: ClassVar[Mapping[str, Decimal]] = {
        "period": Decimal(14),
        "buy_below": Decimal(30),
        "sell_above": Decimal(70),
        **LongOnlyStrategy.defaults,
    }

    def check(self) -> None:
        super().check()
        self.period = self._whole("period", least=2)
        self.buy_below = self._fraction("buy_below", ZERO, Decimal(100))
        self.sell_above = self._fraction("sell_above", ZERO, Decimal(100))
        if self.buy_below >= self.sell_above:
            raise ValidationError(
                "rsi_revert.buy_below",
                self.buy_below,
                f"must be below sell_above ({self.sell_above})",
            )
        self._rsi: dict[str, WilderRsi] = {}

    def signal(self, context: Context) -> Signal:
        candle = context.candle
        rsi = self._rsi.setdefault(candle.symbol, WilderRsi(self.period)).push(candle.close)
        if rsi is None:
            return None
        if rsi < self.buy_below:
            return "buy"
        return "sell" if rsi > self.sell_above else None
