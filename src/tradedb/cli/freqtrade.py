"""`tradedb import tradesv3.sqlite`: a freqtrade bot's database into the ledger, with each
trade's P&L as tradedb computes it beside freqtrade's own."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.progress import Progress
from rich.table import Table

from tradedb.cli.common import amount, err, open_database, out, print_json
from tradedb.cli.tables import add_rows, exact
from tradedb.errors import ValidationError
from tradedb.models.values import format_fixed
from tradedb.services.ledger.freqtrade_db import (
    FreqtradeImport,
    TradeComparison,
    check_database,
)


def import_database(
    path: Path,
    db: str | None,
    *,
    strict: bool,
    as_json: bool,
    market_options: dict[str, str | None],
) -> None:
    """Import a freqtrade database and show what it did."""
    for name, value in market_options.items():
        if value is not None:
            raise ValidationError(
                name,
                value,
                f"applies to market-data files; {path.name} is a freqtrade database, whose "
                "trades name their own exchange and pair",
            )
    check_database(path)
    with (
        open_database(db) as database,
        Progress(transient=True, console=err, disable=as_json or not err.is_terminal) as bar,
    ):
        bar.add_task(f"importing {path.name}", total=None)
        result = database.ledger.import_freqtrade(path, strict=strict)
    if as_json:
        print_json(_as_json(result))
        return
    _show(result)


def _show(result: FreqtradeImport) -> None:
    table = Table(title=f"freqtrade trades in {result.path.name}")
    for header in ("trade", "exchange", "pair", "strategy", "status"):
        table.add_column(header)
    for header in ("tradedb P&L", "freqtrade P&L", "difference"):
        table.add_column(header, justify="right")
    add_rows(
        table,
        (
            [
                str(c.trade_id),
                c.exchange,
                c.symbol,
                c.strategy or "",
                "open" if c.is_open else "closed",
                exact(c.tradedb_pnl, c.symbol),
                exact(c.freqtrade_pnl, c.symbol),
                exact(c.difference, c.symbol, plus=True),
            ]
            for c in result.comparisons
        ),
    )
    if result.comparisons:
        out.print(table)
    for skipped in result.skipped:
        out.print(f"skipped {skipped.item}: {skipped.reason}", highlight=False, soft_wrap=True)
    for funding in result.deposits:
        out.print(
            f"deposited {amount(funding.amount)} {funding.asset} on {funding.exchange}: "
            "freqtrade's database holds no balances, and the ledger's wallet lacked what the "
            "orders needed",
            highlight=False,
            soft_wrap=True,
        )
    out.print(_summary(result), highlight=False, soft_wrap=True)


def _summary(result: FreqtradeImport) -> str:
    recorded = (
        f"{result.trades:,} of {result.trades_in_file:,} trades imported: {result.orders:,} "
        f"orders, {result.fills:,} fills, {result.ended_orders:,} orders canceled or expired, "
        f"{result.positions:,} positions opened"
    )
    if result.unchanged_orders:
        recorded += f", {result.unchanged_orders:,} orders already recorded"
    recorded += f"; {result.rounded:,} float values rounded to 8 decimals"
    closed = [c for c in result.comparisons if c.difference is not None]
    if not closed:
        return recorded + "."
    differing = [c for c in closed if c.difference]
    ours = sum((c.tradedb_pnl or Decimal(0) for c in closed), Decimal(0))
    theirs = sum((c.freqtrade_pnl or Decimal(0) for c in closed), Decimal(0))
    pnl = (
        f"P&L of {len(closed):,} closed trades: tradedb {amount(ours)}, freqtrade "
        f"{amount(theirs)}; {len(differing):,} differ"
    )
    if differing:
        largest = max(differing, key=lambda c: abs(_difference(c)))
        pnl += f", most in trade {largest.trade_id} ({_signed(largest.difference)})"
    return f"{recorded}. {pnl}."


def _difference(comparison: TradeComparison) -> Decimal:
    return comparison.difference or Decimal(0)


def _signed(value: Decimal | None) -> str:
    if value is None:
        return ""
    return amount(value) if not value else format(value.normalize(), "+f")


def _as_json(result: FreqtradeImport) -> dict[str, Any]:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else format_fixed(value)

    return {
        "file": str(result.path),
        "trades_in_file": result.trades_in_file,
        "trades": result.trades,
        "orders": result.orders,
        "fills": result.fills,
        "ended_orders": result.ended_orders,
        "positions": result.positions,
        "unchanged_orders": result.unchanged_orders,
        "rounded": result.rounded,
        "deposits": [
            {"exchange": f.exchange, "asset": f.asset, "amount": text(f.amount)}
            for f in result.deposits
        ],
        "skipped": [{"item": s.item, "reason": s.reason} for s in result.skipped],
        "comparisons": [
            {
                "trade_id": c.trade_id,
                "exchange": c.exchange,
                "symbol": c.symbol,
                "strategy": c.strategy,
                "is_open": c.is_open,
                "tradedb_pnl": text(c.tradedb_pnl),
                "freqtrade_pnl": text(c.freqtrade_pnl),
                "difference": text(c.difference),
            }
            for c in result.comparisons
        ],
    }
