"""`tradedb browse`: the database in Datasette, read-only (docs/browse.md)."""

from __future__ import annotations

import socket
import sys
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from tradedb.api import admin
from tradedb.cli.common import DbOption, open_database, out, user_errors
from tradedb.errors import TradeDBError

DEFAULT_HOST = "127.0.0.1"
# Datasette's own default port.
DEFAULT_PORT = 8001


def browse(
    db: DbOption = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            metavar="ADDRESS",
            help="The address to listen on. The default keeps it to this machine; "
            "0.0.0.0 opens it to the network, where anyone who connects reads every table.",
        ),
    ] = DEFAULT_HOST,
    port: Annotated[
        int,
        typer.Option(
            "--port",
            metavar="PORT",
            min=0,
            max=65535,
            help="The port to listen on (0: any free one).",
        ),
    ] = DEFAULT_PORT,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the page in the web browser.")
    ] = False,
) -> None:
    """Browse the database in Datasette, read-only, with every column described and
    canned queries (SQLite databases only).

    The <table>_readable views show amounts as numbers (they sort and filter as numbers)
    with their exact text beside them, and times in ISO 8601 UTC. Canned queries: P&L by
    strategy, open positions, fees by currency, candle coverage. Ctrl+C stops it.
    """
    try:
        import uvicorn

        from tradedb.services import browse as browsing
    except ImportError:
        raise TradeDBError(
            "tradedb browse needs Datasette: pip install 'tradedb[browse]'"
        ) from None
    path = _sqlite_file(db)
    app = browsing.datasette(path)
    listener = _listen(host, port)
    address = f"[{host}]" if ":" in host else host
    url = f"http://{address}:{listener.getsockname()[1]}/{browsing.database_name(path)}"
    out.print(f"Browsing {path} read-only at {url}", highlight=False, soft_wrap=True)
    out.print("Ctrl+C stops it.", highlight=False)
    sys.stdout.flush()
    if open_browser:
        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app.app(), log_level="warning", lifespan="on"))
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:
        # uvicorn has stopped and passes Ctrl+C on: the way to end this command.
        out.print("Stopped.", highlight=False)


def _sqlite_file(db: str | None) -> Path:
    """The database file, checked as `tradedb.open` checks it (it exists, is tradedb's,
    at the newest schema) without writing to it."""
    location = admin.locate(db)
    if not isinstance(location.target, Path):
        raise TradeDBError(
            f"{location} is a PostgreSQL database; Datasette serves SQLite files "
            "(`tradedb migrate-db` copies one into a SQLite file)"
        )
    with open_database(str(location.target), readonly=True):
        pass
    return location.target.absolute()


def _listen(host: str, port: int) -> socket.socket:
    try:
        return socket.create_server((host, port))
    except OSError as exc:
        raise TradeDBError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None


def register(app: typer.Typer) -> None:
    """Add `tradedb browse` to the app."""
    app.command("browse")(user_errors(browse))
