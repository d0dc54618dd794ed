"""Pydantic v2 records and value types. No I/O happens in this package."""

from tradedb.models.analytics import (
    Performance,
    PerformanceCreate,
    PortfolioSnapshot,
    PortfolioSnapshotCreate,
    ReferencePrice,
    ReferencePriceCreate,
)
from tradedb.models.base import Record, validate_record
from tradedb.models.market import Candle, CandleCreate, Ticker, TickerCreate
from tradedb.models.system import Config, ConfigCreate, Log, LogCreate
from tradedb.models.trading import (
    Order,
    OrderCreate,
    Position,
    PositionCreate,
    Trade,
    TradeCreate,
)
from tradedb.models.wallets import (
    BalanceHistory,
    BalanceHistoryCreate,
    SyncCursor,
    SyncCursorCreate,
    Wallet,
    WalletCreate,
    WalletMovement,
    WalletMovementCreate,
)

__all__ = [
    "BalanceHistory",
    "BalanceHistoryCreate",
    "Candle",
    "CandleCreate",
    "Config",
    "ConfigCreate",
    "Log",
    "LogCreate",
    "Order",
    "OrderCreate",
    "Performance",
    "PerformanceCreate",
    "PortfolioSnapshot",
    "PortfolioSnapshotCreate",
    "Position",
    "PositionCreate",
    "Record",
    "ReferencePrice",
    "ReferencePriceCreate",
    "SyncCursor",
    "SyncCursorCreate",
    "Ticker",
    "TickerCreate",
    "Trade",
    "TradeCreate",
    "Wallet",
    "WalletCreate",
    "WalletMovement",
    "WalletMovementCreate",
    "validate_record",
]
