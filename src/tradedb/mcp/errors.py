"""How a tool reports a refusal: one clear line to the agent, and the server keeps going.

The SDK shows an agent the text of a ToolError and hides that of any other exception (a
crash stays on the server). tradedb's own errors are refusals of the agent's input (they
name the field, the value and the rule), and a write refused by a read-only database is
the agent's to know about too, so both become ToolErrors.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ToolError

from tradedb import ReadOnlyDatabaseError
from tradedb.api import driver_errors
from tradedb.errors import TradeDBError

DRIVER_ERRORS = driver_errors()

P = ParamSpec("P")
R = TypeVar("R")

READ_ONLY_HINT = (
    "the server opened the database read-only; start it with `tradedb mcp --allow-writes` "
    "to use the write tools"
)


def tool_errors(tool: Callable[P, R]) -> Callable[P, R]:
    """Run a tool; turn tradedb's errors and the database's refusals into ToolErrors."""

    @wraps(tool)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return tool(*args, **kwargs)
        except ReadOnlyDatabaseError as exc:
            raise ToolError(f"database: {exc}: {READ_ONLY_HINT}") from None
        except TradeDBError as exc:
            raise ToolError(str(exc)) from None
        except DRIVER_ERRORS as exc:
            # The database's own refusal of a write (SQLite's "readonly database",
            # PostgreSQL's "read-only transaction") wants the hint as much as tradedb's.
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise ToolError(f"database: {_first_line(exc)}: {READ_ONLY_HINT}") from None
            raise ToolError(f"database: {_first_line(exc)}") from None

    return run


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
