"""What a comparison table shows of each row, for people (text cells) and programs (JSON).

The terminal table and the HTML report show the same cells, so that a number read in one
is the number read in the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tradedb.models.values import format_decimal, format_plain
from tradedb.services.reports.comparison import Report, StrategyRow

NO_TRADES = "no trades"
UNKNOWN = "—"

# (header, what it means) in table order; docs/reports.md explains each one.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("strategy", "strategy name; 'all strategies' is the portfolio-wide scope"),
    ("exchange", "exchange, or 'all'"),
    ("days", "days with a performance row in the period"),
    ("final equity", "equity (USD) at the end of the last day"),
    ("return", "time-weighted return over the period"),
    ("P&L", "sum of the daily P&L (USD)"),
    ("realized", "sum of closing trades' profit_loss, per quote currency"),
    ("trades", "fills in the period"),
    ("wins", "closing trades with profit_loss above zero"),
    ("losses", "closing trades with profit_loss below zero"),
    ("win rate", "wins / (wins + losses)"),
    ("Sharpe", "annualised (365 days) Sharpe ratio of the daily returns"),
    ("max drawdown", "largest fall below a running equity peak"),
    ("fees", "fees paid, per currency"),
)
HEADERS = tuple(header for header, _ in COLUMNS)
NUMERIC = frozenset(HEADERS) - {"strategy", "exchange", "realized", "fees"}


def _amount(value: Decimal | None) -> str:
    return UNKNOWN if value is None else format_plain(value)


def _percent(value: Decimal | None) -> str:
    return UNKNOWN if value is None else f"{format_plain(value)} %"


def _per_currency(amounts: Mapping[str, Decimal]) -> str:
    return ", ".join(f"{format_plain(amount)} {currency}" for currency, amount in amounts.items())


def cells(row: StrategyRow) -> tuple[str, ...]:
    """The row's cells in HEADERS order: exact amounts without trailing zeros, '—' where a
    figure is unknown, and 'no trades' for a strategy that did not trade."""
    traded = row.has_trades
    return (
        row.strategy if row.strategy is not None else "all strategies",
        row.exchange or "all",
        str(len(row.days)),
        _amount(row.final_equity),
        _percent(row.total_return),
        _amount(row.total_pnl),
        _per_currency(row.realized_pnl) or UNKNOWN,
        str(row.trades) if traded else NO_TRADES,
        str(row.wins) if traded else UNKNOWN,
        str(row.losses) if traded else UNKNOWN,
        _percent(row.win_rate),
        _amount(row.sharpe),
        _percent(row.max_drawdown),
        _per_currency(row.fees) or UNKNOWN,
    )


def _fixed(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def row_json(row: StrategyRow) -> dict[str, Any]:
    """A row for programs: amounts as fixed-point strings, unknown figures as null."""
    return {
        "strategy": row.strategy,
        "exchange": row.exchange,
        "days": len(row.days),
        "first_date": row.days[0].date if row.days else None,
        "last_date": row.days[-1].date if row.days else None,
        "final_equity": _fixed(row.final_equity),
        "total_return_percent": _fixed(row.total_return),
        "total_pnl": _fixed(row.total_pnl),
        "realized_pnl": {currency: _fixed(value) for currency, value in row.realized_pnl.items()},
        "trades": row.trades,
        "note": None if row.has_trades else NO_TRADES,
        "wins": row.wins,
        "losses": row.losses,
        "win_rate_percent": _fixed(row.win_rate),
        "sharpe_ratio": _fixed(row.sharpe),
        "max_drawdown_percent": _fixed(row.max_drawdown),
        "fees": {currency: _fixed(value) for currency, value in row.fees.items()},
    }


def report_json(report: Report) -> dict[str, Any]:
    filters = report.filters
    return {
        "filters": {
            "strategies": list(filters.strategies) if filters.strategies else None,
            "exchange": filters.exchange,
            "first_date": filters.first_date,
            "last_date": filters.last_date,
        },
        "rows": [row_json(row) for row in report.rows],
    }
