"""Ledger tools: orders, trades, positions and balances, as `tradedb orders` (etc.) list them."""

from __future__ import annotations

from mcp.server import MCPServer

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
from tradedb.mcp.shapes import (
    Listing,
    OrderShape,
    PositionShape,
    TradeShape,
    WalletShape,
    listing,
    shaped,
)
from tradedb.mcp.tooling import READ_ONLY
from tradedb.models.values import check_asset, check_exchange
from tradedb.services.ledger import listing as ledger
from tradedb.store import Store


def register(server: MCPServer, store: Store) -> None:
    def list_orders(
        *,
        exchange: OptionalExchange = None,
        symbol: OptionalSymbol = None,
        strategy: OptionalStrategy = None,
        status: str | None = None,
        since: Time = None,
        until: Time = None,
        limit: Limit = DEFAULT_ROWS,
        after: After = None,
    ) -> Listing[OrderShape]:
        """Orders, newest first. status: pending, open, filled, canceled or expired.
        since/until bound the order's time (until excluded)."""
        filters = ledger.Filters(exchange, symbol, strategy, status, since, until, limit, after)
        return listing(OrderShape, ledger.orders(store, filters))

    def list_trades(
        *,
        exchange: OptionalExchange = None,
        symbol: OptionalSymbol = None,
        strategy: OptionalStrategy = None,
        status: str | None = None,
        since: Time = None,
        until: Time = None,
        limit: Limit = DEFAULT_ROWS,
        after: After = None,
    ) -> Listing[TradeShape]:
        """Trades (fills), newest first, with fees and the P&L each closing fill realised.
        status: filled, partial or canceled."""
        filters = ledger.Filters(exchange, symbol, strategy, status, since, until, limit, after)
        return listing(TradeShape, ledger.trades(store, filters))

    def list_positions(
        *,
        exchange: OptionalExchange = None,
        symbol: OptionalSymbol = None,
        strategy: OptionalStrategy = None,
        status: str | None = None,
        since: Time = None,
        until: Time = None,
        limit: Limit = DEFAULT_ROWS,
        after: After = None,
    ) -> Listing[PositionShape]:
        """Positions, most recently opened first. status: open or closed. since/until bound
        the opening time."""
        filters = ledger.Filters(exchange, symbol, strategy, status, since, until, limit, after)
        return listing(PositionShape, ledger.positions(store, filters))

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
        wallets = ledger.balances(store, exchange=exchange, asset=asset)
        return Listing[WalletShape](
            items=[shaped(WalletShape, wallet) for wallet in wallets[:limit]],
            truncated=len(wallets) > limit,
        )

    for tool in (list_orders, list_trades, list_positions, balances):
        server.add_tool(tool_errors(tool), annotations=READ_ONLY)
