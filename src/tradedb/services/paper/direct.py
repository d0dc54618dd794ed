"""One paper order placed directly (by a program or an agent), not by a session's strategy.

A session (`run_session`) replays candles and fills orders as they reach them. A direct
order has no candles ahead of it, only the market data stored up to its time, so:

- a **market** order fills at once, whole, at the market's latest stored price on its
  exchange: the newer of the last ticker's `last_price` and the close of the latest candle
  that had closed by then (as valuation quotes a market), at most `max_age_ms` old;
- a **limit** order that this price already reaches (a buy at or above it, a sell at or
  below it) fills at once at that price, as an exchange fills a marketable limit order;
  any other rests open in the ledger, its funds locked, until it is canceled;
- stop-loss and take-profit orders are refused: nothing would watch the price for them.

An immediate fill pays the exchange's taker fee (`FeeSchedule`), in the quote currency.
The order and its fill are recorded through the ledger in one transaction, so a fill the
wallet cannot pay for (InsufficientFunds) leaves no order behind. Order ids start with
`paper-`, so that paper orders stand apart in a listing; still, keep paper trading in a
database of its own (docs/paper.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from tradedb.errors import UnknownRecord
from tradedb.models import Order
from tradedb.models.values import (
    check_exchange,
    check_name,
    check_not_future,
    check_symbol,
    format_plain,
    ms_to_datetime,
    now_epoch_ms,
    parse_time_bound,
)
from tradedb.services.ledger import FillResult, Ledger
from tradedb.services.ledger.arithmetic import quantize
from tradedb.services.ledger.orders import OrderTerms
from tradedb.services.marketdata.history import MarketHistory
from tradedb.services.paper.fees import FeeSchedule
from tradedb.store import Store
from tradedb.store.analytics import StoredQuote

RecordT = TypeVar("RecordT")
ORDER_ID_PREFIX = "paper-"
DEFAULT_MAX_AGE_MS = 86_400_000


@dataclass(frozen=True)
class PaperOrderResult:
    """The order as recorded, its fill if it filled at once, and the stored price the
    decision was made on."""

    order: Order
    fill: FillResult | None
    quote: StoredQuote


def place_paper_order(
    store: Store,
    *,
    exchange: str,
    symbol: str,
    side: str,
    order_type: str = "market",
    amount: object,
    price: object = None,
    strategy: str | None = None,
    client_order_id: str | None = None,
    at: object = None,
    max_age_ms: int = DEFAULT_MAX_AGE_MS,
) -> PaperOrderResult:
    """Place a paper order at `at` (default now) and fill it at once where it can fill.
    Every argument is checked before anything is written."""
    check_exchange(exchange)
    check_symbol(symbol)
    terms = OrderTerms.parse(
        side,
        order_type,
        amount,
        price,
        "a direct paper order is market or limit; stop_loss and take_profit need a "
        "session that watches the price (tradedb paper)",
    )
    quantity, limit_price = terms.amount, terms.price
    if strategy is not None:
        check_name(strategy, "strategy")
    if client_order_id is not None:
        check_name(client_order_id, "client_order_id")
    when = now_epoch_ms() if at is None else check_not_future(parse_time_bound(at, "at"), "at")
    order_id = ORDER_ID_PREFIX + (client_order_id or uuid.uuid4().hex[:20])

    quote = latest_price(store, exchange, symbol, when, max_age_ms)
    fills_now = limit_price is None or (
        limit_price >= quote.price if side == "buy" else limit_price <= quote.price
    )
    ledger = Ledger(store)
    fees = FeeSchedule.of(exchange)
    with store.db.transaction():
        order = ledger.place_order(
            exchange=exchange,
            order_id=order_id,
            symbol=symbol,
            side=side,
            order_type=order_type,
            amount=quantity,
            price=limit_price,
            strategy=strategy,
            timestamp=when,
        )
        fill = None
        if fills_now:
            fill = ledger.record_fill(
                exchange=exchange,
                order_id=order_id,
                exchange_trade_id=f"{order_id}-fill",
                amount=quantity,
                price=quote.price,
                # Filled on arrival: it takes liquidity, whatever its type.
                fee=fees.fee(quantize(quantity * quote.price), "market"),
                timestamp=when,
            )
    return _as_stored(store, PaperOrderResult(order, fill, quote))


def _as_stored(store: Store, result: PaperOrderResult) -> PaperOrderResult:
    """The records read back, so that each amount has its column's scale ('100.00000000'),
    as every other read of them gives."""
    with store.db.snapshot():
        order = store.orders.get(result.order.id)
        fill = result.fill
        if fill is not None:
            fill = FillResult(
                trade=_get(store.trades.get(fill.trade.id)),
                order=_get(order),
                position=None if fill.position is None else store.positions.get(fill.position.id),
                closed_position=None
                if fill.closed_position is None
                else store.positions.get(fill.closed_position.id),
            )
    return PaperOrderResult(_get(order), fill, result.quote)


def _get(record: RecordT | None) -> RecordT:
    assert record is not None  # read back in the transaction's wake; nothing deletes them
    return record


def latest_price(
    store: Store, exchange: str, symbol: str, at_ms: int, max_age_ms: int
) -> StoredQuote:
    """The newer of the market's last ticker and its latest closed candle on `exchange`
    at `at_ms`, no older than `max_age_ms`; a tie goes to the ticker."""
    records = MarketHistory(store)
    oldest = at_ms - max_age_ms
    with store.db.snapshot():
        ticker = records.latest_ticker(symbol, at_ms, oldest, exchange)
        candle = records.latest_candle(symbol, at_ms, oldest, exchange)
    quotes = [quote for quote in (ticker, candle) if quote is not None]
    if not quotes:
        raise UnknownRecord(
            "symbol",
            symbol,
            f"no ticker or closed candle of it on {exchange} in the "
            f"{format_plain(Decimal(max_age_ms) / 3_600_000)} hours up to "
            f"{ms_to_datetime(at_ms):%Y-%m-%d %H:%M} UTC; a paper order fills at the latest "
            "stored price",
        )
    return max(quotes, key=lambda quote: (quote.timestamp, quote.source == "ticker"))
