"""`tradedb paper`: strategies trading stored candles on a paper exchange, side by side."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from tradedb.api import Analytics
from tradedb.cli.common import (
    DbOption,
    JsonOption,
    amount,
    as_options,
    err,
    moment,
    open_database,
    out,
    print_json,
    user_errors,
)
from tradedb.cli.options import SEVERAL, TIME_FORMS, listed
from tradedb.cli.tables import add_rows, exact, percent
from tradedb.errors import ValidationError
from tradedb.models.values import AMOUNT, PERCENT, DecimalSpec, format_decimal, format_fixed
from tradedb.services.paper import SessionResult
from tradedb.services.paper.strategies import STRATEGIES


def paper(
    strategy: Annotated[
        list[str],
        typer.Option(
            "--strategy",
            help=f"The strategies ({SEVERAL}); several make an A/B comparison. Shipped: "
            f"{', '.join(sorted(STRATEGIES))}.",
        ),
    ],
    exchange: Annotated[
        str, typer.Option(help="The exchange whose candles to trade, e.g. binance.")
    ],
    symbols: Annotated[
        list[str],
        typer.Option(
            "--symbol", help=f"The markets, of one quote currency: ETH/BTC LTC/BTC ({SEVERAL})."
        ),
    ],
    since: Annotated[
        str, typer.Option("--since", metavar="TIME", help=f"The first candle's time: {TIME_FORMS}.")
    ],
    until: Annotated[
        str,
        typer.Option(
            "--until", metavar="TIME", help="Stop before this time (same forms as --since)."
        ),
    ],
    timeframe: Annotated[str, typer.Option(help="The candles' timeframe.")] = "5m",
    capital: Annotated[
        str,
        typer.Option(
            metavar="AMOUNT",
            help="Deposited in the quote currency and split among the strategies.",
        ),
    ] = "1",
    allocation: Annotated[
        str | None,
        typer.Option(
            help="equal (default), fixed:0.6,0.4 (one weight per strategy, summing to at most "
            "1) or inverse-vol[:3d] (weights by 1/volatility of each strategy over the days "
            "before --since)."
        ),
    ] = None,
    fee_rate: Annotated[
        str | None,
        typer.Option(
            metavar="RATE",
            help="Fee per fill as a fraction (0.001 = 0.1 %); default: the exchange's.",
        ),
    ] = None,
    maker_fee_rate: Annotated[
        str | None,
        typer.Option(metavar="RATE", help="Fee of limit-order fills, if other than --fee-rate."),
    ] = None,
    quote_usd: Annotated[
        str | None,
        typer.Option(
            metavar="PRICE",
            help="USD price of the quote currency, to record capital in USD (default: its "
            "stored reference price at --since, see `tradedb reference-price`).",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            metavar="STRATEGY.NAME=VALUE",
            help=f"Strategy parameters, e.g. sma_cross.fast=10 ({SEVERAL}).",
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run strategies over stored candles on a paper exchange, recording every order and
    fill in the ledger, and compare them."""
    # Checked before the database is opened: a mistake creates nothing.
    plan = Analytics.plan_paper_session(
        strategies=listed(strategy),
        exchange=exchange,
        symbols=listed(symbols),
        since=since,
        until=until,
        timeframe=timeframe,
        capital=capital,
        allocation=allocation,
        fee_rate=fee_rate,
        maker_fee_rate=maker_fee_rate,
        quote_usd=quote_usd,
        parameters=_parameters(listed(param)),
    )
    # Only at a terminal: piped or logged, rich would leave a blank line behind.
    with (
        open_database(db) as database,
        Progress(transient=True, console=err, disable=as_json or not err.is_terminal) as bar,
    ):
        task = bar.add_task("paper trading", total=None)
        result = database.analytics.run_paper_session(
            plan, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    for warning in result.warnings:
        err.print(f"warning: {as_options(warning, paper)}", highlight=False, soft_wrap=True)
    if as_json:
        print_json(session_json(result))
    else:
        _show(result)


def _parameters(given: list[str]) -> dict[str, dict[str, object]]:
    parameters: dict[str, dict[str, object]] = {}
    for item in given:
        key, sep, value = item.partition("=")
        name, dot, parameter = key.strip().partition(".")
        if not sep or not dot or not name or not parameter:
            raise ValidationError(
                "param", item, "must be STRATEGY.PARAMETER=VALUE, e.g. sma_cross.fast=10"
            )
        parameters.setdefault(name, {})[parameter] = value.strip()
    return parameters


def _fixed(value: Decimal | None, spec: DecimalSpec = AMOUNT) -> str | None:
    return None if value is None else format_fixed(value, spec)


def session_json(result: SessionResult) -> dict[str, Any]:
    return {
        "session_id": result.session_id,
        "exchange": result.exchange,
        "quote": result.quote,
        "symbols": list(result.symbols),
        "timeframe": result.timeframe,
        "start": result.start,
        "end": result.end,
        "candles": result.candles,
        "allocation": result.allocation,
        # Fee rates and volatility are fractions, not amounts: as given, or as computed.
        "fees": {
            "maker": format_decimal(result.fees.maker),
            "taker": format_decimal(result.fees.taker),
        },
        "quote_usd": _fixed(result.quote_usd),
        "replayed": result.replayed,
        "warnings": result.warnings,
        "strategies": [
            {
                "strategy": s.strategy,
                "parameters": {k: format_decimal(v) for k, v in s.parameters.items()},
                "weight": _fixed(s.weight),
                "volatility": None if s.volatility is None else format_decimal(s.volatility),
                "capital": _fixed(s.capital),
                "capital_usd": _fixed(s.capital_usd),
                "orders": s.orders,
                "fills": s.fills,
                "canceled": s.canceled,
                "rejected": s.rejected,
                "fees": _fixed(s.fees),
                "realized_pnl": _fixed(s.realized_pnl),
                "unrealized_pnl": _fixed(s.unrealized_pnl),
                "equity": _fixed(s.equity),
                "profit": _fixed(s.profit),
                "return_percent": _fixed(s.return_percent, PERCENT),
                "holdings": {symbol: format_fixed(v) for symbol, v in s.holdings.items()},
            }
            for s in result.strategies
        ],
    }


def _show(result: SessionResult) -> None:
    quote = result.quote
    table = Table(
        title=(
            f"paper session {result.session_id}: {result.exchange} {', '.join(result.symbols)} "
            f"{result.timeframe}, {moment(result.start)[:16]} to {moment(result.end)[:16]} UTC "
            f"({result.candles:,} candles)"
        )
    )
    table.add_column("strategy")
    for header in (
        "weight",
        f"capital {quote}",
        "orders",
        "fills",
        f"fees {quote}",
        f"realized {quote}",
        f"unrealized {quote}",
        f"equity {quote}",
        "return %",
    ):
        table.add_column(header, justify="right")
    add_rows(
        table,
        (
            [
                s.strategy,
                exact(s.weight),
                exact(s.capital),
                f"{s.orders:,}",
                f"{s.fills:,}",
                exact(s.fees),
                exact(s.realized_pnl),
                exact(s.unrealized_pnl),
                exact(s.equity),
                percent(s.return_percent),
            ]
            for s in result.strategies
        ),
    )
    notes = [
        f"allocation {result.allocation}",
        f"fees maker {amount(result.fees.maker * 100)} %, "
        f"taker {amount(result.fees.taker * 100)} %",
    ]
    if result.replayed:
        notes.append("already recorded: this run replayed it and wrote nothing new")
    table.caption = "; ".join(notes)
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command()(user_errors(paper))
