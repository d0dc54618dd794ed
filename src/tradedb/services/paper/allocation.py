"""How a session's capital is split among its strategies.

- `equal` (the default): the same weight each.
- `fixed:0.6,0.4`: one weight per strategy, in the order the strategies were given, each a
  fraction of the capital. They may sum to less than 1 (the rest stays in the wallet,
  unused), never to more.
- `inverse-vol[:3d]`: weights proportional to 1/sigma, where sigma is the volatility of each
  strategy's own results over a lookback window (default 3 days) just before the session
  starts. Each strategy is run alone over that window, on paper and recording nothing,
  from the session's whole capital; sigma is the standard deviation of its equity's returns
  from one candle time to the next (equity = cash + coins at the latest close). A strategy
  that swung more gets less, so each contributes about the same risk. Sigma is measured on
  the strategies' results rather than on the markets' prices because every strategy of a
  session trades the same markets: the markets' volatility would give equal weights.

Weights are exact Decimals at 8 decimals. Derived weights (equal, inverse-vol) are rounded
by the largest-remainder method so that they sum to exactly 1: rounding each one half-even
could make them sum to 1.00000001, more than the capital. A strategy's capital is the
capital times its weight, rounded down to 1e-8 so that the strategies' capital never adds
up to more than was deposited.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Literal

from tradedb.errors import ValidationError
from tradedb.models.values import to_decimal
from tradedb.services.paper.indicators import INDICATOR

UNITS = 10**8
DEFAULT_LOOKBACK_DAYS = 3
MAX_LOOKBACK_DAYS = 365
ONE = Decimal(1)
FORMS = "equal, fixed:W1,W2,... (one fraction of the capital per strategy) or inverse-vol[:Nd]"


@dataclass(frozen=True)
class Allocation:
    kind: Literal["equal", "fixed", "inverse-vol"]
    weights: tuple[Decimal, ...] = ()  # fixed only
    lookback_days: int = DEFAULT_LOOKBACK_DAYS  # inverse-vol only

    @property
    def text(self) -> str:
        if self.kind == "fixed":
            return "fixed:" + ",".join(format(w, "f") for w in self.weights)
        if self.kind == "inverse-vol":
            return f"inverse-vol:{self.lookback_days}d"
        return "equal"


def parse_allocation(text: str | None, strategies: Sequence[str]) -> Allocation:
    """Read `equal`, `fixed:0.6,0.4` or `inverse-vol[:Nd]`, checked against the strategies."""
    given = "equal" if text is None else text.strip()
    kind, _, rest = given.partition(":")
    if kind == "equal" and not rest:
        return Allocation("equal")
    if kind == "fixed":
        weights = tuple(_weight(part, given) for part in rest.split(","))
        if len(weights) != len(strategies):
            raise ValidationError(
                "allocation",
                given,
                f"has {len(weights)} weights for {len(strategies)} strategies "
                f"({', '.join(strategies)}); give one per strategy, in the same order",
            )
        total = sum(weights, Decimal(0))
        if total > ONE:
            raise ValidationError(
                "allocation",
                given,
                f"weights sum to {format(total, 'f')} ({format(total * 100, 'f')} %), above "
                "100 % of the capital",
            )
        return Allocation("fixed", weights)
    if kind == "inverse-vol":
        days = DEFAULT_LOOKBACK_DAYS
        if rest:
            number = rest[:-1]
            if not rest.endswith("d") or not number.isdigit():
                raise ValidationError(
                    "allocation", given, "the lookback is whole days, e.g. inverse-vol:3d"
                )
            days = int(number)
        if not 1 <= days <= MAX_LOOKBACK_DAYS:
            raise ValidationError(
                "allocation", given, f"the lookback must be 1 to {MAX_LOOKBACK_DAYS} days"
            )
        return Allocation("inverse-vol", lookback_days=days)
    raise ValidationError("allocation", given, f"must be {FORMS}")


def _weight(text: str, given: str) -> Decimal:
    weight = to_decimal(text, "allocation")
    if weight < 0:
        raise ValidationError("allocation", given, "a weight cannot be negative")
    return weight


def equal_weights(strategies: Sequence[str]) -> dict[str, Decimal]:
    return _largest_remainder({name: Fraction(1, len(strategies)) for name in strategies})


def inverse_volatility_weights(volatilities: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Weights proportional to 1/sigma, summing to exactly 1. Every sigma must be positive."""
    for name, sigma in volatilities.items():
        if sigma <= 0:
            raise ValidationError(
                "allocation",
                "inverse-vol",
                f"strategy {name} did not move in the lookback window (sigma = 0: no trades), "
                "so its risk is unknown; use a longer lookback (inverse-vol:7d) or fixed weights",
            )
    inverse = {name: 1 / Fraction(sigma) for name, sigma in volatilities.items()}
    total = sum(inverse.values(), Fraction(0))
    return _largest_remainder({name: value / total for name, value in inverse.items()})


def _largest_remainder(shares: Mapping[str, Fraction]) -> dict[str, Decimal]:
    """Shares summing to 1 as 8-decimal weights summing to exactly 1: each rounded down,
    then the units left over go one each to the largest remainders (the first given
    wins a tie)."""
    scaled = {name: share * UNITS for name, share in shares.items()}
    units = {name: math.floor(value) for name, value in scaled.items()}
    left = UNITS - sum(units.values())
    by_remainder = sorted(shares, key=lambda name: -(scaled[name] - units[name]))
    for name in by_remainder[:left]:
        units[name] += 1
    return {name: Decimal(units[name]).scaleb(-8) for name in shares}


def volatility(equity: Sequence[Decimal]) -> Decimal:
    """Population standard deviation of the returns between consecutive equity values
    (28 significant digits: a ratio, never a stored amount)."""
    if len(equity) < 3:
        return Decimal(0)
    with localcontext(INDICATOR):
        returns = [now / before - 1 for before, now in itertools.pairwise(equity)]
        mean = sum(returns, Decimal(0)) / len(returns)
        variance = sum(((r - mean) ** 2 for r in returns), Decimal(0)) / len(returns)
        return variance.sqrt()


def split_capital(capital: Decimal, weights: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Each strategy's capital: capital x weight, rounded down to 1e-8."""
    return {
        name: Decimal(math.floor(Fraction(capital) * Fraction(weight) * UNITS)).scaleb(-8)
        for name, weight in weights.items()
    }
