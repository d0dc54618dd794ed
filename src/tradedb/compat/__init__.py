"""Shapes of other trading tools and exact conversions between them and tradedb's records.

`tradedb.compat.mcp_trader` speaks the Pydantic models of the public mcp-trader server
(wshobson/mcp-trader). Modules here convert; they hold no SQL and no business rules.
"""
