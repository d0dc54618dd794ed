"""`tradedb mcp`: the MCP server over stdio, for AI agents (docs/mcp.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from tradedb.api import admin
from tradedb.cli.common import DbOption, user_errors
from tradedb.errors import ValidationError


def mcp(
    db: DbOption = None,
    allow_writes: Annotated[
        bool,
        typer.Option(
            "--allow-writes",
            help="Add the write tools (record_analysis, set_config, place_paper_order) "
            "and open the database for writing.",
        ),
    ] = False,
) -> None:
    """Run the MCP server over stdin/stdout for an MCP client (Claude Desktop, an IDE, an
    agent). Read-only unless --allow-writes. stdout carries the protocol; messages go to
    stderr."""
    try:
        from tradedb.mcp import build_server
    except ImportError as exc:
        raise ValidationError(
            "mcp", exc.name, "the MCP server needs the mcp extra: pip install 'tradedb[mcp]'"
        ) from None
    server = build_server(admin.locate(db).target, allow_writes=allow_writes)
    try:
        server.run_stdio()
    finally:
        server.close()


def register(app: typer.Typer) -> None:
    """Add `tradedb mcp` to the app."""
    app.command("mcp")(user_errors(mcp))
