"""Equity adds up exactly (issue 17, item 9): at every instant a strategy's equity (cash
plus coins at the mark) is exactly its capital plus its realised and unrealised P&L, and
what the paper session reports is what the ledger recorded.

A paper session used to end 1e-8 apart (0.44741904 against 0.44741903): P&L was measured
against the rounded average entry price while cash moved by each fill's own value. P&L is
now measured against each position's cost basis (services.ledger.positions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradedb.services.paper import Strategy, plan_session, run_session
from tradedb.services.paper.orders import Action, OrderRequest
from tradedb.services.paper.strategies import Context
from tradedb.store import Store

HOUR = 3_600_000
T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
SYMBOL = "ETH/USD"


class Churner(Strategy):
    """Buys and sells awkward fractions on a fixed pattern, so that positions grow, shrink
    in pieces and close at prices whose averages never divide evenly."""

    name = "churner"
    defaults: ClassVar[Mapping[str, Decimal]] = {"seed": Decimal(1)}

    def on_candle(self, context: Context) -> Sequence[Action]:
        step = len(context.history.candles(SYMBOL)) + int(self.parameters["seed"])
        held = context.account.holding(SYMBOL)
        if step % 3 == 0 and held:
            third = (held * Decimal("0.33333333")).quantize(Decimal("1e-8"))
            return [OrderRequest(SYMBOL, "sell", amount=third)] if third else []
        if step % 5 == 4 and held:
            return [OrderRequest(SYMBOL, "sell", amount=held)]
        # Strategies run in tradedb's exact decimal context: multiply, never divide.
        spend = (context.account.cash * Decimal("0.14285714")).quantize(Decimal("1e-8"))
        return [OrderRequest(SYMBOL, "buy", spend=spend)] if spend > 0 else []


PRICE = st.decimals(min_value=Decimal("10"), max_value=Decimal("5000"), places=3)


@st.composite
def candles(draw: st.DrawFn) -> list[list[object]]:
    closes = draw(st.lists(PRICE, min_size=6, max_size=40))
    rows: list[list[object]] = []
    previous = closes[0]
    for hour, close in enumerate(closes):
        high, low = max(previous, close), min(previous, close)
        rows.append([T0 + hour * HOUR, previous, high, low, close, "10"])
        previous = close
    return rows


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=candles(),
    capital=st.decimals(min_value=Decimal("100"), max_value=Decimal("100000"), places=8),
    fee_rate=st.sampled_from(["0", "0.001", "0.0026", "0.00075321"]),
    seed=st.integers(min_value=0, max_value=14),
)
def test_equity_is_capital_plus_realised_plus_unrealised_pnl_exactly(
    tmp_path_factory: object, rows: list[list[object]], capital: Decimal, fee_rate: str, seed: int
) -> None:
    folder = Path(getattr(tmp_path_factory, "mktemp")("identity"))  # noqa: B009
    with Store.open(folder / "paper.sqlite") as store:
        store.write_candles(rows, exchange="kraken", symbol=SYMBOL, timeframe="1h")
        plan = plan_session(
            strategies=[Churner, "sma_cross", "rsi_revert"],
            exchange="kraken",
            symbols=[SYMBOL],
            since=T0,
            until=T0 + len(rows) * HOUR,
            timeframe="1h",
            capital=capital,
            fee_rate=fee_rate,
            parameters={
                "churner": {"seed": seed},
                "sma_cross": {"fast": 2, "slow": 3},
                "rsi_revert": {"period": 2},
            },
        )
        result = run_session(store, plan)
        recorded = {
            strategy: sum(
                (
                    trade.profit_loss or Decimal(0)
                    for trade in store.trades.list({"strategy": strategy}, limit=10_000).items
                ),
                Decimal(0),
            )
            for strategy in ("churner", "sma_cross", "rsi_revert")
        }
        open_positions = store.positions.list({"status": "open"}, limit=100).items

    for strategy in result.strategies:
        assert strategy.equity == (
            strategy.capital + strategy.realized_pnl + strategy.unrealized_pnl
        ), strategy.strategy
        assert strategy.realized_pnl == recorded[strategy.strategy]
    # The ledger's own positions, marked at the last close, agree with the session's.
    last_close = Decimal(str(rows[-1][4]))
    for position in open_positions:
        value = (position.amount * last_close).quantize(Decimal("1e-8"))
        (strategy,) = [s for s in result.strategies if s.strategy == position.strategy]
        assert value - position.cost_basis - position.open_fees == strategy.unrealized_pnl
