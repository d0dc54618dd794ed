"""Analytics commands: value, snapshot and metrics."""

from __future__ import annotations

from datetime import datetime
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
from tradedb.cli.options import (
    SEVERAL,
    TIME_FORMS,
    DaysSinceOption,
    DaysUntilOption,
    listed,
)
from tradedb.cli.tables import Cell, add_rows, exact, percent, usd
from tradedb.errors import ValidationError
from tradedb.models.values import (
    day_range,
    format_fixed,
    now_epoch_ms,
    parse_time_bound,
)
from tradedb.services.analytics.metrics import MetricsResult
from tradedb.services.analytics.snapshots import Snapshot
from tradedb.services.analytics.valuation import (
    DEFAULT_USD_ASSETS,
    Valuation,
    Valuer,
    parse_max_age,
    parse_reference_prices,
)

# Exit status when something could not be valued and was left out (reported on stderr).
INCOMPLETE = 1

ReferenceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--reference-price",
        metavar="ASSET=PRICE",
        help=f"A USD price to use where market data has none, e.g. BTC=13500 ({SEVERAL}).",
    ),
]
UsdOption = Annotated[
    list[str] | None,
    typer.Option(
        "--usd-asset",
        metavar="ASSET",
        help=f"The assets counted as USD ({SEVERAL}; default: {', '.join(DEFAULT_USD_ASSETS)}).",
        show_default=False,
    ),
]
MaxAgeOption = Annotated[
    str,
    typer.Option(
        metavar="DURATION",
        help="Ignore quotes older than this at the valuation time: 1d, 6h, 30m.",
    ),
]
AtOption = Annotated[str | None, typer.Option(metavar="TIME")]


def _valuer(
    analytics: Analytics, references: dict[str, Decimal], usd: list[str] | None, max_age: int
) -> Valuer:
    assets = listed(usd) or list(DEFAULT_USD_ASSETS)
    return analytics.valuer(references, usd_assets=assets, max_age_ms=max_age)


def _quiet(as_json: bool) -> bool:
    """No progress bar for programs: not with --json, not when stderr is no terminal."""
    return as_json or not err.is_terminal


def _parsed(references: list[str] | None, max_age: str) -> tuple[dict[str, Decimal], int]:
    """Checked before the database is opened, so that a typo creates nothing."""
    return parse_reference_prices(listed(references)), parse_max_age(max_age)


def value(
    asset: Annotated[str, typer.Argument(help="The asset, e.g. ETH.")],
    at: Annotated[
        str | None, typer.Option(metavar="TIME", help=f"When (default: now): {TIME_FORMS}.")
    ] = None,
    exchange: Annotated[
        str | None, typer.Option(help="Prefer this exchange's quotes, e.g. binance.")
    ] = None,
    reference_price: ReferenceOption = None,
    usd_assets: UsdOption = None,
    max_age: MaxAgeOption = "1d",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show an asset's USD price at a time and the quotes it came from."""
    references, age = _parsed(reference_price, max_age)
    when = now_epoch_ms() if at is None else parse_time_bound(at, "at")
    with open_database(db, readonly=True) as database:
        valuation = _valuer(database.analytics, references, usd_assets, age).price_usd(
            asset, when, exchange=exchange
        )
    if as_json:
        print_json(_valuation_json(valuation))
        return
    out.print(
        f"1 {valuation.asset} = {amount(valuation.price)} USD at {moment(when)} UTC "
        f"via {' -> '.join(valuation.path)}",
        highlight=False,
    )
    for quote in valuation.quotes:
        out.print(
            f"  {quote.symbol} {amount(quote.price)} on {quote.exchange} "
            f"({quote.source}, {moment(quote.timestamp)} UTC)",
            highlight=False,
        )


def snapshot(
    at: Annotated[
        str | None,
        typer.Option(metavar="TIME", help=f"Snapshot time (default: now): {TIME_FORMS}."),
    ] = None,
    daily: Annotated[
        bool,
        typer.Option(
            "--daily",
            help="One snapshot at 00:00 UTC of each day from --since (default: only the "
            "last day) until --until (default: now).",
        ),
    ] = False,
    since: DaysSinceOption = None,
    until: DaysUntilOption = None,
    reference_price: ReferenceOption = None,
    usd_assets: UsdOption = None,
    max_age: MaxAgeOption = "1d",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write portfolio snapshots: per exchange and asset, the amount held, its USD price
    and value. Running one again for the same time replaces it. Exits 1 if a holding
    could not be valued (it gets no row; stderr says why)."""
    references, age = _parsed(reference_price, max_age)
    if daily:
        if at is not None:
            raise ValidationError("at", at, "--at and --daily do not go together")
        since_day, until_day = day_range(since, now_epoch_ms() if until is None else until)
        assert until_day is not None  # the range always has its end here
        first, last = since_day or until_day, until_day
    elif since is not None or until is not None:
        raise ValidationError("since", since or until, "--since and --until need --daily")
    when = now_epoch_ms() if at is None else parse_time_bound(at, "at")
    with open_database(db) as database:
        analytics = database.analytics
        valuer = _valuer(analytics, references, usd_assets, age)
        if daily:
            days = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).days + 1
            with Progress(transient=True, console=err, disable=_quiet(as_json) or days < 2) as bar:
                task = bar.add_task("snapshots", total=max(days, 0))
                snapshots = analytics.snapshot_days(
                    first, last, valuer, progress=lambda _s: bar.advance(task)
                )
        else:
            snapshots = [analytics.snapshot(when, valuer)]
    if as_json:
        print_json([_snapshot_json(s) for s in snapshots])
    else:
        table = Table(title="portfolio snapshots")
        for header in ("time", "exchange", "asset"):
            table.add_column(header)
        for header in ("amount", "price (USD)", "value (USD)"):
            table.add_column(header, justify="right")
        table.add_column("via")
        rows: list[list[Cell]] = []
        for s in snapshots:
            for row in s.rows:
                rows.append(
                    [
                        moment(row.timestamp),
                        row.exchange,
                        row.asset,
                        exact(row.amount, row.asset),
                        exact(row.price_per_unit, row.asset),
                        usd(row.usd_value),
                        " -> ".join(s.valuations[(row.exchange, row.asset)].path),
                    ]
                )
            rows.append([moment(s.timestamp), "", "total", "", "", usd(s.total_usd), ""])
        add_rows(table, rows)
        out.print(table)
    _report_unvalued(snapshots)


def _report_unvalued(snapshots: list[Snapshot]) -> None:
    missing = [(s.timestamp, holding) for s in snapshots for holding in s.unvalued]
    for timestamp, holding in missing:
        err.print(
            f"not in the snapshot of {moment(timestamp)} UTC: {amount(holding.amount)} "
            f"{holding.asset} on {holding.exchange}: {holding.asset} "
            f"{as_options(holding.reason, snapshot)}",
            highlight=False,
            soft_wrap=True,
        )
    if missing:
        raise typer.Exit(INCOMPLETE)


def metrics(
    since: DaysSinceOption = None,
    until: DaysUntilOption = None,
    reference_price: ReferenceOption = None,
    risk_free: Annotated[
        float, typer.Option(help="Annual risk-free rate for the Sharpe ratio, e.g. 0.04.")
    ] = 0.0,
    usd_assets: UsdOption = None,
    max_age: MaxAgeOption = "1d",
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compute daily performance (equity, P&L, trades, win rate, Sharpe ratio, maximum
    drawdown) per strategy and exchange and for the whole portfolio, and store it in
    performance_metrics. Computing a day again replaces its rows. Exits 1 if a scope
    could not be valued (stderr says which and why). Without --since or --until, from
    the first event's day or to the last event's."""
    references, age = _parsed(reference_price, max_age)
    first, last = day_range(since, until)
    with (
        open_database(db) as database,
        Progress(transient=True, console=err, disable=_quiet(as_json)) as bar,
    ):
        task = bar.add_task("days", total=None)
        result = database.analytics.compute_metrics(
            first,
            last,
            _valuer(database.analytics, references, usd_assets, age),
            risk_free_rate=risk_free,
            progress=lambda _day, _rows: bar.advance(task),
        )
    if as_json:
        print_json(_metrics_json(result))
    else:
        _metrics_table(result)
    for scope in result.without_capital:
        err.print(
            f"{scope.label}: no capital.{scope.strategy}.{scope.exchange} in bot_config, so "
            "its equity is its P&L alone and its percentages are left empty",
            highlight=False,
            soft_wrap=True,
        )
    for skipped in result.skipped:
        err.print(
            f"{skipped.scope.label}, {skipped.date}: no row {as_options(skipped.reason, metrics)}",
            highlight=False,
            soft_wrap=True,
        )
    if result.skipped:
        raise typer.Exit(INCOMPLETE)


def _metrics_table(result: MetricsResult) -> None:
    table = Table(title="daily performance (USD)")
    table.add_column("date")
    table.add_column("strategy")
    table.add_column("exchange")
    for header in (
        "equity",
        "P&L",
        "P&L %",
        "trades",
        "won",
        "lost",
        "win %",
        "Sharpe",
        "max DD %",
    ):
        table.add_column(header, justify="right")
    add_rows(
        table,
        (
            [
                row.date,
                row.strategy or "(all)",
                row.exchange or "(all)",
                usd(row.total_portfolio_value),
                usd(row.daily_pnl),
                percent(row.daily_pnl_percent),
                str(row.total_trades),
                str(row.winning_trades),
                str(row.losing_trades),
                percent(row.win_rate),
                percent(row.sharpe_ratio),
                percent(row.max_drawdown),
            ]
            for row in result.rows
        ),
    )
    out.print(table)


def _valuation_json(valuation: Valuation) -> dict[str, Any]:
    return {
        "asset": valuation.asset,
        "at": valuation.at_ms,
        "price_usd": format_fixed(valuation.price),
        "path": list(valuation.path),
        "quotes": [
            {
                "symbol": quote.symbol,
                "exchange": quote.exchange,
                "price": format_fixed(quote.price),
                "timestamp": quote.timestamp,
                "source": quote.source,
            }
            for quote in valuation.quotes
        ],
    }


def _snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "timestamp": snapshot.timestamp,
        "total_usd": format_fixed(snapshot.total_usd),
        "rows": [
            {
                **row.model_dump(mode="json"),
                "path": list(snapshot.valuations[(row.exchange, row.asset)].path),
            }
            for row in snapshot.rows
        ],
        "unvalued": [
            {
                "exchange": holding.exchange,
                "asset": holding.asset,
                "amount": format_fixed(holding.amount),
                "reason": holding.reason,
            }
            for holding in snapshot.unvalued
        ],
    }


def _metrics_json(result: MetricsResult) -> dict[str, Any]:
    return {
        "rows": [row.model_dump(mode="json") for row in result.rows],
        "skipped": [
            {
                "strategy": s.scope.strategy,
                "exchange": s.scope.exchange,
                "date": s.date,
                "reason": s.reason,
            }
            for s in result.skipped
        ],
        "without_capital": [
            {"strategy": scope.strategy, "exchange": scope.exchange}
            for scope in result.without_capital
        ],
    }


def register(app: typer.Typer) -> None:
    """Add the analytics commands to the `tradedb` app."""
    app.command("value")(user_errors(value))
    app.command("snapshot")(user_errors(snapshot))
    app.command("metrics")(user_errors(metrics))
