"""Analytics tools: P&L by strategy, exchange and period, the daily performance rows, and
the latest portfolio snapshot. They read what `tradedb metrics` and `tradedb snapshot`
wrote; computing them is a write, left to those commands."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from tradedb.api import TradeDB
from tradedb.mcp.arguments import (
    DEFAULT_ROWS,
    After,
    Date,
    Limit,
    OptionalExchange,
    OptionalStrategy,
    Time,
)
from tradedb.mcp.errors import tool_errors
from tradedb.mcp.shapes import (
    Listing,
    PerformanceShape,
    PnlRow,
    PnlSummary,
    Portfolio,
    SnapshotRowShape,
    listing,
    shaped,
)
from tradedb.mcp.tooling import READ_ONLY
from tradedb.models.values import format_decimal
from tradedb.services.reports.table import row_json

Strategies = Annotated[
    list[str] | None, Field(description="Only these strategies (default: every one).")
]


def register(server: MCPServer, db: TradeDB) -> None:
    def pnl_summary(
        *,
        strategies: Strategies = None,
        exchange: OptionalExchange = None,
        from_date: Date = None,
        to_date: Date = None,
        limit: Limit = DEFAULT_ROWS,
    ) -> PnlSummary:
        """P&L per strategy and exchange over a period (UTC dates, both ends included):
        equity, return, total P&L in USD (from the daily performance rows), realized P&L
        and fees per currency, trades, wins, losses, win rate, Sharpe ratio and maximum
        drawdown, as `tradedb report` compares them. Rows with strategy null are
        portfolio-wide."""
        report = db.analytics.report(
            strategies=strategies, exchange=exchange, first_date=from_date, last_date=to_date
        )
        filters, rows = report.filters, report.rows
        return PnlSummary(
            strategies=list(filters.strategies) if filters.strategies else None,
            exchange=filters.exchange,
            from_date=filters.first_date,
            to_date=filters.last_date,
            rows=[PnlRow.model_validate(row_json(row)) for row in rows[:limit]],
            truncated=len(rows) > limit,
        )

    def performance(
        *,
        strategy: OptionalStrategy = None,
        exchange: OptionalExchange = None,
        from_date: Date = None,
        to_date: Date = None,
        limit: Limit = DEFAULT_ROWS,
        after: After = None,
    ) -> Listing[PerformanceShape]:
        """Daily performance rows (performance_metrics), newest day first: equity, daily
        P&L and %, cumulative closed trades, wins, losses, win rate, Sharpe ratio and
        maximum drawdown. Rows with strategy null are portfolio-wide; the `tradedb://metrics`
        resource defines every figure."""
        page = db.analytics.performance(
            strategy=strategy,
            exchange=exchange,
            first_date=from_date,
            last_date=to_date,
            limit=limit,
            after=after,
        )
        return listing(PerformanceShape, page)

    def portfolio(
        *, exchange: OptionalExchange = None, at: Time = None, limit: Limit = DEFAULT_ROWS
    ) -> Portfolio:
        """The latest portfolio snapshot (at or before `at`, if given): per exchange and
        asset the amount held, its USD price and value, and the USD total."""
        view = db.analytics.portfolio(at=at, exchange=exchange)
        return Portfolio(
            timestamp=view.timestamp,
            total_usd=format_decimal(view.total_usd),
            rows=[shaped(SnapshotRowShape, row) for row in view.rows[:limit]],
            truncated=len(view.rows) > limit,
        )

    for tool in (pnl_summary, performance, portfolio):
        server.add_tool(tool_errors(tool), annotations=READ_ONLY)
