"""A Kraken account synced through ccxt's real Kraken parsing, its HTTP layer answering with
ccxt's own recorded Kraken responses (tests/data/ccxt-static-kraken-account.json: open
orders of three kinds, a closed market order, a deposit, a withdrawal). What ccxt did not
record (the trade history, the ticker, the balance) is written here in Kraken's wire
format, agreeing with the recorded ones."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

import ccxt
import pytest

import tradedb
from ccxt_markets import spot_market
from conftest import DATA

RECORDED = json.loads((DATA / "ccxt-static-kraken-account.json").read_text())["methods"]
SINCE = 1_700_000_000_000
MARKETS = {"LTC/USDT": "LTCUSDT", "XRP/USD": "XRPUSD"}
CLOSED_MARKET_ORDER = "OGMZCL-KC6MC-ZRBGM6"


def recorded(method: str, description: str) -> Any:
    return next(case for case in RECORDED[method] if case["description"] == description)


def open_orders() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for case in RECORDED["fetchOpenOrders"]:
        merged.update(case["httpResponse"]["result"]["open"])
    return {"error": [], "result": {"open": merged}}


# The fill of the recorded closed market order, as Kraken's TradesHistory lists it.
TRADES_HISTORY = {
    "error": [],
    "result": {
        "trades": {
            "TWA6QJ-ZO4EM-6QIHQJ": {
                "ordertxid": CLOSED_MARKET_ORDER,
                "postxid": "TKH2SE-M7IF5-CFI7LT",
                "pair": "LTCUSDT",
                "time": 1705260547.4726,
                "type": "buy",
                "ordertype": "market",
                "price": "71.05741",
                "cost": "7.105741",
                "fee": "0.018475",
                "vol": "0.10000000",
                "margin": "0.000000",
                "misc": "",
            }
        },
        "count": 1,
    },
}
# Kraken's Ticker answer for both markets (ask, bid, last trade closed, volume, ...).
TICKER = {
    "error": [],
    "result": {
        "LTCUSDT": {
            "a": ["71.10000", "1", "1.000"],
            "b": ["71.00000", "1", "1.000"],
            "c": ["71.05000", "0.10000000"],
            "v": ["120.50000000", "240.10000000"],
            "p": ["71.02000", "70.99000"],
            "t": [58, 131],
            "l": ["70.10000", "70.10000"],
            "h": ["72.00000", "72.00000"],
            "o": "70.50000",
        },
        "XRPUSD": {
            "a": ["0.50530", "100", "100.000"],
            "b": ["0.50520", "100", "100.000"],
            "c": ["0.50527", "10.00000000"],
            "v": ["1000.00000000", "2000.00000000"],
            "p": ["0.50500", "0.50400"],
            "t": [10, 20],
            "l": ["0.50000", "0.50000"],
            "h": ["0.51000", "0.51000"],
            "o": "0.50100",
        },
    },
}
BALANCE = {
    "error": [],
    "result": {
        "USDT": {"balance": "1000.00000000", "hold_trade": "0.00000000"},
        "LTC": {"balance": "5.00000000", "hold_trade": "0.20000000"},
        "USD": {"balance": "100.0000", "hold_trade": "0.0000"},
    },
}


class KrakenAccount:
    """ccxt.kraken whose private endpoints answer from the recordings above."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.answers: dict[str, Any] = {
            "OpenOrders": open_orders(),
            "TradesHistory": TRADES_HISTORY,
            "QueryOrders": recorded("fetchOrder", "closed market order")["httpResponse"],
            "DepositStatus": recorded("fetchDeposits", "fetchDeposits")["httpResponse"],
            "WithdrawStatus": recorded("fetchWithdrawals", "fetchWithdrawals")["httpResponse"],
            "BalanceEx": BALANCE,
            "Ticker": TICKER,
        }

    def client(self) -> Any:
        client = ccxt.kraken({"apiKey": "key", "secret": "c2VjcmV0", "enableRateLimit": False})
        client.set_markets(
            [spot_market(market_id, symbol) for symbol, market_id in MARKETS.items()]
        )
        client.fetch = self.fetch
        return client

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        endpoint = urlparse(url).path.rsplit("/", 1)[-1]
        self.paths.append(endpoint)
        return self.answers[endpoint]


def test_kraken_orders_of_every_kind_a_fill_and_transfers_come_in_through_ccxt(
    db_target: str,
) -> None:
    account = KrakenAccount()
    with tradedb.open(db_target) as db:
        report = db.accounts.sync(
            "kraken",
            symbols=list(MARKETS),
            since=SINCE,
            apply=True,
            default_strategy="manual",
            client=account.client(),
        )

        # The three open orders (a take-profit market sell, a stop-loss-limit sell, a
        # trailing-stop buy) and the closed market order behind the fill.
        assert sorted(report.adopted_orders) == sorted(
            [
                "OXCZ7B-EMVZQ-MTJTQJ",
                "OIIQBL-6PV3A-7M2AJJ",
                "OF7S76-H2IMS-N2ML4U",
                CLOSED_MARKET_ORDER,
            ]
        )
        stop = db.ledger.order("kraken", "OIIQBL-6PV3A-7M2AJJ")
        assert stop is not None
        assert (stop.side, stop.order_type, stop.price, stop.amount, stop.strategy) == (
            "sell",
            "limit",
            Decimal(54),
            Decimal("0.1"),
            "manual",
        )
        bought = db.ledger.order("kraken", CLOSED_MARKET_ORDER)
        assert bought is not None
        assert (bought.status, bought.filled_amount) == ("filled", Decimal("0.1"))
        [fill] = db.tables.trades.list({"exchange": "kraken"}).items
        assert (fill.exchange_trade_id, fill.amount, fill.price, fill.fee, fill.fee_currency) == (
            "TWA6QJ-ZO4EM-6QIHQJ",
            Decimal("0.1"),
            Decimal("71.05741"),
            Decimal("0.018475"),
            "USDT",
        )
        transfers = db.tables.wallet_movements.list({"kind": ["deposit", "withdrawal"]}).items
        assert {(m.kind, m.reference, m.asset, m.available_change) for m in transfers} == {
            ("deposit", "54435345", "USDT", Decimal(9)),
            # 10 USDT sent and Kraken's 3 USDT fee.
            ("withdrawal", "FTM6UXZ-5jh345jkhfkdsjfhkjdf", "USDT", Decimal(-13)),
        }
        # The position the fill opened, marked to the ticker's last price.
        assert report.marked_positions == 1
        [position] = db.tables.positions.list({"exchange": "kraken", "status": "open"}).items
        assert (position.symbol, position.current_price) == ("LTC/USDT", Decimal("71.05"))
        # The price's move on 0.1 LTC, less the fee paid to open it.
        moved = (Decimal("71.05") - Decimal("71.05741")) * Decimal("0.1")
        assert position.unrealized_pnl == moved - Decimal("0.018475")
        assert db.ledger.audit() == []

        again = db.accounts.sync("kraken", symbols=list(MARKETS), client=account.client())
        assert again.adopted_orders == []
        assert (again.deposits.new, again.withdrawals.new) == (0, 0)
        assert sum(count.new for count in again.trades.values()) == 0


@pytest.mark.fault("bad input")
def test_a_first_sync_without_apply_says_how_to_open_the_wallets(tmp_path: Path) -> None:
    account = KrakenAccount()
    with tradedb.open(tmp_path / "live.sqlite") as db:
        with pytest.raises(tradedb.TradeDBError, match="apply=True opens them"):
            db.accounts.sync("kraken", symbols=["LTC/USDT"], since=SINCE, client=account.client())
        assert db.tables.crypto_orders.count() == 0


# --- orders placed through tradedb ---------------------------------------------------------

PLACED = recorded("createOrder", "create order")["httpResponse"]["result"]["txid"][0]


class KrakenOrderDesk(KrakenAccount):
    """The account above, taking orders: AddOrder answers as ccxt recorded it, or the
    answer is lost; the request bodies are kept."""

    def __init__(self, *, answer_lost: bool = False) -> None:
        super().__init__()
        self.bodies: dict[str, list[dict[str, str]]] = {}
        self.answer_lost = answer_lost
        self.answers["AddOrder"] = recorded("createOrder", "create order")["httpResponse"]

    def fetch(self, url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        endpoint = urlparse(url).path.rsplit("/", 1)[-1]
        self.bodies.setdefault(endpoint, []).append(dict(parse_qsl(body or "")))
        if endpoint == "AddOrder" and self.answer_lost:
            self.paths.append(endpoint)
            raise ccxt.RequestTimeout(f"kraken POST {url} request timeout")
        return super().fetch(url, method, headers, body)

    def take_order(self, client_order_id: str) -> None:
        """The order AddOrder placed, as OpenOrders lists it from now on."""
        listed = open_orders()
        listed["result"]["open"][PLACED] = {
            "refid": None,
            "userref": "0",
            "cl_ord_id": client_order_id,
            "status": "open",
            "opentm": "1705260600.000000",
            "starttm": "0",
            "expiretm": "0",
            "descr": {
                "pair": "LTCUSDT",
                "type": "buy",
                "ordertype": "limit",
                "price": "70.00000",
                "price2": "0",
                "leverage": "none",
                "order": "buy 0.10000000 LTCUSDT @ limit 70.00000",
                "close": "",
            },
            "vol": "0.10000000",
            "vol_exec": "0.00000000",
            "cost": "0.000000",
            "fee": "0.000000",
            "price": "0.000000",
            "misc": "",
            "oflags": "fciq",
        }
        self.answers["OpenOrders"] = listed


def opened_kraken(db: tradedb.TradeDB, desk: KrakenOrderDesk) -> None:
    db.accounts.sync("kraken", symbols=list(MARKETS), since=SINCE, apply=True, client=desk.client())


def place_on_kraken(db: tradedb.TradeDB, desk: KrakenOrderDesk, **changes: Any) -> Any:
    order = {
        "symbol": "LTC/USDT",
        "side": "buy",
        "order_type": "limit",
        "amount": "0.1",
        "price": "70",
        **changes,
    }
    return db.accounts.place("kraken", client=desk.client(), **order)


def test_an_order_placed_on_kraken_carries_its_cl_ord_id_and_takes_the_txid(
    tmp_path: Path,
) -> None:
    desk = KrakenOrderDesk()
    with tradedb.open(tmp_path / "live.sqlite") as db:
        opened_kraken(db, desk)

        placed = place_on_kraken(db, desk, client_order_id="ema-ltc-1")

        [sent] = desk.bodies["AddOrder"]
        assert (sent["cl_ord_id"], sent["pair"], sent["volume"]) == ("ema-ltc-1", "LTCUSDT", "0.1")
        assert (placed.outcome, placed.order.order_id) == ("acknowledged", PLACED)
        assert (placed.order.client_order_id, placed.order.status) == ("ema-ltc-1", "open")
        assert db.ledger.audit() == []


def test_a_kraken_order_whose_answer_was_lost_is_found_by_cl_ord_id(tmp_path: Path) -> None:
    desk = KrakenOrderDesk(answer_lost=True)
    with tradedb.open(tmp_path / "live.sqlite") as db:
        opened_kraken(db, desk)
        desk.take_order("ema-ltc-2")  # Kraken did take it

        placed = place_on_kraken(db, desk, client_order_id="ema-ltc-2")

        assert (placed.outcome, placed.order.order_id) == ("acknowledged", PLACED)
        # Looked up by its cl_ord_id among the open orders, not sent again.
        assert {"cl_ord_id": "ema-ltc-2"}.items() <= desk.bodies["OpenOrders"][-2].items()
        assert desk.paths.count("AddOrder") == 1
        assert db.ledger.audit() == []


@pytest.mark.fault("bad input")
def test_kraken_refuses_a_client_order_id_longer_than_18_that_is_no_uuid(tmp_path: Path) -> None:
    desk = KrakenOrderDesk()
    with tradedb.open(tmp_path / "live.sqlite") as db:
        opened_kraken(db, desk)
        orders_before = db.tables.crypto_orders.count()

        with pytest.raises(tradedb.ValidationError, match="UUID"):
            place_on_kraken(db, desk, client_order_id="ema-ltc-19-characters")

        assert db.tables.crypto_orders.count() == orders_before
        assert "AddOrder" not in desk.paths


@pytest.mark.fault("bad input")
def test_a_price_finer_than_the_market_s_step_is_refused_not_cut(tmp_path: Path) -> None:
    # ccxt would send 70.00000 for 70.000001 without a word.
    desk = KrakenOrderDesk()
    with tradedb.open(tmp_path / "live.sqlite") as db:
        opened_kraken(db, desk)
        orders_before = db.tables.crypto_orders.count()

        with pytest.raises(tradedb.ValidationError, match=r"steps of 0\.00001") as refused:
            place_on_kraken(db, desk, price="70.000001")

        assert refused.value.field == "price"
        assert db.tables.crypto_orders.count() == orders_before
        assert "AddOrder" not in desk.paths
