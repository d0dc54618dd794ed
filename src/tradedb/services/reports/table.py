"""What a comparison table shows of each row, for people (text cells) and programs (JSON).

The terminal table and the HTML report show the same cells, so that a number read in one
is the number read in the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from operator import attrgetter
from typing import Any

from tradedb.models.values import AMOUNT, PERCENT, DecimalSpec, format_fixed, to_cents
from tradedb.services.analytics.figures import Figure, Undefined
from tradedb.services.analytics.valuation import DEFAULT_USD_ASSETS
from tradedb.services.reports.comparison import Report, StrategyRow

NO_TRADES = "no trades"
UNKNOWN = "—"

# (header, what it means) in table order; docs/reports.md and docs/metrics.md explain each.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("strategy", "strategy name; 'all strategies' is the portfolio-wide scope"),
    ("exchange", "exchange, or 'all'"),
    ("period", "the row's days: those with a performance row, else the report's period"),
    ("final equity", "equity (USD) at the end of the last day"),
    ("return", "time-weighted return over the period"),
    ("P&L", "sum of the daily P&L (USD)"),
    ("realized", "sum of closing fills' profit_loss, per quote currency"),
    ("fills", "fills in the period, opening and closing"),
    ("round trips", "positions opened and closed back to flat, closed in the period"),
    ("win rate", "round trips won / (won + lost)"),
    ("fees", "fees paid, per currency"),
)
# The figures a trader compares strategies by, one row per scope (docs/metrics.md).
FIGURE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("strategy", COLUMNS[0][1]),
    ("exchange", COLUMNS[1][1]),
    ("CAGR", "compound annual growth rate"),
    ("volatility", "annualised standard deviation of the daily returns"),
    ("Sharpe", "annualised (365 days) Sharpe ratio of the daily returns"),
    ("Sortino", "annualised Sortino ratio: only days below the risk-free return are risk"),
    ("Calmar", "CAGR / max drawdown"),
    ("max drawdown", "largest fall below a running peak of the return index"),
    ("longest drawdown", "most consecutive days below a running peak"),
    ("best day", "highest daily return"),
    ("worst day", "lowest daily return"),
    ("profit factor", "round trips' gains / their losses"),
    ("expectancy", "mean P&L per round trip, in its quote currency"),
    ("avg win", "mean P&L of a winning round trip"),
    ("avg loss", "mean P&L of a losing round trip"),
    ("avg hold", "mean duration of a round trip"),
    ("exposure", "share of the period with a position open"),
)
HEADERS = tuple(header for header, _ in COLUMNS)
FIGURE_HEADERS = tuple(header for header, _ in FIGURE_COLUMNS)
# Right-aligned: a column of one currency then lines up on its decimal points.
NUMERIC = frozenset(HEADERS + FIGURE_HEADERS) - {"strategy", "exchange", "period"}


# Every cell of a column has the same number of decimals, so that right-aligned cells
# line up on their decimal points (docs/cli-conventions.md).


def _amount(value: Decimal | None) -> str:
    """A USD amount in cents, rounded half-even (row_json holds it exactly)."""
    return UNKNOWN if value is None else format(to_cents(value), "f")


def _ratio(value: Decimal | None) -> str:
    """A ratio at the 4 decimals percentages are stored with."""
    return UNKNOWN if value is None else format_fixed(value, PERCENT)


def _percent(value: Decimal | None) -> str:
    return UNKNOWN if value is None else f"{_ratio(value)} %"


def _per_currency(amounts: Mapping[str, Decimal]) -> str:
    """USD-like currencies in cents like the USD columns; others exact at 8 decimals."""

    def shown(currency: str, amount: Decimal) -> str:
        return _amount(amount) if currency in DEFAULT_USD_ASSETS else format_fixed(amount)

    return ", ".join(
        f"{shown(currency, amount)} {currency}" for currency, amount in amounts.items()
    )


def _name(row: StrategyRow) -> tuple[str, str]:
    return (row.strategy if row.strategy is not None else "all strategies", row.exchange or "all")


def _period(row: StrategyRow) -> str:
    if row.first_date is None and row.last_date is None:
        return UNKNOWN
    first, last = row.first_date or "start", row.last_date or "end"
    return first if first == last else f"{first} to {last}"


def _figure(value: Figure | int | None, shown: Callable[[Decimal], str] | None = None) -> str:
    if value is None or isinstance(value, Undefined):
        return UNKNOWN
    if isinstance(value, int):
        return f"{value} d"
    return (shown or _ratio)(value)


def _money(value: Figure, currency: str | None) -> str:
    if isinstance(value, Undefined) or currency is None:
        return UNKNOWN
    shown = _amount(value) if currency in DEFAULT_USD_ASSETS else format_fixed(value)
    return f"{shown} {currency}"


def _hours(millis: int | None) -> str:
    return UNKNOWN if millis is None else f"{Decimal(millis) / 3_600_000:.1f} h"


def cells(row: StrategyRow) -> tuple[str, ...]:
    """The row's cells in HEADERS order: USD in cents, percentages at 4 decimals, '—'
    where a figure is unknown, and 'no trades' for a strategy that did not trade."""
    traded = row.has_trades
    return (
        *_name(row),
        _period(row),
        _amount(row.final_equity),
        _figure(row.curve.total_return, _percent),
        _amount(row.total_pnl),
        _per_currency(row.realized_pnl) or UNKNOWN,
        str(row.fills) if traded else NO_TRADES,
        str(row.trades.round_trips) if traded else UNKNOWN,
        _figure(row.trades.win_rate, _percent),
        _per_currency(row.fees) or UNKNOWN,
    )


def figure_cells(row: StrategyRow) -> tuple[str, ...]:
    """The row's cells in FIGURE_HEADERS order."""
    curve, trades = row.curve, row.trades
    return (
        *_name(row),
        _figure(curve.cagr, _percent),
        _figure(curve.volatility, _percent),
        _figure(curve.sharpe),
        _figure(curve.sortino),
        _figure(curve.calmar),
        _figure(curve.max_drawdown, _percent),
        _figure(curve.longest_drawdown_days),
        _figure(curve.best_day, _percent),
        _figure(curve.worst_day, _percent),
        _figure(trades.profit_factor),
        _money(trades.expectancy, trades.currency),
        _money(trades.average_win, trades.currency),
        _money(trades.average_loss, trades.currency),
        _hours(trades.average_duration_ms),
        _figure(trades.exposure, _percent),
    )


def undefined_figures(row: StrategyRow) -> dict[str, str]:
    """Why each figure of the row shown as '—' is unknown, by JSON field name."""
    reasons = {}
    for name, value in _figures(row).items():
        if isinstance(value, Undefined):
            reasons[name] = value.reason
    return reasons


def reasons_by_header(row: StrategyRow) -> dict[str, str]:
    """Why each figure of the row shown as '—' is unknown, by the header of its column."""
    return {FIELD_NAMES[name]: reason for name, reason in undefined_figures(row).items()}


def notes(rows: Sequence[StrategyRow]) -> list[str]:
    """One line per reason a figure is '—', naming the rows and figures it applies to."""
    by_reason: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        for name, reason in undefined_figures(row).items():
            by_reason.setdefault(reason, {}).setdefault(row.label, []).append(FIELD_NAMES[name])
    lines = []
    for reason, where in by_reason.items():
        parts = "; ".join(f"{label}: {', '.join(names)}" for label, names in where.items())
        lines.append(f"— {reason} ({parts})")
    return lines


# Each figure a row reports: its JSON field, the header the tables give it, and where
# the row holds it.
_FIGURE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("total_return_percent", "return", "curve.total_return"),
    ("cagr_percent", "CAGR", "curve.cagr"),
    ("volatility_percent", "volatility", "curve.volatility"),
    ("sharpe_ratio", "Sharpe", "curve.sharpe"),
    ("sortino_ratio", "Sortino", "curve.sortino"),
    ("calmar_ratio", "Calmar", "curve.calmar"),
    ("max_drawdown_percent", "max drawdown", "curve.max_drawdown"),
    ("longest_drawdown_days", "longest drawdown", "curve.longest_drawdown_days"),
    ("best_day_percent", "best day", "curve.best_day"),
    ("worst_day_percent", "worst day", "curve.worst_day"),
    ("win_rate_percent", "win rate", "trades.win_rate"),
    ("profit_factor", "profit factor", "trades.profit_factor"),
    ("expectancy", "expectancy", "trades.expectancy"),
    ("average_win", "avg win", "trades.average_win"),
    ("average_loss", "avg loss", "trades.average_loss"),
    ("exposure_percent", "exposure", "trades.exposure"),
)
# JSON field -> the name the tables give it.
FIELD_NAMES = {field: header for field, header, _ in _FIGURE_FIELDS}
_FIGURE_VALUES = tuple((field, attrgetter(where)) for field, _, where in _FIGURE_FIELDS)


def _figures(row: StrategyRow) -> dict[str, Figure | int | Undefined]:
    return {field: value_of(row) for field, value_of in _FIGURE_VALUES}


_AMOUNT_FIELDS = frozenset({"expectancy", "average_win", "average_loss"})


def _fixed(value: Decimal | None, spec: DecimalSpec = AMOUNT) -> str | None:
    return None if value is None else format_fixed(value, spec)


def row_json(row: StrategyRow) -> dict[str, Any]:
    """A row for programs: amounts as fixed-point strings, unknown figures as null with
    their reason under `undefined`."""
    figures: dict[str, Any] = {}
    for name, value in _figures(row).items():
        if isinstance(value, Undefined):
            figures[name] = None
        elif isinstance(value, int):
            figures[name] = value
        else:
            figures[name] = format_fixed(value, AMOUNT if name in _AMOUNT_FIELDS else PERCENT)
    trades = row.trades
    return {
        "strategy": row.strategy,
        "exchange": row.exchange,
        "days": len(row.days),
        "first_date": row.first_date,
        "last_date": row.last_date,
        "daily_returns": row.curve.returns,
        "final_equity": _fixed(row.final_equity),
        "total_pnl": _fixed(row.total_pnl),
        "realized_pnl": {currency: _fixed(value) for currency, value in row.realized_pnl.items()},
        "fills": row.fills,
        "round_trips": trades.round_trips,
        "wins": trades.wins,
        "losses": trades.losses,
        "note": None if row.has_trades else NO_TRADES,
        **figures,
        "round_trip_currency": trades.currency,
        "average_round_trip_ms": trades.average_duration_ms,
        "fees": {currency: _fixed(value) for currency, value in row.fees.items()},
        "monthly_returns": [
            {"month": month.month, "percent": _fixed(month.percent, PERCENT)}
            for month in row.monthly_returns
        ],
        "undefined": undefined_figures(row),
        # Each round trip closed in the period, oldest first.
        "round_trip_list": [
            {
                "strategy": trip.strategy,
                "exchange": trip.exchange,
                "symbol": trip.symbol,
                "side": trip.side,
                "opened_at": trip.opened_at,
                "closed_at": trip.closed_at,
                "duration_ms": trip.duration_ms,
                "cost": format_fixed(trip.cost),
                "pnl": format_fixed(trip.pnl),
                "return_percent": _fixed(trip.return_percent, PERCENT),
            }
            for trip in row.round_trips
        ],
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
