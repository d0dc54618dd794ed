"""Paper trading: strategies trading stored candles on a simulated exchange, every order
and fill recorded through the ledger as live trading would record them (docs/paper.md)."""

from tradedb.services.paper.session import (
    SessionPlan,
    SessionResult,
    StrategyResult,
    plan_session,
    run_session,
)
from tradedb.services.paper.strategies import (
    STRATEGIES,
    Context,
    LongOnlyStrategy,
    Strategy,
    register,
)

__all__ = [
    "STRATEGIES",
    "Context",
    "LongOnlyStrategy",
    "SessionPlan",
    "SessionResult",
    "Strategy",
    "StrategyResult",
    "plan_session",
    "register",
    "run_session",
]
