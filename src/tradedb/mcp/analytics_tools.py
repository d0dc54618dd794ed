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
    DaysSince,
    DaysUntil,
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
from tradedb.models.values import day_range, format_fixed
from tradedb.services.reports.table import row_json

Strategies = Annotated[
    list[str] | str | None,
    Field(
        description="Only these strategies: a list, one name, or names separated by commas "
        "(default: every one)."
    ),
]


def _names(given: list[str] | str | None) -> list[str]:
    """The strategies asked for, as `tradedb report --strategy` takes them."""
    values = [given] if isinstance(given, str) else given or []
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def register(server: MCPServer, db: TradeDB) -> None:
    def pnl_summary(
        *,
        strategy: Strategies = None,
        exchange: OptionalExchange = None,
        since: DaysSince = None,
        until: DaysUntil = None,
        limit: Limit = DEFAULT_ROWS,
    ) -> PnlSummary:
        """P&L per strategy and exchange over the UTC days from `since` until `until`
        (each day whose midnight falls between them; an open end takes every day): equity,
        return, total P&L in USD (from the daily performance rows), realized P&L and fees
        per currency, trades, wins, losses, win rate, Sharpe ratio and maximum drawdown, as
        `tradedb report` compares them. Rows with strategy null are portfolio-wide."""
        first, last = day_range(since, until)
        report = db.analytics.report(
            strategies=_names(strategy), exchange=exchange, first_date=first, last_date=last
        )
        filters, rows = report.filters, report.rows
        return PnlSummary(
            strategy=list(filters.strategies) if filters.strategies else None,
            exchange=filters.exchange,
            first_date=filters.first_date,
            last_date=filters.last_date,
            # Every round trip of every row would flood an agent's context; the counts,
            # averages and figures summarise them (`tradedb report --json` lists them).
            rows=[
                PnlRow.model_validate(
                    {k: v for k, v in row_json(row).items() if k != "round_trip_list"}
                )
                for row in rows[:limit]
            ],
            truncated=len(rows) > limit,
        )

    def performance(
        *,
        strategy: OptionalStrategy = None,
        exchange: OptionalExchange = None,
        since: DaysSince = None,
        until: DaysUntil = None,
        limit: Limit = DEFAULT_ROWS,
        after: After = None,
    ) -> Listing[PerformanceShape]:
        """Daily performance rows (performance_metrics), newest day first: equity, daily
        P&L and %, cumulative closed trades, wins, losses, win rate, Sharpe ratio and
        maximum drawdown. Rows with strategy null are portfolio-wide; the `tradedb://metrics`
        resource defines every figure."""
        first, last = day_range(since, until)
        page = db.analytics.performance(
            strategy=strategy,
            exchange=exchange,
            first_date=first,
            last_date=last,
            limit=limit,
            after=after,
        )
        return listing(PerformanceShape, page)

    def portfolio(
        *, exchange: OptionalExchange = None, at: Time = None, limit: Limit = DEFAULT_ROWS
    ) -> Portfolio:
        """Every exchange's latest portfolio snapshot (at or before `at`, if given), each
        row with its own time: per exchange and asset the amount held, its USD price and
        value, and the USD total."""
        view = db.analytics.portfolio(at=at, exchange=exchange)
        return Portfolio(
            timestamp=view.timestamp,
            total_usd=format_fixed(view.total_usd),
            rows=[shaped(SnapshotRowShape, row) for row in view.rows[:limit]],
            truncated=len(view.rows) > limit,
        )

    for tool in (pnl_summary, performance, portfolio):
        server.add_tool(tool_errors(tool), annotations=READ_ONLY)
