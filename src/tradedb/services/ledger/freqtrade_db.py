"""Importing a freqtrade bot's database (tradesv3.sqlite) into the ledger.

freqtrade keeps a row per trade (one round trip of one pair, by one strategy, on one
exchange) and a row per order it sent for that trade, with the order's amount, what of it
filled and at what average price. Its own P&L, `close_profit_abs`, is computed in floats
from those orders and the trade's fee rates. The import reads the file read-only with the
standard sqlite3 module and records each order through the ledger's own operations:

- each order becomes a ledger order (its exchange id, the trade's exchange, pair and
  strategy), placed at its `order_date`;
- what it filled becomes one fill at its average price, keyed
  `<order id>@<filled amount>`, so importing the same file again records nothing, and a
  later copy of the file in which the order filled further records only the difference;
- its fee is `ft_fee_base` in the base currency where freqtrade noted one (Binance takes
  a buy's fee out of the coins bought), else the trade's fee rate (`fee_open` for entries,
  `fee_close` for exits) times the fill's value, in the quote currency, which is how
  freqtrade itself counts it;
- an order freqtrade saw canceled, rejected or expired (or closed short of its amount) ends
  so in the ledger, after its fill if it had one; an open one stays open;
- the ledger's positions (per exchange, pair and strategy) and P&L follow from the fills,
  computed exactly.

freqtrade's database holds no balances, and the ledger refuses a fill the wallets cannot
pay for. Where the ledger's wallet lacks what an order locks or a fill spends, the import
deposits the shortfall just before it, under a reference naming the order or fill, and
reports every such deposit.

Futures and margin trades are skipped and reported: the ledger keeps spot wallets, with no
contracts, leverage, collateral or funding fees. Everything else the file holds
(pairlocks, custom data, freqtrade's wallet history) is not ledger data.

The whole import is one transaction: all of it is recorded, or nothing. A file that is not
a freqtrade database, or one of a schema tradedb does not know, is refused before any
write, naming the file and what it lacks.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tradedb.errors import ValidationError
from tradedb.models import Order
from tradedb.models.values import (
    EXACT,
    MAX_NAME_LENGTH,
    check_exchange,
    check_name,
    check_symbol,
    format_plain,
    market_assets,
    to_epoch_ms,
)
from tradedb.services.ledger import orders as order_rules
from tradedb.services.ledger.arithmetic import quantize, share
from tradedb.services.marketdata.files import FloatPolicy
from tradedb.store import Store

if TYPE_CHECKING:
    from tradedb.services.ledger.ledger import Ledger

ZERO = Decimal(0)
SQLITE_HEADER = b"SQLite format 3\x00"
DATABASE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
# The columns the import reads (and record_version, which freqtrade's current trades table
# has and older ones lack); a file lacking any is of a schema tradedb does not know.
# Newer columns freqtrade may add are ignored.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "trades": (
        "id",
        "exchange",
        "pair",
        "is_open",
        "fee_open",
        "fee_close",
        "close_profit_abs",
        "strategy",
        "trading_mode",
        "leverage",
        "is_short",
        "open_date",
        "record_version",
    ),
    "orders": (
        "id",
        "ft_trade_id",
        "ft_order_side",
        "ft_amount",
        "ft_price",
        "order_id",
        "status",
        "order_type",
        "side",
        "price",
        "average",
        "amount",
        "filled",
        "stop_price",
        "order_date",
        "order_filled_date",
        "order_update_date",
        "ft_fee_base",
    ),
}
# The freqtrade whose schema the import was built and tested against.
KNOWN_FREQTRADE = "2026.9"
CANCELED = frozenset({"canceled", "cancelled", "rejected"})
EXPIRED = frozenset({"expired"})
# Fills are looked up this many orders at a time (SQL parameters per statement).
LOOKUP_CHUNK = 500
PAGE = 10_000


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TradeComparison:
    """One freqtrade trade's P&L: tradedb's, summed exactly from the ledger's fills of its
    orders, against freqtrade's `close_profit_abs` (None while the trade is open)."""

    trade_id: int
    exchange: str
    symbol: str
    strategy: str | None
    is_open: bool
    tradedb_pnl: Decimal | None
    freqtrade_pnl: Decimal | None

    @property
    def difference(self) -> Decimal | None:
        """tradedb's P&L minus freqtrade's, where both have one."""
        if self.tradedb_pnl is None or self.freqtrade_pnl is None:
            return None
        return self.tradedb_pnl - self.freqtrade_pnl


@dataclass(frozen=True)
class Skipped:
    """Something of the file the import did not record, and why."""

    item: str
    reason: str


@dataclass(frozen=True)
class Funding:
    """Funds the import deposited because freqtrade's database holds no balances."""

    exchange: str
    asset: str
    amount: Decimal


@dataclass(frozen=True)
class FreqtradeImport:
    """What importing a freqtrade database did. The counts are of what this import
    recorded: importing the same file again gives zeros, and the same comparison."""

    path: Path
    # freqtrade trades in the file, and those imported (all but the skipped ones).
    trades_in_file: int
    trades: int
    orders: int
    fills: int
    # Orders this import ended (canceled or expired) and positions its fills opened.
    ended_orders: int
    positions: int
    # Orders found already recorded as the file has them.
    unchanged_orders: int
    # Float values of the file with noise past 8 decimals, rounded half-even.
    rounded: int
    deposits: list[Funding]
    skipped: list[Skipped]
    comparisons: list[TradeComparison]

    @property
    def changed(self) -> bool:
        """Whether this import wrote anything."""
        return bool(self.orders or self.fills or self.ended_orders or self.deposits)


# --- reading the file ---------------------------------------------------------------------


def looks_like_database(path: Path) -> bool:
    """Whether `tradedb import` should take `path` for a freqtrade database: a file with
    SQLite's header, or named like one (which is then refused if it is not)."""
    if not path.is_file():
        return False
    if path.name.lower().endswith(DATABASE_SUFFIXES):
        return True
    with path.open("rb") as handle:
        return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER


@dataclass(frozen=True)
class SourceOrder:
    """One order of a freqtrade trade, as the ledger records it."""

    row: int
    order_id: str
    side: Literal["buy", "sell"]
    order_type: str
    amount: Decimal
    # The limit or stop price; None for a market order.
    price: Decimal | None
    # The price its fills are recorded at: the average, else the order's price.
    fill_price: Decimal | None
    filled: Decimal
    # The fee in the base currency, where freqtrade noted one; else the fee rate applies.
    fee_base: Decimal
    fee_rate: Decimal
    status: str
    placed: int
    filled_at: int
    updated: int


@dataclass(frozen=True)
class SourceTrade:
    trade_id: int
    exchange: str
    symbol: str
    strategy: str | None
    is_open: bool
    close_profit_abs: Decimal | None
    orders: tuple[SourceOrder, ...]


@dataclass
class FreqtradeDatabase:
    """A freqtrade database read whole: the trades the ledger can hold, and the rest."""

    path: Path
    trades_in_file: int
    trades: list[SourceTrade]
    skipped: list[Skipped]
    rounded: int


def read_database(path: str | os.PathLike[str], *, strict: bool = False) -> FreqtradeDatabase:
    """Read and check a freqtrade database, in one read snapshot of the file, without
    writing to it. Refuses (ValidationError naming the file) a file that is not a
    freqtrade database or lacks a column the import reads."""
    source = Path(path)
    with _read_only(source) as connection:
        trade_rows = _rows(connection, "trades")
        order_rows = _rows(connection, "orders")
    try:
        return _Reader(source, strict).read(trade_rows, order_rows)
    except ValidationError as exc:
        raise ValidationError(exc.field, exc.value, f"{exc.rule}; in {source}") from None


def check_database(path: str | os.PathLike[str]) -> None:
    """Refuse, as `read_database` would, a file that is not a freqtrade database of a
    schema tradedb knows; a front end checks this before it opens (or creates) a
    database to import into."""
    with _read_only(Path(path)):
        pass


@contextmanager
def _read_only(source: Path) -> Iterator[sqlite3.Connection]:
    """The file opened read-only, in one read transaction (a bot writing to it meanwhile
    is seen before or after its write, never halfway), its schema checked."""
    name = str(source)
    if not source.exists():
        raise ValidationError("path", name, "does not exist")
    if not source.is_file():
        raise ValidationError("path", name, "is not a file")
    with source.open("rb") as handle:
        if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise ValidationError(
                "path", name, "is not a SQLite database, so not a freqtrade database"
            )
    try:
        connection = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ValidationError("path", name, f"cannot be opened read-only: {exc}") from None
    try:
        connection.execute("BEGIN")
        _check_schema(connection, name)
        yield connection
        connection.execute("COMMIT")
    except sqlite3.Error as exc:
        raise ValidationError("path", name, f"cannot be read as SQLite: {exc}") from None
    finally:
        connection.close()


def _check_schema(connection: sqlite3.Connection, name: str) -> None:
    tables = {
        row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    absent = [table for table in REQUIRED_COLUMNS if table not in tables]
    if absent:
        raise ValidationError(
            "path",
            name,
            f"is not a freqtrade database: it has no {' or '.join(absent)} table",
        )
    for table, wanted in REQUIRED_COLUMNS.items():
        columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        missing = [column for column in wanted if column not in columns]
        if missing:
            raise ValidationError(
                "path",
                name,
                f"is a freqtrade database of a schema tradedb does not know: its {table} "
                f"table has no {', '.join(missing)}. tradedb reads the schema of freqtrade "
                f"{KNOWN_FREQTRADE}; starting a current freqtrade on an older database once "
                "upgrades it",
            )


def _rows(connection: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    columns = ", ".join(REQUIRED_COLUMNS[table])
    cursor = connection.execute(f"SELECT {columns} FROM {table} ORDER BY id")
    return [dict(zip(REQUIRED_COLUMNS[table], row, strict=True)) for row in cursor]


class _Reader:
    """Turns the file's rows into checked trades, skipping what the ledger cannot hold."""

    def __init__(self, path: Path, strict: bool) -> None:
        self.path = path
        self.floats = FloatPolicy(strict=strict)
        # freqtrade's own P&L is compared, not recorded: its noise is rounded uncounted.
        self.compared = FloatPolicy()

    def read(
        self, trade_rows: list[dict[str, Any]], order_rows: list[dict[str, Any]]
    ) -> FreqtradeDatabase:
        by_trade: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in order_rows:
            by_trade[row["ft_trade_id"]].append(row)
        trades: list[SourceTrade] = []
        skipped: list[Skipped] = []
        for row in trade_rows:
            label = f"trade {row['id']} ({row['exchange']} {row['pair']})"
            reason = _not_spot(row)
            if reason is None:
                rounded = self.floats.rounded
                try:
                    trades.append(self._trade(row, by_trade.get(row["id"], [])))
                    continue
                except _Unsupported as exc:
                    # Only values that reach the ledger count as rounded.
                    self.floats.rounded = rounded
                    reason = str(exc)
            skipped.append(Skipped(label, reason))
        return FreqtradeDatabase(self.path, len(trade_rows), trades, skipped, self.floats.rounded)

    def _trade(self, row: dict[str, Any], order_rows: list[dict[str, Any]]) -> SourceTrade:
        exchange, symbol = str(row["exchange"]), str(row["pair"])
        try:
            check_exchange(exchange)
            check_symbol(symbol)
            strategy = None if row["strategy"] is None else check_name(row["strategy"], "strategy")
        except ValidationError as exc:
            raise _Unsupported(f"{exc.field} {exc.value!r} {exc.rule}") from None
        if not order_rows:
            raise _Unsupported("it has no orders")
        where = f"trades[{row['id']}]"
        fee_open = self._number(row["fee_open"], f"{where}.fee_open") or ZERO
        fee_close = self._number(row["fee_close"], f"{where}.fee_close") or ZERO
        opened = _time(row["open_date"], f"{where}.open_date")
        orders = [
            self._order(order, fee_open, fee_close, opened)
            for order in sorted(
                order_rows,
                key=lambda o: (_time(o["order_date"], f"orders[{o['id']}]", opened), o["id"]),
            )
        ]
        profit = None
        if not row["is_open"] and row["close_profit_abs"] is not None:
            reported = self.compared.value(row["close_profit_abs"], f"{where}.close_profit_abs")
            profit = quantize(_decimal(reported))
        return SourceTrade(
            int(row["id"]),
            exchange,
            symbol,
            strategy,
            bool(row["is_open"]),
            profit,
            tuple(orders),
        )

    def _order(
        self, row: dict[str, Any], fee_open: Decimal, fee_close: Decimal, opened: int
    ) -> SourceOrder:
        where = f"orders[{row['id']}]"
        order_id = str(row["order_id"])
        ft_side = str(row["ft_order_side"])
        # A stop-loss order is the exit of a long spot trade: a sell.
        side: Literal["buy", "sell"]
        match str(row["side"] or ("sell" if ft_side == "stoploss" else ft_side)):
            case "buy":
                side = "buy"
            case "sell":
                side = "sell"
            case other:
                raise _Unsupported(f"its order {order_id} has side {other!r}")
        order_type = _order_type(ft_side, row["order_type"])
        if order_type is None:
            raise _Unsupported(f"its order {order_id} has order type {row['order_type']!r}")
        amount = self._number(row["amount"], f"{where}.amount") or self._number(
            row["ft_amount"], f"{where}.ft_amount"
        )
        if amount is None or amount <= 0:
            raise _Unsupported(f"its order {order_id} has no amount")
        filled = self._number(row["filled"], f"{where}.filled") or ZERO
        limit = row["stop_price"] if order_type == "stop_loss" else row["price"]
        price = self._number(limit or row["price"] or row["ft_price"], f"{where}.price")
        average = self._number(row["average"], f"{where}.average")
        fill_price = average or price
        if filled > 0 and not fill_price:
            raise _Unsupported(f"its order {order_id} filled {filled} at no known price")
        placed = _time(row["order_date"], f"{where}.order_date", opened)
        # Clocks disagree at times; an order's events stay in their own order.
        last_fill = row["order_filled_date"] or row["order_update_date"]
        filled_at = max(_time(last_fill, f"{where}.order_filled_date", placed), placed)
        updated = max(
            _time(row["order_update_date"], f"{where}.order_update_date", filled_at), filled_at
        )
        return SourceOrder(
            row=int(row["id"]),
            order_id=order_id,
            side=side,
            order_type=order_type,
            # An order never fills beyond its amount, whatever freqtrade's floats say.
            amount=max(amount, filled),
            price=None if order_type == "market" else price,
            fill_price=fill_price,
            filled=filled,
            fee_base=self._number(row["ft_fee_base"], f"{where}.ft_fee_base") or ZERO,
            fee_rate=fee_open if ft_side == "buy" else fee_close,
            status=str(row["status"] or "open").lower(),
            placed=placed,
            filled_at=filled_at,
            updated=updated,
        )

    def _number(self, value: object, name: str) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return Decimal(value)
            except InvalidOperation:
                raise ValidationError(name, value, "is not a number") from None
        return _decimal(self.floats.value(value, name))


class _Unsupported(Exception):
    """A trade the ledger cannot hold; the message says why."""


def _not_spot(row: Mapping[str, Any]) -> str | None:
    mode = str(row["trading_mode"] or "spot").lower()
    leverage = row["leverage"] or 1
    if mode != "spot" or row["is_short"] or leverage != 1:
        kind = "short " if row["is_short"] else ""
        return (
            f"a {kind}{mode} trade at leverage {format_plain(Decimal(repr(leverage)))}: the "
            "ledger keeps spot wallets, without contracts, collateral or funding fees"
        )
    return None


def _order_type(ft_side: str, kind: object) -> str | None:
    """The spec's order type of a freqtrade order (ccxt's type, or freqtrade's side
    'stoploss' for its stop-loss orders on the exchange)."""
    text = str(kind or "").lower().replace("-", "_")
    if ft_side == "stoploss" or text.startswith("stop"):
        return "stop_loss"
    if text.startswith("take_profit"):
        return "take_profit"
    if text in ("market", "limit"):
        return text
    return None


def _time(value: object, name: str, default: int | None = None) -> int:
    """freqtrade's times: naive UTC datetimes stored as text."""
    if value is None:
        if default is None:
            raise _Unsupported(f"it has no {name.rpartition('.')[2]}")
        return default
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(name, value, "is not a time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return to_epoch_ms(moment, name)


def _decimal(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


# --- importing ----------------------------------------------------------------------------


def import_database(store: Store, ledger: Ledger, source: FreqtradeDatabase) -> FreqtradeImport:
    """Record a freqtrade database read by `read_database` through `ledger`, in one
    transaction (run again from the start if PostgreSQL reports a conflicting writer)."""
    with localcontext(EXACT):
        return store.db.retrying(lambda: _Import(store, ledger, source).run())


@dataclass(order=True)
class _Event:
    key: tuple[int, int, int]
    action: Callable[[], None] = field(compare=False)


PLACE, FILL, END = 0, 1, 2


class _Import:
    def __init__(self, store: Store, ledger: Ledger, source: FreqtradeDatabase) -> None:
        self.store = store
        self.ledger = ledger
        self.source = source
        self.orders = self.fills = self.ended = self.unchanged = 0
        self.funded: dict[tuple[str, str], Decimal] = defaultdict(Decimal)

    def run(self) -> FreqtradeImport:
        with self.store.db.transaction():
            positions_before = self.store.positions.count()
            recorded = {
                key: sum((fill.amount for fill in fills), ZERO)
                for key, fills in self._fills_by_order().items()
            }
            events = [
                event
                for trade in self.source.trades
                for order in trade.orders
                for event in self._plan(
                    trade, order, recorded.get((trade.exchange, order.order_id), ZERO)
                )
            ]
            for event in sorted(events):
                event.action()
            positions = self.store.positions.count() - positions_before
            comparisons = self._compare()
        return FreqtradeImport(
            path=self.source.path,
            trades_in_file=self.source.trades_in_file,
            trades=len(self.source.trades),
            orders=self.orders,
            fills=self.fills,
            ended_orders=self.ended,
            positions=positions,
            unchanged_orders=self.unchanged,
            rounded=self.source.rounded,
            deposits=[Funding(e, a, amount) for (e, a), amount in sorted(self.funded.items())],
            skipped=list(self.source.skipped),
            comparisons=comparisons,
        )

    # --- planning -------------------------------------------------------------------------

    def _plan(self, trade: SourceTrade, order: SourceOrder, recorded: Decimal) -> list[_Event]:
        """What the ledger still lacks of one order: placing it, its fill (or the part of
        it filled since an earlier import), and its end."""
        events: list[_Event] = []
        existing = self.ledger.order(trade.exchange, order.order_id)
        if existing is None:
            events.append(self._event(order, order.placed, PLACE, self._place, trade, order))
        else:
            _check_same(trade, order, existing)
        more = order.filled - recorded
        if more < 0:
            raise ValidationError(
                "order_id",
                order.order_id,
                f"tradedb holds fills of {format_plain(recorded)} for it on {trade.exchange}, "
                f"more than the {format_plain(order.filled)} freqtrade's trade "
                f"{trade.trade_id} says it filled",
            )
        if more > 0:
            events.append(self._event(order, order.filled_at, FILL, self._fill, trade, order, more))
        ending = _ending(order)
        if ending is not None and (existing is None or existing.status in order_rules.LIVE):
            events.append(self._event(order, order.updated, END, self._end, trade, order, ending))
        if existing is not None and not events:
            self.unchanged += 1
        return events

    @staticmethod
    def _event(
        order: SourceOrder, when: int, rank: int, action: Callable[..., None], *args: Any
    ) -> _Event:
        # At one moment, an earlier order's events come first (an entry's fill before the
        # stop-loss placed on what it bought), and an order's own in their order.
        return _Event((when, order.row, rank), lambda: action(*args))

    # --- recording ------------------------------------------------------------------------

    def _place(self, trade: SourceTrade, order: SourceOrder) -> None:
        base, quote = market_assets(trade.symbol)
        locks = order_rules.reservation(order.side, order.amount, order.price, order.fee_rate)
        self._fund(
            trade.exchange,
            base if order.side == "sell" else quote,
            locks,
            order.order_id,
            order.placed,
        )
        self.ledger.place_order(
            exchange=trade.exchange,
            order_id=order.order_id,
            symbol=trade.symbol,
            side=order.side,
            order_type=order.order_type,
            amount=order.amount,
            price=order.price,
            strategy=trade.strategy,
            timestamp=order.placed,
            fee_reserve_rate=order.fee_rate,
        )
        self.orders += 1

    def _fill(self, trade: SourceTrade, order: SourceOrder, amount: Decimal) -> None:
        price = order.fill_price
        assert price is not None  # _Reader refuses a filled order without one
        base, quote = market_assets(trade.symbol)
        if order.fee_base:
            fee, currency = share(order.fee_base, amount, order.filled), base
        else:
            fee, currency = quantize(order.fee_rate * amount * price), quote
        # Named by what the order had filled once it was recorded: the same file gives
        # the same id, a later file in which the order filled further a new one.
        fill_id = f"{order.order_id}@{format_plain(order.filled)}"
        current = self.ledger.order(trade.exchange, order.order_id)
        assert current is not None
        for asset, needed in self._fill_needs(current, amount, price, fee, currency).items():
            self._fund(trade.exchange, asset, needed, fill_id, order.filled_at)
        result = self.ledger.record_fill(
            exchange=trade.exchange,
            order_id=order.order_id,
            exchange_trade_id=fill_id,
            amount=amount,
            price=price,
            fee=fee,
            fee_currency=currency,
            timestamp=order.filled_at,
            opens_short=False,
        )
        self.fills += not result.duplicate

    def _end(self, trade: SourceTrade, order: SourceOrder, ending: str) -> None:
        end = self.ledger.expire_order if ending == "expired" else self.ledger.cancel_order
        end(trade.exchange, order.order_id, timestamp=order.updated)
        self.ended += 1

    def _fill_needs(
        self, order: Order, amount: Decimal, price: Decimal, fee: Decimal, currency: str
    ) -> dict[str, Decimal]:
        """What each asset's available funds must hold for the ledger to record this fill:
        what it pays, less what it releases of the order's reservation, plus the fee."""
        base, quote = market_assets(order.symbol)
        value = quantize(amount * price)
        remaining = order.remaining_amount if order.remaining_amount is not None else order.amount
        locked_asset = order.locked_asset or (base if order.side == "sell" else quote)
        released = min(
            share(order.locked_amount, amount, remaining),
            self.ledger.balance(order.exchange, locked_asset).locked,
        )
        paid, spent, received, got = (
            (quote, value, base, amount) if order.side == "buy" else (base, amount, quote, value)
        )
        needs: dict[str, Decimal] = defaultdict(Decimal)
        needs[paid] += spent - (released if locked_asset == paid else ZERO)
        needs[received] -= got
        needs[currency] += fee
        return {asset: needed for asset, needed in needs.items() if needed > 0}

    def _fund(self, exchange: str, asset: str, needed: Decimal, key: str, when: int) -> None:
        """Deposit what the wallet lacks for `needed`: freqtrade's database has no
        balances to open the ledger's wallets with."""
        if needed <= 0:
            return
        shortfall = needed - self.ledger.balance(exchange, asset).available
        if shortfall <= 0:
            return
        self.ledger.deposit(
            exchange=exchange,
            asset=asset,
            amount=shortfall,
            timestamp=when,
            reference=_reference(key, asset),
        )
        self.funded[exchange, asset] += shortfall

    # --- reading back ---------------------------------------------------------------------

    def _fills_by_order(self) -> dict[tuple[str, str], list[Any]]:
        """The ledger's fills of every order of the imported trades."""
        wanted: dict[str, list[str]] = defaultdict(list)
        for trade in self.source.trades:
            wanted[trade.exchange].extend(order.order_id for order in trade.orders)
        found: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for exchange, order_ids in wanted.items():
            for fill in self._fills(exchange, order_ids):
                found[exchange, fill.order_id].append(fill)
        return found

    def _fills(self, exchange: str, order_ids: Sequence[str]) -> Iterator[Any]:
        for start in range(0, len(order_ids), LOOKUP_CHUNK):
            where = {
                "exchange": exchange,
                "order_id": list(order_ids[start : start + LOOKUP_CHUNK]),
            }
            yield from self.store.trades.every(where, page_size=PAGE)

    def _compare(self) -> list[TradeComparison]:
        fills = self._fills_by_order()
        comparisons = []
        for trade in self.source.trades:
            results = [
                fill.profit_loss
                for order in trade.orders
                for fill in fills.get((trade.exchange, order.order_id), [])
                if fill.profit_loss is not None
            ]
            comparisons.append(
                TradeComparison(
                    trade.trade_id,
                    trade.exchange,
                    trade.symbol,
                    trade.strategy,
                    trade.is_open,
                    sum(results, ZERO) if results else None,
                    trade.close_profit_abs,
                )
            )
        return comparisons


def _check_same(trade: SourceTrade, order: SourceOrder, existing: Order) -> None:
    if (existing.symbol, existing.side) != (trade.symbol, order.side):
        raise ValidationError(
            "order_id",
            order.order_id,
            f"is already recorded on {trade.exchange} as a {existing.side} of "
            f"{existing.symbol}, while freqtrade's trade {trade.trade_id} has it as a "
            f"{order.side} of {trade.symbol}",
        )


def _ending(order: SourceOrder) -> str | None:
    """How the ledger ends an order freqtrade saw end: canceled (also a rejection, or an
    order the exchange closed short of its amount) or expired; None while it is open."""
    if order.status in EXPIRED:
        return "expired"
    if order.status in CANCELED or (order.status == "closed" and order.filled < order.amount):
        return "canceled"
    return None


def _reference(key: str, asset: str) -> str:
    """A deposit's reference: recording the same funding again changes nothing."""
    text = f"freqtrade:{key}:{asset}"
    if len(text) <= MAX_NAME_LENGTH:
        return text
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return f"freqtrade:{digest}:{asset}"
