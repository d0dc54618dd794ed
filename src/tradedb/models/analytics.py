"""Records of the analytics tables: performance_metrics, portfolio_snapshots and the
USD reference prices that value what market data cannot."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator

from tradedb.errors import ValidationError
from tradedb.models.base import CreatedRecord, Record, UpdatedRecord
from tradedb.models.fields import (
    Amount,
    Asset,
    EpochMs,
    Exchange,
    Name,
    Percent,
    PositiveAmount,
    SignedAmount,
    SignedPercent,
)
from tradedb.models.values import to_iso_date


def _iso_date(value: object, info: ValidationInfo) -> str:
    return to_iso_date(value, info.field_name or "date")


IsoDate = Annotated[str, BeforeValidator(_iso_date)]
Count = Annotated[int, Field(ge=0, strict=True)]


class PerformanceCreate(Record):
    """One day of results. strategy=None and exchange=None mean "all of them"."""

    date: IsoDate
    total_portfolio_value: Amount
    daily_pnl: SignedAmount | None = Decimal(0)
    daily_pnl_percent: SignedPercent | None = Decimal(0)
    total_trades: Count | None = 0
    winning_trades: Count | None = 0
    losing_trades: Count | None = 0
    win_rate: Percent | None = Decimal(0)
    sharpe_ratio: SignedPercent | None = None
    max_drawdown: SignedPercent | None = None
    strategy: Name | None = None
    exchange: Exchange | None = None

    @model_validator(mode="after")
    def _counts_add_up(self) -> PerformanceCreate:
        wins, losses = self.winning_trades or 0, self.losing_trades or 0
        if wins + losses > (self.total_trades or 0):
            raise ValidationError(
                "total_trades",
                self.total_trades,
                f"is less than winning_trades + losing_trades = {wins + losses}",
            )
        if self.win_rate is not None and self.win_rate > 100:
            raise ValidationError("win_rate", self.win_rate, "is a percentage from 0 to 100")
        return self


class Performance(PerformanceCreate, CreatedRecord):
    pass


class PortfolioSnapshotCreate(Record):
    timestamp: EpochMs
    asset: Asset
    amount: Amount
    usd_value: Amount
    price_per_unit: Amount
    exchange: Exchange


class PortfolioSnapshot(PortfolioSnapshotCreate, CreatedRecord):
    pass


class ReferencePriceCreate(Record):
    """A USD price of `asset`, configured for the period from `valid_from` (inclusive) to
    `valid_until` (exclusive), epoch ms UTC; None leaves that end open. `source` says where
    the figure comes from, for whoever reads a valuation built on it."""

    asset: Asset
    price_usd: PositiveAmount
    valid_from: EpochMs | None = None
    valid_until: EpochMs | None = None
    source: Annotated[str, Field(min_length=1, max_length=2000)]

    @model_validator(mode="after")
    def _period_runs_forward(self) -> ReferencePriceCreate:
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_until <= self.valid_from
        ):
            raise ValidationError(
                "valid_until",
                self.valid_until,
                f"must be after valid_from={self.valid_from} (the period's end is exclusive)",
            )
        return self

    def covers(self, at_ms: int) -> bool:
        """Whether the price holds at `at_ms`."""
        return (self.valid_from is None or self.valid_from <= at_ms) and (
            self.valid_until is None or at_ms < self.valid_until
        )

    def overlaps(self, other: ReferencePriceCreate) -> bool:
        """Whether the two periods share an instant (the same asset is the caller's check)."""
        starts_before_other_ends = (
            self.valid_from is None
            or other.valid_until is None
            or self.valid_from < other.valid_until
        )
        ends_after_other_starts = (
            self.valid_until is None
            or other.valid_from is None
            or other.valid_from < self.valid_until
        )
        return starts_before_other_ends and ends_after_other_starts


class ReferencePrice(ReferencePriceCreate, UpdatedRecord):
    pass
