"""How a tool reports a refusal: one clear line to the agent, and the server keeps going.

The SDK shows an agent the text of a ToolError and hides that of any other exception (a
crash stays on the server). tradedb's own errors are refusals of the agent's input (they
name the field, the value and the rule), and a write refused by a read-only database is
the agent's to know about too, so both become ToolErrors. Arguments of the wrong type
never reach a tool: the SDK refuses them with pydantic's report, several lines long, which
`one_line` says as tradedb's errors do.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import pydantic
from mcp.server.mcpserver.exceptions import ToolError

from tradedb import ReadOnlyDatabaseError
from tradedb.api import driver_errors
from tradedb.errors import TradeDBError, respell_arguments

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
            raise ToolError(_as_tool_arguments(str(exc), tool)) from None
        except DRIVER_ERRORS as exc:
            # The database's own refusal of a write (SQLite's "readonly database",
            # PostgreSQL's "read-only transaction") wants the hint as much as tradedb's.
            if "readonly" in str(exc) or "read-only" in str(exc):
                raise ToolError(f"database: {_first_line(exc)}: {READ_ONLY_HINT}") from None
            raise ToolError(f"database: {_first_line(exc)}") from None

    return run


def _as_tool_arguments(message: str, tool: Callable[..., Any]) -> str:
    """A library message with each argument it names that the tool takes as the agent
    passes it (`"force": true`); the others stay as the library spells them."""
    arguments = inspect.signature(tool).parameters

    def spell(name: str, value: str) -> str | None:
        if name not in arguments:
            return None
        return f'"{name}": {_JSON_WORDS.get(value, value)}'

    return respell_arguments(message, spell)


_JSON_WORDS = {"True": "true", "False": "false", "None": "null"}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# An argument's value is the agent's own; a long one is cut in the message.
SHOWN_VALUE = 60
_SHOULD_BE = "Input should be "
# pydantic names the member of a union a value failed (`since.str`, `since.int`); those
# names are types, not fields of the argument.
_FIELD = re.compile(r"[a-z_][a-z0-9_]*")
_TYPE_NAMES = {"str", "int", "float", "bool", "bytes", "none"}


def one_line(exc: pydantic.ValidationError) -> str:
    """pydantic's refusal of a call's arguments in one line: each argument that failed,
    its value and the rule (`limit=1000000000: Input should be less than or equal to
    1000`), several joined by '; '."""
    failures: dict[str, tuple[Any, list[str], bool]] = {}
    for error in exc.errors():
        field = _field(error["loc"])
        missing = error["type"] == "missing"
        _, messages, _ = failures.setdefault(field, (error.get("input"), [], missing))
        if error["msg"] not in messages:
            messages.append(error["msg"])
    parts = []
    for field, (value, messages, missing) in failures.items():
        if missing:
            parts.append(f"{field}: is required")
        else:
            parts.append(f"{field}={_shown(value)}: {_rule(messages)}")
    return "; ".join(parts)


def _field(location: Sequence[int | str]) -> str:
    names = [
        f"[{part}]" if isinstance(part, int) else f".{part}"
        for part in location
        if isinstance(part, int) or (_FIELD.fullmatch(part) and part not in _TYPE_NAMES)
    ]
    return "".join(names).lstrip(".") or "arguments"


def _shown(value: object) -> str:
    text = repr(value)
    if len(text) <= SHOWN_VALUE:
        return text
    return f"{text[:SHOWN_VALUE]}... ({len(text):,} characters)"


def _rule(messages: list[str]) -> str:
    """The rules a value broke; a value that fits no member of a union broke one each
    ('Input should be a valid string or a valid integer')."""
    if len(messages) > 1 and all(m.startswith(_SHOULD_BE) for m in messages):
        return _SHOULD_BE + " or ".join(m.removeprefix(_SHOULD_BE) for m in messages)
    return "; or ".join(messages)
