"""Ledger tools: orders, trades, positions and balances, as `tradedb orders` (etc.) list them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server import MCPServer

from tradedb import Filters, Ledger, Page
from tradedb.api import TradeDB
from tradedb.mcp.arguments import (
    DEFAULT_ROWS,
    After,
    Exchange,
    Limit,
    OptionalExchange,
    OptionalStrategy,
    OptionalSymbol,
    Time,
)
from tradedb.mcp.errors import tool_errors
from tradedb.mcp.shapes import (
    Listing,
    OrderShape,
    PositionShape,
    ShapeT,
    SyncCursorShape,
    SyncStatus,
    TradeShape,
    WalletShape,
    listing,
    shaped,
)
from tradedb.mcp.tooling import READ_ONLY
from tradedb.models.values import check_asset, check_exchange


def ledger_list(
    ledger: Ledger,
    name: str,
    shape: type[ShapeT],
    read: Callable[[Ledger, Filters], Page[Any]],
    doc: str,
) -> Callable[..., Listing[ShapeT]]:
    """A tool that lists one ledger table with the filters `tradedb orders` (etc.) take."""

    def tool(
        *,
        exchange: OptionalExchange = None,
        symbol: OptionalSymbol = None,
        strategy: OptionalStrategy = None,
        status: str | None = None,
        since: Time = None,
        until: Time = None,
        limit: Limit = DEFAULT_ROWS,
        after: After = None,
    ) -> Listing[ShapeT]:
        filters = Filters(exchange, symbol, strategy, status, since, until, limit, after)
        return listing(shape, read(ledger, filters))

    # The SDK names a tool, describes it and derives its output schema from these.
    tool.__name__ = tool.__qualname__ = name
    tool.__doc__ = doc
    tool.__annotations__["return"] = Listing[shape]  # type: ignore[valid-type]
    return tool


def register(server: MCPServer, db: TradeDB) -> None:
    list_orders = ledger_list(
        db.ledger,
        "list_orders",
        OrderShape,
        Ledger.orders,
        """Orders, newest first. status: pending, open, filled, canceled or expired.
        since/until bound the order's time (until excluded).""",
    )
    list_trades = ledger_list(
        db.ledger,
        "list_trades",
        TradeShape,
        Ledger.trades,
        """Trades (fills), newest first, with fees and the P&L each closing fill realised.
        status: filled, partial or canceled.""",
    )
    list_positions = ledger_list(
        db.ledger,
        "list_positions",
        PositionShape,
        Ledger.positions,
        """Positions, most recently opened first. status: open or closed. since/until bound
        the opening time.""",
    )

    def balances(
        *,
        exchange: OptionalExchange = None,
        asset: str | None = None,
        limit: Limit = DEFAULT_ROWS,
    ) -> Listing[WalletShape]:
        """Wallet balances (available, locked by open orders, total), by exchange then
        asset."""
        if exchange is not None:
            check_exchange(exchange)
        if asset is not None:
            check_asset(asset)
        wallets = db.ledger.wallets(exchange=exchange, asset=asset)
        return Listing[WalletShape](
            items=[shaped(WalletShape, wallet) for wallet in wallets[:limit]],
            truncated=len(wallets) > limit,
        )

    def sync_status(*, exchange: Exchange) -> SyncStatus:
        """A live exchange account's sync (`tradedb sync`): the last sync of each market
        and stream, the newest sync's report with its balance reconciliation, the orders
        tradedb sent whose outcome is not known yet, and the orders adopted from the
        exchange (placed outside tradedb). Nothing here places or cancels an order."""
        check_exchange(exchange)
        return SyncStatus(
            cursors=[shaped(SyncCursorShape, cursor) for cursor in db.accounts.cursors(exchange)],
            last_report=db.accounts.last_report(exchange),
            unknown_submissions=[
                shaped(OrderShape, order) for order in db.accounts.unknown_submissions(exchange)
            ],
            adopted_orders=[
                shaped(OrderShape, order) for order in db.accounts.adopted_orders(exchange)
            ],
        )

    for tool in (list_orders, list_trades, list_positions, balances, sync_status):
        server.add_tool(tool_errors(tool), annotations=READ_ONLY)
