"""The analytics SQL: the latest quote at or before a time, balances rebuilt from the
wallet journal, fills and funding flows for the daily equity curves, portfolio snapshots
replaced per timestamp, and performance rows upserted per day.

Quote lookups walk the indexes backwards from the time asked for, so each is a few page
reads however much history is stored: candles through (symbol, timeframe, timestamp) or
(exchange, symbol, timeframe, timestamp), tickers through (symbol, exchange, timestamp).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any

from tradedb.models import (
    Performance,
    PerformanceCreate,
    PortfolioSnapshot,
    PortfolioSnapshotCreate,
)
from tradedb.models.timeframes import TIMEFRAMES
from tradedb.models.values import AMOUNT
from tradedb.store.database import Database
from tradedb.store.repository import Repository
from tradedb.store.store import Store

SCALE = AMOUNT.scale
DAY_MS = 86_400_000
# Funding that enters or leaves an account: not profit, not loss.
FLOW_KINDS = ("deposit", "withdrawal", "opening")


@dataclass(frozen=True)
class StoredQuote:
    """One stored price of a market's base in its quote currency."""

    symbol: str
    exchange: str
    price: Decimal
    # When the price was known: a ticker's time, or the close time (start + timeframe)
    # of a candle, which is when its close price became a fact.
    timestamp: int
    source: str  # 'ticker' or 'candle 5m' and the like


@dataclass(frozen=True)
class Fill:
    """A trades row as the equity curves need it: no per-row record validation."""

    id: int
    timestamp: int
    exchange: str
    strategy: str | None
    symbol: str
    side: str
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str | None
    profit_loss: Decimal | None


@dataclass(frozen=True)
class Flow:
    """A journal line that moved funds into or out of an account."""

    timestamp: int
    exchange: str
    asset: str
    kind: str
    change: Decimal


class AnalyticsRecords:
    """Reads for valuation and analytics; writes of snapshots and performance rows."""

    def __init__(
        self,
        db: Database,
        *,
        snapshots: Repository[PortfolioSnapshotCreate, PortfolioSnapshot],
        performance: Repository[PerformanceCreate, Performance],
    ) -> None:
        self.db = db
        self._out = partial(db.dialect.amount_out, scale=SCALE)
        self.snapshots = snapshots
        self.performance = performance

    @classmethod
    def of(cls, store: Store) -> AnalyticsRecords:
        return cls(store.db, snapshots=store.snapshots, performance=store.performance)

    # --- quotes --------------------------------------------------------------------------

    def market_symbols(self) -> set[str]:
        """Every symbol with stored candles or tickers, found by hopping from one symbol
        to the next in the indexes instead of reading every row."""
        symbols: set[str] = set()
        for table in ("market_data", "tickers"):
            rows = self.db.connection.execute(
                "WITH RECURSIVE s(symbol) AS ("
                f"SELECT (SELECT min(symbol) FROM {table}) UNION ALL "
                f"SELECT (SELECT min(symbol) FROM {table} WHERE symbol > s.symbol) "
                "FROM s WHERE s.symbol IS NOT NULL) "
                "SELECT symbol FROM s WHERE symbol IS NOT NULL"
            ).fetchall()
            symbols.update(row[0] for row in rows)
        return symbols

    def latest_ticker(
        self, symbol: str, at_ms: int, not_before_ms: int, exchange: str | None = None
    ) -> StoredQuote | None:
        """The newest ticker of `symbol` with not_before_ms <= timestamp <= at_ms; with
        `exchange`, that exchange's only. Ties between exchanges go to the first by name."""
        conn = self.db.connection
        if exchange is None:
            exchanges = [
                row[0]
                for row in conn.execute(
                    "WITH RECURSIVE v(exchange) AS ("
                    "SELECT (SELECT min(exchange) FROM tickers WHERE symbol = ?1) UNION ALL "
                    "SELECT (SELECT min(exchange) FROM tickers WHERE symbol = ?1 "
                    "AND exchange > v.exchange) FROM v WHERE v.exchange IS NOT NULL) "
                    "SELECT exchange FROM v WHERE exchange IS NOT NULL",
                    (symbol,),
                )
            ]
        else:
            exchanges = [exchange]
        best: tuple[int, str] | None = None
        for venue in exchanges:
            newest = conn.execute(
                "SELECT max(timestamp) FROM tickers WHERE symbol = ? AND exchange = ? "
                "AND timestamp BETWEEN ? AND ?",
                (symbol, venue, not_before_ms, at_ms),
            ).fetchone()[0]
            if newest is not None and (best is None or newest > best[0]):
                best = (int(newest), venue)
        if best is None:
            return None
        timestamp, venue = best
        units = conn.execute(
            "SELECT last_price FROM tickers WHERE symbol = ? AND exchange = ? AND timestamp = ?",
            (symbol, venue, timestamp),
        ).fetchone()[0]
        return StoredQuote(symbol, venue, self._out(units), timestamp, "ticker")

    def latest_candle(
        self, symbol: str, at_ms: int, not_before_ms: int, exchange: str | None = None
    ) -> StoredQuote | None:
        """The close of the newest candle of `symbol` (any timeframe) that had closed by
        at_ms, and closed no earlier than not_before_ms. A candle still open at at_ms is
        never used: its close lies in the future. Equal close times go to the shorter
        timeframe, then to the first exchange by name."""
        conn = self.db.connection
        best: StoredQuote | None = None
        for timeframe, frame in TIMEFRAMES.items():
            oldest_start, newest_start = frame.starts_closed_between(not_before_ms, at_ms)
            params: list[Any] = [symbol, timeframe, newest_start, oldest_start]
            where = "symbol = ? AND timeframe = ? AND timestamp <= ? AND timestamp >= ?"
            if exchange is not None:
                where = "exchange = ? AND " + where
                params.insert(0, exchange)
            row = conn.execute(
                f"SELECT exchange, timestamp, close_price FROM market_data WHERE {where} "
                "ORDER BY timestamp DESC, exchange LIMIT 1",
                params,
            ).fetchone()
            if row is None:
                continue
            venue, start, units = row
            closed = frame.end(int(start))
            if best is None or closed > best.timestamp:
                best = StoredQuote(symbol, venue, self._out(units), closed, f"candle {timeframe}")
        return best

    # --- balances and flows from the journal ---------------------------------------------

    def balances_at(self, at_ms: int) -> dict[tuple[str, str], Decimal]:
        """Per (exchange, asset): the sum of its journal lines up to and including at_ms
        (available plus locked), for the wallets not at zero then."""
        total = self.db.dialect.sum_of
        rows = self.db.summed_rows(
            lambda exact: (
                "SELECT exchange, asset, "
                f"{total('available_change', 'locked_change', exact=exact)} "
                "FROM wallet_movements WHERE timestamp <= ? GROUP BY exchange, asset "
                "ORDER BY exchange, asset"
            ),
            (at_ms,),
        )
        return {(e, a): self._out(units) for e, a, units in rows if units != 0}

    def daily_balance_changes(self, before_ms: int) -> list[tuple[int, str, str, Decimal]]:
        """Per UTC day (days since the epoch), exchange and asset: the net change of the
        wallet that day, for journal lines before before_ms; in day order."""
        total = self.db.dialect.sum_of
        rows = self.db.summed_rows(
            lambda exact: (
                f"SELECT timestamp / {DAY_MS} AS day, exchange, asset, "
                f"{total('available_change', 'locked_change', exact=exact)} "
                "FROM wallet_movements WHERE timestamp < ? GROUP BY day, exchange, asset "
                "ORDER BY day, exchange, asset"
            ),
            (before_ms,),
        )
        return [(int(day), e, a, self._out(total)) for day, e, a, total in rows]

    def flows(self, before_ms: int, kinds: Sequence[str] = FLOW_KINDS) -> list[Flow]:
        """Deposits, withdrawals and opening balances before before_ms, in time order."""
        marks = ", ".join("?" for _ in kinds)
        add = self.db.dialect.add_of
        rows = self.db.summed_rows(
            lambda exact: (
                "SELECT timestamp, exchange, asset, kind, "
                f"{add('available_change', 'locked_change', exact=exact)} "
                f"FROM wallet_movements WHERE kind IN ({marks}) AND timestamp < ? "
                "ORDER BY timestamp, id"
            ),
            (*kinds, before_ms),
        )
        return [Flow(int(t), e, a, k, self._out(c)) for t, e, a, k, c in rows]

    def fills(self, before_ms: int) -> list[Fill]:
        """Every trade before before_ms, in time order (then recording order)."""
        rows = self.db.connection.execute(
            "SELECT id, timestamp, exchange, strategy, symbol, side, amount, price, "
            "coalesce(fee, 0), fee_currency, profit_loss FROM trades WHERE timestamp < ? "
            "ORDER BY timestamp, id",
            (before_ms,),
        ).fetchall()
        return [
            Fill(
                i,
                int(t),
                e,
                s,
                sym,
                side,
                self._out(a),
                self._out(p),
                self._out(f),
                fc,
                None if pnl is None else self._out(pnl),
            )
            for i, t, e, s, sym, side, a, p, f, fc, pnl in rows
        ]

    def event_span(self) -> tuple[int, int] | None:
        """The times of the first and the last trade or journal line, if any."""
        row = self.db.connection.execute(
            "SELECT min(first), max(last) FROM ("
            "SELECT min(timestamp) AS first, max(timestamp) AS last FROM trades UNION ALL "
            "SELECT min(timestamp), max(timestamp) FROM wallet_movements) AS spans"
        ).fetchone()
        return None if row[0] is None else (int(row[0]), int(row[1]))

    def config_values(self, prefix: str) -> dict[str, str]:
        """Active bot_config values whose key starts with `prefix`, by key."""
        rows = self.db.connection.execute(
            "SELECT config_key, config_value FROM bot_config "
            "WHERE substr(config_key, 1, ?) = ? AND coalesce(is_active, true) "
            "ORDER BY config_key",
            (len(prefix), prefix),
        ).fetchall()
        return {key: value for key, value in rows}

    # --- writes --------------------------------------------------------------------------

    def replace_snapshot(
        self, at_ms: int, rows: Iterable[Mapping[str, Any]]
    ) -> list[PortfolioSnapshot]:
        """Make `rows` the whole snapshot of at_ms, in one transaction: rows written
        before for that time are deleted first, so running a snapshot again replaces
        it instead of adding to it."""
        records = [self.snapshots.validate(row) for row in rows]
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM portfolio_snapshots WHERE timestamp = ?", (at_ms,))
            self.snapshots.insert_many(records)
            stored = self.snapshots.select_all("timestamp = ?", (at_ms,))
        return stored

    def latest_snapshots(
        self, at_ms: int | None, exchange: str | None = None
    ) -> list[PortfolioSnapshot]:
        """Each exchange's newest snapshot rows taken at or before at_ms (any time when
        None): exchanges are snapshotted at their own times, so no one snapshot time
        holds them all."""
        where, params = "1 = 1", list[object]()
        if at_ms is not None:
            where, params = "timestamp <= ?", list[object]([at_ms])
        if exchange is not None:
            where += " AND exchange = ?"
            params.append(exchange)
        newest = self.db.connection.execute(
            f"SELECT exchange, max(timestamp) FROM portfolio_snapshots WHERE {where} "
            "GROUP BY exchange",
            params,
        ).fetchall()
        rows: list[PortfolioSnapshot] = []
        for venue, timestamp in newest:
            rows += self.snapshots.select_all(
                "exchange = ? AND timestamp = ?", (venue, int(timestamp))
            )
        return rows

    def upsert_performance(self, rows: Iterable[Mapping[str, Any]]) -> list[Performance]:
        """Insert or update rows keyed by (date, strategy, exchange), in one transaction."""
        records = [self.performance.validate(row) for row in rows]
        with self.db.transaction():
            return [self.performance.upsert(record) for record in records]
