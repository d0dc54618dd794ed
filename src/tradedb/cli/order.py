"""`tradedb order place|cancel --live`: real orders on an exchange account
(db.accounts.place and db.accounts.cancel). Without --live nothing is stored or sent."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer

from tradedb.cli.common import (
    DbOption,
    JsonOption,
    open_database,
    out,
    print_json,
    user_errors,
)
from tradedb.cli.helpstyle import App
from tradedb.errors import TradeDBError
from tradedb.models import Order
from tradedb.models.values import format_plain
from tradedb.services.live.orders import order_state

# The order went out and its outcome is not known yet: the next sync settles it.
UNKNOWN = 1

ExchangeArgument = Annotated[str, typer.Option(help="The exchange, e.g. kraken.")]
LiveOption = Annotated[
    bool,
    typer.Option(
        "--live", help="Send it to the exchange: a real order with real funds (required)."
    ),
]

order_app = App(
    help="Place and cancel real orders on an exchange account (--live).",
    no_args_is_help=True,
)


@order_app.command()
@user_errors
def place(
    exchange: ExchangeArgument,
    symbol: Annotated[str, typer.Option(help="The market, e.g. BTC/USD.")],
    side: Annotated[str, typer.Option(help="buy or sell.")],
    amount_: Annotated[
        str, typer.Option("--amount", metavar="AMOUNT", help="Exact amount of the base, e.g. 0.5.")
    ],
    order_type: Annotated[str, typer.Option("--type", help="market or limit.")] = "limit",
    price: Annotated[
        str | None,
        typer.Option(
            metavar="PRICE", help="The limit price (limit orders only).", show_default=False
        ),
    ] = None,
    strategy: Annotated[
        str | None, typer.Option(help="The strategy the order belongs to.", show_default=False)
    ] = None,
    client_order_id: Annotated[
        str | None,
        typer.Option(
            help="Your id for this decision; placing it again sends nothing (default: a new UUID).",
            show_default=False,
        ),
    ] = None,
    live: LiveOption = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store the order under its client order id, send it once, and record the exchange's
    answer; exit 1 if the answer was lost (`tradedb sync` settles it). Credentials come
    from TRADEDB_<EXCHANGE>_API_KEY and TRADEDB_<EXCHANGE>_SECRET."""
    _require_live(live, f"place a real order on {exchange}")
    with open_database(db) as database:
        placement = database.accounts.place(
            exchange,
            symbol=symbol,
            side=side,
            order_type=order_type,
            amount=amount_,
            price=price,
            strategy=strategy,
            client_order_id=client_order_id,
        )
    if as_json:
        print_json(placement.as_json())
    else:
        order = placement.order
        what = {
            "acknowledged": "placed",
            "existing": "already placed with this client order id, nothing sent",
            "unknown": "sent, but its outcome is not known yet: `tradedb sync` settles it",
        }[placement.outcome]
        detail = f" ({placement.detail})" if placement.detail else ""
        out.print(f"order {order.order_id}: {what}{detail}", highlight=False)
        _describe(order)
    if placement.order.submission == "unknown":
        raise typer.Exit(UNKNOWN)


@order_app.command()
@user_errors
def cancel(
    order_id: Annotated[
        str, typer.Argument(help="The exchange's id or the client order id.", show_default=False)
    ],
    exchange: ExchangeArgument,
    live: LiveOption = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel a live order at the exchange, then record its fills up to the cancel and the
    cancel itself."""
    _require_live(live, f"cancel a real order on {exchange}")
    with open_database(db) as database:
        order = database.accounts.cancel(exchange, order_id)
    if as_json:
        print_json(order_state(order))
        return
    out.print(f"order {order.order_id}: {order.status}", highlight=False)
    _describe(order)


def _require_live(live: bool, action: str) -> None:
    if not live:
        raise TradeDBError(f"this would {action}; add --live to do it (nothing was sent)")


def _describe(order: Order) -> None:
    price = "market" if order.price is None else format_plain(order.price)
    out.print(
        f"{order.side} {format_plain(order.amount)} {order.symbol} at {price}, filled "
        f"{format_plain(order.filled_amount or Decimal(0))}, status {order.status}, "
        f"client order id {order.client_order_id}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add `tradedb order place|cancel` to the app."""
    app.add_typer(order_app, name="order")
