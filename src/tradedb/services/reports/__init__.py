"""Reports: per-strategy comparison tables and a self-contained HTML report."""

from tradedb.services.reports.comparison import Report, ReportFilters, StrategyRow, compare

__all__ = ["Report", "ReportFilters", "StrategyRow", "compare"]
