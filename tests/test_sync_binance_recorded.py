"""A Binance spot account synced through ccxt's real Binance parsing, its HTTP layer answering
with ccxt's own recorded Binance responses (tests/data/ccxt-static-binance-account.json: a
fill, a closed market order, an open order, a canceled order, the balances, a placed order,
a deposit, a withdrawal). What ccxt did not record (the 24-hour ticker, the account's USDT)
is written here in Binance's wire format, agreeing with the recorded answers. The last tests
check that the simulated Binance of tests/sim_binance.py answers the same requests with the
same keys, so that what the simulator proves holds for Binance's own answers."""

from __future__ import annotations

import json
import re
import time
from calendar import timegm
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import ccxt
import pytest

import tradedb
from ccxt_markets import spot_market
from conftest import DATA
from sim_binance import SimulatedBinance
from tradedb.services.live.account import SyncReport

RECORDED = json.loads((DATA / "ccxt-static-binance-account.json").read_text())["methods"]
DAY_MS = 86_400_000
# 2023-10-24 00:00 UTC, the day of the recorded fill: the ledger follows the account from
# then on.
SINCE = 1_698_105_600_000
MARKETS = {"LTC/USDT": "LTCUSDT", "SOL/USDT": "SOLUSDT"}
# The order types Binance's exchangeInfo lists for a spot market; ccxt's create_order
# refuses a type its market's info does not list.
SPOT_ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]
SIGNING_PARAMS = ("timestamp", "signature", "recvWindow")


def recorded(method: str) -> Any:
    """The exchange's raw answer ccxt recorded for `method` (one spot case each)."""
    [case] = RECORDED[method]
    return case["httpResponse"]


FILL = recorded("fetchMyTrades")[0]
OPEN_ORDER = recorded("fetchOpenOrders")[0]
CANCELED_ORDER = recorded("fetchOrders")[0]
# ccxt recorded fetchOrder for another order (3397148653, a MARKET sell of 0.1 LTC in March
# 2023) than the one its recorded fill belongs to (3784695242). This account has the fill's
# order: the recorded closed MARKET sell, with the fill's order id, amount, cost and time.
FILLED_ORDER = {
    **recorded("fetchOrder"),
    "orderId": FILL["orderId"],
    "origQty": FILL["qty"],
    "executedQty": FILL["qty"],
    "cummulativeQuoteQty": FILL["quoteQty"],
    "time": FILL["time"],
    "updateTime": FILL["time"],
    "workingTime": FILL["time"],
}
# ccxt's recorded balances list no USDT, yet the recorded open order holds 10 USDT and the
# fill, the deposit and the withdrawal move USDT. Here the account held 100 USDT before
# SINCE, got 13.912074 for the fill (13.926 less its 0.013926 fee), 10 deposited and 10
# withdrawn (9 sent, 1 fee): 113.912074, of which the open buy of 0.2 LTC at 50 holds 10.
# The recorded LTC (0.919741) is what is left of 1.119741 after the fill sold 0.2.
BALANCE = {
    **recorded("fetchBalance"),
    "balances": [
        *recorded("fetchBalance")["balances"],
        {"asset": "USDT", "free": "103.91207400", "locked": "10.00000000"},
    ],
}
PLACED = recorded("createOrder")


def ticker_24hr(now_ms: int) -> dict[str, Any]:
    """LTCUSDT's 24-hour ticker in the shape of ccxt's recorded Binance ticker
    (ccxt-static-ohlcv-ticker.json), last traded at the recorded fill's price; the window
    ends at the request, as Binance's does."""
    return {
        "symbol": "LTCUSDT",
        "priceChange": "0.13000000",
        "priceChangePercent": "0.187",
        "weightedAvgPrice": "69.58000000",
        "prevClosePrice": "69.50000000",
        "lastPrice": FILL["price"],
        "lastQty": FILL["qty"],
        "bidPrice": "69.62000000",
        "bidQty": "12.50000000",
        "askPrice": "69.64000000",
        "askQty": "8.10000000",
        "openPrice": "69.50000000",
        "highPrice": "70.10000000",
        "lowPrice": "68.90000000",
        "volume": "51230.40000000",
        "quoteVolume": "3564611.23200000",
        "openTime": str(now_ms - DAY_MS),
        "closeTime": str(now_ms),
        "firstId": "309520011",
        "lastId": "309640010",
        "count": "120000",
    }


def binance_market(market_id: str, symbol: str) -> dict[str, Any]:
    """A spot market as ccxt's binance reads it: the flags its parse_order looks at, and
    exchangeInfo's order types, which its create_order checks."""
    return {
        **spot_market(market_id, symbol),
        "margin": False,
        "swap": False,
        "future": False,
        "option": False,
        "contract": False,
        "linear": None,
        "inverse": None,
        "info": {"symbol": market_id, "orderTypes": SPOT_ORDER_TYPES},
    }


def epoch_ms(utc_text: str) -> int:
    """A time as Binance's withdrawal history writes it (UTC, to the second)."""
    return timegm(time.strptime(utc_text, "%Y-%m-%d %H:%M:%S")) * 1000


def within(
    rows: list[dict[str, Any]],
    time_of: Callable[[dict[str, Any]], int],
    params: dict[str, str],
    span_ms: int,
) -> list[dict[str, Any]]:
    """The rows Binance gives for a request's window: startTime to endTime, where startTime
    alone opens `span_ms` after it; without either, the latest rows."""
    if "startTime" not in params and "endTime" not in params:
        return rows
    start = int(params.get("startTime", 0))
    end = int(params.get("endTime", start + span_ms))
    return [row for row in rows if start <= time_of(row) <= end]


class BinanceAccount:
    """ccxt.binance whose private endpoints answer from the recordings above. The requests
    are kept: method, path and parameters (the signing ones left out)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.open_orders: list[dict[str, Any]] = [OPEN_ORDER]
        self.orders = {order["orderId"]: order for order in (FILLED_ORDER, OPEN_ORDER)}
        self.balance: dict[str, Any] = BALANCE

    def client(self) -> Any:
        client = ccxt.binance({"apiKey": "key", "secret": "secret", "enableRateLimit": False})
        client.set_markets([binance_market(mid, symbol) for symbol, mid in MARKETS.items()])
        client.fetch = self.fetch
        return client

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        parts = urlsplit(url)
        params = dict(parse_qsl(body or "")) | dict(parse_qsl(parts.query))
        for name in SIGNING_PARAMS:
            params.pop(name, None)
        path = parts.path.lstrip("/")
        self.requests.append((method, path, params))
        # Through JSON: ccxt writes into the answers it is given (a transfer's "type").
        return json.loads(json.dumps(self.answer(method, path, params)))

    def answer(self, method: str, path: str, params: dict[str, str]) -> Any:
        if (method, path) == ("GET", "api/v3/order") and params["orderId"] in self.orders:
            return self.orders[params["orderId"]]
        if (method, path) == ("GET", "api/v3/openOrders"):
            return [order for order in self.open_orders if order["symbol"] == params["symbol"]]
        if (method, path) == ("GET", "api/v3/myTrades"):
            fills = [fill for fill in [FILL] if fill["symbol"] == params["symbol"]]
            return within(fills, lambda fill: int(fill["time"]), params, DAY_MS)
        if (method, path) == ("GET", "sapi/v1/capital/deposit/hisrec"):
            deposits = recorded("fetchDeposits")
            return within(deposits, lambda item: int(item["insertTime"]), params, 90 * DAY_MS)
        if (method, path) == ("GET", "sapi/v1/capital/withdraw/history"):
            withdrawals = recorded("fetchWithdrawals")
            return within(
                withdrawals, lambda item: epoch_ms(item["applyTime"]), params, 90 * DAY_MS
            )
        if (method, path) == ("GET", "api/v3/account"):
            return self.balance
        if (method, path) == ("GET", "api/v3/ticker/24hr") and params["symbol"] == "LTCUSDT":
            return ticker_24hr(int(time.time() * 1000))
        if (method, path) == ("POST", "api/v3/order"):
            return PLACED
        raise AssertionError(f"an unexpected request: {method} {path} {params}")


def sync(db: tradedb.TradeDB, account: BinanceAccount, **options: Any) -> SyncReport:
    return db.accounts.sync("binance", symbols=["LTC/USDT"], client=account.client(), **options)


def test_a_binance_account_comes_in_through_ccxt_s_recorded_answers(db_target: str) -> None:
    account = BinanceAccount()
    with tradedb.open(db_target) as db:
        report = sync(db, account, since=SINCE, apply=True, default_strategy="manual")

        # The recorded open order first, then the order behind the recorded fill, which
        # was fetched (and only it) to be adopted before its fill.
        assert report.adopted_orders == ["3811057334", "3784695242"]
        fetched = [params for _, path, params in account.requests if path == "api/v3/order"]
        assert fetched == [{"symbol": "LTCUSDT", "orderId": "3784695242"}]
        resting = db.ledger.order("binance", "3811057334")
        assert resting is not None
        # A LIMIT_MAKER (post-only) buy of 0.2 LTC at 50, holding 10 USDT.
        assert (
            resting.side,
            resting.order_type,
            resting.amount,
            resting.price,
            resting.status,
            resting.strategy,
            resting.timestamp,
        ) == ("buy", "limit", Decimal("0.2"), Decimal(50), "open", "manual", 1699380855570)
        assert (resting.locked_asset, resting.locked_amount) == ("USDT", Decimal(10))
        sold = db.ledger.order("binance", "3784695242")
        assert sold is not None
        # A MARKET order, which Binance lists at price 0: ccxt gives its average price.
        assert (sold.side, sold.order_type, sold.status, sold.amount, sold.filled_amount) == (
            "sell",
            "market",
            "filled",
            Decimal("0.2"),
            Decimal("0.2"),
        )
        assert sold.price == Decimal("69.63")

        [fill] = db.tables.trades.list({"exchange": "binance"}).items
        assert (
            fill.exchange_trade_id,
            fill.order_id,
            fill.side,
            fill.amount,
            fill.price,
            fill.total_value,
            fill.fee,
            fill.fee_currency,
            fill.timestamp,
        ) == (
            "309520010",
            "3784695242",
            "sell",
            Decimal("0.2"),
            Decimal("69.63"),
            Decimal("13.926"),
            Decimal("0.013926"),
            "USDT",
            1698138992358,
        )

        transfers = db.tables.wallet_movements.list({"kind": ["deposit", "withdrawal"]}).items
        assert {
            (m.kind, m.reference, m.asset, m.available_change, m.timestamp) for m in transfers
        } == {
            ("deposit", "4534543435", "USDT", Decimal(10), 1714923704000),
            # 9 USDT sent and Binance's 1 USDT fee, at the withdrawal's applyTime.
            ("withdrawal", "54c1b7543534543fsdfsdf6", "USDT", Decimal(-10), 1714923536000),
        }
        wallets = {
            wallet.asset: (wallet.available_balance, wallet.locked_balance)
            for wallet in db.ledger.wallets(exchange="binance")
            if wallet.available_balance or wallet.locked_balance
        }
        assert wallets == {
            "LTC": (Decimal("0.919741"), Decimal(0)),
            "ETH": (Decimal("0.02229833"), Decimal(0)),
            "USDT": (Decimal("103.912074"), Decimal(10)),
        }
        assert db.ledger.audit() == []
        movements = db.tables.wallet_movements.count()

        again = sync(db, account)

        assert again.adopted_orders == again.closed_orders == []
        assert (again.deposits.new, again.withdrawals.new) == (0, 0)
        assert again.trades["LTC/USDT"].new == 0
        assert again.reconciliation is not None
        assert again.reconciliation.differences == []
        assert db.tables.trades.count() == 1
        assert db.tables.wallet_movements.count() == movements
        assert db.ledger.audit() == []


def test_an_adopted_order_binance_canceled_ends_at_its_recorded_cancel(tmp_path: Path) -> None:
    # ccxt recorded this order once canceled (fetchOrders); before that Binance listed it
    # open, as it lists the recorded open order: status NEW, updated when placed.
    canceled_id = CANCELED_ORDER["orderId"]
    still_open = {**CANCELED_ORDER, "status": "NEW", "updateTime": CANCELED_ORDER["time"]}
    account = BinanceAccount()
    account.open_orders = [OPEN_ORDER, still_open]
    # The balances of BALANCE, with 5 more USDT held for the buy of 0.1 LTC at 50.
    account.balance = {
        **BALANCE,
        "balances": [
            *recorded("fetchBalance")["balances"],
            {"asset": "USDT", "free": "98.91207400", "locked": "15.00000000"},
        ],
    }
    with tradedb.open(tmp_path / "live.sqlite") as db:
        first = sync(db, account, since=SINCE, apply=True)
        assert canceled_id in first.adopted_orders
        order = db.ledger.order("binance", canceled_id)
        assert order is not None
        assert (order.status, order.locked_amount) == ("open", Decimal(5))

        account.open_orders = [OPEN_ORDER]
        account.orders[canceled_id] = CANCELED_ORDER
        account.balance = BALANCE
        report = sync(db, account)

        assert report.closed_orders == [canceled_id]
        order = db.ledger.order("binance", canceled_id)
        assert order is not None
        assert (order.status, order.canceled_at, order.locked_amount) == (
            "canceled",
            1706883268013,  # the recorded order's updateTime
            Decimal(0),
        )
        assert report.reconciliation is not None
        assert report.reconciliation.differences == []
        [usdt] = db.ledger.wallets(exchange="binance", asset="USDT")
        assert (usdt.available_balance, usdt.locked_balance) == (Decimal("103.912074"), 10)
        assert db.ledger.audit() == []


@pytest.mark.parametrize("client_order_id", ["ema-sol-1", None])
def test_an_order_placed_on_binance_carries_its_client_order_id_and_takes_the_recorded_id(
    tmp_path: Path, client_order_id: str | None
) -> None:
    account = BinanceAccount()
    with tradedb.open(tmp_path / "live.sqlite") as db:
        sync(db, account, since=SINCE, apply=True)
        sent_before = len(account.requests)

        # The order of ccxt's recorded createOrder case, without its self-trade-prevention
        # and iceberg options.
        placed = db.accounts.place(
            "binance",
            symbol="SOL/USDT",
            side="buy",
            order_type="limit",
            amount="0.05",
            price="241",
            client_order_id=client_order_id,
            client=account.client(),
        )

        [(method, path, sent)] = account.requests[sent_before:]
        assert (method, path) == ("POST", "api/v3/order")
        given = placed.order.client_order_id
        assert sent["newClientOrderId"] == given
        if client_order_id is None:
            assert given is not None
            assert re.fullmatch("[0-9a-f]{32}", given)  # a UUID of tradedb's
        else:
            assert given == client_order_id
        # As ccxt's recorded request for that case sends it.
        assert {name: sent[name] for name in ("symbol", "side", "type", "timeInForce")} == {
            "symbol": "SOLUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
        }
        assert (Decimal(sent["quantity"]), Decimal(sent["price"])) == (Decimal("0.05"), 241)
        # The recorded answer, unchanged: its clientOrderId is the one ccxt made up when it
        # recorded the case; the order takes the exchange's orderId from it.
        assert (placed.outcome, placed.sent) == ("acknowledged", True)
        assert (placed.order.order_id, placed.order.status, placed.order.submission) == (
            "9780331417",
            "open",
            "acknowledged",
        )
        assert (placed.order.locked_asset, placed.order.locked_amount) == (
            "USDT",
            Decimal("12.05"),
        )
        assert db.ledger.audit() == []


# --- the simulator speaks Binance's wire format ---------------------------------------------

# Keys that Binance's recorded answers and the simulator's differ in and that are not
# compared, with the reason.
NOT_COMPARED: dict[str, dict[str, str]] = {
    "createOrder": {
        # Binance's answer has icebergQty only for an iceberg order, which the recorded
        # one was; the simulator takes no iceberg orders (its exchangeInfo says so).
        "icebergQty": "only in the answer to an iceberg order",
    },
    "fetchDeposits": {
        # ccxt's fetch_deposits writes "type" into each item of the answer it got, and the
        # recording was taken from that object afterwards; Binance does not send it.
        "type": "written by ccxt, not sent by Binance",
        # Binance's deposit history has had completeTime since after ccxt recorded this
        # answer (its current API documents it; older answers, as recorded, lack it).
        "completeTime": "newer than ccxt's recording",
    },
    "fetchWithdrawals": {"type": "written by ccxt, not sent by Binance"},
}


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """The keys of a JSON value: nested ones as a.b, those of a list's items as a[].b."""
    if isinstance(value, list):
        inner = prefix.removesuffix(".") + "[]."
        return set().union(*(key_paths(item, inner) for item in value))
    if isinstance(value, dict):
        return set().union(
            *({prefix + key} | key_paths(item, f"{prefix}{key}.") for key, item in value.items())
        )
    return set()


def items(answer: Any) -> list[Any]:
    return answer if isinstance(answer, list) else [answer]


def unified_fields(parsed: dict[str, Any]) -> set[str]:
    """The fields of ccxt's parse that have a value (a balance's currencies left out)."""
    return {
        key
        for key, value in parsed.items()
        if key != "info" and value is not None and not (isinstance(value, dict) and "free" in value)
    }


def simulated_account() -> tuple[SimulatedBinance, str]:
    """A simulated account that has what the recordings show: a trade of a closed MARKET
    sell, an open LIMIT_MAKER buy, a canceled buy, a deposit and a withdrawal; and the
    closed order's id."""
    sim = SimulatedBinance(markets=MARKETS, balances={"USDT": "100", "LTC": "1"})
    closed = sim.place("LTC/USDT", "sell", "market", "0.1")
    sim.fill(closed, "0.1", price="90.8", fee="0.00908")
    sim.place("LTC/USDT", "buy", "limit_maker", "0.2", "50")
    sim.cancel(sim.place("LTC/USDT", "buy", "limit", "0.1", "50"))
    sim.deposit("USDT", "10")
    sim.withdraw("USDT", "9", fee="1")
    return sim, closed


@pytest.mark.parametrize("method", sorted(RECORDED))
def test_the_simulator_answers_each_recorded_request_with_binance_s_keys(method: str) -> None:
    sim, closed = simulated_account()
    client = sim.client()
    answers: list[Any] = []

    def answered(url: str, verb: str = "GET", headers: Any = None, body: Any = None) -> Any:
        answer = sim.handle(url, verb, headers, body)
        answers.append(json.loads(json.dumps(answer)))  # before ccxt writes into it
        return answer

    client.fetch = answered
    [case] = RECORDED[method]
    inputs = case["input"]
    if method == "fetchOrder":
        inputs = [closed, *inputs[1:]]  # the simulator's closed order, not Binance's

    parsed = getattr(client, method)(*inputs)

    [answer] = answers
    ignored = set(NOT_COMPARED.get(method, {}))
    [binance] = [key_paths(item) - ignored for item in items(case["httpResponse"])]
    simulated = [key_paths(item) - ignored for item in items(answer)]
    assert simulated, f"the simulator listed nothing for {method}"
    for keys in simulated:
        assert keys == binance
    # And ccxt reads from the simulator's answer every field it reads from Binance's.
    [recorded_parse] = items(case["parsedResponse"])
    assert {frozenset(unified_fields(item)) for item in items(parsed)} == {
        frozenset(unified_fields(recorded_parse))
    }
