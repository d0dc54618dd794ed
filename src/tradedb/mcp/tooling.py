"""Hints a client shows its user before a tool runs: whether it changes anything."""

from __future__ import annotations

from mcp.types import ToolAnnotations

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
# Writes add rows (a log entry, an order) or set one key; none deletes anything.
ADDITIVE_WRITE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False
)
