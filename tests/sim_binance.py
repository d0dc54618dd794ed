"""A simulated Binance spot account behind ccxt's HTTP layer, for tests that never touch
the network.

`SimulatedBinance.client()` gives a real `ccxt.binance` whose `fetch` is the simulator's
`handle`: ccxt builds, signs and sends its requests, and parses the answers, with its own
code; the simulator reads each request and answers in Binance's wire format (ids and times
as JSON numbers, amounts as strings of 8 decimals) from a stateful account, so what a test
sees is what ccxt would make of the real exchange.

The test plays everything that happens outside the client: orders placed or cancelled on
the website, the matching engine's fills, deposits, withdrawals, balance changes that leave
no history, trades delivered twice, and requests that fail (before or after the exchange
applied them). Nothing matches on its own: every order, MARKET ones included, rests until
the test fills, cancels or expires it.

Amounts are Decimals throughout; a trade's quote amount (price * quantity) is rounded down
to 8 decimals, as it has to fit Binance's strings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal, InvalidOperation
from typing import Any, NoReturn, TypeVar
from urllib.parse import parse_qsl, urlsplit

import ccxt

DEFAULT_MARKETS: Mapping[str, str] = {"BTC/USDT": "BTCUSDT", "ETH/USDT": "ETHUSDT"}
STEP = Decimal("0.00000001")
ZERO = Decimal(0)
DAY_MS = 86_400_000
NINETY_DAYS_MS = 90 * DAY_MS
# Binance's defaults for a list without `limit`.
HISTORY_LIMIT = 500
WALLET_LIMIT = 1000
# Order ids past 2**31 catch code that stores them in 32-bit integers; trade ids live in
# another range so that an order id taken for a trade id (or back) finds nothing.
FIRST_ORDER_ID = 4_000_000_001
FIRST_TRADE_ID = 300_000_001
FIRST_DEPOSIT_ID = 700_000_000_000_000_001
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET")
# What GET /api/v3/myTrades accepts besides `symbol` and `limit`; anything else is -1128.
MY_TRADES_COMBINATIONS = {
    frozenset(),
    frozenset({"orderId"}),
    frozenset({"startTime"}),
    frozenset({"endTime"}),
    frozenset({"fromId"}),
    frozenset({"startTime", "endTime"}),
    frozenset({"orderId", "fromId"}),
}
# Parameters that only authenticate a request: left out of `requests`, so tests can
# compare the rest.
SIGNING_PARAMS = ("timestamp", "signature", "recvWindow")
FAULTS: Mapping[str, type[Exception]] = {
    "timeout": ccxt.RequestTimeout,
    "network": ccxt.NetworkError,
    "unavailable": ccxt.ExchangeNotAvailable,
}

Amount = Decimal | str | int
Row = TypeVar("Row")


class BinanceRejection(Exception):
    """An error answer as Binance sends it: HTTP 400 with {"code": ..., "msg": ...}."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> str:
        return json.dumps({"code": self.code, "msg": self.msg}, separators=(",", ":"))


@dataclass
class Holding:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass
class Order:
    order_id: int
    symbol_id: str
    client_order_id: str
    side: str  # BUY or SELL
    type: str  # one of ORDER_TYPES
    quantity: Decimal
    price: Decimal  # zero for MARKET orders, as Binance shows them
    quote_quantity: Decimal  # a MARKET order's quoteOrderQty, zero otherwise
    time_in_force: str
    created_ms: int
    updated_ms: int
    status: str = "NEW"
    executed: Decimal = ZERO
    quote_executed: Decimal = ZERO
    lock_asset: str | None = None
    locked: Decimal = ZERO  # what the order still holds of lock_asset

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class Trade:
    trade_id: int
    order_id: int
    symbol_id: str
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_buyer: bool
    is_maker: bool


@dataclass(frozen=True)
class Deposit:
    deposit_id: str
    asset: str
    amount: Decimal
    tx_id: str
    time_ms: int


@dataclass(frozen=True)
class Withdrawal:
    withdrawal_id: str
    asset: str
    amount: Decimal
    fee: Decimal
    tx_id: str
    time_ms: int


@dataclass
class Fault:
    path_contains: str
    error: Exception | type[Exception] | str
    after_applying: bool

    def exception(self, method: str, url: str) -> Exception:
        if isinstance(self.error, Exception):
            return self.error
        if isinstance(self.error, type):
            return self.error(f"binance {method} {url}")
        # The message ccxt's own fetch gives a timed-out request.
        return FAULTS[self.error](f"binance {method} {url}")


def exact(value: Amount, what: str) -> Decimal:
    """`value` as a Decimal of at most 8 decimals; floats are refused, being rarely exact."""
    if isinstance(value, float):
        raise TypeError(f"{what} must be a Decimal, str or int, not the float {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{what} is not a number: {value!r}") from None
    if not number.is_finite() or number != number.quantize(STEP):
        raise ValueError(f"{what} must have at most 8 decimals: {value!r}")
    return number


def wire(amount: Decimal) -> str:
    return f"{amount.quantize(STEP):f}"


def utc_text(ms: int) -> str:
    """A time as Binance's wallet endpoints write it: UTC, to the second."""
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def hex_id(seed: str, length: int) -> str:
    """A deterministic id that looks like Binance's random ones."""
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def mandatory(name: str) -> BinanceRejection:
    return BinanceRejection(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


class SimulatedBinance:
    """A Binance spot account that ccxt.binance clients talk to through `handle`."""

    def __init__(
        self,
        markets: Mapping[str, str] | None = None,
        balances: Mapping[str, Amount] | None = None,
        page_limit: int = 1000,
        start_ms: int = 1_700_000_000_000,
    ) -> None:
        self.markets = dict(DEFAULT_MARKETS if markets is None else markets)
        self._assets_of = {
            market_id: tuple(symbol.split("/")) for symbol, market_id in self.markets.items()
        }
        self.page_limit = page_limit
        self.now_ms = start_ms
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._holdings: dict[str, Holding] = {}
        for base, quote in self._assets_of.values():
            self._holding(base)
            self._holding(quote)
        for asset, amount in (balances or {}).items():
            self._holding(asset).free = exact(amount, f"balance of {asset}")
        self._balances_updated_ms = start_ms
        self._orders: dict[int, Order] = {}
        self._trades: list[Trade] = []
        self._deposits: list[Deposit] = []
        self._withdrawals: list[Withdrawal] = []
        self._faults: list[Fault] = []
        self._redeliveries: list[int] = []
        self._generated_ids = 0
        # A client of its own turns Binance's error answers into the ccxt exceptions that
        # any client would raise for them.
        self._error_mapper = ccxt.binance()
        self._routes: dict[tuple[str, str], Callable[[dict[str, str]], Any]] = {
            ("GET", "api/v3/time"): lambda params: {"serverTime": self.now_ms},
            ("GET", "api/v3/account"): self._account,
            ("GET", "api/v3/myTrades"): self._my_trades,
            ("GET", "api/v3/order"): self._query_order,
            ("POST", "api/v3/order"): self._new_order,
            ("DELETE", "api/v3/order"): self._cancel_order,
            ("GET", "api/v3/openOrders"): self._open_orders,
            ("GET", "api/v3/allOrders"): self._all_orders,
            ("GET", "sapi/v1/capital/deposit/hisrec"): self._deposit_history,
            ("GET", "sapi/v1/capital/withdraw/history"): self._withdraw_history,
            ("GET", "api/v3/ticker/24hr"): self._ticker_24hr,
        }

    # -- the client -------------------------------------------------------------------

    def client(self, **config: Any) -> ccxt.binance:
        """A ccxt.binance that sends every request to this account and needs no other:
        markets are set, the clock is not synchronised, rate limiting does not sleep."""
        client = ccxt.binance(
            {"apiKey": "sim-api-key", "secret": "sim-secret", "enableRateLimit": False, **config}
        )
        no_requests = {
            "adjustForTimeDifference": False,
            "warnOnFetchOpenOrdersWithoutSymbol": False,
            "fetchOpenOrders": {**client.options["fetchOpenOrders"], "warnWithoutSymbol": False},
            "fetchMarkets": {**client.options["fetchMarkets"], "types": ["spot"]},
            # parse_market reads these; fetch_markets would have loaded them.
            "crossMarginPairsData": [],
            "isolatedMarginPairsData": [],
        }
        chosen = config.get("options", {})
        client.options.update({k: v for k, v in no_requests.items() if k not in chosen})
        markets = [
            client.parse_market(self._exchange_info(market_id, *assets))
            for market_id, assets in self._assets_of.items()
        ]
        currencies = {
            asset: client.safe_currency_structure(
                {"id": asset, "code": asset, "name": asset, "precision": client.parse_number(STEP)}
            )
            for asset in self._holdings
        }
        client.set_markets(markets, currencies)
        client.fetch = self.handle
        return client

    @staticmethod
    def _exchange_info(market_id: str, base: str, quote: str) -> dict[str, Any]:
        """The market as GET /api/v3/exchangeInfo lists it, for ccxt's own parse_market."""
        eight = wire(STEP)
        return {
            "symbol": market_id,
            "status": "TRADING",
            "baseAsset": base,
            "baseAssetPrecision": 8,
            "quoteAsset": quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            # Only what the simulator serves: ccxt refuses the other types before sending.
            "orderTypes": list(ORDER_TYPES),
            "icebergAllowed": False,
            "ocoAllowed": False,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False,
            "cancelReplaceAllowed": False,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": eight,
                    "maxPrice": "10000000.00000000",
                    "tickSize": eight,
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": eight,
                    "maxQty": "90000000.00000000",
                    "stepSize": eight,
                },
                {"filterType": "NOTIONAL", "minNotional": eight, "applyMinToMarket": True},
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER"],
        }

    def handle(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        """Answer one request as Binance would; ccxt calls this in place of its HTTP fetch."""
        parts = urlsplit(url)
        path = parts.path.lstrip("/")
        params = dict(parse_qsl(body or "", keep_blank_values=True))
        # Binance takes the query string's value when a parameter is in both.
        params.update(parse_qsl(parts.query, keep_blank_values=True))
        for name in SIGNING_PARAMS:
            params.pop(name, None)
        self.requests.append((method, path, dict(params)))
        fault = next((f for f in self._faults if f.path_contains in url), None)
        if fault is not None:
            self._faults.remove(fault)
            if not fault.after_applying:
                raise fault.exception(method, url)
        route = self._routes.get((method, path))
        if route is None:
            raise NotImplementedError(f"SimulatedBinance does not serve {method} {path}")
        try:
            answer = route(params)
        except BinanceRejection as rejection:
            if fault is not None:
                raise fault.exception(method, url) from None
            self._raise_for(rejection, url, method, headers, body)
        if fault is not None:
            raise fault.exception(method, url)
        # Through JSON, so that ccxt gets only what the wire carries and cannot change
        # the simulator's state by editing what it was given.
        return json.loads(json.dumps(answer))

    def _raise_for(
        self, rejection: BinanceRejection, url: str, method: str, headers: Any, body: Any
    ) -> NoReturn:
        text = rejection.body()
        mapper = self._error_mapper
        mapper.handle_errors(
            rejection.status, "Bad Request", url, method, {}, text, json.loads(text), headers, body
        )
        mapper.handle_http_status_code(rejection.status, "Bad Request", url, method, text)
        raise ccxt.ExchangeError(f"binance {method} {url} {text}")

    # -- what happens at the exchange, driven by the test ---------------------------------

    def place(
        self,
        symbol: str,
        side: str,
        type: str,
        amount: Amount,
        price: Amount | None = None,
        *,
        client_order_id: str | None = None,
    ) -> str:
        """An order placed outside the client (on the website); returns its orderId."""
        market_id = self.markets[symbol]
        order_type = type.upper()
        if side.upper() not in ("BUY", "SELL") or order_type not in ORDER_TYPES:
            raise ValueError(
                f"no {side} {type} orders here: sides are buy and sell, types {ORDER_TYPES}"
            )
        quantity = exact(amount, "amount")
        limit_price = ZERO if price is None else exact(price, "price")
        if order_type == "MARKET" and price is not None:
            raise ValueError("a MARKET order has no price: give fill() the price it trades at")
        if order_type != "MARKET" and limit_price <= 0:
            raise ValueError(f"a {type} order needs a price above zero")
        if quantity <= 0:
            raise ValueError("amount must be above zero")
        self._generated_ids += 1
        chosen_id = client_order_id or f"web_{hex_id(f'web-{self._generated_ids}', 32)}"
        try:
            order = self._open(
                market_id,
                side.upper(),
                order_type,
                quantity=quantity,
                price=limit_price,
                quote_quantity=ZERO,
                client_order_id=chosen_id,
                time_in_force="GTC",
            )
        except BinanceRejection as rejection:
            raise ValueError(rejection.msg) from None
        return str(order.order_id)

    def fill(
        self,
        order_id: str | int,
        amount: Amount,
        price: Amount | None = None,
        fee: Amount = "0",
        fee_asset: str | None = None,
    ) -> str:
        """One trade of an open order, at its limit price unless `price` is given (a MARKET
        order needs one); the fee is paid in the asset received unless `fee_asset` says
        otherwise. Returns the trade id."""
        order = self._open_order(order_id)
        if order.type == "MARKET" and price is None:
            raise ValueError("a MARKET order's fill needs the price it trades at")
        quantity = exact(amount, "amount")
        trade_price = order.price if price is None else exact(price, "price")
        fee_amount = exact(fee, "fee")
        if quantity <= 0 or trade_price <= 0 or fee_amount < 0:
            raise ValueError("a fill needs an amount and a price above zero, a fee not below")
        if order.type != "MARKET" and (
            (order.side == "BUY" and trade_price > order.price)
            or (order.side == "SELL" and trade_price < order.price)
        ):
            raise ValueError(f"price {trade_price} is worse than the limit {order.price}")
        cost = (quantity * trade_price).quantize(STEP, rounding=ROUND_DOWN)
        if order.quote_quantity:
            left = order.quote_quantity - order.quote_executed
            if cost > left:
                raise ValueError(f"cost {cost} is above the {left} left to spend on the order")
            completes = cost == left
        else:
            left = order.quantity - order.executed
            if quantity > left:
                raise ValueError(f"amount {quantity} is above the {left} left on the order")
            completes = quantity == left
        base, quote = self._assets_of[order.symbol_id]
        fee_asset = fee_asset or (base if order.side == "BUY" else quote)
        released = order.locked if completes else min(order.locked, self._lock_of(order, quantity))
        changes = [
            (order.lock_asset or quote, released, -released),
            (base, quantity if order.side == "BUY" else -quantity, ZERO),
            (quote, -cost if order.side == "BUY" else cost, ZERO),
            (fee_asset, -fee_amount, ZERO),
        ]
        now = self._tick()
        self._move(changes)
        order.locked -= released
        order.executed += quantity
        order.quote_executed += cost
        if order.quote_quantity:
            # Binance shows how much a quoteOrderQty order bought or sold.
            order.quantity = order.executed
        order.status = "FILLED" if completes else "PARTIALLY_FILLED"
        order.updated_ms = now
        trade = Trade(
            trade_id=FIRST_TRADE_ID + len(self._trades),
            order_id=order.order_id,
            symbol_id=order.symbol_id,
            price=trade_price,
            quantity=quantity,
            quote_quantity=cost,
            commission=fee_amount,
            commission_asset=fee_asset,
            time_ms=now,
            is_buyer=order.side == "BUY",
            is_maker=order.type != "MARKET",
        )
        self._trades.append(trade)
        return str(trade.trade_id)

    def cancel(self, order_id: str | int) -> None:
        """The order is cancelled outside the client (on the website)."""
        self._close(self._open_order(order_id), "CANCELED")

    def expire(self, order_id: str | int) -> None:
        """The exchange ends the order (time in force, self-trade prevention, ...)."""
        self._close(self._open_order(order_id), "EXPIRED")

    def deposit(self, asset: str, amount: Amount, tx_id: str | None = None) -> str:
        """A deposit arrives, credited at once; returns its id."""
        quantity = exact(amount, "amount")
        if quantity <= 0:
            raise ValueError("a deposit must be above zero")
        now = self._tick()
        self._move([(asset, quantity, ZERO)])
        number = len(self._deposits)
        deposit = Deposit(
            deposit_id=str(FIRST_DEPOSIT_ID + number),
            asset=asset,
            amount=quantity,
            tx_id=tx_id or f"0x{hex_id(f'deposit-{number}', 64)}",
            time_ms=now,
        )
        self._deposits.append(deposit)
        return deposit.deposit_id

    def withdraw(self, asset: str, amount: Amount, fee: Amount = "0") -> str:
        """A completed withdrawal of `amount`, the `fee` charged on top; returns its id."""
        quantity, charge = exact(amount, "amount"), exact(fee, "fee")
        if quantity <= 0 or charge < 0:
            raise ValueError("a withdrawal must be above zero and its fee not below")
        now = self._tick()
        self._move([(asset, -(quantity + charge), ZERO)])
        number = len(self._withdrawals)
        withdrawal = Withdrawal(
            withdrawal_id=hex_id(f"withdrawal-{number}", 32),
            asset=asset,
            amount=quantity,
            fee=charge,
            tx_id=f"0x{hex_id(f'withdrawal-tx-{number}', 64)}",
            time_ms=now,
        )
        self._withdrawals.append(withdrawal)
        return withdrawal.withdrawal_id

    def drift(self, asset: str, free_delta: Amount) -> None:
        """The free balance changes and no history says why (what reconciliation finds)."""
        change = exact(free_delta, "free_delta")
        self._tick()
        self._move([(asset, change, ZERO)])

    def redeliver(self, trade_id: str | int) -> None:
        """The next myTrades answer for the trade's market carries it once more."""
        number = int(trade_id)
        if not any(trade.trade_id == number for trade in self._trades):
            raise ValueError(f"no trade {trade_id}")
        self._redeliveries.append(number)

    def fail_next(
        self,
        path_contains: str,
        error: Exception | type[Exception] | str = "timeout",
        after_applying: bool = False,
    ) -> None:
        """The next request whose URL contains `path_contains` fails with `error`: a ccxt
        exception (instance or class) or "timeout", "network", "unavailable". With
        `after_applying` the exchange applies the request first and only its answer is lost,
        as when a timed-out create_order did place the order."""
        if isinstance(error, str) and error not in FAULTS:
            raise ValueError(f"error must be an exception or one of {sorted(FAULTS)}")
        self._faults.append(Fault(path_contains, error, after_applying))

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """The account's (free, locked) amounts of `asset`."""
        holding = self._holdings.get(asset, Holding())
        return holding.free, holding.locked

    # -- the account's bookkeeping ----------------------------------------------------

    def _tick(self) -> int:
        self.now_ms += 1
        return self.now_ms

    def _holding(self, asset: str) -> Holding:
        return self._holdings.setdefault(asset, Holding())

    def _move(self, changes: list[tuple[str, Decimal, Decimal]]) -> None:
        """Apply (asset, free change, locked change) all together, or none if a balance
        would go below zero."""
        after: dict[str, Holding] = {}
        for asset, free_change, locked_change in changes:
            current = after.get(asset) or Holding(*self.balance(asset))
            after[asset] = Holding(current.free + free_change, current.locked + locked_change)
        short = sorted(asset for asset, held in after.items() if min(held.free, held.locked) < 0)
        if short:
            raise ValueError(f"the account has too little {', '.join(short)}")
        self._holdings.update(after)
        self._balances_updated_ms = self.now_ms

    def _lock_of(self, order: Order, quantity: Decimal) -> Decimal:
        """What an order holds to trade `quantity`: the base asset it sells, or the quote
        asset a limit buy may spend; a MARKET buy of a quantity holds nothing, as its cost
        is unknown until it trades."""
        if order.lock_asset is None:
            return ZERO
        if order.side == "SELL":
            return quantity
        if order.quote_quantity:
            return order.quote_quantity
        return (quantity * order.price).quantize(STEP, rounding=ROUND_UP)

    def _open(
        self,
        market_id: str,
        side: str,
        order_type: str,
        *,
        quantity: Decimal,
        price: Decimal,
        quote_quantity: Decimal,
        client_order_id: str,
        time_in_force: str,
    ) -> Order:
        """A new order resting on the book, its funds held; refused as Binance refuses."""
        if any(
            order.is_open and order.client_order_id == client_order_id
            for order in self._orders.values()
        ):
            raise BinanceRejection(-2010, "Duplicate order sent.")
        base, quote = self._assets_of[market_id]
        order = Order(
            order_id=FIRST_ORDER_ID + len(self._orders),
            symbol_id=market_id,
            client_order_id=client_order_id,
            side=side,
            type=order_type,
            quantity=quantity,
            price=price,
            quote_quantity=quote_quantity,
            time_in_force=time_in_force,
            created_ms=self.now_ms,
            updated_ms=self.now_ms,
        )
        if side == "SELL" and quantity:
            order.lock_asset = base
        elif side == "BUY" and (order_type != "MARKET" or quote_quantity):
            order.lock_asset = quote
        order.locked = self._lock_of(order, quantity)
        order.created_ms = order.updated_ms = self._tick()
        if order.lock_asset is not None:
            try:
                self._move([(order.lock_asset, -order.locked, order.locked)])
            except ValueError:
                raise BinanceRejection(
                    -2010, "Account has insufficient balance for requested action."
                ) from None
        self._orders[order.order_id] = order
        return order

    def _open_order(self, order_id: str | int) -> Order:
        order = self._orders.get(int(order_id))
        if order is None or not order.is_open:
            raise ValueError(f"no open order {order_id}")
        return order

    def _close(self, order: Order, status: str) -> None:
        order.updated_ms = self._tick()
        if order.lock_asset is not None:
            self._move([(order.lock_asset, order.locked, -order.locked)])
        order.locked = ZERO
        order.status = status

    # -- the endpoints ------------------------------------------------------------------

    def _symbol(self, params: dict[str, str]) -> str:
        market_id = self._optional_symbol(params)
        if market_id is None:
            raise mandatory("symbol")
        return market_id

    def _optional_symbol(self, params: dict[str, str]) -> str | None:
        market_id = params.get("symbol") or None
        if market_id is not None and market_id not in self._assets_of:
            raise BinanceRejection(-1121, "Invalid symbol.")
        return market_id

    @staticmethod
    def _integer(params: dict[str, str], name: str) -> int | None:
        if name not in params:
            return None
        try:
            return int(params[name])
        except ValueError:
            raise BinanceRejection(
                -1100, f"Illegal characters found in parameter '{name}'; legal range is '0'."
            ) from None

    def _limit(self, params: dict[str, str], default: int) -> int:
        limit = self._integer(params, "limit")
        if limit is not None and limit < 1:
            raise BinanceRejection(
                -1100, "Illegal characters found in parameter 'limit'; legal range is '1'."
            )
        return min(limit or default, self.page_limit)

    @staticmethod
    def _decimal(params: dict[str, str], name: str) -> Decimal | None:
        if not params.get(name):
            return None
        try:
            number = Decimal(params[name])
        except InvalidOperation:
            raise mandatory(name) from None
        if not number.is_finite() or number != number.quantize(STEP):
            raise BinanceRejection(-1111, f"Parameter '{name}' has too much precision.")
        return number

    def _page(
        self,
        rows: list[Row],
        params: dict[str, str],
        id_param: str,
        id_of: Callable[[Row], int],
        time_of: Callable[[Row], int],
    ) -> list[Row]:
        """A page of a history, as myTrades and allOrders give it: from an id on, or within
        a window of at most 24 hours (which startTime or endTime alone opens), or else the
        most recent rows; oldest first."""
        limit = self._limit(params, HISTORY_LIMIT)
        start, end = self._integer(params, "startTime"), self._integer(params, "endTime")
        from_id = self._integer(params, id_param)
        if start is None and end is not None:
            start = end - DAY_MS
        if start is not None:
            end = start + DAY_MS if end is None else end
            if end - start > DAY_MS:
                raise BinanceRejection(-1127, "More than 24 hours between startTime and endTime.")
            rows = [row for row in rows if start <= time_of(row) <= end]
        if from_id is not None:
            return [row for row in rows if id_of(row) >= from_id][:limit]
        if start is not None:
            return rows[:limit]
        return rows[-limit:]

    def _account(self, params: dict[str, str]) -> dict[str, Any]:
        balances = [
            {"asset": asset, "free": wire(holding.free), "locked": wire(holding.locked)}
            for asset, holding in self._holdings.items()
            if params.get("omitZeroBalances") != "true" or holding.free or holding.locked
        ]
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": "0.00100000",
                "taker": "0.00100000",
                "buyer": "0.00000000",
                "seller": "0.00000000",
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self._balances_updated_ms,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 354937868,
        }

    def _my_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        market_id = self._symbol(params)
        chosen = frozenset(params) & {"orderId", "startTime", "endTime", "fromId"}
        if chosen not in MY_TRADES_COMBINATIONS:
            raise BinanceRejection(-1128, "Combination of optional parameters invalid.")
        order_id = self._integer(params, "orderId")
        trades = [
            trade
            for trade in self._trades
            if trade.symbol_id == market_id and order_id in (None, trade.order_id)
        ]
        page = self._page(
            trades, params, "fromId", lambda trade: trade.trade_id, lambda trade: trade.time_ms
        )
        for trade_id in [t for t in self._redeliveries if self._trade(t).symbol_id == market_id]:
            self._redeliveries.remove(trade_id)
            trade = self._trade(trade_id)
            later = next((i for i, t in enumerate(page) if t.trade_id > trade_id), len(page))
            page.insert(later, trade)
        return [self._trade_answer(trade) for trade in page]

    def _trade(self, trade_id: int) -> Trade:
        return self._trades[trade_id - FIRST_TRADE_ID]

    @staticmethod
    def _trade_answer(trade: Trade) -> dict[str, Any]:
        return {
            "symbol": trade.symbol_id,
            "id": trade.trade_id,
            "orderId": trade.order_id,
            "orderListId": -1,
            "price": wire(trade.price),
            "qty": wire(trade.quantity),
            "quoteQty": wire(trade.quote_quantity),
            "commission": wire(trade.commission),
            "commissionAsset": trade.commission_asset,
            "time": trade.time_ms,
            "isBuyer": trade.is_buyer,
            "isMaker": trade.is_maker,
            "isBestMatch": True,
        }

    def _new_order(self, params: dict[str, str]) -> dict[str, Any]:
        market_id = self._symbol(params)
        side, order_type = params.get("side"), params.get("type")
        if side not in ("BUY", "SELL"):
            raise BinanceRejection(-1117, "Invalid side.")
        if order_type not in ORDER_TYPES:
            raise BinanceRejection(-1116, "Invalid orderType.")
        quantity = self._decimal(params, "quantity")
        quote_quantity = self._decimal(params, "quoteOrderQty")
        price = self._decimal(params, "price")
        time_in_force = params.get("timeInForce", "GTC")
        if order_type == "MARKET":
            if price is not None:
                raise BinanceRejection(-1106, "Parameter 'price' sent when not required.")
            if (quantity is None) == (quote_quantity is None):
                raise BinanceRejection(
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )
        else:
            for name, value in (("quantity", quantity), ("price", price)):
                if value is None:
                    raise mandatory(name)
            if order_type == "LIMIT" and "timeInForce" not in params:
                raise mandatory("timeInForce")
        if (quantity is not None and quantity <= 0) or (
            quote_quantity is not None and quote_quantity <= 0
        ):
            raise BinanceRejection(-1013, "Filter failure: LOT_SIZE")
        if price is not None and price <= 0:
            raise BinanceRejection(-1013, "Filter failure: PRICE_FILTER")
        client_order_id = params.get("newClientOrderId") or self._generated_client_id()
        order = self._open(
            market_id,
            side,
            order_type,
            quantity=quantity or ZERO,
            price=price or ZERO,
            quote_quantity=quote_quantity or ZERO,
            client_order_id=client_order_id,
            time_in_force=time_in_force,
        )
        answer: dict[str, Any] = {
            "symbol": order.symbol_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "transactTime": order.created_ms,
        }
        response_type = params.get("newOrderRespType", "FULL")
        if response_type == "ACK":
            return answer
        answer |= self._order_state(order)
        answer |= {"workingTime": order.created_ms}
        if response_type == "FULL":
            answer["fills"] = [
                {
                    "price": wire(trade.price),
                    "qty": wire(trade.quantity),
                    "commission": wire(trade.commission),
                    "commissionAsset": trade.commission_asset,
                    "tradeId": trade.trade_id,
                }
                for trade in self._trades
                if trade.order_id == order.order_id
            ]
        return answer

    def _generated_client_id(self) -> str:
        """A clientOrderId as Binance makes up when none is sent: 22 letters and digits."""
        self._generated_ids += 1
        return hex_id(f"client-{self._generated_ids}", 22)

    @staticmethod
    def _order_state(order: Order) -> dict[str, Any]:
        return {
            "price": wire(order.price),
            "origQty": wire(order.quantity),
            "executedQty": wire(order.executed),
            "origQuoteOrderQty": wire(order.quote_quantity),
            "cummulativeQuoteQty": wire(order.quote_executed),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    def _order_answer(self, order: Order) -> dict[str, Any]:
        """An order as GET /api/v3/order, openOrders and allOrders show it."""
        return {
            "symbol": order.symbol_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            **self._order_state(order),
            "stopPrice": wire(ZERO),
            "icebergQty": wire(ZERO),
            "time": order.created_ms,
            "updateTime": order.updated_ms,
            "isWorking": True,
            "workingTime": order.created_ms,
        }

    def _find_order(self, params: dict[str, str], market_id: str) -> Order | None:
        """The order `orderId` names (checked against `origClientOrderId` when both are
        sent), or else the latest order with that clientOrderId."""
        order_id = self._integer(params, "orderId")
        client_order_id = params.get("origClientOrderId")
        if order_id is None and not client_order_id:
            raise BinanceRejection(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        if order_id is not None:
            order = self._orders.get(order_id)
            if order is None or order.symbol_id != market_id:
                return None
            if client_order_id and order.client_order_id != client_order_id:
                return None
            return order
        return next(
            (
                order
                for order in reversed(self._orders.values())
                if order.symbol_id == market_id and order.client_order_id == client_order_id
            ),
            None,
        )

    def _query_order(self, params: dict[str, str]) -> dict[str, Any]:
        market_id = self._symbol(params)
        order = self._find_order(params, market_id)
        if order is None:
            raise BinanceRejection(-2013, "Order does not exist.")
        return self._order_answer(order)

    def _cancel_order(self, params: dict[str, str]) -> dict[str, Any]:
        market_id = self._symbol(params)
        order = self._find_order(params, market_id)
        if order is None or not order.is_open:
            raise BinanceRejection(-2011, "Unknown order sent.")
        self._close(order, "CANCELED")
        return {
            "symbol": order.symbol_id,
            "origClientOrderId": order.client_order_id,
            "orderId": order.order_id,
            "orderListId": -1,
            # The cancel request's own id, not the order's: Binance answers with both.
            "clientOrderId": params.get("newClientOrderId") or self._generated_client_id(),
            "transactTime": order.updated_ms,
            **self._order_state(order),
        }

    def _open_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        market_id = self._optional_symbol(params)
        return [
            self._order_answer(order)
            for order in self._orders.values()
            if order.is_open and market_id in (None, order.symbol_id)
        ]

    def _all_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        market_id = self._symbol(params)
        orders = [order for order in self._orders.values() if order.symbol_id == market_id]
        page = self._page(
            orders, params, "orderId", lambda order: order.order_id, lambda order: order.created_ms
        )
        return [self._order_answer(order) for order in page]

    def _wallet_window(self, params: dict[str, str]) -> tuple[int, int, int, int]:
        """(start, end, offset, limit) of a deposit or withdrawal history request: the
        last 90 days unless the request says otherwise."""
        end = self._integer(params, "endTime")
        end = self.now_ms if end is None else end
        start = self._integer(params, "startTime")
        start = end - NINETY_DAYS_MS if start is None else start
        offset = self._integer(params, "offset") or 0
        return start, end, offset, self._limit(params, WALLET_LIMIT)

    def _ticker_24hr(self, params: dict[str, str]) -> dict[str, Any]:
        """A market's 24-hour ticker, every price the last trade's (0 before any)."""
        symbol_id = params.get("symbol", "")
        if symbol_id not in self._assets_of:
            raise BinanceRejection(-1121, "Invalid symbol.")
        trades = [trade for trade in self._trades if trade.symbol_id == symbol_id]
        last = trades[-1].price if trades else ZERO
        volume = sum((trade.quantity for trade in trades), ZERO)
        price = wire(last)
        return {
            "symbol": symbol_id,
            "priceChange": wire(ZERO),
            "priceChangePercent": "0.000",
            "weightedAvgPrice": price,
            "prevClosePrice": price,
            "lastPrice": price,
            "lastQty": wire(trades[-1].quantity if trades else ZERO),
            "bidPrice": price,
            "bidQty": wire(ZERO),
            "askPrice": price,
            "askQty": wire(ZERO),
            "openPrice": price,
            "highPrice": price,
            "lowPrice": price,
            "volume": wire(volume),
            "quoteVolume": wire(sum((trade.quote_quantity for trade in trades), ZERO)),
            "openTime": self.now_ms - DAY_MS,
            "closeTime": self.now_ms,
            "firstId": trades[0].trade_id if trades else -1,
            "lastId": trades[-1].trade_id if trades else -1,
            "count": len(trades),
        }

    def _wallet_page(self, history: list[Any], params: dict[str, str]) -> list[Any]:
        """The page a deposit or withdrawal history request asks for: newest first, as
        Binance lists them, within its window and coin."""
        start, end, offset, limit = self._wallet_window(params)
        coin = params.get("coin")
        listed = [
            item
            for item in reversed(history)
            if coin in (None, item.asset) and start <= item.time_ms <= end
        ]
        return listed[offset : offset + limit]

    def _deposit_history(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return [
            {
                "id": deposit.deposit_id,
                "amount": wire(deposit.amount),
                "coin": deposit.asset,
                "network": deposit.asset,
                "status": 1,
                "address": f"sim{hex_id(f'address-{deposit.asset}', 30)}",
                "addressTag": "",
                "txId": deposit.tx_id,
                "insertTime": deposit.time_ms,
                "completeTime": deposit.time_ms,
                "transferType": 0,
                "confirmTimes": "1/1",
                "unlockConfirm": 0,
                "walletType": 0,
            }
            for deposit in self._wallet_page(self._deposits, params)
        ]

    def _withdraw_history(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return [
            {
                "id": withdrawal.withdrawal_id,
                "amount": wire(withdrawal.amount),
                "transactionFee": wire(withdrawal.fee),
                "coin": withdrawal.asset,
                "status": 6,
                "address": f"sim{hex_id(f'destination-{withdrawal.asset}', 30)}",
                "txId": withdrawal.tx_id,
                "applyTime": utc_text(withdrawal.time_ms),
                "network": withdrawal.asset,
                "transferType": 0,
                "info": "",
                "confirmNo": 12,
                "walletType": 0,
                "txKey": "",
                "completeTime": utc_text(withdrawal.time_ms),
            }
            for withdrawal in self._wallet_page(self._withdrawals, params)
        ]
