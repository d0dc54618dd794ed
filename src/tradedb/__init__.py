"""tradedb: exact, durable storage and bookkeeping for crypto trading bots.

`tradedb.open(path_or_url)` is the one door: it returns a `TradeDB`, whose attributes hold
everything a program does with a database. The names below are the public API; every
module under `tradedb` is tradedb's own and may change.
"""

__version__ = "0.1.0"

from tradedb.api import (
    Analytics,
    BotConfig,
    BotLogs,
    CcxtShapes,
    MarketData,
    Operations,
    TableReader,
    Tables,
    TradeDB,
    open,
)
from tradedb.errors import (
    AmountOutOfRange,
    DatabaseDamaged,
    DatabaseLocationError,
    DuplicateRecord,
    ExchangeUnavailable,
    InsufficientFunds,
    InvalidTransition,
    NetworkShareWarning,
    OwnerOnlyWarning,
    SchemaVersionError,
    TradeDBError,
    TradeDBWarning,
    UnknownName,
    UnknownRecord,
    Unvaluable,
    ValidationError,
)
from tradedb.models import (
    BalanceHistory,
    Candle,
    Config,
    Log,
    Order,
    Performance,
    PortfolioSnapshot,
    Position,
    Ticker,
    Trade,
    Wallet,
    WalletMovement,
)
from tradedb.services.ledger import (
    BalanceDifference,
    FillResult,
    Ledger,
    MarkResult,
    Reconciliation,
    TransferResult,
)
from tradedb.services.ledger.listing import Filters
from tradedb.services.paper import LongOnlyStrategy, Strategy
from tradedb.services.paper import register as register_strategy
from tradedb.store.bulk import BulkResult
from tradedb.store.database import (
    DatabaseUnavailable,
    ReadOnlyDatabaseError,
    TransactionModeError,
)
from tradedb.store.ledger import Balance
from tradedb.store.repository import Page

__all__ = [
    "AmountOutOfRange",
    "Analytics",
    "Balance",
    "BalanceDifference",
    "BalanceHistory",
    "BotConfig",
    "BotLogs",
    "BulkResult",
    "Candle",
    "CcxtShapes",
    "Config",
    "DatabaseDamaged",
    "DatabaseLocationError",
    "DatabaseUnavailable",
    "DuplicateRecord",
    "ExchangeUnavailable",
    "FillResult",
    "Filters",
    "InsufficientFunds",
    "InvalidTransition",
    "Ledger",
    "Log",
    "LongOnlyStrategy",
    "MarkResult",
    "MarketData",
    "NetworkShareWarning",
    "Operations",
    "Order",
    "OwnerOnlyWarning",
    "Page",
    "Performance",
    "PortfolioSnapshot",
    "Position",
    "ReadOnlyDatabaseError",
    "Reconciliation",
    "SchemaVersionError",
    "Strategy",
    "TableReader",
    "Tables",
    "Ticker",
    "Trade",
    "TradeDB",
    "TradeDBError",
    "TradeDBWarning",
    "TransactionModeError",
    "TransferResult",
    "UnknownName",
    "UnknownRecord",
    "Unvaluable",
    "ValidationError",
    "Wallet",
    "WalletMovement",
    "open",
    "register_strategy",
]
