"""Measure how freqtrade's close_profit_abs differs from tradedb's P&L on plain round
trips, with freqtrade's own code (the figures in docs/ledger.md, "The P&L comparison").

Run with freqtrade installed in a scratch environment, as make_tradesv3.py is:

    /tmp/ft-venv/bin/python tests/data/freqtrade/float_differences.py

With freqtrade 2026.9 it printed: of 3000: freqtrade != exact 43, tradedb != exact 710,
tradedb != freqtrade 703, largest |tradedb - freqtrade| 1E-8.

Each round trip is one BTC/USDT limit buy and one limit sell at 0.1 % fees, closed by
freqtrade's Trade; "exact" is freqtrade's formula, amount x sell x (1 - fee) - amount x
buy x (1 + fee), in decimals, rounded half-even once; "tradedb" is how the ledger computes
it, each fee stored at 8 decimals.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from freqtrade.enums import TradingMode
from freqtrade.persistence import Order, Trade, init_db

UNIT = Decimal("0.00000001")
ROUND_TRIPS = 3000


def q(value: Decimal) -> Decimal:
    return value.quantize(UNIT, rounding=ROUND_HALF_EVEN)


def filled(order_id: str, side: str, amount: float, price: float) -> dict[str, Any]:
    return {
        "id": order_id,
        "symbol": "BTC/USDT",
        "type": "limit",
        "side": side,
        "amount": amount,
        "price": price,
        "filled": amount,
        "remaining": 0.0,
        "average": price,
        "cost": amount * price,
        "status": "closed",
        "timestamp": 1741000000000,
        "lastTradeTimestamp": 1741000100000,
    }


def freqtrade_profit(number: int, amount: float, buy: float, sell: float, rate: float) -> float:
    trade = Trade(
        pair="BTC/USDT",
        stake_amount=amount * buy,
        amount=amount,
        is_open=True,
        fee_open=rate,
        fee_close=rate,
        open_rate=buy,
        open_date=datetime(2025, 3, 3, tzinfo=UTC),
        exchange="binance",
        strategy="SampleStrategy",
        trading_mode=TradingMode.SPOT,
        leverage=1.0,
        is_short=False,
    )
    entry = filled(f"b{number}", "buy", amount, buy)
    trade.orders.append(Order.parse_from_ccxt_object(entry, "BTC/USDT", "buy"))
    trade.recalc_trade_from_orders()
    exit_ = filled(f"s{number}", "sell", amount, sell)
    trade.orders.append(Order.parse_from_ccxt_object(exit_, "BTC/USDT", "sell"))
    trade.close(sell, show_msg=False)
    return float(trade.close_profit_abs)


def main() -> None:
    init_db("sqlite://")
    random.seed(7)
    freqtrade_off = tradedb_off = differing = 0
    largest = Decimal(0)
    for number in range(ROUND_TRIPS):
        amount = round(random.uniform(0.0005, 0.02), 5)
        buy = round(random.uniform(58000, 66000), 2)
        sell = round(buy * random.uniform(0.97, 1.03), 2)
        rate = 0.001
        reported = Decimal(repr(freqtrade_profit(number, amount, buy, sell, rate)))
        a, b, s, r = (Decimal(repr(x)) for x in (amount, buy, sell, rate))
        exact = q(a * s * (1 - r) - a * b * (1 + r))
        ledger = q((s - b) * a) - q(r * a * b) - q(r * a * s)
        freqtrade_off += reported != exact
        tradedb_off += ledger != exact
        differing += ledger != reported
        largest = max(largest, abs(ledger - reported))
    print(
        f"of {ROUND_TRIPS}: freqtrade != exact {freqtrade_off}, tradedb != exact "
        f"{tradedb_off}, tradedb != freqtrade {differing}, largest |tradedb - freqtrade| "
        f"{largest}"
    )


if __name__ == "__main__":
    main()
