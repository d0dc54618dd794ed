"""`tradedb sync`: bring the ledger to what an exchange account holds (db.accounts.sync)."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from tradedb.cli.common import (
    DbOption,
    JsonOption,
    err,
    open_database,
    out,
    print_json,
    user_errors,
)
from tradedb.cli.options import SEVERAL, SinceOption, listed
from tradedb.cli.tables import add_rows, exact
from tradedb.errors import ExchangeUnavailable
from tradedb.models.values import parse_every
from tradedb.services.live.account import SyncReport

DIFFERENT = 1


def sync(
    exchange: Annotated[str, typer.Option(help="The exchange, e.g. kraken.")],
    symbols: Annotated[
        list[str], typer.Option("--symbol", help=f"The markets to sync, e.g. BTC/USD ({SEVERAL}).")
    ],
    since: SinceOption = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply", help="Journal the balance differences as sync movements (else report)."
        ),
    ] = False,
    strategy: Annotated[
        str | None,
        typer.Option(help="The strategy of orders placed outside tradedb.", show_default=False),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="Sync again at this interval until Ctrl-C: 30s, 5m."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record the account's new deposits, withdrawals, orders and fills (orders placed
    outside tradedb are adopted), then compare its balances with the ledger's; exit 1 if
    they differ and --apply was not given. Credentials come from TRADEDB_<EXCHANGE>_API_KEY
    and TRADEDB_<EXCHANGE>_SECRET (and _PASSWORD or _UID where the exchange needs them)."""
    interval_s = None if every is None else parse_every(every) / 1000
    markets = listed(symbols)
    with open_database(db) as database:
        while True:
            try:
                report = database.accounts.sync(
                    exchange, symbols=markets, since=since, apply=apply, default_strategy=strategy
                )
            except ExchangeUnavailable as exc:
                if interval_s is None:
                    raise
                # A repeated sync outlives an outage: what was recorded stays, and the
                # next run goes on from the cursors.
                err.print(f"error: {exc}; trying again in {every}", highlight=False, soft_wrap=True)
            else:
                _show(report, as_json)
                if interval_s is None:
                    break
            try:
                time.sleep(interval_s)
            except KeyboardInterrupt:
                return
    if not report.in_sync:
        raise typer.Exit(DIFFERENT)


def _show(report: SyncReport, as_json: bool) -> None:
    if as_json:
        print_json(report.as_json())
        return
    streams = Table("stream", "new", "already recorded", title=f"sync of {report.exchange}")
    for symbol, count in report.trades.items():
        streams.add_row(f"fills {symbol}", str(count.new), str(count.duplicates))
    streams.add_row("deposits", str(report.deposits.new), str(report.deposits.duplicates))
    streams.add_row("withdrawals", str(report.withdrawals.new), str(report.withdrawals.duplicates))
    out.print(streams)
    if report.adopted_orders:
        out.print(
            f"adopted orders: {', '.join(report.adopted_orders)}", highlight=False, markup=False
        )
    if report.closed_orders:
        out.print(
            f"closed by the exchange: {', '.join(report.closed_orders)}",
            highlight=False,
            markup=False,
        )
    for settlement in report.submissions:
        out.print(
            f"order sent with client order id {settlement.client_order_id}: "
            f"{settlement.outcome}"
            + (f" as {settlement.order_id}" if settlement.outcome == "acknowledged" else ""),
            highlight=False,
        )
    for holding in report.usd_values.unvalued if report.usd_values else []:
        out.print(f"no USD value for {holding.asset}: {holding.reason}", highlight=False)
    reconciliation = report.reconciliation
    if reconciliation is None or reconciliation.in_sync:
        out.print("balances: the ledger matches the exchange", highlight=False)
        return
    balances = Table(
        "asset", "ledger available", "ledger locked", "exchange free", "exchange used", "difference"
    )
    add_rows(
        balances,
        (
            [
                d.asset,
                exact(d.ledger.available, d.asset),
                exact(d.ledger.locked, d.asset),
                exact(d.exchange.available, d.asset),
                exact(d.exchange.locked, d.asset),
                exact(d.total, d.asset),
            ]
            for d in reconciliation.differences
        ),
    )
    out.print(balances)
    verdict = "journalled as sync movements" if report.applied else "not applied (use --apply)"
    out.print(f"balances differ: {verdict}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `tradedb sync` to the app."""
    app.command("sync")(user_errors(sync))
