"""The figures analytics and reports produce, defined for programs (an agent reads them
as the MCP resource `tradedb://metrics`). docs/metrics.md and docs/reports.md give the
full rules with examples; this is their summary, one entry per column or field.
"""

from __future__ import annotations

from typing import Any

from tradedb.services.analytics.figures import MIN_RETURNS

DAY = (
    "Day d ends at the following 00:00 UTC, E(d). Events timestamped before E(d) belong to "
    "day d or earlier; prices are quoted at E(d) (the latest ticker, or the close of the "
    "latest candle that had closed by then, at most 1 day old)."
)
VALUATION = (
    "USD prices come from stored market data: ASSET/USD-like markets (USD, USDT and USDC "
    "count as 1 USD), else through one intermediate asset (ETH/BTC then BTC/USDT), else a "
    "reference price holding at that instant (table reference_prices, each price with its "
    "period). Each route's price is the exact "
    "product of its legs, rounded half-even to 8 decimals once. No price is invented: a "
    "holding nothing values gets no row."
)

PERFORMANCE_METRICS: dict[str, dict[str, str]] = {
    "date": {"unit": "UTC date YYYY-MM-DD", "definition": "the day d of the row"},
    "strategy": {
        "unit": "name",
        "definition": "the strategy of the row; NULL: every strategy (an exchange-wide or "
        "portfolio-wide row)",
    },
    "exchange": {
        "unit": "ccxt exchange id",
        "definition": "the exchange of the row; NULL with strategy NULL: the whole portfolio",
    },
    "total_portfolio_value": {
        "unit": "USD, 8 decimals",
        "definition": "equity V(d) at E(d). Exchange: the USD value of its balances (rebuilt "
        "from the wallet journal). Portfolio: the sum over exchanges. Strategy: its capital "
        "(bot_config capital.<strategy>.<exchange>, 0 if unset) plus realised and "
        "unrealised P&L in USD, less fees paid in a third currency",
    },
    "daily_pnl": {
        "unit": "USD, 8 decimals",
        "definition": "V(d) - V(d-1) - F(d), where F(d) is the day's funding (deposits, "
        "withdrawals, opening balances, each valued at its own time). Funding is not profit",
    },
    "daily_pnl_percent": {
        "unit": "percent, 4 decimals",
        "definition": "daily_pnl / V(d-1) x 100, half-even; NULL when V(d-1) <= 0",
    },
    "total_trades": {
        "unit": "count",
        "definition": "round trips closed (positions opened and closed back to flat, their "
        "P&L the sum of their closing fills' profit_loss) from the start of the curve to the "
        "end of day d: cumulative",
    },
    "winning_trades": {"unit": "count", "definition": "round trips with P&L > 0"},
    "losing_trades": {"unit": "count", "definition": "round trips with P&L < 0"},
    "win_rate": {
        "unit": "percent, 4 decimals",
        "definition": "winning / (winning + losing) x 100; NULL before any trade won or lost",
    },
    "sharpe_ratio": {
        "unit": "ratio, 4 decimals",
        "definition": "mean(r - rf) / stdev(r) x sqrt(365) over the daily returns "
        "r(d) = daily_pnl / V(d-1) from the start of the curve to d; sample stdev (ddof 1), rf "
        f"the daily risk-free rate (default 0). NULL with fewer than {MIN_RETURNS} returns or "
        "no dispersion",
    },
    "max_drawdown": {
        "unit": "percent, 4 decimals, positive",
        "definition": "the largest fall of the return index I(d) = I(d-1) x (1 + r(d)) below "
        "its running peak (the start, I = 1, counts as one), as a positive percent (5.25: "
        "5.25 % below the peak); NULL before the first return",
    },
}

PORTFOLIO_SNAPSHOTS: dict[str, dict[str, str]] = {
    "timestamp": {"unit": "epoch ms UTC", "definition": "when the snapshot was taken"},
    "exchange": {"unit": "ccxt exchange id", "definition": "where the asset is held"},
    "asset": {"unit": "currency code", "definition": "the asset held"},
    "amount": {
        "unit": "asset, 8 decimals",
        "definition": "the balance at the time, rebuilt from the wallet journal (funds locked "
        "by open orders included)",
    },
    "price_per_unit": {"unit": "USD, 8 decimals", "definition": "the asset's USD price then"},
    "usd_value": {
        "unit": "USD, 8 decimals",
        "definition": "amount x price_per_unit, rounded half-even to 8 decimals",
    },
}

_NEEDS = f"undefined (null, reason under `undefined`) with fewer than {MIN_RETURNS} daily returns"
_ROUND_TRIP_MONEY = "quote currency (round_trip_currency); null when the round trips are in several"

PNL_SUMMARY: dict[str, dict[str, str]] = {
    "days": {"unit": "count", "definition": "days with a performance row in the period"},
    "daily_returns": {
        "unit": "count",
        "definition": "daily returns r(d) = daily_pnl / V(d-1) the curve figures rest on (a "
        "day that began with no equity has none)",
    },
    "final_equity": {
        "unit": "USD",
        "definition": "total_portfolio_value of the period's last day",
    },
    "total_return_percent": {
        "unit": "percent, 4 decimals",
        "definition": "time-weighted: the daily returns compounded over the period",
    },
    "cagr_percent": {
        "unit": "percent, 4 decimals",
        "definition": f"I^(365 / n) - 1 for n daily returns compounding to I; {_NEEDS}",
    },
    "volatility_percent": {
        "unit": "percent, 4 decimals",
        "definition": f"stdev(r) x sqrt(365), sample stdev; {_NEEDS}",
    },
    "total_pnl": {"unit": "USD", "definition": "the sum of daily_pnl over the period"},
    "realized_pnl": {
        "unit": "quote currency",
        "definition": "the sum of the closing fills' profit_loss, per quote currency (net of "
        "both fees of each round trip)",
    },
    "fills": {"unit": "count", "definition": "fills in the period, opening and closing"},
    "round_trips": {
        "unit": "count",
        "definition": "positions opened and closed back to flat, closed in the period; a "
        "fill larger than the position closes one and opens the next",
    },
    "wins": {"unit": "count", "definition": "round trips with P&L > 0"},
    "losses": {"unit": "count", "definition": "round trips with P&L < 0"},
    "win_rate_percent": {"unit": "percent", "definition": "wins / (wins + losses) x 100"},
    "sharpe_ratio": {
        "unit": "ratio",
        "definition": f"the period's daily returns: mean / sample stdev x sqrt(365), risk-free "
        f"0; {_NEEDS}",
    },
    "sortino_ratio": {
        "unit": "ratio",
        "definition": "mean(r) / sqrt(mean(min(r, 0)^2)) x sqrt(365): only losing days are "
        f"risk; {_NEEDS}",
    },
    "calmar_ratio": {"unit": "ratio", "definition": f"CAGR / max drawdown; {_NEEDS}"},
    "max_drawdown_percent": {
        "unit": "percent, positive",
        "definition": "the largest fall of the return index below its running peak in the "
        "period (its start counts as a peak)",
    },
    "longest_drawdown_days": {
        "unit": "days",
        "definition": "the most consecutive days the return index stayed below its peak",
    },
    "best_day_percent": {"unit": "percent", "definition": "the highest daily return"},
    "worst_day_percent": {"unit": "percent", "definition": "the lowest daily return"},
    "profit_factor": {
        "unit": "ratio",
        "definition": "the round trips' gains over their losses (same quote currency)",
    },
    "expectancy": {"unit": _ROUND_TRIP_MONEY, "definition": "mean P&L per round trip"},
    "average_win": {"unit": _ROUND_TRIP_MONEY, "definition": "mean P&L of a winning round trip"},
    "average_loss": {"unit": _ROUND_TRIP_MONEY, "definition": "mean P&L of a losing round trip"},
    "round_trip_currency": {
        "unit": "currency code",
        "definition": "the quote currency of expectancy and the averages",
    },
    "average_round_trip_ms": {
        "unit": "ms",
        "definition": "mean duration of a round trip, from its first fill to the one that "
        "left it flat",
    },
    "exposure_percent": {
        "unit": "percent",
        "definition": "the share of the period during which a position of the scope was open",
    },
    "fees": {"unit": "fee currency", "definition": "fees paid, per fee currency"},
    "monthly_returns": {
        "unit": "percent per UTC month",
        "definition": "each calendar month's daily returns compounded",
    },
    "undefined": {
        "unit": "field -> text",
        "definition": "why each figure given as null is unknown",
    },
}


def metric_definitions() -> dict[str, Any]:
    return {
        "day": DAY,
        "valuation": VALUATION,
        "performance_metrics": PERFORMANCE_METRICS,
        "portfolio_snapshots": PORTFOLIO_SNAPSHOTS,
        "pnl_summary": PNL_SUMMARY,
        "exactness": (
            "amounts are exact decimals, given as fixed-point strings; percentages and "
            "ratios are computed exactly and rounded half-even once, to 4 decimals"
        ),
    }
