"""The paper exchange: strategies' orders matched against stored candles.

Fill rules (docs/paper.md explains them to users):

- A **market** order reaches the exchange at the open of the next candle of its market
  (the instant the candle it was decided on closed) and fills there, at that open. It is
  recorded in the ledger and filled at that time.
- The other types rest from the moment they are placed and are matched from the next
  candle on, in the order they were placed. Each waits for the price to reach its price
  from one side:
  - at or below it: a buy limit, a sell stop_loss, a buy take_profit;
  - at or above it: a sell limit, a buy stop_loss, a sell take_profit.
  If the candle *opens* beyond the price (a gap), the order fills at the open: better than
  its price for a limit or take-profit, worse for a stop. Otherwise it fills at its own
  price when the candle's low (or high) reaches it. No slippage beyond that is modelled,
  and candle volume is not checked: orders fill whole.
- Times: a fill at the open is stamped with the candle's time; a fill inside the candle
  with the candle's last millisecond, since the candle does not tell when within it the
  price was reached.
- Fees: makers (limit orders) and takers (everything else) pay the session's rates, in the
  quote currency, on the fill's value (amount x price, half-even at 1e-8).
- Each strategy trades from its own account. An order its account cannot cover when it is
  placed (coins for a sell, the ledger's reservation for a priced buy) is rejected and never
  reaches the ledger; a buy that cannot be paid for when it fills (a stop buy gapping up,
  a market buy by amount) is canceled, or never recorded if it is a market order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction

from tradedb.errors import ValidationError
from tradedb.models.fields import OrderType, Side
from tradedb.models.timeframes import Timeframe
from tradedb.models.values import to_decimal
from tradedb.services.ledger.arithmetic import UNIT, quantize
from tradedb.services.ledger.orders import reservation
from tradedb.services.paper.account import Account
from tradedb.services.paper.candles import Candle
from tradedb.services.paper.fees import FeeSchedule
from tradedb.services.paper.orders import Action, CancelRequest, Fill, OrderRequest, PaperOrder
from tradedb.services.paper.recording import Recorder

ZERO = Decimal(0)
# Orders that fill when the price comes down to them; the others fill when it rises to them.
FILLS_FROM_ABOVE: frozenset[tuple[Side, OrderType]] = frozenset(
    {("buy", "limit"), ("sell", "stop_loss"), ("buy", "take_profit")}
)


class PaperExchange:
    def __init__(
        self,
        *,
        session_id: str,
        timeframe: Timeframe,
        fees: FeeSchedule,
        accounts: Mapping[str, Account],
        recorder: Recorder,
        symbols: Iterable[str],
    ) -> None:
        self.session_id = session_id
        self.timeframe = timeframe
        self.fees = fees
        self.accounts = accounts
        self.recorder = recorder
        self._live: dict[str, list[PaperOrder]] = {symbol: [] for symbol in symbols}
        self._sequence = 0
        # Market orders are in the ledger only once they reach the exchange at a fill.
        self._recorded: set[str] = set()

    def live_orders(self, strategy: str, symbol: str) -> list[PaperOrder]:
        return [order for order in self._live[symbol] if order.strategy == strategy]

    # --- orders from strategies ----------------------------------------------------------

    def submit(self, strategy: str, actions: Iterable[Action], now: int) -> None:
        """Take a strategy's actions at time `now`, in the order given."""
        for action in actions:
            if isinstance(action, CancelRequest):
                self._cancel(strategy, action.order_id, now)
            else:
                self._accept(strategy, action, now)

    def _accept(self, strategy: str, request: OrderRequest, now: int) -> None:
        account = self.accounts[strategy]
        symbol = request.symbol
        if symbol not in self._live:
            traded = ", ".join(self._live)
            raise ValidationError(
                "symbol",
                symbol,
                f"strategy {strategy} ordered a market not in the session ({traded})",
            )
        rate = self.fees.rate(request.order_type)
        amount = None if request.amount is None else _amount(request.amount)
        spend = None if request.spend is None else _amount(request.spend, "spend")
        price = None if request.price is None else _amount(request.price, "price")
        if request.side == "sell":
            assert amount is not None
            held = amount
            accepted = account.reserve_coins(symbol, amount)
        elif price is None:
            # A market buy: by spend, that much is set aside until the fill; by amount,
            # it is paid from free cash at the fill's price.
            held = spend or ZERO
            accepted = account.reserve_cash(held)
        else:
            if amount is None:
                assert spend is not None
                amount = _priced_buy_size(spend, price, rate)
            held = reservation("buy", amount, price, rate)
            accepted = amount > 0 and account.reserve_cash(held)
        if not accepted:
            account.activity.rejected += 1
            return
        self._sequence += 1
        order = PaperOrder(
            order_id=f"paper-{self.session_id}-{self._sequence:06d}",
            strategy=strategy,
            symbol=symbol,
            side=request.side,
            order_type=request.order_type,
            amount=amount,
            price=price,
            placed_at=now,
            reserved=held,
            spend=spend,
        )
        self._live[symbol].append(order)
        if order.order_type != "market":
            self._record_placement(order, now)

    def _record_placement(self, order: PaperOrder, at: int) -> None:
        self.recorder.placed(order, at, self.fees.rate(order.order_type))
        self._recorded.add(order.order_id)
        self.accounts[order.strategy].activity.orders += 1

    def _cancel(self, strategy: str, order_id: str, now: int) -> None:
        # An order that already filled or ended is not found: nothing is left to cancel.
        for orders in self._live.values():
            for order in orders:
                if order.order_id == order_id and order.strategy == strategy:
                    orders.remove(order)
                    self._end(order, now)
                    return

    def _end(self, order: PaperOrder, at: int) -> None:
        """Take a live order off the book and give its strategy back what it held."""
        account = self.accounts[order.strategy]
        account.release(order.side, order.symbol, order.reserved)
        if order.order_id in self._recorded:
            self.recorder.canceled(order, at)
            account.activity.canceled += 1

    def close(self, at: int) -> None:
        """End of the session: cancel every live order, so that no funds stay locked.
        Market orders decided on a market's last candle have no candle left to fill at
        and are dropped without reaching the ledger."""
        for orders in self._live.values():
            for order in orders:
                self._end(order, at)
            orders.clear()

    # --- matching ------------------------------------------------------------------------

    def match(self, candle: Candle) -> list[Fill]:
        """Fill what `candle` reaches among its market's live orders, oldest first."""
        orders = self._live[candle.symbol]
        if not orders:
            return []
        fills: list[Fill] = []
        waiting: list[PaperOrder] = []
        for order in orders:
            # An order decided after this candle opened waits for the next one.
            if order.placed_at > candle.timestamp:
                waiting.append(order)
                continue
            execution = self._execution(order, candle)
            if execution is None:
                waiting.append(order)
                continue
            fill = self._fill(order, *execution)
            if fill is not None:
                fills.append(fill)
        self._live[candle.symbol] = waiting
        return fills

    def _execution(self, order: PaperOrder, candle: Candle) -> tuple[Decimal, int] | None:
        """The price and time at which `candle` fills the order, if it does."""
        if order.price is None:
            return candle.open, candle.timestamp
        last_moment = self.timeframe.end(candle.timestamp) - 1
        price = order.price
        if (order.side, order.order_type) in FILLS_FROM_ABOVE:
            if candle.open <= price:
                return candle.open, candle.timestamp
            return (price, last_moment) if candle.low <= price else None
        if candle.open >= price:
            return candle.open, candle.timestamp
        return (price, last_moment) if candle.high >= price else None

    def _fill(self, order: PaperOrder, price: Decimal, at: int) -> Fill | None:
        account = self.accounts[order.strategy]
        rate = self.fees.rate(order.order_type)
        amount = order.amount
        if amount is None:
            assert order.spend is not None
            amount = affordable(order.spend, price, rate)
        value = quantize(amount * price)
        fee = self.fees.fee(value, order.order_type)
        if order.side == "buy" and (not amount or value + fee > order.reserved + account.cash):
            if order.order_id not in self._recorded:
                account.activity.rejected += 1
            self._end(order, at)
            return None
        order.amount = amount
        if order.order_id not in self._recorded:
            self._record_placement(order, at)
        account.release(order.side, order.symbol, order.reserved)
        profit_loss = account.settle(order.side, order.symbol, amount, price, value=value, fee=fee)
        fill = Fill(
            order_id=order.order_id,
            exchange_trade_id=f"{order.order_id}-1",
            strategy=order.strategy,
            symbol=order.symbol,
            side=order.side,
            amount=amount,
            price=price,
            value=value,
            fee=fee,
            timestamp=at,
            profit_loss=profit_loss,
        )
        order.fills.append(fill)
        self.recorder.filled(fill)
        return fill


def cost(amount: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """What buying `amount` at `price` takes from the wallet: value plus fee, each
    quantized as the ledger quantizes them."""
    value = quantize(amount * price)
    return value + quantize(value * rate)


def affordable(budget: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """The largest amount (to 1e-8) whose cost at `price`, fee included, fits `budget`."""
    exact = Fraction(budget) / (Fraction(price) * (1 + Fraction(rate)))
    amount = Decimal(int(exact * 10**8)).scaleb(-8).quantize(UNIT, rounding=ROUND_FLOOR)
    # Each quantized part may round up by half a unit; step down until the sum fits.
    while amount > 0 and cost(amount, price, rate) > budget:
        amount -= UNIT
    return max(amount, ZERO)


def _priced_buy_size(spend: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """The amount a priced buy sized by `spend` asks for: its reservation fits `spend`,
    and its cost at its own price fits its reservation (so a fill at that price never
    needs the strategy's free cash)."""
    amount = affordable(spend, price, rate)
    while amount > 0 and cost(amount, price, rate) > reservation("buy", amount, price, rate):
        amount -= UNIT
    return amount


def _amount(value: Decimal, field: str = "amount") -> Decimal:
    number = to_decimal(value, field)
    if number <= 0:
        raise ValidationError(field, value, "must be greater than zero")
    return number
