"""`tradedb sync`: bring the ledger to what an exchange account holds, exactly once.

One run, for each market asked for and for the account:

0. the orders tradedb submitted whose answer it never saw (submission "unknown") are
   looked up by their client order id, before anything else can mistake one for an order
   placed elsewhere (tradedb.services.live.submissions);
1. deposits and withdrawals since their cursor, each a wallet movement whose reference is
   the exchange's id (recorded once however often it is fetched);
2. the open orders: one the ledger does not know (placed on the website, by another
   program, before tradedb) is adopted, with the configured default strategy;
3. the fills since the market's cursor, page by page: a fill of an unknown order has its
   order fetched and adopted first; a fill already recorded is a duplicate and changes
   nothing; one that contradicts the recorded fill of the same id stops the sync, naming it;
4. the orders the ledger holds open that the exchange no longer lists as open: each is
   fetched, and a cancel or an expiry the exchange made goes through the ledger's state
   machine;
5. the open positions, marked to each market's last price (the exchange's ticker, which
   is stored in `tickers` too);
6. the balances: a report per asset of the ledger's available and locked against the
   exchange's free and used; with `apply`, the differences are journalled as sync
   movements;
7. the USD values of the exchange's wallets and of the balance_history rows this run
   wrote, through the valuation service (tradedb.services.live.usd_values).

Each page and the cursor it moves commit in one transaction, so a run killed at any
moment and run again records nothing twice and misses nothing. A first run with no cursor
starts at `since`, or at the moment it runs: the ledger follows the account from then on,
and `apply` opens its wallets at the exchange's balances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tradedb.errors import InsufficientFunds, TradeDBError, ValidationError
from tradedb.models import Order, SyncCursor
from tradedb.models.values import (
    check_symbol,
    format_decimal,
    format_fixed,
    now_epoch_ms,
    parse_time_bound,
)
from tradedb.services.ledger import Ledger
from tradedb.services.ledger.ledger import Reconciliation
from tradedb.services.live.exchange import ExchangeAccount
from tradedb.services.live.submissions import Settlement, settle_all
from tradedb.services.live.usd_values import (
    UsdValues,
    fill_usd_values,
    last_balance_history_id,
)
from tradedb.services.marketdata.tickers import ticker_row
from tradedb.store import Store

ACCOUNT = "account"
# The keys of ccxt's fetch_balance() result that are not currencies.
CCXT_BALANCE_KEYS = frozenset({"info", "free", "used", "total", "timestamp", "datetime", "debt"})
# Exchanges whose history requests take an end time under a name of their own.
END_PARAMETERS = {"binance": "endTime", "binanceus": "endTime"}
LOG_MODULE = "tradedb.sync"
# ccxt's order types as the schema's; an exchange's own kinds of stop and take-profit
# orders ("stop_loss_limit", "take_profit_limit") keep their family.
ORDER_TYPES = {"limit": "limit", "market": "market", "limit_maker": "limit"}
FINAL_STATES = {"canceled": "cancel_order", "cancelled": "cancel_order", "expired": "expire_order"}
NEEDED = ("fetchMyTrades", "fetchOpenOrders", "fetchOrder", "fetchBalance")
DAY_MS = 86_400_000
# Exchanges that answer a fetch from `since` with a window after it only (Binance: a day
# of fills, 90 days of transfers): an empty answer ends the stream only once the window
# reaches the present; before that the fetch steps to the next window. Elsewhere an empty
# answer means there is nothing after `since`.
BINANCE_WINDOWS_MS = {"trades": DAY_MS, "deposits": 90 * DAY_MS, "withdrawals": 90 * DAY_MS}
WINDOWS_MS = {"binance": BINANCE_WINDOWS_MS, "binanceus": BINANCE_WINDOWS_MS}


class SyncStopped(TradeDBError):
    """The sync met an item of the exchange it must not apply (a fill contradicting the
    recorded one of the same id, an amount the columns cannot hold). What came before it is
    recorded; nothing of it is, and the message names it."""


@dataclass
class StreamCount:
    new: int = 0
    duplicates: int = 0


@dataclass
class SyncReport:
    """What one sync run recorded, and how the balances compared."""

    exchange: str
    started_at: int
    trades: dict[str, StreamCount] = field(default_factory=dict)
    deposits: StreamCount = field(default_factory=StreamCount)
    withdrawals: StreamCount = field(default_factory=StreamCount)
    adopted_orders: list[str] = field(default_factory=list)
    closed_orders: list[str] = field(default_factory=list)
    reconciliation: Reconciliation | None = None
    # The wallets a first sync with `apply` opened at the account's balances.
    opening: Reconciliation | None = None
    # Open positions marked to the markets' last prices.
    marked_positions: int = 0
    # Orders tradedb submitted without seeing the answer, as this run found them.
    submissions: list[Settlement] = field(default_factory=list)
    usd_values: UsdValues | None = None
    applied: bool = False

    @property
    def in_sync(self) -> bool:
        return self.reconciliation is None or self.reconciliation.in_sync or self.applied

    def as_json(self) -> dict[str, Any]:
        """The report as JSON values, amounts as exact fixed-point text."""
        reconciliation = self.reconciliation
        return {
            "exchange": self.exchange,
            "started_at": self.started_at,
            "trades": {
                symbol: {"new": count.new, "duplicates": count.duplicates}
                for symbol, count in self.trades.items()
            },
            "deposits": vars(self.deposits),
            "withdrawals": vars(self.withdrawals),
            "adopted_orders": self.adopted_orders,
            "closed_orders": self.closed_orders,
            "marked_positions": self.marked_positions,
            "submissions": [settlement.as_json() for settlement in self.submissions],
            "usd_values": _usd_json(self.usd_values),
            "balances": [
                {
                    "asset": difference.asset,
                    "ledger_available": format_fixed(difference.ledger.available),
                    "ledger_locked": format_fixed(difference.ledger.locked),
                    "exchange_free": format_fixed(difference.exchange.available),
                    "exchange_used": format_fixed(difference.exchange.locked),
                    "difference": format_fixed(difference.total),
                }
                for difference in (reconciliation.differences if reconciliation else [])
            ],
            "matched_assets": reconciliation.matched if reconciliation else [],
            "opened_wallets": {
                difference.asset: format_fixed(difference.exchange.total)
                for difference in (self.opening.differences if self.opening else [])
            },
            "applied": self.applied,
        }

    def summary(self) -> str:
        fills = sum(count.new for count in self.trades.values())
        parts = [
            f"{fills} new fills",
            f"{self.deposits.new} deposits",
            f"{self.withdrawals.new} withdrawals",
            f"{len(self.adopted_orders)} adopted orders",
        ]
        if self.submissions:
            outcomes = [settlement.outcome for settlement in self.submissions]
            parts.append(
                "unknown submissions: "
                + ", ".join(f"{outcomes.count(o)} {o}" for o in dict.fromkeys(outcomes))
            )
        differing = self.reconciliation.differences if self.reconciliation else []
        if not differing:
            balances = "balances match"
        else:
            listed = ", ".join(f"{d.asset} {format_decimal(d.total)}" for d in differing)
            balances = f"balances {'journalled' if self.applied else 'differ'}: {listed}"
        return f"sync of {self.exchange}: {', '.join(parts)}; {balances}"


@dataclass(frozen=True)
class SyncRequest:
    """What to sync: the markets, where a first run starts, whether to journal balance
    differences, and the strategy adopted orders get."""

    symbols: tuple[str, ...]
    since: int | None = None
    apply: bool = False
    default_strategy: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        symbols: Iterable[str],
        since: object = None,
        apply: bool = False,
        default_strategy: str | None = None,
    ) -> SyncRequest:
        markets = tuple(dict.fromkeys(check_symbol(symbol) for symbol in symbols))
        if not markets:
            raise ValidationError("symbols", [], "name at least one market to sync")
        start = None if since is None else parse_time_bound(since, "since")
        return cls(markets, start, apply, default_strategy)


class AccountSync:
    """One exchange account and the ledger it is synced into."""

    def __init__(
        self,
        store: Store,
        client: Any,
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], int] | None = None,
    ) -> None:
        self._store = store
        self._ledger = Ledger(store)
        self.account = ExchangeAccount(client, sleep)
        self._exchange: str = client.id
        self.clock: Callable[[], int] = clock or wall_clock
        self._newest_price_ms = 0

    def run(self, request: SyncRequest) -> SyncReport:
        report = SyncReport(self._exchange, self.clock())
        self.account.require(NEEDED, "be synced")
        for symbol in request.symbols:
            self.account.require_market(symbol)
        history_mark = last_balance_history_id(self._store)
        report.submissions = settle_all(self._ledger, self.account, self.clock())
        start = report.started_at if request.since is None else request.since
        if request.apply and not self._ledger.wallets(exchange=self._exchange):
            report.opening = self._open_wallets(report.started_at)
        self._transfers("deposits", report.deposits, start)
        self._transfers("withdrawals", report.withdrawals, start)
        prices: dict[str | tuple[str, str], object] = {}
        for symbol in request.symbols:
            open_ids = self._open_orders(symbol, request.default_strategy, report)
            report.trades[symbol] = self._trades(symbol, start, request, report)
            self._ended_orders(symbol, open_ids, report)
            last = self._last_price(symbol)
            if last is not None:
                prices[(self._exchange, symbol)] = last
        if prices:
            report.marked_positions = len(self._ledger.mark_to_market(prices).updated)
        balance = self.account.call("fetch_balance")
        report.reconciliation = self._ledger.sync_balances(
            self._exchange, balance, timestamp=self.clock(), apply=request.apply
        )
        report.applied = request.apply and not (
            report.reconciliation.in_sync and (report.opening is None or report.opening.in_sync)
        )
        # Valued as of the newest price this run stored, should the exchange's clock run
        # ahead of ours: a valuation looks only at prices from before its time.
        valued_at = max(self.clock(), self._newest_price_ms)
        report.usd_values = fill_usd_values(
            self._store, self._exchange, history_after_id=history_mark, at_ms=valued_at
        )
        self._log(report)
        return report

    def follow_market(self, symbol: str, start: int) -> SyncReport:
        """One market's orders and fills, as a run records them (steps 2 to 4), from its
        cursor or else from `start`: what an order just placed or canceled has done."""
        request = SyncRequest((symbol,))
        report = SyncReport(self._exchange, self.clock())
        open_ids = self._open_orders(symbol, None, report)
        report.trades[symbol] = self._trades(symbol, start, request, report)
        self._ended_orders(symbol, open_ids, report)
        return report

    def _log(self, report: SyncReport) -> None:
        """The run's report as a bot_logs row, which `db.accounts.last_report` (and the MCP
        server) read back: WARNING while the balances differ."""
        self._store.logs.insert(
            {
                "timestamp": self.clock(),
                "level": "INFO" if report.in_sync else "WARNING",
                "message": report.summary(),
                "module": LOG_MODULE,
                "exchange": self._exchange,
                "metadata": report.as_json(),
            }
        )

    def _open_wallets(self, when: int) -> Reconciliation:
        """A ledger that has never seen this exchange opens each wallet at the account's
        whole balance, all of it available: the open orders adopted next lock what the
        exchange holds for them, and the reconciliation at the end then finds the ledger's
        locked amounts equal to the exchange's used ones."""
        balance = self.account.call("fetch_balance")
        whole = {
            currency: {"total": entry.get("total")}
            for currency, entry in balance.items()
            if currency not in CCXT_BALANCE_KEYS and isinstance(entry, Mapping)
        }
        return self._ledger.sync_balances(self._exchange, whole, timestamp=when)

    # --- the exchange -----------------------------------------------------------------

    def _window(self, stream: str) -> int | None:
        return WINDOWS_MS.get(self._exchange, {}).get(stream)

    def _last_price(self, symbol: str) -> str | None:
        """The market's last price from the exchange's ticker, to mark open positions to;
        None where the exchange has no ticker or no trade yet."""
        if not self.account.has("fetchTicker"):
            return None
        ticker = self.account.call("fetch_ticker", symbol)
        last = ticker.get("last")
        if last in (None, "") or Decimal(str(last)) <= 0:
            return None
        self._store_ticker(ticker)
        return str(last)

    def _store_ticker(self, ticker: Mapping[str, Any]) -> None:
        """The ticker, kept in `tickers` for the valuation of the wallets; one the table
        cannot hold (a volume past its range) is only used to mark positions."""
        row = ticker_row(ticker, fetched_at=self.clock())
        try:
            self._store.write_tickers([row], exchange=self._exchange)
        except ValidationError:
            return
        self._newest_price_ms = max(self._newest_price_ms, int(str(row["timestamp"])))

    # --- cursors ----------------------------------------------------------------------

    def _cursor(self, stream: str, scope: str) -> SyncCursor | None:
        where = {"exchange": self._exchange, "stream": stream, "scope": scope}
        found = self._store.sync_cursors.list(where, limit=1).items
        return found[0] if found else None

    def _since(self, stream: str, scope: str, start: int) -> int:
        cursor = self._cursor(stream, scope)
        return start if cursor is None else cursor.next_since

    def _advance(self, stream: str, scope: str, since: int, last_id: str | None) -> None:
        self._store.sync_cursors.upsert(
            {
                "exchange": self._exchange,
                "stream": stream,
                "scope": scope,
                "next_since": since,
                "last_id": last_id,
                "synced_at": self.clock(),
            }
        )

    # --- the streams ------------------------------------------------------------------

    def _fetch(self, stream: str, method: str, symbol: str | None, since: int) -> list[Any]:
        """The items from `since` on, in time order, stepping over empty windows."""
        while True:
            items = [
                item
                for item in self.account.call(method, symbol, since)
                if int(item.get("timestamp") or 0) >= since
            ]
            window = self._window(stream)
            if items or window is None or since + window >= self.clock():
                return sorted(items, key=_time_and_id)
            since += window

    def _transfers(self, stream: str, count: StreamCount, start: int) -> None:
        since = self._since(stream, ACCOUNT, start)
        method = "fetch_deposits" if stream == "deposits" else "fetch_withdrawals"
        while True:
            items = self._with_older(
                stream, method, since, self._fetch(stream, method, None, since)
            )
            recorded_before = count.new
            # A pending or failed transfer is recorded once it completes.
            done = [item for item in items if item.get("status") == "ok"]
            pending = [int(item["timestamp"]) for item in items if item.get("status") != "ok"]
            with self._store.db.transaction():
                for item in done:
                    if self._transfer(stream, item).duplicate:
                        count.duplicates += 1
                    else:
                        count.new += 1
                # Up to the newest completed transfer, but not past one still pending,
                # which is fetched again until it completes.
                if done:
                    following = min([int(done[-1]["timestamp"]), *pending])
                    self._advance(stream, ACCOUNT, following, str(done[-1]["id"]))
            if count.new == recorded_before:
                return  # nothing new: the stream is caught up
            since = following

    def _with_older(self, stream: str, method: str, since: int, items: list[Any]) -> list[Any]:
        """`items` and those older than them back to `since`: exchanges list transfers
        newest first (Binance), so an answer cut at its limit holds the newest of the
        window; asking again up to the oldest one given brings the rest."""
        found = {str(item["id"]): item for item in items}
        while items:
            oldest = int(items[0]["timestamp"])
            window = self._window(stream)
            start = since if window is None else max(since, oldest - window + 1)
            older = self.account.call(method, None, start, None, self._until(oldest))
            items = sorted(
                (
                    item
                    for item in older
                    if str(item["id"]) not in found and since <= int(item["timestamp"]) <= oldest
                ),
                key=_time_and_id,
            )
            found.update((str(item["id"]), item) for item in items)
        return sorted(found.values(), key=_time_and_id)

    def _until(self, end: int) -> dict[str, int]:
        """Request parameters that end a fetch at `end` (inclusive): ccxt's unified
        `until`, and the exchange's own name where ccxt does not pass it on (Binance's
        withdrawal history always gets endTime = since + 90 days otherwise)."""
        own = END_PARAMETERS.get(self._exchange)
        return {"until": end} if own is None else {"until": end, own: end}

    def _transfer(self, stream: str, item: Mapping[str, Any]) -> Any:
        amount = Decimal(str(item["amount"]))
        fee = item.get("fee") or {}
        if stream == "withdrawals" and fee.get("cost") and fee.get("currency") == item["currency"]:
            amount += Decimal(str(fee["cost"]))  # the wallet pays the amount sent and the fee
        record = self._ledger.deposit if stream == "deposits" else self._ledger.withdraw
        try:
            return record(
                exchange=self._exchange,
                asset=item["currency"],
                amount=amount,
                timestamp=item["timestamp"],
                reference=str(item["id"]),
            )
        except ValidationError as exc:
            raise stopped(f"{self._exchange} {stream[:-1]} {item['id']}", exc) from None

    def _open_orders(self, symbol: str, strategy: str | None, report: SyncReport) -> set[str]:
        """The ids of the market's open orders on the exchange, each unknown one adopted."""
        listed = self.account.call("fetch_open_orders", symbol)
        for order in listed:
            if self._ledger.order(self._exchange, str(order["id"])) is None:
                self._adopt(order, strategy, report)
        return {str(order["id"]) for order in listed}

    def _adopt(self, order: Mapping[str, Any], strategy: str | None, report: SyncReport) -> Order:
        order_id = str(order["id"])
        submitted = self._unknown_submission(order)
        if submitted is not None:
            # An order tradedb sent whose answer was lost, found before its settlement:
            # the same order, not one placed elsewhere.
            return self._ledger.acknowledge_order(
                self._exchange, str(submitted.client_order_id), order_id
            )
        kind = str(order.get("type") or ("limit" if order.get("price") else "market"))
        order_type = ORDER_TYPES.get(kind) or (
            "take_profit" if "take_profit" in kind else "stop_loss" if "stop" in kind else "limit"
        )
        try:
            adopted = self._ledger.place_order(
                exchange=self._exchange,
                order_id=order_id,
                symbol=order["symbol"],
                side=order["side"],
                order_type=order_type,
                amount=order["amount"],
                price=order.get("price"),
                strategy=strategy,
                timestamp=order.get("timestamp") or self.clock(),
                # The exchange holds the order's amount and price, and takes fees from
                # what a fill brings in: a reserve of our own would make the ledger's
                # locked balance differ from the exchange's used one.
                fee_reserve_rate=0,
                submission="adopted",
            )
        except ValidationError as exc:
            raise stopped(f"{self._exchange} order {order_id}", exc) from None
        report.adopted_orders.append(order_id)
        return adopted

    def _unknown_submission(self, order: Mapping[str, Any]) -> Order | None:
        client_order_id = order.get("clientOrderId")
        if not client_order_id:
            return None
        submitted = self._ledger.submitted_order(self._exchange, str(client_order_id))
        return submitted if submitted and submitted.submission == "unknown" else None

    def _trades(
        self, symbol: str, start: int, request: SyncRequest, report: SyncReport
    ) -> StreamCount:
        count = StreamCount()
        since = self._since("trades", symbol, start)
        while True:
            fresh = self._fetch("trades", "fetch_my_trades", symbol, since)
            recorded_before = count.new
            if not fresh:
                break
            with self._store.db.transaction():
                for trade in fresh:
                    self._record_trade(trade, request.default_strategy, count, report)
                newest = fresh[-1]
                # The next fetch starts at the newest fill's millisecond, so fills sharing
                # it are not skipped; they come again and are duplicates. A whole page
                # within one millisecond goes past it.
                following = int(newest["timestamp"])
                if following == since and count.new == recorded_before + len(fresh):
                    following += 1
                self._advance("trades", symbol, following, str(newest["id"]))
            if count.new == recorded_before:
                break  # nothing new: the stream is caught up
            since = following
        return count

    def _record_trade(
        self,
        trade: Mapping[str, Any],
        strategy: str | None,
        count: StreamCount,
        report: SyncReport,
    ) -> None:
        order_id = trade.get("order")
        if order_id is not None and self._ledger.order(self._exchange, str(order_id)) is None:
            self._adopt(
                self.account.call("fetch_order", str(order_id), trade["symbol"]), strategy, report
            )
        try:
            result = self._ledger.record_ccxt_trade(
                self._exchange, trade, opens_short=not self._spot(str(trade["symbol"]))
            )
        except ValidationError as exc:
            raise stopped(
                f"{self._exchange} trade {trade.get('id')} of order {order_id}", exc
            ) from None
        if result.duplicate:
            count.duplicates += 1
        else:
            count.new += 1

    def _spot(self, symbol: str) -> bool:
        """Whether ccxt lists `symbol` as a spot market, where a sell beyond the position
        sells coins held outside it and nothing can be sold short."""
        market = (getattr(self.account.client, "markets", None) or {}).get(symbol) or {}
        return bool(market.get("spot"))

    def _ended_orders(self, symbol: str, open_ids: set[str], report: SyncReport) -> None:
        """The market's orders the ledger holds open and the exchange no longer lists as
        open, asked for one by one (after the fills, which the ledger has by then): however
        old an order, its cancel or expiry is found."""
        where = {"exchange": self._exchange, "symbol": symbol, "status": ["pending", "open"]}
        live = self._store.orders.list(where, limit=1000).items
        # An order whose submission is unknown has no exchange id to ask by yet.
        ended = [
            self.account.call("fetch_order", order.order_id, symbol)
            for order in live
            if order.order_id not in open_ids and order.submission != "unknown"
        ]
        with self._store.db.transaction():
            for order in ended:
                self._apply_final_state(order, report)
            self._advance("orders", symbol, report.started_at, None)

    def _apply_final_state(self, order: Mapping[str, Any], report: SyncReport) -> None:
        transition = FINAL_STATES.get(str(order.get("status")))
        known = self._ledger.order(self._exchange, str(order["id"]))
        if transition is None or known is None or known.status not in ("pending", "open"):
            return
        when = order.get("lastUpdateTimestamp") or order.get("timestamp") or self.clock()
        getattr(self._ledger, transition)(self._exchange, known.order_id, timestamp=when)
        report.closed_orders.append(known.order_id)


def wall_clock() -> int:
    """Now, in epoch ms; looked up at each call, so that a test can move time for every
    part of a run (the grace period of an unknown submission is a matter of time)."""
    return now_epoch_ms()


def stopped(item: str, exc: ValidationError) -> SyncStopped:
    """The refusal of one item of the exchange, naming it; a shortfall says how a ledger
    that never saw the account's balances gets them."""
    hint = (
        "; the ledger's wallets do not hold what the exchange does: a first sync with "
        "apply=True opens them at the account's balances"
        if isinstance(exc, InsufficientFunds)
        else ""
    )
    return SyncStopped(f"{item}: {exc}; the sync stopped before it{hint}")


def _usd_json(values: UsdValues | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {
        "wallets": {asset: format_fixed(value) for asset, value in values.wallets.items()},
        "total_usd": format_fixed(values.total_usd),
        "unvalued": {holding.asset: holding.reason for holding in values.unvalued},
        "history_valued": values.history_valued,
        "history_unvalued": values.history_unvalued,
    }


def _time_and_id(item: Mapping[str, Any]) -> tuple[int, str]:
    return int(item.get("timestamp") or 0), str(item.get("id"))
