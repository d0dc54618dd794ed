"""tradedb's records as ccxt's unified structures (docs/ccxt.md).

ccxt's manual defines what a bot gets from any exchange: OHLCV arrays and the trade,
order, balance and ticker structures. These functions give the same structures from what
tradedb stored, so that a bot written against ccxt reads its database without mappers.
Field names, their meaning and what ccxt fills in when an exchange leaves a field out
follow ccxt's own `safe_trade`, `safe_order`, `safe_balance` and `safe_ticker`: a
structure made here goes through them unchanged (tests/test_ccxt_format.py checks that
with ccxt itself). ccxt is not needed to make them.

Amounts are exact: fixed-point strings by default ('0.00000001', without trailing zeros,
as ccxt's own string arithmetic writes them), Decimals or floats when asked. `info`,
where ccxt keeps the exchange's raw reply, holds tradedb's record as its JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import ROUND_DOWN, Context, Decimal
from typing import Any, Literal, get_args

from tradedb.errors import ValidationError
from tradedb.models import Candle, CandleCreate, Order, Ticker, TickerCreate, Trade, Wallet
from tradedb.models.base import Record
from tradedb.models.values import format_plain, ms_to_datetime
from tradedb.store import Store

Numbers = Literal["string", "float", "decimal"]
NUMBERS: tuple[str, ...] = get_args(Numbers)
Structure = dict[str, Any]
# What a candle read gives: exact_candles' rows or candle records.
CandleRow = Sequence[Any] | Candle | CandleCreate

# tradedb's order statuses as ccxt's. A pending order is one the bot has not seen the
# exchange acknowledge yet: still working, as ccxt's "open" means; an order the exchange
# refused is stored canceled with its submission "rejected" (docs/live.md).
ORDER_STATUSES = {
    "pending": "open",
    "open": "open",
    "filled": "closed",
    "canceled": "canceled",
    "expired": "expired",
}
# ccxt divides its decimal strings to 18 decimals, cut towards zero (Precise.string_div).
DIVISION_DECIMALS = 18
_DIVISION = Context(prec=120, rounding=ROUND_DOWN)
_CUT = Decimal(1).scaleb(-DIVISION_DECIMALS)
_IDS_PER_QUERY = 500
HUNDRED = Decimal(100)


def number_maker(numbers: str) -> Callable[[Decimal | None], Any]:
    """How amounts come out: fixed-point text ('string'), float or Decimal."""
    if numbers == "string":
        return _text
    if numbers == "float":
        return lambda value: None if value is None else float(value)
    if numbers == "decimal":
        return lambda value: value
    raise ValidationError("numbers", numbers, f"must be one of {', '.join(NUMBERS)}")


def _text(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return format_plain(abs(value) if value.is_zero() else value)


def iso8601(millis: int | None) -> str | None:
    """ccxt's datetime of an epoch-ms time: '2024-03-13T11:10:45.391Z'."""
    if millis is None:
        return None
    moment = ms_to_datetime(millis)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


# --- OHLCV ---------------------------------------------------------------------------------


def ohlcv(candles: Iterable[CandleRow], *, numbers: str = "string") -> list[list[Any]]:
    """Candles as ccxt's [timestamp_ms, open, high, low, close, volume] arrays, oldest
    first."""
    number = number_maker(numbers)
    out = []
    for candle in candles:
        if isinstance(candle, CandleCreate):
            row: Sequence[Any] = (
                candle.timestamp,
                candle.open_price,
                candle.high_price,
                candle.low_price,
                candle.close_price,
                candle.volume,
            )
        else:
            row = candle
        timestamp, *amounts = row
        out.append([int(timestamp), *(number(amount) for amount in amounts)])
    # tradedb's candle reads come oldest first already: a sort of sorted rows is one pass.
    return sorted(out, key=lambda candle: candle[0])


# --- trades ----------------------------------------------------------------------------------


def trades(store: Store, records: Iterable[Trade], *, numbers: str = "string") -> list[Structure]:
    """Fills as ccxt's trade structures, oldest first. `type` is the type of the fill's
    order where tradedb has the order; tradedb does not record whether a fill was taker
    or maker (`takerOrMaker` is None)."""
    number = number_maker(numbers)
    fills = _oldest_first(records)
    types = _order_types(store, fills)
    return [trade(fill, number, types.get((fill.exchange, fill.order_id or ""))) for fill in fills]


def trade(
    fill: Trade, number: Callable[[Decimal | None], Any], order_type: str | None
) -> Structure:
    fee, fees = _fee_and_fees(_fees_of([fill], number))
    return {
        "info": _info(fill),
        "id": fill.exchange_trade_id,
        "timestamp": fill.timestamp,
        "datetime": iso8601(fill.timestamp),
        "symbol": fill.symbol,
        "order": fill.order_id,
        "type": order_type,
        "side": fill.side,
        "takerOrMaker": None,
        "price": number(fill.price),
        "amount": number(fill.amount),
        "cost": number(fill.total_value),
        "fee": fee if fee is not None else {"cost": None, "currency": None},
        "fees": fees,
    }


def _fees_of(
    fills: Sequence[Trade], number: Callable[[Decimal | None], Any]
) -> list[dict[str, Any]]:
    """The fills' fees summed per currency, as ccxt's reduce_fees_by_currency sums them;
    a fee without a currency stays on its own."""
    totals: dict[str, tuple[str | None, Decimal]] = {}
    for index, fill in enumerate(fills):
        if fill.fee is None:
            continue
        key = fill.fee_currency if fill.fee_currency is not None else str(index)
        _, total = totals.get(key, (fill.fee_currency, Decimal(0)))
        totals[key] = (fill.fee_currency, total + fill.fee)
    return [{"cost": number(cost), "currency": currency} for currency, cost in totals.values()]


def _fee_and_fees(fees: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[Any]]:
    """ccxt's `fee` (the one fee, when there is exactly one) and `fees` (all of them)."""
    return (dict(fees[0]) if len(fees) == 1 else None), fees


def _order_types(store: Store, fills: Sequence[Trade]) -> dict[tuple[str, str], str]:
    ids = sorted({fill.order_id for fill in fills if fill.order_id is not None})
    return {
        (order.exchange, order.order_id): order.order_type
        for order in _all_rows(store.orders, "order_id", ids)
    }


# --- orders ----------------------------------------------------------------------------------


def orders(store: Store, records: Iterable[Order], *, numbers: str = "string") -> list[Structure]:
    """Orders as ccxt's order structures, oldest first, each with its recorded fills as
    `trades` (which give `cost`, `average`, `fee` and `lastTradeTimestamp`)."""
    number = number_maker(numbers)
    listed = _oldest_first(records)
    ids = sorted({record.order_id for record in listed})
    fills: dict[tuple[str, str], list[Trade]] = {}
    for fill in _oldest_first(_all_rows(store.trades, "order_id", ids)):
        fills.setdefault((fill.exchange, fill.order_id or ""), []).append(fill)
    return [
        order(record, fills.get((record.exchange, record.order_id), []), number)
        for record in listed
    ]


def order(
    record: Order, fills: Sequence[Trade], number: Callable[[Decimal | None], Any]
) -> Structure:
    amount = record.amount
    filled = record.filled_amount
    remaining = record.remaining_amount if record.remaining_amount is not None else amount - filled
    recorded = sum((fill.amount for fill in fills), Decimal(0))
    # The fills give the cost only when they are all of what was filled (an order adopted
    # from an exchange may have fills from before the sync began).
    cost: Decimal | None = (
        sum((fill.total_value for fill in fills), Decimal(0)) if recorded == filled else None
    )
    if cost is None and record.price is not None:
        # ccxt's own estimate (safe_order) where the fills are missing.
        cost = filled * record.price
    average = _divide(cost, filled) if cost is not None and filled > 0 else None
    price = average if record.price is None and record.order_type == "market" else record.price
    fee, fees = _fee_and_fees(_fees_of(fills, number))
    last_trade = max((fill.timestamp for fill in fills), default=record.filled_at)
    updates = [t for t in (last_trade, record.filled_at, record.canceled_at) if t is not None]
    # ccxt's rule: a market order is immediate-or-cancel, and so no post-only order.
    time_in_force = "IOC" if record.order_type == "market" else None
    status = ORDER_STATUSES[record.status]
    if record.submission == "rejected":
        status = "rejected"
    return {
        "info": _info(record),
        "id": record.order_id,
        "clientOrderId": record.client_order_id,
        "timestamp": record.timestamp,
        "datetime": iso8601(record.timestamp),
        "lastTradeTimestamp": last_trade,
        "lastUpdateTimestamp": max(updates, default=None),
        "symbol": record.symbol,
        "type": record.order_type,
        "timeInForce": time_in_force,
        "postOnly": False if time_in_force is not None else None,
        "side": record.side,
        "price": number(price),
        "triggerPrice": None,
        "stopPrice": None,
        "takeProfitPrice": None,
        "stopLossPrice": None,
        "average": number(average),
        "amount": number(amount),
        "filled": number(filled),
        "remaining": number(remaining),
        "cost": number(cost),
        "status": status,
        "reduceOnly": None,
        "trades": [trade(fill, number, record.order_type) for fill in fills],
        "fee": fee,
        "fees": fees,
    }


# --- balances --------------------------------------------------------------------------------


def balance(wallets: Iterable[Wallet], *, numbers: str = "string") -> Structure:
    """One exchange's wallets as ccxt's balance structure: per currency free (available),
    used (locked by open orders) and total, and the same as `free`, `used` and `total`
    maps. `timestamp` is the newest wallet update."""
    number = number_maker(numbers)
    held = sorted(wallets, key=lambda wallet: wallet.asset)
    exchanges = sorted({wallet.exchange for wallet in held})
    if len(exchanges) > 1:
        raise ValidationError(
            "wallets",
            ", ".join(exchanges),
            "are of several exchanges, and ccxt's balance is one account's: ask for the "
            "wallets of one (`exchange=NAME`)",
        )
    newest = max((wallet.last_updated for wallet in held), default=None)
    structure: Structure = {
        "info": [_info(wallet) for wallet in held],
        "timestamp": newest,
        "datetime": iso8601(newest),
    }
    kinds: dict[str, dict[str, Any]] = {"free": {}, "used": {}, "total": {}}
    for wallet in held:
        figures = {
            "free": number(wallet.available_balance),
            "used": number(wallet.locked_balance),
            "total": number(wallet.total_balance),
        }
        structure[wallet.asset] = figures
        for kind, value in figures.items():
            kinds[kind][wallet.asset] = value
    structure.update(kinds)
    return structure


# --- tickers ---------------------------------------------------------------------------------


def tickers(
    records: Iterable[Ticker | TickerCreate], *, numbers: str = "string"
) -> list[Structure]:
    number = number_maker(numbers)
    return [ticker(record, number) for record in sorted(records, key=lambda t: t.timestamp)]


def ticker(record: Ticker | TickerCreate, number: Callable[[Decimal | None], Any]) -> Structure:
    """A stored ticker as ccxt's ticker structure. What ccxt derives from the other fields
    (`close`, `average`, and `open`, `change` and `percentage` where one is missing) is
    derived here by ccxt's rules (safe_ticker); zero prices are no prices, as in ccxt."""
    close = _nonzero(record.last_price)
    opened = _nonzero(record.open_price)
    change = record.price_change_24h
    percentage = _nonzero(record.price_change_percent_24h)
    vwap = record.vwap
    if vwap is None:
        vwap = _divide(_nonzero(record.quote_volume_24h), record.volume_24h)
    share = _divide(percentage, HUNDRED)  # the percentage as a fraction
    if change is not None:
        if opened is None and close is not None:
            opened = close - change
    elif share is not None and opened is None and close is not None:
        opened = _divide(close, 1 + share)
    if change is None:
        if close is not None and opened is not None:
            change = close - opened
        elif opened is not None and share is not None:
            change = opened * share
    average = None
    if opened is not None:
        fraction = _divide(change, opened)
        if percentage is None and fraction is not None:
            percentage = fraction * HUNDRED
        if close is None and change is not None:
            close = opened + change
        if close is not None:
            average = _divide(opened + close, Decimal(2))
    return {
        "symbol": record.symbol,
        "timestamp": record.timestamp,
        "datetime": iso8601(record.timestamp),
        "high": number(_nonzero(record.high_price)),
        "low": number(_nonzero(record.low_price)),
        "bid": number(_nonzero(record.bid_price)),
        "bidVolume": number(record.bid_volume),
        "ask": number(_nonzero(record.ask_price)),
        "askVolume": number(record.ask_volume),
        "vwap": number(vwap),
        "open": number(_nonzero(opened)),
        "close": number(_nonzero(close)),
        "last": number(_nonzero(close)),
        "previousClose": number(record.previous_close),
        "change": number(change),
        "percentage": number(percentage),
        "average": number(average),
        "baseVolume": number(record.volume_24h),
        "quoteVolume": number(record.quote_volume_24h),
        "indexPrice": None,
        "markPrice": None,
        "info": _info(record),
    }


# --- shared ----------------------------------------------------------------------------------


def _nonzero(value: Decimal | None) -> Decimal | None:
    """ccxt's omit_zero: a zero price means none."""
    return None if value is None or value.is_zero() else value


def _divide(dividend: Decimal | None, divisor: Decimal | None) -> Decimal | None:
    """ccxt's Precise.string_div: 18 decimals, cut towards zero; None where either is
    missing or the divisor is zero."""
    if dividend is None or divisor is None or divisor.is_zero():
        return None
    quotient = _DIVISION.divide(dividend, divisor)
    cut = quotient.quantize(_CUT, rounding=ROUND_DOWN, context=_DIVISION).normalize(_DIVISION)
    # Without trailing zeros, as ccxt's strings, and without an exponent: 3E+4 is 30000.
    exponent = cut.as_tuple().exponent
    return cut.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else cut


def _info(record: Record) -> dict[str, Any]:
    return record.model_dump(mode="json")


def _oldest_first(records: Iterable[Any]) -> list[Any]:
    """ccxt lists oldest first; tradedb's ledger pages come newest first."""
    return sorted(records, key=lambda record: (record.timestamp, record.id or 0))


def _all_rows(table: Any, column: str, values: Sequence[str]) -> list[Any]:
    """Every row of a repository whose `column` is one of `values`."""
    found: list[Any] = []
    for start in range(0, len(values), _IDS_PER_QUERY):
        where: Mapping[str, Any] = {column: list(values[start : start + _IDS_PER_QUERY])}
        found += table.every(where)
    return found
