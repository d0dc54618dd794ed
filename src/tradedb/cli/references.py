"""`tradedb reference-price set|list|remove`: USD prices configured for a period."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from tradedb.cli.common import (
    DbOption,
    JsonOption,
    moment,
    open_database,
    out,
    print_json,
    user_errors,
)
from tradedb.cli.helpstyle import App
from tradedb.cli.options import SinceOption, UntilOption
from tradedb.cli.tables import add_rows, exact
from tradedb.models import ReferencePrice
from tradedb.models.values import format_plain
from tradedb.services.analytics.references import describe_period

reference_app = App(
    help="USD prices of assets that market data cannot value, each for a stated period "
    "(it values nothing outside it).",
    no_args_is_help=True,
)

AssetArgument = Annotated[str, typer.Argument(help="The asset, e.g. BTC.")]


@reference_app.command("set")
@user_errors
def set_(
    asset: AssetArgument,
    price: Annotated[str, typer.Argument(help="USD per unit, e.g. 12000.")],
    source: Annotated[
        str,
        typer.Option(help="Where the figure comes from (shown with every valuation using it)."),
    ],
    since: SinceOption = None,
    until: UntilOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Store a USD price of ASSET holding from --since until before --until (an end left
    out is open). A period overlapping another of the same asset is refused."""
    with open_database(db) as database:
        row = database.analytics.set_reference_price(
            asset, price, source=source, valid_from=since, valid_until=until
        )
    if as_json:
        print_json(_json(row))
        return
    out.print(
        f"#{row.id} {row.asset} = {format_plain(row.price_usd)} USD {describe_period(row)}",
        highlight=False,
        markup=False,
    )


@reference_app.command("list")
@user_errors
def list_(
    asset: Annotated[str | None, typer.Option(help="Only this asset's prices.")] = None,
    at: Annotated[
        str | None, typer.Option(metavar="TIME", help="Only the prices holding at this time.")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the stored reference prices by asset and period."""
    with open_database(db, readonly=True) as database:
        rows = database.analytics.reference_prices(asset, at=at)
    if as_json:
        print_json([_json(row) for row in rows])
        return
    table = Table("id", "asset", "USD", "from", "until (exclusive)", "source")
    add_rows(
        table,
        (
            [
                str(row.id),
                row.asset,
                # A reference price is exact, like any price: a coin can be worth less
                # than a cent.
                exact(row.price_usd, row.asset),
                moment(row.valid_from) if row.valid_from is not None else "open",
                moment(row.valid_until) if row.valid_until is not None else "open",
                row.source,
            ]
            for row in rows
        ),
    )
    out.print(table)


@reference_app.command("remove")
@user_errors
def remove(
    price_id: Annotated[int, typer.Argument(help="The id `list` shows.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete one stored reference price."""
    with open_database(db) as database:
        row = database.analytics.remove_reference_price(price_id)
    if as_json:
        print_json({**_json(row), "deleted": True})
        return
    out.print(
        f"#{row.id} {row.asset} = {format_plain(row.price_usd)} USD {describe_period(row)} deleted",
        highlight=False,
        markup=False,
    )


def _json(row: ReferencePrice) -> dict[str, Any]:
    return row.model_dump(mode="json")


def register(app: typer.Typer) -> None:
    """Add `tradedb reference-price` to the app."""
    app.add_typer(reference_app, name="reference-price")
