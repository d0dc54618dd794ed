"""The SQL of retention: what lies past a horizon, and deleting it.

Only the tables that a retention policy may shorten can be named here. Candles and
tickers are archived before they are deleted, so their rows are read here as integer
units and deleted only while they are still exactly what was archived. Trading records
(trades, orders, positions, performance metrics, the wallet journal) are refused by
`delete_before` and `count_before` whatever the caller asks, so no policy, however it is
written, can reach them through this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradedb.errors import ValidationError
from tradedb.store import bulk
from tradedb.store.database import Database
from tradedb.store.market import candle_columns

# table -> the WHERE condition (besides the horizon) that retention may delete under.
RETAINABLE: dict[str, str] = {
    "tickers": "1 = 1",
    "bot_logs": "level = 'DEBUG'",
    "balance_history": "1 = 1",
}
PERMANENT = frozenset(
    {
        "trades",
        "crypto_orders",
        "positions",
        "performance_metrics",
        "wallet_movements",
        "wallets",
        "portfolio_snapshots",
        "bot_config",
    }
)
CANDLE_COLUMNS = ("timestamp", "open_price", "high_price", "low_price", "close_price", "volume")
# A ticker's columns as archived: its time, then its amounts with their scales, in the
# order the bulk path writes them.
TICKER_AMOUNTS = tuple((name, spec.scale) for name, spec, _, _ in bulk.TICKER_AMOUNTS)


class PermanentTable(ValidationError):
    """A retention policy or call named a table whose rows are kept for ever."""


def check_retainable(table: str) -> str:
    """The table's delete condition; a permanent or unknown table is refused."""
    if table in PERMANENT:
        raise PermanentTable(
            "table", table, "is permanent: retention never deletes trading records"
        )
    if table not in RETAINABLE and table != "market_data":
        known = ", ".join(sorted((*RETAINABLE, "market_data")))
        raise ValidationError("table", table, f"has no retention policy (policies: {known})")
    return RETAINABLE.get(table, "1 = 1")


@dataclass(frozen=True)
class CandleSpan:
    """One market's candles in [start, end): a partition of the archive to be."""

    exchange: str
    symbol: str
    timeframe: str
    start: int
    end: int
    rows: int


@dataclass(frozen=True)
class TickerSpan:
    """One market's tickers in [start, end): a partition of the archive to be."""

    exchange: str
    symbol: str
    start: int
    end: int
    rows: int


# A ticker as integer units: (timestamp, then each of TICKER_AMOUNTS), None where the
# ticker has no value.
TickerRow = tuple[Any, ...]


class RetentionRecords:
    """Counting and deleting per retention policy."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def count_before(self, table: str, cutoff: int) -> list[tuple[str, int]]:
        """Rows older than `cutoff` that retention may delete, per exchange (or per
        exchange and symbol where the table has symbols)."""
        condition = check_retainable(table)
        group = "exchange || ' ' || symbol" if table in ("tickers", "market_data") else "exchange"
        if table == "bot_logs":
            group = "coalesce(exchange, '-')"
        sql = (
            f"SELECT {group}, count(*) FROM {table} "
            f"WHERE timestamp < ? AND {condition} GROUP BY 1 ORDER BY 1"
        )
        with self.db.snapshot() as conn:
            return [(str(name), int(count)) for name, count in conn.execute(sql, (cutoff,))]

    def delete_before(self, table: str, cutoff: int) -> int:
        """Delete a retainable table's rows older than `cutoff`, in one transaction."""
        if table == "market_data":
            raise ValidationError("table", table, "candles are archived, never just deleted")
        condition = check_retainable(table)
        with self.db.transaction(durable=table == "balance_history") as conn:
            cursor = conn.execute(
                f"DELETE FROM {table} WHERE timestamp < ? AND {condition}", (cutoff,)
            )
            return int(cursor.rowcount)

    def candle_markets_before(self, cutoff: int) -> list[tuple[str, str, str, int]]:
        """(exchange, symbol, timeframe, oldest timestamp) of each market with candles
        older than `cutoff`."""
        sql = (
            "SELECT exchange, symbol, timeframe, min(timestamp) FROM market_data "
            "WHERE timestamp < ? GROUP BY exchange, symbol, timeframe "
            "ORDER BY exchange, symbol, timeframe"
        )
        with self.db.snapshot() as conn:
            return [(e, s, t, int(first)) for e, s, t, first in conn.execute(sql, (cutoff,))]

    def candle_count(self, exchange: str, symbol: str, timeframe: str, start: int, end: int) -> int:
        sql = (
            "SELECT count(*) FROM market_data WHERE symbol = ? AND timeframe = ? "
            "AND exchange = ? AND timestamp >= ? AND timestamp < ?"
        )
        with self.db.snapshot() as conn:
            count: int = conn.execute(sql, (symbol, timeframe, exchange, start, end)).fetchone()[0]
        return count

    def candle_columns(self, span: CandleSpan) -> Any:
        """The span's candles as int64 columns (6, rows): timestamp, then the amounts in
        units of 1e-8."""
        with self.db.snapshot() as conn:
            return self._columns(conn, span)

    def delete_candles_if_unchanged(self, span: CandleSpan, archived: Any) -> int | None:
        """Delete the span's candles if they are still exactly `archived` (a writer may
        have changed one since it was archived); None, deleting nothing, if not.

        The comparison and the delete share one write transaction, so no write can slip
        in between. The candle blocks of the span go with the rows (triggers)."""
        import numpy as np

        with self.db.transaction(durable=False) as conn:
            current = self._columns(conn, span)
            if current.shape != archived.shape or not np.array_equal(current, archived):
                return None
            cursor = conn.execute(
                "DELETE FROM market_data WHERE symbol = ? AND timeframe = ? AND exchange = ? "
                "AND timestamp >= ? AND timestamp < ?",
                (span.symbol, span.timeframe, span.exchange, span.start, span.end),
            )
            return int(cursor.rowcount)

    def _columns(self, conn: Any, span: CandleSpan) -> Any:
        # Exact: an amount past int64 comes as a Python int, and is archived as it is.
        where = "symbol = ? AND timeframe = ? AND exchange = ? AND timestamp >= ? AND timestamp < ?"
        params = (span.symbol, span.timeframe, span.exchange, span.start, span.end)
        return candle_columns(self.db, conn, where, params)

    def ticker_markets_before(self, cutoff: int) -> list[tuple[str, str, int]]:
        """(exchange, symbol, oldest timestamp) of each market with tickers older than
        `cutoff`."""
        sql = (
            "SELECT exchange, symbol, min(timestamp) FROM tickers WHERE timestamp < ? "
            "GROUP BY exchange, symbol ORDER BY exchange, symbol"
        )
        with self.db.snapshot() as conn:
            return [(e, s, int(first)) for e, s, first in conn.execute(sql, (cutoff,))]

    def ticker_count(self, exchange: str, symbol: str, start: int, end: int) -> int:
        sql = (
            "SELECT count(*) FROM tickers WHERE symbol = ? AND exchange = ? "
            "AND timestamp >= ? AND timestamp < ?"
        )
        with self.db.snapshot() as conn:
            count: int = conn.execute(sql, (symbol, exchange, start, end)).fetchone()[0]
        return count

    def ticker_rows(self, span: TickerSpan) -> list[TickerRow]:
        """The span's tickers in time order, amounts in integer units (None: no value)."""
        with self.db.snapshot() as conn:
            return self._ticker_rows(conn, span)

    def delete_tickers_if_unchanged(
        self, span: TickerSpan, archived: list[TickerRow]
    ) -> int | None:
        """Delete the span's tickers if they are still exactly `archived`; None, deleting
        nothing, if a writer changed one since (as `delete_candles_if_unchanged`)."""
        with self.db.transaction(durable=False) as conn:
            if self._ticker_rows(conn, span) != archived:
                return None
            cursor = conn.execute(
                "DELETE FROM tickers WHERE symbol = ? AND exchange = ? "
                "AND timestamp >= ? AND timestamp < ?",
                (span.symbol, span.exchange, span.start, span.end),
            )
            return int(cursor.rowcount)

    def _ticker_rows(self, conn: Any, span: TickerSpan) -> list[TickerRow]:
        units = ", ".join(self.db.dialect.units_of(c, scale) for c, scale in TICKER_AMOUNTS)
        sql = (
            f"SELECT timestamp, {units} FROM tickers WHERE symbol = ? AND exchange = ? "
            "AND timestamp >= ? AND timestamp < ? ORDER BY timestamp"
        )
        params = (span.symbol, span.exchange, span.start, span.end)
        return [
            tuple(None if value is None else int(value) for value in row)
            for row in conn.execute(sql, params)
        ]

    def bytes_per_row(self, table: str) -> float | None:
        """Average bytes a row of `table` and its indexes take on disk, or None where the
        engine cannot tell or the table is empty."""
        return self.db.bytes_per_row(table)

    def reclaim(self, how: str) -> str:
        """Give the space of deleted rows back (see Database.reclaim_space); what was done."""
        return self.db.reclaim_space(how)
