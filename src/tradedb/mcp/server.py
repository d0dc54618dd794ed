"""The server: tradedb's tools and resources on the official MCP SDK (`mcp.server.MCPServer`).

Read-only unless built with `allow_writes`: the store is then opened through a read-only
SQLite URI with `PRAGMA query_only` (tradedb.store.database), so no tool, and no bug in
one, can change the database, and the write tools are not even registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mcp.server import MCPServer

from tradedb import __version__
from tradedb.errors import DatabaseLocationError
from tradedb.mcp import (
    analytics_tools,
    ledger_tools,
    logs_tools,
    market_tools,
    resources,
    write_tools,
)
from tradedb.store import Store

INSTRUCTIONS = """\
tradedb is a crypto trading bot's database: orders, trades, positions, balances, candles,
tickers, daily performance, portfolio snapshots, settings and logs.
- Amounts are exact decimals given as fixed-point strings ('0.00000001'); keep them as
  text or decimals, never round them through floats. get_candles also gives mcp-trader's
  float CandleData fields, for charts and indicators.
- Times are epoch milliseconds UTC unless a field says otherwise; time arguments take
  YYYY-MM-DD (UTC), ISO 8601 with an offset, or epoch milliseconds.
- Lists return at most `limit` rows (default 100, at most 1000) and say `truncated` when
  more exist; narrow the filters or continue with `next_after` / `next_before`.
- Read the resources tradedb://schema (tables, columns, units) and tradedb://metrics
  (what each performance figure means) before interpreting numbers.
"""
READ_ONLY_NOTE = "This server is read-only: it cannot change the database."
WRITES_NOTE = (
    "Writes are enabled: record_analysis, set_config and place_paper_order change the "
    "database, each through tradedb's own validation."
)


@dataclass
class TradedbServer:
    """The MCP server and the store its tools read (and, with writes allowed, write)."""

    mcp: MCPServer
    store: Store
    allow_writes: bool

    def run_stdio(self) -> None:
        """Serve one client over stdin/stdout until it disconnects."""
        self.mcp.run("stdio")

    def close(self) -> None:
        self.store.close()


def build_server(database: Path, *, allow_writes: bool = False) -> TradedbServer:
    """A server on an existing tradedb database (a missing one is refused, never created:
    a mistyped path in a client's config must not start an empty database)."""
    if not database.exists():
        raise DatabaseLocationError(
            f"database {database} does not exist; create it with `tradedb init --db {database}`"
        )
    store = Store.open(database, readonly=not allow_writes)
    try:
        server = MCPServer(
            "tradedb",
            version=__version__,
            instructions=INSTRUCTIONS + (WRITES_NOTE if allow_writes else READ_ONLY_NOTE),
            # Tool refusals are answers to the agent, not server events worth a log line.
            log_level="WARNING",
        )
        for tools in (market_tools, ledger_tools, analytics_tools, logs_tools):
            tools.register(server, store)
        if allow_writes:
            write_tools.register(server, store)
        resources.register(server)
    except BaseException:
        store.close()
        raise
    return TradedbServer(server, store, allow_writes)
