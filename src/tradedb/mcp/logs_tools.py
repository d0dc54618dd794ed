"""The bot_logs search tool."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from tradedb.api import TradeDB
from tradedb.mcp.arguments import (
    DEFAULT_ROWS,
    After,
    Limit,
    OptionalExchange,
    OptionalStrategy,
    OptionalSymbol,
    Time,
)
from tradedb.mcp.errors import tool_errors
from tradedb.mcp.shapes import LogShape, LogsResult
from tradedb.mcp.tooling import READ_ONLY
from tradedb.services.ops.log_search import MAX_TEXT_LENGTH

Level = Annotated[
    str | None,
    Field(description="This level and above: DEBUG, INFO, WARNING, ERROR or CRITICAL."),
]
Since = Annotated[
    str | int | None,
    Field(
        description="From this time on: a span back from now ('30m', '2h', '7d', '1w'), "
        "YYYY-MM-DD (UTC), ISO 8601 with an offset, or epoch milliseconds."
    ),
]
Text = Annotated[
    str | None,
    Field(
        max_length=MAX_TEXT_LENGTH,
        description="Only records whose message contains this (ASCII case ignored).",
    ),
]


def register(server: MCPServer, db: TradeDB) -> None:
    def search_logs(
        *,
        level: Level = None,
        strategy: OptionalStrategy = None,
        exchange: OptionalExchange = None,
        symbol: OptionalSymbol = None,
        text: Text = None,
        since: Since = None,
        until: Time = None,
        limit: Limit = DEFAULT_ROWS,
        after: After = None,
    ) -> LogsResult:
        """Search the bot's log records (bot_logs), newest first, with their JSON
        metadata."""
        page = db.logs.search(
            level=level,
            strategy=strategy,
            exchange=exchange,
            symbol=symbol,
            since=since,
            until=until,
            text=text,
            limit=limit,
            after=after,
        )
        return LogsResult(
            items=[LogShape.of(row) for row in page.records],
            truncated=page.truncated,
            next_after=page.next_after,
        )

    server.add_tool(tool_errors(search_logs), annotations=READ_ONLY)
