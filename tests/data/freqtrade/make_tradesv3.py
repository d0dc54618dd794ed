"""Build tests/data/freqtrade/tradesv3.sqlite with freqtrade's own persistence code.

Made with freqtrade 2026.9 (Python 3.11), installed in a scratch environment outside the
repository, never a dependency of tradedb:

    python3 -m venv /tmp/ft-venv && /tmp/ft-venv/bin/pip install freqtrade==2026.9
    /tmp/ft-venv/bin/python tests/data/freqtrade/make_tradesv3.py

The script plays the part of a running bot: it creates each trade and order the way
freqtrade's bot does (`Trade(...)`, `Order.parse_from_ccxt_object`, then the exchange's
answer through `update_from_ccxt_object`, `Trade.update_fee`, `ft_fee_base` for a fee taken
in the base currency, and `Trade.update_trade`, which recalculates the trade from its
orders and closes it). So every derived column, `close_profit_abs` above all, is what
freqtrade computes with its floats. The order answers are ccxt-shaped, with the float
averages ccxt gives (cost / filled).

What the file holds (tests/test_import_freqtrade_db.py counts on it):

1. binance BTC/USDT, SampleStrategy: limit buy, limit sell, fees in USDT. freqtrade's
   floats make its close_profit_abs 5.57072505; its own formula, computed exactly and
   rounded half-even, gives 5.57072506.
2. binance ETH/USDT, SampleStrategy: market buy filled in two parts (a float average),
   its fee taken in ETH (`ft_fee_base`); the limit sell is truncated to Binance's 0.0001
   ETH step, leaving dust.
3. binance SOL/USDT, DCAStrategy: two entries (position adjustment), a partial exit,
   then the final exit.
4. kraken BTC/EUR, KrakenSwing: a limit buy canceled after a partial fill, then a
   stop-loss on the exchange that fills below the entry (a loss).
5. kraken ETH/EUR, KrakenSwing: market buy; a limit sell canceled unfilled (timeout);
   a second limit sell fills.
6. kraken DOT/EUR, KrakenSwing: still open, its limit sell waiting on the book.
7. binance XRP/USDT, SampleStrategy: still open, its limit buy partly filled.
8. binance BTC/USDT:USDT, FuturesShort: a 3x short on futures with funding fees.
9. binance BTC/USDT, SampleStrategy again, after trade 1: a losing round trip, where
   freqtrade's floats give -0.83670577 for the exact -0.83670576.

Every time is fixed, so running the script again writes the same rows (SQLAlchemy may
create the indexes in another order). freqtrade keeps its database in WAL mode; this file
is set back to DELETE, so that it stands alone.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from freqtrade.enums import TradingMode
from freqtrade.persistence import Order, Trade, init_db

TARGET = Path(__file__).with_name("tradesv3.sqlite")
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
TICK_SIZE = 4  # ccxt's precision mode of Binance and Kraken markets


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def ccxt_order(  # noqa: PLR0917 - the order of ccxt's create_order arguments
    order_id: str,
    pair: str,
    side: str,
    kind: str,
    amount: float,
    price: float | None,
    *,
    placed: datetime,
    filled: float = 0.0,
    average: float | None = None,
    cost: float | None = None,
    status: str = "open",
    last_fill: datetime | None = None,
    stop_price: float | None = None,
    fee: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An order as ccxt returns it: cost and remaining are floats computed as ccxt does."""
    if cost is None:
        cost = filled * (average or 0.0)
    return {
        "id": order_id,
        "symbol": pair,
        "type": kind,
        "side": side,
        "amount": amount,
        "price": price,
        "stopPrice": stop_price,
        "filled": filled,
        "remaining": amount - filled,
        "average": average,
        "cost": cost,
        "status": status,
        "timestamp": ms(placed),
        "lastTradeTimestamp": ms(last_fill) if last_fill else None,
        "fee": fee,
    }


def quote_fee(rate: float, cost: float, currency: str) -> dict[str, Any]:
    return {"cost": cost * rate, "currency": currency, "rate": rate}


def open_trade(order: dict[str, Any], *, fee: float, opened: datetime, **fields: Any) -> Trade:
    """A trade and its first entry order, as FreqtradeBot.execute_entry stores them."""
    pair = order["symbol"]
    trade = Trade(
        pair=pair,
        base_currency=pair.split("/")[0],
        stake_currency=pair.split("/")[1].split(":")[0],
        stake_amount=order["amount"] * order["price"] / fields.get("leverage", 1.0),
        amount=order["amount"],
        amount_requested=order["amount"],
        is_open=True,
        fee_open=fee,
        fee_close=fee,
        open_rate=order["price"],
        open_rate_requested=order["price"],
        open_date=opened,
        timeframe=5,
        precision_mode=TICK_SIZE,
        precision_mode_price=TICK_SIZE,
        **{"leverage": 1.0, "is_short": False, "trading_mode": TradingMode.SPOT, **fields},
    )
    entry = Order.parse_from_ccxt_object(order, pair, trade.entry_side)
    entry.order_update_date = opened
    trade.orders.append(entry)
    trade.recalc_trade_from_orders()
    Trade.session.add(trade)
    Trade.commit()
    return trade


def place(trade: Trade, order: dict[str, Any], side: str, *, reason: str | None = None) -> None:
    """An exit (or stop-loss, or further entry) order sent for a trade; a stop-loss's
    `ft_price` is its stop price, as freqtrade's create_stoploss_order records it."""
    placed = Order.parse_from_ccxt_object(
        order, trade.pair, side, price=order["price"] or order["stopPrice"]
    )
    placed.order_update_date = datetime.fromtimestamp(order["timestamp"] / 1000, UTC)
    trade.orders.append(placed)
    if side == trade.exit_side:
        trade.exit_order_status = ""
        trade.close_rate_requested = order["price"]
        trade.exit_reason = reason
    Trade.commit()


def answer(
    trade: Trade,
    order: dict[str, Any],
    *,
    updated: datetime,
    fee_in_base: bool = False,
    cancel_reason: str | None = None,
) -> None:
    """The exchange's answer about an order, as FreqtradeBot.update_trade_state takes it:
    the order updated, its fee noted once per side, then the trade recalculated."""
    stored = trade.select_order_by_order_id(order["id"])
    assert stored is not None
    stored.update_from_ccxt_object(order)
    stored.order_update_date = updated
    if cancel_reason is not None:
        stored.ft_cancel_reason = cancel_reason
    fee = order.get("fee")
    if order["status"] != "open" and fee and not trade.fee_updated(order["side"]):
        rate = fee["rate"]
        trade.update_fee(fee["cost"], fee["currency"], rate, order["side"])
        if fee_in_base:
            stored.ft_fee_base = fee["cost"]
    trade.update_trade(stored)


def binance_btc(number: int, opened: datetime, amount: float, buy: float, sell: float) -> None:
    pair, rate, strategy = "BTC/USDT", 0.001, "SampleStrategy"
    precision = {"amount_precision": 1e-05, "price_precision": 0.01}
    entry_id, exit_id = f"2845719384{number}", f"2845803712{number}"
    entry = ccxt_order(entry_id, pair, "buy", "limit", amount, buy, placed=opened)
    trade = open_trade(
        entry, fee=rate, opened=opened, exchange="binance", strategy=strategy, **precision
    )
    filled_at = opened + timedelta(minutes=3)
    cost = amount * buy
    answer(
        trade,
        ccxt_order(
            entry_id,
            pair,
            "buy",
            "limit",
            amount,
            buy,
            placed=opened,
            filled=amount,
            average=buy,
            status="closed",
            last_fill=filled_at,
            fee=quote_fee(rate, cost, "USDT"),
        ),
        updated=filled_at,
    )
    sent = opened + timedelta(hours=5)
    place(trade, ccxt_order(exit_id, pair, "sell", "limit", amount, sell, placed=sent), "sell")
    sold = sent + timedelta(minutes=11)
    answer(
        trade,
        ccxt_order(
            exit_id,
            pair,
            "sell",
            "limit",
            amount,
            sell,
            placed=sent,
            filled=amount,
            average=sell,
            status="closed",
            last_fill=sold,
            fee=quote_fee(rate, amount * sell, "USDT"),
        ),
        updated=sold,
    )


def binance_eth_base_fee() -> None:
    pair, amount, rate, opened = "ETH/USDT", 0.0452, 0.001, at(1)
    entry_id, exit_id = "19736402251", "19736988417"
    entry = ccxt_order(entry_id, pair, "buy", "market", amount, 2401.2, placed=opened)
    trade = open_trade(
        entry,
        fee=rate,
        opened=opened,
        exchange="binance",
        strategy="SampleStrategy",
        amount_precision=0.0001,
        price_precision=0.01,
    )
    # Two exchange trades: 0.0211 at 2401.17 and 0.0241 at 2401.33; ccxt's average is
    # cost / filled in floats.
    cost = 0.0211 * 2401.17 + 0.0241 * 2401.33
    answer(
        trade,
        ccxt_order(
            entry_id,
            pair,
            "buy",
            "market",
            amount,
            None,
            placed=opened,
            filled=amount,
            average=cost / amount,
            cost=cost,
            status="closed",
            last_fill=opened,
            fee={"cost": amount * rate, "currency": "ETH", "rate": rate},
        ),
        updated=opened,
        fee_in_base=True,
    )
    sent = at(7.5)
    # freqtrade sells what it holds after the fee, cut to the market's 0.0001 ETH step.
    held = 0.0451
    place(trade, ccxt_order(exit_id, pair, "sell", "limit", held, 2467.89, placed=sent), "sell")
    sold = sent + timedelta(minutes=2)
    answer(
        trade,
        ccxt_order(
            exit_id,
            pair,
            "sell",
            "limit",
            held,
            2467.89,
            placed=sent,
            filled=held,
            average=2467.89,
            status="closed",
            last_fill=sold,
            fee=quote_fee(rate, held * 2467.89, "USDT"),
        ),
        updated=sold,
    )


def binance_sol_dca() -> None:
    pair, rate = "SOL/USDT", 0.001
    precision = {"amount_precision": 0.001, "price_precision": 0.01}
    orders = [
        # id, side, amount, price, placed (hours), filled after (minutes)
        ("5512093381", "buy", 0.71, 141.23, 2.0, 4),
        ("5512178802", "buy", 0.75, 133.87, 9.0, 1),
        ("5512311957", "sell", 0.73, 139.91, 20.0, 6),
        ("5512420746", "sell", 0.73, 137.02, 26.0, 9),
    ]
    trade: Trade | None = None
    for order_id, side, amount, price, hours, minutes in orders:
        sent, done = at(hours), at(hours) + timedelta(minutes=minutes)
        order = ccxt_order(order_id, pair, side, "limit", amount, price, placed=sent)
        if trade is None:
            trade = open_trade(
                order,
                fee=rate,
                opened=sent,
                exchange="binance",
                strategy="DCAStrategy",
                **precision,
            )
        else:
            place(trade, order, side, reason="exit_signal" if side == "sell" else None)
        answer(
            trade,
            ccxt_order(
                order_id,
                pair,
                side,
                "limit",
                amount,
                price,
                placed=sent,
                filled=amount,
                average=price,
                status="closed",
                last_fill=done,
                fee=quote_fee(rate, amount * price, "USDT"),
            ),
            updated=done,
        )


def kraken_btc_partial_then_stoploss() -> None:
    pair, rate, opened = "BTC/EUR", 0.0025, at(3)
    precision = {"amount_precision": 1e-08, "price_precision": 0.1}
    entry_id, stop_id = "OQCLML-BW3P3-BUCMWZ", "OSJVN7-K4Q2E-TQ3HPA"
    entry = ccxt_order(entry_id, pair, "buy", "limit", 0.0025, 58123.4, placed=opened)
    trade = open_trade(
        entry, fee=rate, opened=opened, exchange="kraken", strategy="KrakenSwing", **precision
    )
    # The buy times out after 0.0017 of 0.0025 filled; freqtrade cancels the rest.
    canceled = opened + timedelta(minutes=10)
    answer(
        trade,
        ccxt_order(
            entry_id,
            pair,
            "buy",
            "limit",
            0.0025,
            58123.4,
            placed=opened,
            filled=0.0017,
            average=58123.4,
            status="canceled",
            last_fill=opened + timedelta(minutes=6),
            fee=quote_fee(rate, 0.0017 * 58123.4, "EUR"),
        ),
        updated=canceled,
        cancel_reason="cancelled due to timeout",
    )
    placed = canceled + timedelta(seconds=5)
    stop = ccxt_order(
        stop_id, pair, "sell", "stop-loss", 0.0017, None, placed=placed, stop_price=56500.0
    )
    place(trade, stop, "stoploss")
    hit = at(30)
    answer(
        trade,
        ccxt_order(
            stop_id,
            pair,
            "sell",
            "stop-loss",
            0.0017,
            None,
            placed=placed,
            filled=0.0017,
            average=56489.9,
            status="closed",
            last_fill=hit,
            stop_price=56500.0,
            fee=quote_fee(rate, 0.0017 * 56489.9, "EUR"),
        ),
        updated=hit,
    )


def kraken_eth_exit_timeout() -> None:
    pair, rate, opened, amount = "ETH/EUR", 0.0025, at(4), 0.35
    precision = {"amount_precision": 1e-08, "price_precision": 0.01}
    entry_id, first_exit, second_exit = (
        "O2JLFP-VYFIW-35ZAAE",
        "OGTT3Y-C6I3P-XRI6HX",
        "OZ7NDV-2H5KQ-LMFX4E",
    )
    entry = ccxt_order(entry_id, pair, "buy", "market", amount, 2210.0, placed=opened)
    trade = open_trade(
        entry, fee=rate, opened=opened, exchange="kraken", strategy="KrakenSwing", **precision
    )
    cost = 0.2 * 2210.31 + 0.15 * 2210.47
    answer(
        trade,
        ccxt_order(
            entry_id,
            pair,
            "buy",
            "market",
            amount,
            None,
            placed=opened,
            filled=amount,
            average=cost / amount,
            cost=cost,
            status="closed",
            last_fill=opened,
            fee=quote_fee(rate, cost, "EUR"),
        ),
        updated=opened,
    )
    sent = at(12)
    place(
        trade,
        ccxt_order(first_exit, pair, "sell", "limit", amount, 2290.0, placed=sent),
        "sell",
        reason="roi",
    )
    gave_up = sent + timedelta(minutes=30)
    answer(
        trade,
        ccxt_order(
            first_exit, pair, "sell", "limit", amount, 2290.0, placed=sent, status="canceled"
        ),
        updated=gave_up,
        cancel_reason="cancelled due to timeout",
    )
    again = gave_up + timedelta(minutes=1)
    place(
        trade,
        ccxt_order(second_exit, pair, "sell", "limit", amount, 2275.5, placed=again),
        "sell",
        reason="roi",
    )
    sold = again + timedelta(minutes=14)
    answer(
        trade,
        ccxt_order(
            second_exit,
            pair,
            "sell",
            "limit",
            amount,
            2275.5,
            placed=again,
            filled=amount,
            average=2275.5,
            status="closed",
            last_fill=sold,
            fee=quote_fee(rate, amount * 2275.5, "EUR"),
        ),
        updated=sold,
    )


def kraken_dot_open() -> None:
    pair, rate, opened, amount = "DOT/EUR", 0.0025, at(40), 12.5
    precision = {"amount_precision": 1e-08, "price_precision": 0.0001}
    entry_id, exit_id = "OHX2KQ-WJ4TN-7PZV3D", "OR5C2M-A7YQ3-QW6K8J"
    entry = ccxt_order(entry_id, pair, "buy", "limit", amount, 3.9871, placed=opened)
    trade = open_trade(
        entry, fee=rate, opened=opened, exchange="kraken", strategy="KrakenSwing", **precision
    )
    filled = opened + timedelta(minutes=2)
    answer(
        trade,
        ccxt_order(
            entry_id,
            pair,
            "buy",
            "limit",
            amount,
            3.9871,
            placed=opened,
            filled=amount,
            average=3.9871,
            status="closed",
            last_fill=filled,
            fee=quote_fee(rate, amount * 3.9871, "EUR"),
        ),
        updated=filled,
    )
    place(
        trade,
        ccxt_order(exit_id, pair, "sell", "limit", amount, 4.1502, placed=at(41)),
        "sell",
        reason="roi",
    )


def binance_xrp_open_partial() -> None:
    pair, rate, opened = "XRP/USDT", 0.001, at(42)
    entry_id = "8823310457"
    entry = ccxt_order(entry_id, pair, "buy", "limit", 400.0, 0.5213, placed=opened)
    trade = open_trade(
        entry,
        fee=rate,
        opened=opened,
        exchange="binance",
        strategy="SampleStrategy",
        amount_precision=1.0,
        price_precision=0.0001,
    )
    seen = opened + timedelta(minutes=7)
    answer(
        trade,
        ccxt_order(
            entry_id,
            pair,
            "buy",
            "limit",
            400.0,
            0.5213,
            placed=opened,
            filled=150.0,
            average=0.5213,
            status="open",
            last_fill=seen,
            fee=quote_fee(rate, 150.0 * 0.5213, "USDT"),
        ),
        updated=seen,
    )


def binance_futures_short() -> None:
    pair, rate, opened, amount = "BTC/USDT:USDT", 0.0005, at(5), 0.003
    entry_id, exit_id = "781204553192", "781209987310"
    entry = ccxt_order(entry_id, pair, "sell", "limit", amount, 61012.5, placed=opened)
    trade = open_trade(
        entry,
        fee=rate,
        opened=opened,
        exchange="binance",
        strategy="FuturesShort",
        trading_mode=TradingMode.FUTURES,
        is_short=True,
        leverage=3.0,
        liquidation_price=80021.3,
        interest_rate=0.0,
        contract_size=1.0,
        amount_precision=0.001,
        price_precision=0.1,
    )
    filled = opened + timedelta(minutes=1)
    answer(
        trade,
        ccxt_order(
            entry_id,
            pair,
            "sell",
            "limit",
            amount,
            61012.5,
            placed=opened,
            filled=amount,
            average=61012.5,
            status="closed",
            last_fill=filled,
            fee=quote_fee(rate, amount * 61012.5, "USDT"),
        ),
        updated=filled,
    )
    sent = at(18)
    place(
        trade,
        ccxt_order(exit_id, pair, "buy", "limit", amount, 60210.1, placed=sent),
        "buy",
        reason="exit_signal",
    )
    trade.funding_fee_running = -0.01234567
    bought = sent + timedelta(minutes=3)
    answer(
        trade,
        ccxt_order(
            exit_id,
            pair,
            "buy",
            "limit",
            amount,
            60210.1,
            placed=sent,
            filled=amount,
            average=60210.1,
            status="closed",
            last_fill=bought,
            fee=quote_fee(rate, amount * 60210.1, "USDT"),
        ),
        updated=bought,
    )


def main() -> None:
    TARGET.unlink(missing_ok=True)
    init_db(f"sqlite:///{TARGET}")
    binance_btc(1, at(0), 0.00329, 65062.66, 66887.84)
    binance_eth_base_fee()
    binance_sol_dca()
    kraken_btc_partial_then_stoploss()
    kraken_eth_exit_timeout()
    binance_futures_short()
    kraken_dot_open()
    binance_xrp_open_partial()
    binance_btc(2, at(44), 0.0035, 64219.76, 64109.03)
    Trade.session.remove()
    Trade.session.get_bind().dispose()
    # One self-contained file: no -wal beside it, no free pages.
    connection = sqlite3.connect(TARGET)
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.execute("VACUUM")
    connection.close()


if __name__ == "__main__":
    main()
