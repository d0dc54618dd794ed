"""tradedb's MCP server: the database's data for AI agents, read-only unless told otherwise.

A front end like the command line: tools take typed, validated arguments and call the
parts of the public object (`tradedb.open(...)`); nothing here writes SQL or holds a
business rule. `tradedb mcp` runs it over
stdio (docs/mcp.md).
"""

from tradedb.mcp.server import TradedbServer, build_server

__all__ = ["TradedbServer", "build_server"]
