"""tradedb's own Pydantic v2 versions of the mcp-trader server's models.

Field names, types and bounds match the public wshobson/mcp-trader `models.py`, so a
payload one side produces validates on the other. Amounts stay floats, as theirs are; the
conversions in `tradedb.compat.mcp_trader` are where floats meet tradedb's exact Decimals.

Where these differ from the originals, it is on purpose:
- `MarketDataResponse.provider` takes any ccxt exchange id ("kraken", "binance", ...) besides
  their "tiingo", instead of only "tiingo" and "binance";
- unknown fields are refused, not ignored, so a misspelt field reaches the agent that sent it;
- `analysis_date` defaults to the current time as a timezone-aware UTC datetime (theirs is
  naive), because tradedb refuses naive times.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tradedb.errors import ValidationError
from tradedb.models.values import check_exchange

NonNegative = Annotated[float, Field(ge=0)]

# mcp-trader's own providers that are not ccxt exchanges.
NON_CCXT_PROVIDERS = frozenset({"tiingo"})


class TraderModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- market data ---------------------------------------------------------------------------


class CandleData(TraderModel):
    """One candle as mcp-trader passes it around: floats and a datetime."""

    date: datetime = Field(description="Start of the candle")
    open: NonNegative = Field(description="Opening price")
    high: NonNegative = Field(description="Highest price")
    low: NonNegative = Field(description="Lowest price")
    close: NonNegative = Field(description="Closing price")
    volume: NonNegative = Field(description="Volume traded, in the base currency")
    symbol: str = Field(description="Market symbol")

    @model_validator(mode="after")
    def _high_and_low_bound_the_body(self) -> CandleData:
        # With these two, high >= low follows.
        if self.high < max(self.open, self.close):
            raise ValidationError("high", self.high, "must be >= open and close")
        if self.low > min(self.open, self.close):
            raise ValidationError("low", self.low, "must be <= open and close")
        return self


def check_provider(value: str) -> str:
    """mcp-trader's "tiingo" or an exchange id that ccxt knows (or, without ccxt installed,
    one that looks like one: lowercase letters and digits)."""
    if isinstance(value, str) and value in NON_CCXT_PROVIDERS:
        return value
    check_exchange(value, "provider")
    known = ccxt_exchange_ids()
    if known is not None and value not in known:
        raise ValidationError(
            "provider", value, "is not an exchange ccxt knows (see ccxt.exchanges)"
        )
    return value


@cache
def ccxt_exchange_ids() -> frozenset[str] | None:
    """ccxt's exchange ids, or None when ccxt (the `exchanges` extra) is not installed."""
    try:
        import ccxt
    except ImportError:
        return None
    return frozenset(ccxt.exchanges)


class MarketDataResponse(TraderModel):
    """A market's candles as mcp-trader returns them from a data fetch."""

    symbol: str = Field(description="Market symbol")
    data: list[CandleData] = Field(description="Candles, oldest first")
    provider: str = Field(description="Where the candles come from: a ccxt exchange id or 'tiingo'")
    lookback_days: int = Field(gt=0, description="Days of history asked for")
    quote_currency: str | None = Field(default=None, description="Quote currency of the pair")

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        return check_provider(value)


# --- technical analysis --------------------------------------------------------------------


class TrendStatus(TraderModel):
    """Where the price stands against its moving averages and momentum indicators."""

    # Two fields are named with leading digits on the wire, which Python names cannot be.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    above_20sma: bool
    above_50sma: bool
    above_200sma: bool
    sma_20_50_bullish: bool = Field(alias="20_50_bullish")
    sma_50_200_bullish: bool = Field(alias="50_200_bullish")
    rsi: float = Field(ge=0, le=100)
    macd_bullish: bool


class TechnicalIndicators(TraderModel):
    sma_20: float | None = None
    sma_50: float | None = None
    sma_200: float | None = None
    atr: NonNegative = Field(description="Average true range (14)")
    adrp: NonNegative = Field(description="Average daily range, percent")
    avg_20d_vol: NonNegative = Field(description="Average volume over 20 days")
    rsi: float = Field(ge=0, le=100, description="Relative strength index (14)")
    macd: float | None = None
    macd_signal: float | None = None
    macd_histogram: float | None = None


class TechnicalAnalysisResult(TraderModel):
    symbol: str
    current_price: NonNegative
    trend_status: TrendStatus
    indicators: TechnicalIndicators
    analysis_date: datetime = Field(default_factory=utc_now)


PatternType = Literal[
    "Double Bottom",
    "Double Top",
    "Resistance Breakout",
    "Support Breakdown",
    "Head and Shoulders",
    "Inverse Head and Shoulders",
    "Triangle",
    "Flag",
    "Wedge",
]
Confidence = Literal["Low", "Medium", "High"]


class ChartPattern(TraderModel):
    type: PatternType
    start_date: str | None = None
    end_date: str | None = None
    price_level: NonNegative = Field(description="The pattern's key price")
    confidence: Confidence
    additional_info: dict[str, Any] | None = None


class PatternDetectionResult(TraderModel):
    symbol: str
    patterns: list[ChartPattern]
    message: str | None = None
    analysis_date: datetime = Field(default_factory=utc_now)


# --- risk ----------------------------------------------------------------------------------

# mcp-trader accepts a risk per share this far from |entry - stop|, for float noise.
RISK_TOLERANCE = 0.01


class RMultiples(TraderModel):
    """Price targets at one, two and three times the risk taken."""

    r1: NonNegative
    r2: NonNegative
    r3: NonNegative


class PositionSizeResult(TraderModel):
    symbol: str
    entry_price: NonNegative
    stop_price: NonNegative
    recommended_shares: int = Field(ge=0)
    dollar_risk: NonNegative
    risk_per_share: NonNegative
    position_cost: NonNegative
    account_percent_risked: float = Field(ge=0, le=100)
    r_multiples: RMultiples

    @model_validator(mode="after")
    def _risk_is_the_stop_distance(self) -> PositionSizeResult:
        distance = abs(self.entry_price - self.stop_price)
        if abs(self.risk_per_share - distance) > RISK_TOLERANCE:
            raise ValidationError(
                "risk_per_share",
                self.risk_per_share,
                f"must equal |entry_price - stop_price| = {distance} (within {RISK_TOLERANCE})",
            )
        return self


class StopLevelSuggestions(TraderModel):
    """Stop prices for a long position, each below the current price."""

    symbol: str
    current_price: NonNegative
    atr_1x: NonNegative
    atr_2x: NonNegative
    atr_3x: NonNegative
    percent_2: NonNegative
    percent_5: NonNegative
    percent_8: NonNegative
    sma_20: NonNegative | None = None
    sma_50: NonNegative | None = None
    sma_200: NonNegative | None = None
    recent_swing: NonNegative | None = None

    @model_validator(mode="after")
    def _stops_below_price(self) -> StopLevelSuggestions:
        for name in STOP_FIELDS:
            level = getattr(self, name)
            if level >= self.current_price:
                raise ValidationError(
                    name, level, f"must be below current_price {self.current_price} (a long stop)"
                )
        return self


STOP_FIELDS = ("atr_1x", "atr_2x", "atr_3x", "percent_2", "percent_5", "percent_8")
OPTIONAL_STOP_FIELDS = ("sma_20", "sma_50", "sma_200", "recent_swing")
