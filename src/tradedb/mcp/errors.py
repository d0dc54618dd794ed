"""How a tool reports a refusal: one clear line to the agent, and the server keeps going.

The SDK shows an agent the text of a ToolError and hides that of any other exception (a
crash stays on the server). tradedb's own errors are refusals of the agent's input (they
name the field, the value and the rule), and a write refused by a read-only database is
the agent's to know about too, so both become ToolErrors.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ToolError

from tradedb.errors import TradeDBError

P = ParamSpec("P")
R = TypeVar("R")

READ_ONLY_HINT = (
    "the server opened the database read-only; start it with `tradedb mcp --allow-writes` "
    "to use the write tools"
)


def tool_errors(tool: Callable[P, R]) -> Callable[P, R]:
    """Run a tool; turn tradedb's errors and SQLite's refusals into ToolErrors."""

    @wraps(tool)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return tool(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            # First: store.database's ReadOnlyDatabaseError is a TradeDBError too, and
            # its refusal wants the hint as much as SQLite's own.
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise ToolError(f"database: {exc}: {READ_ONLY_HINT}") from None
            if isinstance(exc, TradeDBError):
                raise ToolError(str(exc)) from None
            raise ToolError(f"database: {exc}") from None
        except TradeDBError as exc:
            raise ToolError(str(exc)) from None

    return run
