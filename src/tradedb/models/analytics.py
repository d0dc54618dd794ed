"""Records of the analytics tables: performance_metrics and portfolio_snapshots."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator

from tradedb.errors import ValidationError
from tradedb.models.base import CreatedRecord, Record
from tradedb.models.fields import (
    Amount,
    Asset,
    EpochMs,
    Exchange,
    Name,
    Percent,
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
