"""Resources an agent reads before it queries: the schema and the metric definitions."""

from __future__ import annotations

import json

from mcp.server import MCPServer

from tradedb.services.analytics.definitions import metric_definitions
from tradedb.services.catalog import describe_schema

SCHEMA_URI = "tradedb://schema"
METRICS_URI = "tradedb://metrics"


def register(server: MCPServer) -> None:
    @server.resource(
        SCHEMA_URI,
        name="schema",
        title="tradedb schema",
        description="Every table and column: types, units (epoch ms, epoch s, exact "
        "decimals), allowed values, keys and indexes; generated from the schema's definition.",
        mime_type="application/json",
    )
    def schema() -> str:
        return json.dumps(describe_schema(), indent=2)

    @server.resource(
        METRICS_URI,
        name="metrics",
        title="tradedb metric definitions",
        description="What each performance, snapshot and P&L figure means and how it is "
        "computed (docs/metrics.md in short).",
        mime_type="application/json",
    )
    def metrics() -> str:
        return json.dumps(metric_definitions(), indent=2)
