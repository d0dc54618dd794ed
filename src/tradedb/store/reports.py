"""The reports' SQL: which strategies a period holds, trade totals per strategy, and which
candles a traded market has.

Sums are taken by the database over exact amounts (integer units on SQLite, NUMERIC on
PostgreSQL), so a total of fees or P&L is exact however many trades it adds up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from tradedb.models.timeframes import TIMEFRAME_NAMES
from tradedb.models.values import AMOUNT
from tradedb.store.database import Database

# A report row's identity: (strategy, exchange); None means "all of them" in
# performance_metrics, as the specification's portfolio-wide rows do.
Key = tuple[str | None, str | None]


@dataclass(frozen=True)
class TradeTotals:
    """The trades of one strategy, exchange, market and fee currency, summed."""

    strategy: str | None
    exchange: str
    symbol: str
    fee_currency: str | None
    trades: int
    winning: int
    losing: int
    realized_pnl: Decimal | None  # None: no closing trade among them
    fees: Decimal


@dataclass(frozen=True)
class Marker:
    """One fill, as a candle chart marks it. `profit_loss` is the ledger's result of the
    round trip that the fill closes, net of fees, in the market's quote currency; None for
    a fill that opens or adds to a position."""

    timestamp: int
    side: str
    amount: Decimal
    price: Decimal
    strategy: str | None
    profit_loss: Decimal | None


def _in(column: str, values: Sequence[object] | None) -> tuple[str, list[object]]:
    if values is None:
        return "1 = 1", []
    if not values:
        return "1 = 0", []
    return f"{column} IN ({', '.join('?' for _ in values)})", list(values)


def _where(
    strategies: Sequence[str] | None,
    equal: dict[str, object],
    column: str,
    low: object,
    high: object,
    *,
    high_included: bool,
) -> tuple[str, list[object]]:
    """WHERE for the chosen strategies, columns equal to values (None: any), and `column`
    from `low` (included) to `high` (included or not); a None bound is no bound."""
    where, params = _in("strategy", strategies)
    clauses = [where]
    for name, value in equal.items():
        if value is not None:
            clauses.append(f"{name} = ?")
            params.append(value)
    if low is not None:
        clauses.append(f"{column} >= ?")
        params.append(low)
    if high is not None:
        clauses.append(f"{column} {'<=' if high_included else '<'} ?")
        params.append(high)
    return " AND ".join(clauses), params


class ReportRecords:
    """Read-only queries behind `tradedb report`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _amount(self, stored: object) -> Decimal:
        return self.db.dialect.amount_out(stored or 0, AMOUNT.scale)

    def performance_keys(
        self,
        *,
        strategies: Sequence[str] | None,
        exchange: str | None,
        first_date: str | None,
        last_date: str | None,
    ) -> list[Key]:
        """(strategy, exchange) of the performance rows in a date range (both ends
        included). Without `strategies`, portfolio-wide rows (strategy NULL) are included."""
        where, params = _where(
            strategies, {"exchange": exchange}, "date", first_date, last_date, high_included=True
        )
        sql = f"SELECT DISTINCT strategy, exchange FROM performance_metrics WHERE {where}"
        return [(row[0], row[1]) for row in self.db.connection.execute(sql, params)]

    def trade_totals(
        self,
        *,
        strategies: Sequence[str] | None,
        exchange: str | None,
        since: int | None,
        until: int | None,
    ) -> list[TradeTotals]:
        """Trades in [since, until) summed per strategy, exchange, market and fee currency.
        A closing trade (profit_loss not NULL) wins above zero and loses below it."""
        where, params = _where(
            strategies, {"exchange": exchange}, "timestamp", since, until, high_included=False
        )
        total = self.db.dialect.sum_of

        def sql(exact: bool) -> str:
            return (
                "SELECT strategy, exchange, symbol, fee_currency, count(*), "
                "count(CASE WHEN profit_loss > 0 THEN 1 END), "
                "count(CASE WHEN profit_loss < 0 THEN 1 END), "
                f"{total('profit_loss', exact=exact)}, {total('fee', exact=exact)} "
                f"FROM trades WHERE {where} "
                "GROUP BY strategy, exchange, symbol, fee_currency "
                "ORDER BY strategy, exchange, symbol, fee_currency"
            )

        return [
            TradeTotals(
                strategy=row[0],
                exchange=row[1],
                symbol=row[2],
                fee_currency=row[3],
                trades=int(row[4]),
                winning=int(row[5]),
                losing=int(row[6]),
                realized_pnl=None if row[7] is None else self._amount(row[7]),
                fees=self._amount(row[8]),
            )
            for row in self.db.summed_rows(sql, params)
        ]

    def markers(
        self,
        *,
        exchange: str,
        symbol: str,
        strategies: Sequence[str] | None,
        since: int | None,
        until: int | None,
    ) -> list[Marker]:
        """The fills of one market in [since, until), in time order."""
        where, params = _where(
            strategies,
            {"exchange": exchange, "symbol": symbol},
            "timestamp",
            since,
            until,
            high_included=False,
        )
        sql = (
            "SELECT timestamp, side, amount, price, strategy, profit_loss FROM trades "
            f"WHERE {where} ORDER BY timestamp, id"
        )
        return [
            Marker(
                timestamp=int(row[0]),
                side=row[1],
                amount=self._amount(row[2]),
                price=self._amount(row[3]),
                strategy=row[4],
                profit_loss=None if row[5] is None else self._amount(row[5]),
            )
            for row in self.db.connection.execute(sql, params)
        ]

    def candle_counts(self, exchange: str, symbol: str, since: int, until: int) -> dict[str, int]:
        """How many candles each stored timeframe of a market has in [since, until).

        One count per timeframe, each a range of the (exchange, symbol, timeframe,
        timestamp) index, so a market's other timeframes are never stepped over."""
        counts = {}
        for timeframe in TIMEFRAME_NAMES:
            (count,) = self.db.connection.execute(
                "SELECT count(*) FROM market_data WHERE exchange = ? AND symbol = ? "
                "AND timeframe = ? AND timestamp >= ? AND timestamp < ?",
                (exchange, symbol, timeframe, since, until),
            ).fetchone()
            if count:
                counts[timeframe] = int(count)
        return counts
