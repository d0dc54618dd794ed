"""Analysis results kept in bot_logs: one INFO record per result, the whole result as JSON
metadata, so that `tradedb logs`, a log search and the database's own JSON functions
(`json_extract(metadata, '$.result.current_price')`) all find it.

The record's `module` is ANALYSIS_MODULE and its metadata `{"kind": ..., "result": ...}`,
which is how a reader tells analysis records from the bot's other log lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tradedb.errors import ValidationError
from tradedb.models import Log
from tradedb.models.values import (
    check_exchange,
    check_name,
    check_symbol,
    now_epoch_ms,
    parse_time_bound,
)
from tradedb.store import Store

ANALYSIS_MODULE = "tradedb.analysis"
MAX_SUMMARY_LENGTH = 500


def record_analysis(
    store: Store,
    *,
    kind: str,
    summary: str,
    result: Mapping[str, Any],
    symbol: str | None = None,
    exchange: str | None = None,
    strategy: str | None = None,
    at: object = None,
) -> Log:
    """Store one analysis result (already validated by its own model, given as JSON-ready
    values) as a bot_logs record at `at` (default now); return the record as stored."""
    check_name(kind, "kind")
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError("result", dict(result), f"is not JSON data: {exc}") from None
    if not summary.strip() or len(summary) > MAX_SUMMARY_LENGTH:
        raise ValidationError("summary", summary, f"must be 1 to {MAX_SUMMARY_LENGTH} characters")
    return store.logs.insert(
        {
            "timestamp": now_epoch_ms() if at is None else parse_time_bound(at, "at"),
            "level": "INFO",
            "message": summary,
            "module": ANALYSIS_MODULE,
            "strategy": None if strategy is None else check_name(strategy, "strategy"),
            "exchange": None if exchange is None else check_exchange(exchange),
            "symbol": None if symbol is None else check_symbol(symbol),
            "metadata": {"kind": kind, "result": dict(result)},
        }
    )
