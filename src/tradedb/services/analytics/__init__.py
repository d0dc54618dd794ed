"""Analytics: USD valuation, portfolio snapshots and daily performance metrics."""
