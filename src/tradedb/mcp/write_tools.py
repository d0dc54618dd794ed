"""The write tools, registered only with `tradedb mcp --allow-writes`: record an analysis
result, set a bot setting, place a paper order. Each validates its arguments, then goes
through its part of the public object (`db.logs`, `db.config`, and the ledger by
`db.analytics.place_paper_order`); none takes SQL."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server import MCPServer
from pydantic import Field

from tradedb import FillResult
from tradedb.api import TradeDB
from tradedb.compat.mcp_trader_models import ChartPattern, TechnicalAnalysisResult
from tradedb.errors import ValidationError
from tradedb.mcp.arguments import (
    Exchange,
    OptionalExchange,
    OptionalStrategy,
    OptionalSymbol,
    Symbol,
    Time,
)
from tradedb.mcp.errors import tool_errors
from tradedb.mcp.shapes import (
    ConfigShape,
    LogShape,
    OrderShape,
    PaperOrderShape,
    PositionShape,
    PriceUsed,
    TradeShape,
    shaped,
)
from tradedb.mcp.tooling import ADDITIVE_WRITE
from tradedb.models.values import format_fixed

Amount = Annotated[
    str | int | float,
    Field(description="Exact decimal, best as a string ('0.015'); at most 8 decimals."),
]
ConfigValue = Annotated[
    str | bool | int | float | dict[str, Any] | list[Any] | None,
    Field(
        description="The value: text, a number (best as a string for exactness), true/false, "
        "or JSON. Omit to change only the other fields of an existing key."
    ),
]


def _position(fill: FillResult | None) -> PositionShape | None:
    """The position the fill left: the one it opened or changed, else the one it closed."""
    if fill is None:
        return None
    position = fill.position or fill.closed_position
    return None if position is None else shaped(PositionShape, position)


def register(server: MCPServer, db: TradeDB) -> None:
    def record_analysis(
        *,
        technical_analysis: TechnicalAnalysisResult | None = None,
        chart_pattern: ChartPattern | None = None,
        symbol: OptionalSymbol = None,
        exchange: OptionalExchange = None,
        strategy: OptionalStrategy = None,
    ) -> LogShape:
        """Store one mcp-trader TechnicalAnalysisResult or ChartPattern (give exactly one) as
        a structured bot_logs record: level INFO, module tradedb.analysis, the result as JSON
        metadata. `symbol` (a ccxt symbol) fills the record's symbol column."""
        if (technical_analysis is None) == (chart_pattern is None):
            raise ValidationError(
                "technical_analysis",
                None,
                "give exactly one of technical_analysis and chart_pattern",
            )
        if technical_analysis is not None:
            kind = "technical_analysis"
            result = technical_analysis.model_dump(mode="json", by_alias=True)
            summary = (
                f"technical analysis of {technical_analysis.symbol}: price "
                f"{technical_analysis.current_price}, RSI {technical_analysis.indicators.rsi}"
            )
        else:
            assert chart_pattern is not None
            kind = "chart_pattern"
            result = chart_pattern.model_dump(mode="json", by_alias=True)
            summary = (
                f"chart pattern {chart_pattern.type} ({chart_pattern.confidence} confidence) "
                f"at {chart_pattern.price_level}" + (f" on {symbol}" if symbol else "")
            )
        row = db.logs.record_analysis(
            kind=kind,
            summary=summary,
            result=result,
            symbol=symbol,
            exchange=exchange,
            strategy=strategy,
        )
        return LogShape.of(row)

    def set_config(
        *,
        key: str,
        value: ConfigValue = None,
        config_type: Literal["string", "number", "boolean", "json"] | None = None,
        description: str | None = None,
        strategy: OptionalStrategy = None,
        active: bool | None = None,
    ) -> ConfigShape:
        """Create or change a bot setting (bot_config), as `tradedb config set` does. With
        `strategy`, the key is that strategy's (strategy.<name>.<key>). Secrets (API keys,
        passwords, private keys) are refused: keep them in environment variables."""
        entry = db.config.set(
            key,
            value,
            config_type=config_type,
            description=description,
            strategy=strategy,
            active=active,
        )
        return ConfigShape.model_validate(entry.as_json())

    def place_paper_order(
        *,
        exchange: Exchange,
        symbol: Symbol,
        side: Literal["buy", "sell"],
        amount: Amount,
        order_type: Literal["market", "limit"] = "market",
        price: Amount | None = None,
        strategy: OptionalStrategy = None,
        client_order_id: str | None = None,
        at: Time = None,
    ) -> PaperOrderShape:
        """Place a paper order through the ledger. A market order fills at once at the
        market's latest stored price on the exchange (ticker or closed candle, at most a
        day old) and pays the taker fee; a limit order fills at once if that price reaches
        it, else rests open with its funds locked. The wallet must hold the funds
        (`tradedb deposit`). `at` (default now) is the order's time; the order id is
        'paper-' plus `client_order_id` (or a random id)."""
        placed = db.analytics.place_paper_order(
            exchange=exchange,
            symbol=symbol,
            side=side,
            order_type=order_type,
            amount=amount,
            price=price,
            strategy=strategy,
            client_order_id=client_order_id,
            at=at,
        )
        fill = placed.fill
        quote = placed.quote
        return PaperOrderShape(
            order=shaped(OrderShape, placed.order),
            trade=None if fill is None else shaped(TradeShape, fill.trade),
            position=_position(fill),
            price_used=PriceUsed(
                symbol=quote.symbol,
                exchange=quote.exchange,
                price=format_fixed(quote.price),
                timestamp=quote.timestamp,
                source=quote.source,
            ),
        )

    for tool in (record_analysis, set_config, place_paper_order):
        server.add_tool(tool_errors(tool), annotations=ADDITIVE_WRITE)
