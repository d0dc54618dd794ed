"""tradedb's records in ccxt's unified structures: `db.ccxt` (docs/ccxt.md)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tradedb.models import Order, Ticker, TickerCreate, Trade, Wallet
from tradedb.services import ccxt_format
from tradedb.services.ccxt_format import CandleRow, Numbers, Structure
from tradedb.services.marketdata.history import TickerPage
from tradedb.services.marketdata.reading import CandlePage
from tradedb.store import Store
from tradedb.store.repository import Page


class CcxtShapes:
    """What tradedb's reads give, in the structures ccxt's manual defines, for a bot
    written against ccxt: pass it what `db.market` or `db.ledger` returned.

    ```python
    db.ccxt.ohlcv(db.market.exact_candles("kraken", "BTC/USD", "1h"))
    db.ccxt.trades(db.ledger.trades(exchange="kraken", symbol="BTC/USD"))
    db.ccxt.balance(db.ledger.wallets(exchange="kraken"))
    db.ccxt.ticker(db.market.latest_ticker(symbol="BTC/USD"))
    ```

    Amounts are exact fixed-point strings; `numbers="decimal"` gives Decimals and
    `numbers="float"` floats, as ccxt gives them by default. Lists come oldest first, as
    ccxt's do, whatever order they were read in.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def ohlcv(
        self, candles: Iterable[CandleRow] | CandlePage, *, numbers: Numbers = "string"
    ) -> list[list[Any]]:
        """Candles (`exact_candles` rows, or `candle_page`) as ccxt's arrays
        [timestamp_ms, open, high, low, close, volume]."""
        rows = candles.candles if isinstance(candles, CandlePage) else candles
        return ccxt_format.ohlcv(rows, numbers=numbers)

    def trades(
        self, fills: Iterable[Trade] | Page[Trade], *, numbers: Numbers = "string"
    ) -> list[Structure]:
        """Fills (a `db.ledger.trades` page, or its items) as ccxt's trade structures."""
        records = fills.items if isinstance(fills, Page) else fills
        return ccxt_format.trades(self._store, records, numbers=numbers)

    def orders(
        self, orders: Iterable[Order] | Page[Order], *, numbers: Numbers = "string"
    ) -> list[Structure]:
        """Orders (a `db.ledger.orders` page, its items, or `db.ledger.order` results) as
        ccxt's order structures, each with its recorded fills as `trades`."""
        records = orders.items if isinstance(orders, Page) else orders
        return ccxt_format.orders(self._store, records, numbers=numbers)

    def balance(self, wallets: Iterable[Wallet], *, numbers: Numbers = "string") -> Structure:
        """One exchange's wallets (`db.ledger.wallets(exchange=...)`) as ccxt's balance
        structure; wallets of several exchanges are refused."""
        return ccxt_format.balance(wallets, numbers=numbers)

    def tickers(
        self,
        tickers: Iterable[Ticker | TickerCreate] | TickerPage,
        *,
        numbers: Numbers = "string",
    ) -> list[Structure]:
        """Tickers (a `db.market.tickers` page, or tickers) as ccxt's ticker structures."""
        records = tickers.tickers if isinstance(tickers, TickerPage) else tickers
        return ccxt_format.tickers(records, numbers=numbers)

    def ticker(self, ticker: Ticker | TickerCreate, *, numbers: Numbers = "string") -> Structure:
        """One ticker (`db.market.latest_ticker`) as ccxt's ticker structure."""
        return ccxt_format.tickers([ticker], numbers=numbers)[0]
