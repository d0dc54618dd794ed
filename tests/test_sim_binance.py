"""The simulated Binance account, seen only through ccxt's unified calls: what a bot reads
of its trades, orders, balances and transfers, and how requests fail."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

from sim_binance import DAY_MS, SimulatedBinance

START = 1_700_000_000_000


def exact(value: Any) -> Decimal:
    """A ccxt number as the project reads it."""
    return Decimal(str(value))


def signed_requests(sim: SimulatedBinance) -> list[tuple[str, str]]:
    return [(method, path) for method, path, _ in sim.requests]


def test_my_trades_page_by_since_over_many_pages() -> None:
    sim = SimulatedBinance(balances={"USDT": "1000000"}, page_limit=4)
    client = sim.client()
    order_id = sim.place("BTC/USDT", "buy", "limit", "1", "30000")
    prices = [Decimal(f"{29000 + n}.12345678") for n in range(25)]
    fills = [sim.fill(order_id, "0.01", price) for price in prices]
    # A trade in another market never shows in BTC/USDT's pages.
    sim.fill(sim.place("ETH/USDT", "buy", "limit", "1", "2000"), "1")

    trades, since, pages = [], START, 0
    while page := client.fetch_my_trades("BTC/USDT", since, 1000):
        pages += 1
        assert len(page) <= 4  # the page limit wins over the caller's
        trades += page
        since = page[-1]["timestamp"] + 1

    assert pages == 7
    assert [trade["id"] for trade in trades] == fills
    assert [exact(trade["price"]) for trade in trades] == prices
    assert {exact(trade["amount"]) for trade in trades} == {Decimal("0.01")}
    # price * amount has 10 decimals; Binance's quoteQty keeps 8.
    assert exact(trades[0]["cost"]) == Decimal("290.00123456")
    assert {trade["order"] for trade in trades} == {order_id}
    assert {(trade["side"], trade["takerOrMaker"]) for trade in trades} == {("buy", "maker")}
    assert [trade["timestamp"] for trade in trades] == list(range(START + 2, START + 27))
    assert sim.requests[-1] == (
        "GET",
        "api/v3/myTrades",
        {"symbol": "BTCUSDT", "startTime": str(since), "limit": "1000"},
    )
    assert len(sim.requests) == pages + 1


def test_my_trades_by_trade_id_and_most_recent() -> None:
    sim = SimulatedBinance(balances={"BTC": "1"}, page_limit=3)
    client = sim.client()
    order_id = sim.place("BTC/USDT", "sell", "limit", "1", "40000")
    fills = [sim.fill(order_id, "0.1") for _ in range(8)]

    assert [t["id"] for t in client.fetch_my_trades("BTC/USDT")] == fills[-3:]
    from_id = client.fetch_my_trades("BTC/USDT", params={"fromId": fills[4]})
    assert [t["id"] for t in from_id] == fills[4:7]
    of_order = client.fetch_my_trades("BTC/USDT", params={"orderId": order_id})
    assert [t["id"] for t in of_order] == fills[-3:]
    # Binance answers fromId with startTime as a bad combination of parameters.
    with pytest.raises(ccxt.BadRequest, match="-1128"):
        client.fetch_my_trades("BTC/USDT", START, params={"fromId": fills[0]})


def test_my_trades_windows_last_24_hours() -> None:
    sim = SimulatedBinance(balances={"USDT": "100000"})
    client = sim.client()
    order_id = sim.place("BTC/USDT", "buy", "limit", "1", "30000")
    first = sim.fill(order_id, "0.5")
    sim.now_ms += 2 * DAY_MS
    second = sim.fill(order_id, "0.5")

    # startTime alone opens a 24-hour window: paging by time must step over quiet days.
    assert [t["id"] for t in client.fetch_my_trades("BTC/USDT", START)] == [first]
    assert client.fetch_my_trades("BTC/USDT", START + DAY_MS // 2) == []
    later = client.fetch_my_trades("BTC/USDT", START + 2 * DAY_MS)
    assert [t["id"] for t in later] == [second]
    with pytest.raises(ccxt.BadRequest, match="-1127"):
        client.fetch_my_trades("BTC/USDT", START, params={"until": START + 2 * DAY_MS})


def test_open_orders_and_order_lookup_by_id_and_client_id() -> None:
    sim = SimulatedBinance(balances={"USDT": "50000", "ETH": "10"})
    client = sim.client()
    web_id = sim.place("ETH/USDT", "sell", "limit", "2.5", "2500.5")
    mine = client.create_order(
        "BTC/USDT", "limit", "buy", 0.25, 31000, {"newClientOrderId": "bot-000001"}
    )

    method, path, sent = sim.requests[-1]
    assert (method, path) == ("POST", "api/v3/order")
    assert sent["newClientOrderId"] == "bot-000001"
    assert (sent["type"], sent["quantity"], sent["price"]) == ("LIMIT", "0.25", "31000")
    assert "signature" not in sent
    assert (mine["clientOrderId"], mine["status"], mine["timestamp"]) == (
        "bot-000001",
        "open",
        START + 2,
    )

    opened = {order["id"]: order for order in client.fetch_open_orders()}
    assert set(opened) == {web_id, mine["id"]}
    web = opened[web_id]
    assert web["clientOrderId"].startswith("web_")
    assert (web["symbol"], web["side"], web["type"]) == ("ETH/USDT", "sell", "limit")
    assert (exact(web["amount"]), exact(web["price"])) == (Decimal("2.5"), Decimal("2500.5"))
    assert [o["id"] for o in client.fetch_open_orders("ETH/USDT")] == [web_id]

    by_id = client.fetch_order(mine["id"], "BTC/USDT")
    by_client_id = client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "bot-000001"})
    assert by_id["id"] == by_client_id["id"] == mine["id"]
    assert by_client_id["clientOrderId"] == "bot-000001"
    assert sim.requests[-1] == (
        "GET",
        "api/v3/order",
        {"symbol": "BTCUSDT", "origClientOrderId": "bot-000001"},
    )
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        client.fetch_order(web_id, "BTC/USDT")  # an order id of another market
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "never-sent"})


def test_fills_move_the_order_and_the_balances_exactly() -> None:
    sim = SimulatedBinance(balances={"USDT": "20000", "BNB": "1"})
    client = sim.client()
    order = client.create_order("BTC/USDT", "limit", "buy", 0.5, 30000.5)
    assert order["clientOrderId"].startswith("x-")  # ccxt makes one up when none is given
    assert sim.balance("USDT") == (Decimal("4999.75"), Decimal("15000.25"))

    sim.fill(order["id"], "0.2", "29990.1", fee="0.0002")
    partial = client.fetch_order(order["id"], "BTC/USDT")
    assert (partial["status"], exact(partial["filled"]), exact(partial["remaining"])) == (
        "open",
        Decimal("0.2"),
        Decimal("0.3"),
    )
    assert exact(partial["cost"]) == Decimal("5998.02")
    assert sim.balance("BTC") == (Decimal("0.1998"), Decimal(0))

    last = sim.fill(order["id"], "0.3", fee="0.001", fee_asset="BNB")
    done = client.fetch_order(order["id"], "BTC/USDT")
    assert (done["status"], exact(done["filled"]), exact(done["cost"])) == (
        "closed",
        Decimal("0.5"),
        Decimal("14998.17"),
    )
    assert done["lastTradeTimestamp"] == START + 3
    # The limit buy held 15000.25; the 2.08 the first fill's better price saved is free.
    assert sim.balance("USDT") == (Decimal("5001.83"), Decimal(0))
    assert sim.balance("BTC") == (Decimal("0.4998"), Decimal(0))
    assert sim.balance("BNB") == (Decimal("0.999"), Decimal(0))
    trade = client.fetch_my_trades("BTC/USDT", params={"orderId": order["id"]})[-1]
    assert trade["id"] == last
    assert (trade["fee"]["currency"], exact(trade["fee"]["cost"])) == ("BNB", Decimal("0.001"))

    closed = client.fetch_closed_orders("BTC/USDT")
    assert [o["id"] for o in closed] == [order["id"]]
    assert client.fetch_open_orders("BTC/USDT") == []


def test_cancelled_and_expired_orders() -> None:
    sim = SimulatedBinance(balances={"BTC": "3", "USDT": "1000"})
    client = sim.client()
    mine = client.create_order(
        "BTC/USDT", "limit", "sell", 1, 45000, {"newClientOrderId": "bot-sell"}
    )
    on_web = sim.place("BTC/USDT", "sell", "limit", "1", "46000")
    expiring = sim.place("BTC/USDT", "buy", "limit", "0.01", "20000")
    assert sim.balance("BTC") == (Decimal(1), Decimal(2))

    cancelled = client.cancel_order(mine["id"], "BTC/USDT")
    assert cancelled["status"] == "canceled"
    # Binance answers a cancel with the cancel request's own clientOrderId, which ccxt
    # reports as the order's; the order's own is in info.
    assert cancelled["info"]["origClientOrderId"] == "bot-sell"
    assert cancelled["clientOrderId"] != "bot-sell"
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):
        client.cancel_order(mine["id"], "BTC/USDT")

    sim.cancel(on_web)
    sim.expire(expiring)
    statuses = {o["id"]: o["status"] for o in client.fetch_orders("BTC/USDT")}
    assert statuses == {mine["id"]: "canceled", on_web: "canceled", expiring: "expired"}
    assert sim.balance("BTC") == (Decimal(3), Decimal(0))
    assert sim.balance("USDT") == (Decimal(1000), Decimal(0))


@pytest.mark.parametrize("number", [float, Decimal])
def test_balance_is_exact(number: type) -> None:
    sim = SimulatedBinance(balances={"USDT": "123456.78901234", "ETH": "7.00000001"})
    client = sim.client()
    client.number = number
    sim.fill(sim.place("ETH/USDT", "sell", "limit", "3.33333333", "1999.99"), "1.11111111")
    sim.place("BTC/USDT", "buy", "limit", "0.12345678", "33333.33")
    sim.deposit("BTC", "0.00000001")

    balance = client.fetch_balance()
    for asset in ("BTC", "ETH", "USDT"):
        free, locked = sim.balance(asset)
        entry = balance[asset]
        assert (exact(entry["free"]), exact(entry["used"])) == (free, locked), asset
        assert exact(entry["total"]) == free + locked, asset
    assert sim.balance("ETH") == (Decimal("3.66666668"), Decimal("2.22222222"))
    assert balance["timestamp"] == sim.now_ms


def test_deposits_and_withdrawals() -> None:
    sim = SimulatedBinance(balances={"BTC": "1"})
    client = sim.client()
    first = sim.deposit("USDT", "250.12345678", tx_id="0xabc")
    second = sim.deposit("BTC", "0.5")
    withdrawal = sim.withdraw("BTC", "0.3", fee="0.0002")
    assert sim.balance("BTC") == (Decimal("1.1998"), Decimal(0))

    deposits = client.fetch_deposits()
    assert [d["id"] for d in deposits] == [first, second]
    assert [(d["currency"], exact(d["amount"]), d["status"]) for d in deposits] == [
        ("USDT", Decimal("250.12345678"), "ok"),
        ("BTC", Decimal("0.5"), "ok"),
    ]
    assert (deposits[0]["txid"], deposits[0]["timestamp"]) == ("0xabc", START + 1)
    assert [d["id"] for d in client.fetch_deposits("BTC")] == [second]
    assert sim.requests[-1] == ("GET", "sapi/v1/capital/deposit/hisrec", {"coin": "BTC"})

    (withdrawn,) = client.fetch_withdrawals()
    assert (withdrawn["id"], withdrawn["currency"], withdrawn["status"]) == (
        withdrawal,
        "BTC",
        "ok",
    )
    assert exact(withdrawn["amount"]) == Decimal("0.3")
    assert exact(withdrawn["fee"]["cost"]) == Decimal("0.0002")
    # Binance gives a withdrawal's time to the second only.
    assert withdrawn["timestamp"] == (START + 3) // 1000 * 1000
    assert withdrawn["txid"].startswith("0x")


def test_timeout_after_the_order_was_placed_leaves_it_findable() -> None:
    sim = SimulatedBinance(balances={"USDT": "10000"})
    client = sim.client()
    sim.fail_next("api/v3/order", after_applying=True)
    with pytest.raises(ccxt.RequestTimeout):
        client.create_order("BTC/USDT", "limit", "buy", 0.1, 30000, {"newClientOrderId": "bot-7"})

    found = client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "bot-7"})
    assert (found["status"], exact(found["amount"])) == ("open", Decimal("0.1"))
    assert sim.balance("USDT") == (Decimal(7000), Decimal(3000))
    # Sending it again is refused: the client id is taken by the open order.
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):
        client.create_order("BTC/USDT", "limit", "buy", 0.1, 30000, {"newClientOrderId": "bot-7"})
    assert len(client.fetch_open_orders()) == 1


def test_failure_before_the_exchange_applied_the_request() -> None:
    sim = SimulatedBinance(balances={"USDT": "10000"})
    client = sim.client()
    sim.fail_next("api/v3/order")
    sim.fail_next("api/v3/account", ccxt.ExchangeNotAvailable("binance is in maintenance"))
    with pytest.raises(ccxt.RequestTimeout):
        client.create_order("BTC/USDT", "limit", "buy", 0.1, 30000, {"newClientOrderId": "bot-8"})
    with pytest.raises(ccxt.ExchangeNotAvailable, match="maintenance"):
        client.fetch_balance()

    assert client.fetch_open_orders() == []
    assert exact(client.fetch_balance()["USDT"]["free"]) == Decimal(10000)
    assert signed_requests(sim) == [
        ("POST", "api/v3/order"),
        ("GET", "api/v3/account"),
        ("GET", "api/v3/openOrders"),
        ("GET", "api/v3/account"),
    ]


def test_client_order_id_is_unique_among_open_orders_only() -> None:
    sim = SimulatedBinance(balances={"USDT": "10000"})
    client = sim.client()
    first = client.create_order(
        "BTC/USDT", "limit", "buy", 0.01, 25000, {"newClientOrderId": "grid-1"}
    )
    with pytest.raises(ccxt.InvalidOrder, match="-2010"):
        client.create_order("BTC/USDT", "limit", "buy", 0.02, 25000, {"newClientOrderId": "grid-1"})
    with pytest.raises(ValueError, match="Duplicate"):
        sim.place("BTC/USDT", "buy", "limit", "0.01", "25000", client_order_id="grid-1")

    client.cancel_order(first["id"], "BTC/USDT")
    again = client.create_order(
        "BTC/USDT", "limit", "buy", 0.02, 25000, {"newClientOrderId": "grid-1"}
    )
    assert again["id"] != first["id"]
    latest = client.fetch_order(None, "BTC/USDT", {"origClientOrderId": "grid-1"})
    assert latest["id"] == again["id"]


def test_redelivered_trade_comes_twice_in_the_next_answer_only() -> None:
    sim = SimulatedBinance(balances={"USDT": "10000"})
    client = sim.client()
    order_id = sim.place("BTC/USDT", "buy", "limit", "0.3", "30000")
    trade_ids = [sim.fill(order_id, "0.1") for _ in range(3)]
    sim.redeliver(trade_ids[1])

    delivered = [t["id"] for t in client.fetch_my_trades("BTC/USDT", START)]
    assert delivered == [trade_ids[0], trade_ids[1], trade_ids[1], trade_ids[2]]
    assert [t["id"] for t in client.fetch_my_trades("BTC/USDT", START)] == trade_ids


def test_drift_changes_the_balance_and_no_history() -> None:
    sim = SimulatedBinance(balances={"ETH": "2"})
    client = sim.client()
    sim.drift("ETH", "-0.00012345")
    sim.drift("BTC", "0.5")

    balance = client.fetch_balance()
    assert exact(balance["ETH"]["free"]) == Decimal("1.99987655")
    assert exact(balance["BTC"]["free"]) == Decimal("0.5")
    assert client.fetch_deposits() == client.fetch_withdrawals() == []
    assert client.fetch_my_trades("ETH/USDT") == []


def test_market_orders_rest_until_the_test_fills_them() -> None:
    sim = SimulatedBinance(balances={"USDT": "10000", "ETH": "1"})
    client = sim.client()
    by_amount = client.create_order("ETH/USDT", "market", "sell", 0.5)
    # Given a price, ccxt sends a market buy as the quote amount to spend.
    by_cost = client.create_order("BTC/USDT", "market", "buy", 0.1, 30000)
    _, _, sent = sim.requests[-1]
    assert (sent["quoteOrderQty"], "quantity" in sent) == ("3000", False)
    assert sim.balance("USDT") == (Decimal(7000), Decimal(3000))

    sim.fill(by_amount["id"], "0.5", "2000")
    sim.fill(by_cost["id"], "0.04", "30000")
    sim.fill(by_cost["id"], "0.06", "30000")
    sold = client.fetch_order(by_amount["id"], "ETH/USDT")
    bought = client.fetch_order(by_cost["id"], "BTC/USDT")
    assert (sold["status"], sold["type"], exact(sold["cost"])) == (
        "closed",
        "market",
        Decimal(1000),
    )
    assert (bought["status"], exact(bought["filled"])) == ("closed", Decimal("0.1"))
    assert sim.balance("USDT") == (Decimal(8000), Decimal(0))
    assert sim.balance("BTC") == (Decimal("0.1"), Decimal(0))


def test_refusals_map_to_ccxt_exceptions() -> None:
    sim = SimulatedBinance(balances={"USDT": "100"})
    client = sim.client()
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order("BTC/USDT", "limit", "buy", 0.01, 30000)
    with pytest.raises(ccxt.InvalidOrder):  # ccxt refuses types the market does not list
        client.create_order("BTC/USDT", "stop_loss_limit", "buy", 0.01, 30000)
    assert client.fetch_open_orders() == []
    with pytest.raises(NotImplementedError, match="sapi/v1/capital/deposit/address"):
        client.fetch_deposit_address("USDT")


def test_simulator_refuses_impossible_events() -> None:
    sim = SimulatedBinance(balances={"USDT": "100"})
    order_id = sim.place("BTC/USDT", "buy", "limit", "0.001", "30000")
    with pytest.raises(ValueError, match="left on the order"):
        sim.fill(order_id, "0.002")
    with pytest.raises(ValueError, match="worse than the limit"):
        sim.fill(order_id, "0.001", "30001")
    with pytest.raises(TypeError, match="float"):
        sim.fill(order_id, 0.001)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="8 decimals"):
        sim.deposit("USDT", "0.000000001")
    with pytest.raises(ValueError, match="too little USDT"):
        sim.withdraw("USDT", "71")
    sim.fill(order_id, "0.001")
    with pytest.raises(ValueError, match="no open order"):
        sim.cancel(order_id)
    assert sim.balance("USDT") == (Decimal(70), Decimal(0))
