"""The shipped strategies' own indicators over a charted market, so that a candle chart
shows what each strategy looked at: sma_cross's fast and slow moving averages over the
prices, rsi_revert's RSI in a panel of its own with the levels it buys and sells at.

They are computed by the indicator classes the strategies themselves use (`RollingSum`,
`WilderRsi`), fed one close at a time as a session feeds them. The parameters are the
strategy's defaults: a paper session stores its parameters nowhere in the database (its
order ids hold only a hash of them), so a report cannot know a session's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from tradedb.models.values import AMOUNT
from tradedb.services.ledger.arithmetic import quantize
from tradedb.services.paper.indicators import INDICATOR, RollingSum, WilderRsi
from tradedb.services.paper.strategies import STRATEGIES, RsiRevert, SmaCross, Strategy

PRICE = "price"  # drawn over the candles, in the market's quote currency
OSCILLATOR = "oscillator"  # drawn in a panel of its own, 0 to 100
# RSI is shown to 2 decimals; averages of prices at the 8 decimals prices are stored with.
RSI_DECIMALS = 2
_RSI_UNIT = Decimal(1).scaleb(-RSI_DECIMALS)
# Wilder's averages never forget their first value entirely; after this many periods its
# weight is below (13/14)^140, about 3e-5 of RSI 14, so the chart's first RSI values are
# the ones the session's strategy saw, whenever its session began.
RSI_WARMUP_PERIODS = 10


@dataclass(frozen=True)
class Indicator:
    """One line a strategy computes over a market's candles: a value per charted candle,
    None until the indicator has seen enough candles."""

    strategy: str
    label: str
    panel: str  # PRICE or OSCILLATOR
    values: tuple[Decimal | None, ...]  # rounded half-even to `decimals`
    decimals: int
    levels: tuple[Decimal, ...] = ()  # thresholds the strategy acts on, drawn as lines


def _strategy(name: str) -> Strategy | None:
    """The strategy of that name with its default parameters, if it is one whose
    indicators a chart can draw."""
    cls = STRATEGIES.get(name)
    if cls is None or not issubclass(cls, (SmaCross, RsiRevert)):
        return None
    return cls()


def parameters(name: str) -> Mapping[str, Decimal] | None:
    """The parameters a chart draws `name`'s indicators with; None when it draws none."""
    strategy = _strategy(name)
    return None if strategy is None else strategy.parameters


def warmup(names: Sequence[str]) -> int:
    """How many candles before the chart's first the indicators of `names` need, so
    that they start at the values the strategies saw there."""
    needed = 0
    for name in names:
        strategy = _strategy(name)
        if isinstance(strategy, SmaCross):
            needed = max(needed, strategy.slow - 1)
        elif isinstance(strategy, RsiRevert):
            needed = max(needed, RSI_WARMUP_PERIODS * strategy.period)
    return needed


def indicators(names: Sequence[str], closes: Sequence[Decimal], charted: int) -> list[Indicator]:
    """Every indicator of the strategies `names` over `closes` (the warm-up candles' and
    then the charted ones'), for the last `charted` candles."""
    found: list[Indicator] = []
    for name in names:
        strategy = _strategy(name)
        if isinstance(strategy, SmaCross):
            for size in (strategy.fast, strategy.slow):
                average = _average(closes, size)
                found.append(Indicator(name, f"SMA {size}", PRICE, average, AMOUNT.scale))
        elif isinstance(strategy, RsiRevert):
            levels = (strategy.buy_below, strategy.sell_above)
            rsi = _rsi(closes, strategy.period)
            label = f"RSI {strategy.period}"
            found.append(Indicator(name, label, OSCILLATOR, rsi, RSI_DECIMALS, levels))
    first = len(closes) - charted
    return [replace(line, values=line.values[first:]) for line in found]


def _average(closes: Sequence[Decimal], size: int) -> tuple[Decimal | None, ...]:
    window = RollingSum(size)
    values: list[Decimal | None] = []
    with localcontext(INDICATOR):
        for close in closes:
            window.push(close)
            values.append(quantize(window.total / size) if window.full else None)
    return tuple(values)


def _rsi(closes: Sequence[Decimal], period: int) -> tuple[Decimal | None, ...]:
    rsi = WilderRsi(period)
    values: list[Decimal | None] = []
    for close in closes:
        value = rsi.push(close)
        shown = None if value is None else value.quantize(_RSI_UNIT, ROUND_HALF_EVEN)
        values.append(shown)
    return tuple(values)
