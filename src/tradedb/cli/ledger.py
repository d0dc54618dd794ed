"""Ledger commands: orders, trades, positions, balances, deposit, withdraw and audit."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, cast

import typer
from rich.table import Table
from rich.text import Text

from tradedb import CcxtShapes, Filters, Ledger, Page
from tradedb.cli.common import (
    DbOption,
    JsonOption,
    amount,
    err,
    moment,
    open_database,
    out,
    print_json,
    user_errors,
)
from tradedb.cli.options import (
    FORMATS,
    PLAIN_FORMATS,
    TIME_FORMS,
    FormatOption,
    NumbersOption,
    PlainFormatOption,
    UntilOption,
    output_format,
)
from tradedb.cli.tables import Cell, add_rows, exact
from tradedb.models import Order
from tradedb.models.base import Record
from tradedb.models.values import parse_time_bound
from tradedb.services.ccxt_format import Numbers
from tradedb.services.ledger import Transfer

ExchangeOption = Annotated[str | None, typer.Option(help="Only this exchange, e.g. kraken.")]
SymbolOption = Annotated[str | None, typer.Option(help="Only this market, e.g. BTC/USD.")]
StrategyOption = Annotated[str | None, typer.Option(help="Only this strategy.")]
LimitOption = Annotated[int, typer.Option(help="At most this many rows (newest first).")]
AfterOption = Annotated[
    str | None,
    typer.Option(
        metavar="TOKEN", help="Continue after a page: the next_after a --json listing gave."
    ),
]


Column = tuple[str, Callable[[Any], Cell]]


def _show(page: Page[Any], columns: Sequence[Column], title: str, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "items": [_json(item) for item in page.items],
                "next_after": page.next_after,
            }
        )
        return
    table = Table(title=title)
    for header, _ in columns:
        table.add_column(header, justify="right" if header in _NUMERIC else "left")
    add_rows(table, ([render(item) for _, render in columns] for item in page.items))
    out.print(table)
    if page.next_after is not None:
        err.print(f"more rows: add --after {page.next_after}", highlight=False)


def _json(record: Record) -> dict[str, Any]:
    return record.model_dump(mode="json")


_NUMERIC = {
    "amount",
    "price",
    "filled",
    "remaining",
    "locked",
    "value",
    "fee",
    "P&L",
    "entry",
    "mark",
    "unrealized",
    "realized",
    "available",
    "total",
}


@dataclass(frozen=True)
class _Listing:
    """One listing command: what it lists, how it fetches a page, what a table shows."""

    name: str
    summary: str
    statuses: str
    time_help: str
    fetch: Callable[[Ledger, Filters], Page[Any]]
    columns: Sequence[Column]
    # The page as ccxt's structures (--format ccxt), where ccxt has a structure for it.
    ccxt: Callable[[CcxtShapes, Page[Any], Numbers], list[dict[str, Any]]] | None = None


def _listing_command(spec: _Listing) -> Callable[..., None]:
    def command(
        db: DbOption = None,
        exchange: ExchangeOption = None,
        symbol: SymbolOption = None,
        strategy: StrategyOption = None,
        status: str | None = None,
        since: str | None = None,
        until: UntilOption = None,
        limit: LimitOption = 100,
        after: AfterOption = None,
        as_json: JsonOption = False,
        format: FormatOption = None,
        numbers: NumbersOption = "string",
    ) -> None:
        choices = FORMATS if spec.ccxt is not None else PLAIN_FORMATS
        shown_as = output_format(format, as_json=as_json, numbers=numbers, choices=choices)
        filters = Filters(exchange, symbol, strategy, status, since, until, limit, after)
        with open_database(db, readonly=True) as database:
            page = spec.fetch(database.ledger, filters)
            if shown_as == "ccxt" and spec.ccxt is not None:
                print_json(spec.ccxt(database.ccxt, page, cast(Numbers, numbers)))
                if page.next_after is not None:
                    err.print(f"more rows: add --after {page.next_after}", highlight=False)
                return
        _show(page, spec.columns, spec.name, shown_as == "json")

    # The options that differ per listing; typer reads them from the annotations.
    command.__annotations__["status"] = Annotated[
        str | None, typer.Option(help=f"Only this status: {spec.statuses}.")
    ]
    command.__annotations__["since"] = Annotated[
        str | None, typer.Option(metavar="TIME", help=spec.time_help)
    ]
    if spec.ccxt is None:
        # No ccxt structure: --format is table or json, and --numbers has no use.
        command.__annotations__["format"] = PlainFormatOption
        signature = inspect.signature(command, eval_str=True)
        kept = [p for p in signature.parameters.values() if p.name != "numbers"]
        command.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
    command.__doc__ = spec.summary
    return command


def _order_status(order: Order) -> str:
    """The status, and how the order reached the exchange where that is news: sent with
    its outcome unknown, rejected, or adopted from the exchange."""
    shown = {"unknown": "submission unknown", "rejected": "rejected", "adopted": "adopted"}
    how = shown.get(order.submission or "")
    return f"{order.status} ({how})" if how else order.status


LISTINGS = (
    _Listing(
        "orders",
        "List orders, newest first.",
        "pending, open, filled, canceled or expired",
        f"From this time on: {TIME_FORMS}.",
        Ledger.orders,
        [
            ("time", lambda o: moment(o.timestamp)),
            ("exchange", lambda o: o.exchange),
            ("order id", lambda o: o.order_id),
            ("symbol", lambda o: o.symbol),
            ("side", lambda o: o.side),
            ("type", lambda o: o.order_type),
            ("amount", lambda o: exact(o.amount, o.symbol)),
            ("price", lambda o: exact(o.price, o.symbol)),
            ("filled", lambda o: exact(o.filled_amount, o.symbol)),
            ("remaining", lambda o: exact(o.remaining_amount, o.symbol)),
            ("locked", lambda o: exact(o.locked_amount, o.locked_asset, o.locked_asset or "")),
            ("status", _order_status),
            ("strategy", lambda o: o.strategy or ""),
        ],
        lambda shapes, page, numbers: shapes.orders(page, numbers=numbers),
    ),
    _Listing(
        "trades",
        "List trades (fills), newest first.",
        "filled, partial or canceled",
        f"From this time on: {TIME_FORMS}.",
        Ledger.trades,
        [
            ("time", lambda t: moment(t.timestamp)),
            ("exchange", lambda t: t.exchange),
            ("symbol", lambda t: t.symbol),
            ("side", lambda t: t.side),
            ("amount", lambda t: exact(t.amount, t.symbol)),
            ("price", lambda t: exact(t.price, t.symbol)),
            ("value", lambda t: exact(t.total_value, t.symbol)),
            ("fee", lambda t: exact(t.fee, t.fee_currency, t.fee_currency or "")),
            ("P&L", lambda t: exact(t.profit_loss, t.symbol)),
            ("status", lambda t: t.status),
            ("order id", lambda t: t.order_id or ""),
            ("strategy", lambda t: t.strategy or ""),
        ],
        lambda shapes, page, numbers: shapes.trades(page, numbers=numbers),
    ),
    _Listing(
        "positions",
        "List positions, most recently opened first.",
        "open or closed",
        f"Opened from this time on: {TIME_FORMS}.",
        Ledger.positions,
        [
            ("opened", lambda p: moment(p.opened_at)),
            ("exchange", lambda p: p.exchange),
            ("symbol", lambda p: p.symbol),
            ("side", lambda p: p.side),
            ("amount", lambda p: exact(p.amount, p.symbol)),
            ("entry", lambda p: exact(p.entry_price, p.symbol)),
            ("mark", lambda p: exact(p.current_price, p.symbol)),
            ("unrealized", lambda p: exact(p.unrealized_pnl, p.symbol)),
            ("realized", lambda p: exact(p.realized_pnl, p.symbol)),
            ("status", lambda p: p.status),
            ("closed", lambda p: moment(p.closed_at)),
            ("strategy", lambda p: p.strategy or ""),
        ],
    ),
)


def balances(
    db: DbOption = None,
    exchange: ExchangeOption = None,
    asset: Annotated[str | None, typer.Option(help="Only this currency, e.g. BTC.")] = None,
    as_json: JsonOption = False,
    format: FormatOption = None,
    numbers: NumbersOption = "string",
) -> None:
    """Show wallet balances: available, locked by open orders, and total. --format ccxt
    gives one exchange's (--exchange) as ccxt's balance structure."""
    shown_as = output_format(format, as_json=as_json, numbers=numbers)
    with open_database(db, readonly=True) as database:
        wallets = database.ledger.wallets(exchange=exchange, asset=asset)
    if shown_as == "ccxt":
        print_json(database.ccxt.balance(wallets, numbers=cast(Numbers, numbers)))
        return
    if shown_as == "json":
        print_json([_json(wallet) for wallet in wallets])
        return
    table = Table(title="balances")
    table.add_column("exchange")
    table.add_column("asset")
    for header in ("available", "locked", "total"):
        table.add_column(header, justify="right")
    table.add_column("updated")
    add_rows(
        table,
        (
            [
                wallet.exchange,
                wallet.asset,
                exact(wallet.available_balance, wallet.asset),
                exact(wallet.locked_balance, wallet.asset),
                exact(wallet.total_balance, wallet.asset),
                moment(wallet.last_updated),
            ]
            for wallet in wallets
        ),
    )
    out.print(table)


def _transfer(kind: str) -> Callable[..., None]:
    def command(
        exchange: Annotated[str, typer.Option(help="The exchange, e.g. kraken.")],
        asset: Annotated[str, typer.Option(help="The currency, e.g. BTC.")],
        amount_: Annotated[
            str, typer.Option("--amount", metavar="AMOUNT", help="Exact amount, e.g. 1.5.")
        ],
        reference: Annotated[
            str | None,
            typer.Option(help="Your id for it (e.g. a tx hash); repeating it changes nothing."),
        ] = None,
        at: Annotated[
            str | None,
            typer.Option(metavar="TIME", help=f"When it happened (default: now): {TIME_FORMS}."),
        ] = None,
        db: DbOption = None,
        as_json: JsonOption = False,
    ) -> None:
        when = None if at is None else parse_time_bound(at, "at")
        # Checked before the database is opened: a refused transfer creates nothing.
        request = Transfer.parse(kind, exchange, asset, amount_, when, reference)
        with open_database(db) as database:
            result = database.ledger.transfer(request)
        wallet = result.wallet
        if as_json:
            print_json(
                {
                    "duplicate": result.duplicate,
                    "movement": _json(result.movement),
                    "wallet": _json(wallet),
                }
            )
            return
        done = "already recorded, nothing changed" if result.duplicate else "recorded"
        out.print(
            f"{kind} of {amount(abs(result.movement.available_change))} {wallet.asset} on "
            f"{wallet.exchange}: {done}. available {amount(wallet.available_balance)}, "
            f"locked {amount(wallet.locked_balance)}, total {amount(wallet.total_balance)}",
            highlight=False,
        )

    return command


def audit(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Check the ledger's invariants; exit 1 if any is broken."""
    with open_database(db, readonly=True) as database:
        problems = database.ledger.audit()
    if as_json:
        print_json({"ok": not problems, "problems": problems})
    elif problems:
        for problem in problems:
            out.print(Text.assemble(("✗", "red"), f" {problem}"), highlight=False)
    else:
        out.print(Text.assemble(("✓", "green"), " ledger invariants hold"), highlight=False)
    if problems:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ledger commands to the `tradedb` app."""
    for spec in LISTINGS:
        app.command(spec.name)(user_errors(_listing_command(spec)))
    app.command()(user_errors(balances))
    app.command("deposit", help="Record funds arriving on an exchange.")(
        user_errors(_transfer("deposit"))
    )
    app.command("withdraw", help="Record funds leaving an exchange.")(
        user_errors(_transfer("withdrawal"))
    )
    app.command("audit")(user_errors(audit))
