"""The figures analytics and reports produce, defined for programs (an agent reads them
as the MCP resource `tradedb://metrics`). docs/metrics.md and docs/reports.md give the
full rules with examples; this is their summary, one entry per column or field.
"""

from __future__ import annotations

from typing import Any

DAY = (
    "Day d ends at the following 00:00 UTC, E(d). Events timestamped before E(d) belong to "
    "day d or earlier; prices are quoted at E(d) (the latest ticker, or the close of the "
    "latest candle that had closed by then, at most 1 day old)."
)
VALUATION = (
    "USD prices come from stored market data: ASSET/USD-like markets (USD, USDT and USDC "
    "count as 1 USD), else through one intermediate asset (ETH/BTC then BTC/USDT), else a "
    "reference price (bot_config reference_price.<ASSET>). Each route's price is the exact "
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
        "definition": "closed trades (fills with a profit_loss, i.e. that reduced or closed a "
        "position) from the start of the curve to the end of day d: cumulative",
    },
    "winning_trades": {"unit": "count", "definition": "closed trades with profit_loss > 0"},
    "losing_trades": {"unit": "count", "definition": "closed trades with profit_loss < 0"},
    "win_rate": {
        "unit": "percent, 4 decimals",
        "definition": "winning / (winning + losing) x 100; NULL before any trade won or lost",
    },
    "sharpe_ratio": {
        "unit": "ratio, 4 decimals",
        "definition": "mean(r - rf) / stdev(r) x sqrt(365) over the daily returns "
        "r(d) = daily_pnl / V(d-1) from the start of the curve to d; sample stdev (ddof 1), rf "
        "the daily risk-free rate (default 0). NULL with fewer than 2 returns or no dispersion",
    },
    "max_drawdown": {
        "unit": "percent, 4 decimals, positive",
        "definition": "the largest fall of the return index I(d) = I(d-1) x (1 + r(d)) below "
        "its running peak, as a positive percent (5.25: 5.25 % below the peak)",
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

PNL_SUMMARY: dict[str, dict[str, str]] = {
    "days": {"unit": "count", "definition": "days with a performance row in the period"},
    "final_equity": {
        "unit": "USD",
        "definition": "total_portfolio_value of the period's last day",
    },
    "total_return_percent": {
        "unit": "percent, 4 decimals",
        "definition": "time-weighted: each day's daily_pnl over the equity it began with, "
        "compounded over the period",
    },
    "total_pnl": {"unit": "USD", "definition": "the sum of daily_pnl over the period"},
    "realized_pnl": {
        "unit": "quote currency",
        "definition": "the sum of the closing trades' profit_loss, per quote currency (net of "
        "both fees of each round trip)",
    },
    "trades": {"unit": "count", "definition": "fills in the period, opening and closing"},
    "wins": {"unit": "count", "definition": "closing trades with profit_loss > 0"},
    "losses": {"unit": "count", "definition": "closing trades with profit_loss < 0"},
    "win_rate_percent": {"unit": "percent", "definition": "wins / (wins + losses) x 100"},
    "sharpe_ratio": {
        "unit": "ratio",
        "definition": "the period's daily returns: mean / sample stdev x sqrt(365), risk-free 0",
    },
    "max_drawdown_percent": {
        "unit": "percent, positive",
        "definition": "the largest fall of equity below its running peak in the period (the "
        "first day's opening equity counts as a peak)",
    },
    "fees": {"unit": "fee currency", "definition": "fees paid, per fee currency"},
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
