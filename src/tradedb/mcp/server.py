"""The server: tradedb's tools and resources on the official MCP SDK (`mcp.server.MCPServer`).

Built on the public object, `tradedb.open(...)`: each tool calls one of its parts.
Read-only unless built with `allow_writes`: the database is then opened read-only by the
database itself (a read-only SQLite URI with `PRAGMA query_only`; on PostgreSQL sessions
with default_transaction_read_only, so the server refuses every write), so no tool, and
no bug in one, can change the database, and the write tools are not even registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, InputRequiredResult

import tradedb
from tradedb import __version__
from tradedb.api import TradeDB
from tradedb.api.admin import Locator
from tradedb.errors import DatabaseLocationError
from tradedb.mcp import (
    analytics_tools,
    ledger_tools,
    logs_tools,
    market_tools,
    resources,
    write_tools,
)
from tradedb.mcp.errors import one_line
from tradedb.services.location import parse_database_url

INSTRUCTIONS = """\
tradedb is a crypto trading bot's database: orders, trades, positions, balances, candles,
tickers, daily performance, portfolio snapshots, settings and logs.
- Amounts are exact decimals given as fixed-point strings ('0.00000001'); keep them as
  text or decimals, never round them through floats. get_candles also gives mcp-trader's
  float CandleData fields, for charts and indicators.
- Times are epoch milliseconds UTC unless a field says otherwise; time arguments take
  YYYY-MM-DD (UTC), ISO 8601 with an offset, or epoch milliseconds.
- Lists return at most `limit` rows (default 100, at most 1000) and say `truncated` when
  more exist; narrow the filters or pass `next_after` back as `after` for the next page.
- Read the resources tradedb://schema (tables, columns, units) and tradedb://metrics
  (what each performance figure means) before interpreting numbers.
"""
READ_ONLY_NOTE = "This server is read-only: it cannot change the database."
WRITES_NOTE = (
    "Writes are enabled: record_analysis, set_config and place_paper_order change the "
    "database, each through tradedb's own validation."
)


class _Server(MCPServer[Any]):
    """The SDK's server, with its refusal of ill-typed arguments (a string where a
    number goes, a limit of 10^9) in one line, as tradedb's own refusals are."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(exc, UnexpectedToolError) or not isinstance(
                cause, pydantic.ValidationError
            ):
                raise
            # The cause stays pydantic's: the SDK then logs the argument names only.
            raise ToolError(f"Error executing tool {name}: {one_line(cause)}") from cause


@dataclass
class TradedbServer:
    """The MCP server and the database its tools read (and, with writes allowed, write)."""

    mcp: MCPServer
    db: TradeDB
    allow_writes: bool

    def run_stdio(self) -> None:
        """Serve one client over stdin/stdout until it disconnects."""
        self.mcp.run("stdio")

    def close(self) -> None:
        self.db.close()


def build_server(database: Locator, *, allow_writes: bool = False) -> TradedbServer:
    """A server on an existing tradedb database (a missing one is refused, never created:
    a mistyped path in a client's config must not start an empty database)."""
    target = parse_database_url(database)
    if isinstance(target, Path) and not target.exists():
        raise DatabaseLocationError(
            f"database {target} does not exist; create it with `tradedb init --db {target}`"
        )
    # Read-only first, so that a database without tradedb's schema is refused, not made.
    tradedb.open(target, readonly=True).close()
    db = tradedb.open(target, readonly=not allow_writes)
    try:
        server = _Server(
            "tradedb",
            version=__version__,
            instructions=INSTRUCTIONS + (WRITES_NOTE if allow_writes else READ_ONLY_NOTE),
            # Tool refusals are answers to the agent, not server events worth a log line.
            log_level="WARNING",
        )
        for tools in (market_tools, ledger_tools, analytics_tools, logs_tools):
            tools.register(server, db)
        if allow_writes:
            write_tools.register(server, db)
        resources.register(server)
    except BaseException:
        db.close()
        raise
    return TradedbServer(server, db, allow_writes)
