"""Round trips: a position from the fill that opened it to the fill that closed it, replayed
from the fills with the ledger's own position rules (services.ledger.positions).

A round trip's P&L is the sum of its closing fills' `profit_loss` (net of the fees of both
legs, in the quote currency), its cost what its opening fills paid (amount x price), its
return P&L over cost and its duration from the first fill to the one that left it flat.
A fill larger than the position closes one round trip and opens the next on the other
side. The trade figures (win rate, profit factor, expectancy, average win and loss,
exposure) are computed here once, for the performance rows and every report.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from tradedb.models.values import market_assets
from tradedb.services.analytics.figures import (
    Figure,
    Undefined,
    percent,
    percent_figure,
    ratio_figure,
)
from tradedb.services.ledger.arithmetic import quantize
from tradedb.services.ledger.positions import Holding, apply_fill, fill_terms
from tradedb.store.analytics import Fill

ZERO = Decimal(0)
MONEY_FIGURES = ("profit_factor", "expectancy", "average_win", "average_loss")


@dataclass(frozen=True)
class RoundTrip:
    strategy: str | None
    exchange: str
    symbol: str
    side: str  # "long" or "short"
    opened_at: int  # epoch ms of the opening fill
    closed_at: int  # epoch ms of the fill that left the position flat
    cost: Decimal  # quote currency: what the opening fills paid
    pnl: Decimal  # quote currency, net of both legs' fees

    @property
    def quote(self) -> str:
        return market_assets(self.symbol)[1]

    @property
    def duration_ms(self) -> int:
        return self.closed_at - self.opened_at

    @property
    def return_percent(self) -> Decimal | None:
        return percent(Fraction(self.pnl) / Fraction(self.cost)) if self.cost else None


@dataclass
class _Open:
    opened_at: int
    side: str
    cost: Decimal
    pnl: Decimal = ZERO


@dataclass
class StrategyBook:
    """What one strategy (or the fills without one) has done on one exchange, replayed
    from its fills: open holdings, realized P&L by quote currency, fees paid in a third
    currency, and the round trips closed so far."""

    strategy: str | None
    exchange: str
    capital: Decimal = ZERO
    holdings: dict[str, Holding] = field(default_factory=dict)
    realized: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    third_currency_fees: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    closed: list[RoundTrip] = field(default_factory=list)
    first_fill: int | None = None  # epoch ms
    last_fill: int | None = None
    _open: dict[str, _Open] = field(default_factory=dict)

    def apply(self, fill: Fill) -> RoundTrip | None:
        """Replay one fill; the round trip it closed, if any."""
        if self.first_fill is None:
            self.first_fill = fill.timestamp
        self.last_fill = fill.timestamp
        quote = market_assets(fill.symbol)[1]
        # The ledger's own terms (docs/ledger.md, "Fees and P&L"): a base fee changes the
        # amount moved; a third currency's is not in P&L, and is kept apart here.
        terms = fill_terms(
            fill.symbol,
            fill.side,
            fill.amount,
            fill.price,
            fee=fill.fee,
            currency=fill.fee_currency,
        )
        if terms.third_currency_fee:
            self.third_currency_fees[fill.fee_currency or quote] += fill.fee
        moved = terms.moved
        change = apply_fill(
            self.holdings.get(fill.symbol),
            terms.direction,
            moved,
            fill.price,
            terms.fee,
            value=terms.value,
        )
        # The position table's realized_pnl is the sum of these same profit_loss values.
        if fill.profit_loss is not None:
            self.realized[quote] += fill.profit_loss
        finished = self._track(fill, change.closed_amount, change.opened, terms.value)
        held = change.opened or change.existing
        if held is not None and held.amount:
            self.holdings[fill.symbol] = held
        else:
            self.holdings.pop(fill.symbol, None)
        return finished

    def _track(
        self, fill: Fill, closed_amount: Decimal, opened: Holding | None, value: Decimal
    ) -> RoundTrip | None:
        trip = self._open.get(fill.symbol)
        finished = None
        if trip is not None and closed_amount:
            trip.pnl += fill.profit_loss or ZERO
            if self.holdings[fill.symbol].amount == closed_amount:
                finished = RoundTrip(
                    self.strategy,
                    self.exchange,
                    fill.symbol,
                    trip.side,
                    trip.opened_at,
                    fill.timestamp,
                    trip.cost,
                    trip.pnl,
                )
                self.closed.append(finished)
                del self._open[fill.symbol]
        elif trip is not None:
            trip.cost += value
        if opened is not None:
            self._open[fill.symbol] = _Open(fill.timestamp, opened.side, opened.basis)
        return finished

    def open_since(self) -> dict[str, int]:
        """When each position still open was opened, by market."""
        return {symbol: trip.opened_at for symbol, trip in self._open.items()}


def replay(fills: Iterable[Fill]) -> dict[tuple[str | None, str], StrategyBook]:
    """Every (strategy, exchange)'s book after `fills` (in time order)."""
    books: dict[tuple[str | None, str], StrategyBook] = {}
    for fill in fills:
        key = (fill.strategy, fill.exchange)
        book = books.get(key)
        if book is None:
            book = books[key] = StrategyBook(fill.strategy, fill.exchange)
        book.apply(fill)
    return books


@dataclass(frozen=True)
class TradeFigures:
    """The round trips of a scope over a period, summed up."""

    round_trips: int
    wins: int
    losses: int
    win_rate: Figure
    profit_factor: Figure
    expectancy: Figure  # quote currency per round trip
    average_win: Figure
    average_loss: Figure
    currency: str | None  # the quote currency of the money figures, None if several
    average_duration_ms: int | None
    exposure: Figure  # percent of the period with a position open


def trade_figures(
    trips: Sequence[RoundTrip], open_spans: Sequence[tuple[int, int]], period: tuple[int, int]
) -> TradeFigures:
    """The figures of `trips` (the round trips closed in `period`, [start, end) epoch ms);
    `open_spans` are the spans positions were open in it (closed round trips and those
    still open), for the exposure."""
    wins = [trip.pnl for trip in trips if trip.pnl > 0]
    losses = [trip.pnl for trip in trips if trip.pnl < 0]
    decided = len(wins) + len(losses)
    currencies = sorted({trip.quote for trip in trips})
    money: dict[str, Figure] = {}
    if not trips:
        money = dict.fromkeys(MONEY_FIGURES, Undefined("no round trip closed in the period"))
    elif len(currencies) > 1:
        several = f"the round trips are in several currencies ({', '.join(currencies)})"
        money = dict.fromkeys(MONEY_FIGURES, Undefined(several))
    else:
        gained, lost = sum(wins, ZERO), -sum(losses, ZERO)
        money["profit_factor"] = (
            ratio_figure(Fraction(gained) / Fraction(lost))
            if lost
            else Undefined("no losing round trip")
        )
        money["expectancy"] = quantize(sum((trip.pnl for trip in trips), ZERO) / len(trips))
        money["average_win"] = (
            quantize(gained / len(wins)) if wins else Undefined("no winning round trip")
        )
        money["average_loss"] = (
            quantize(-lost / len(losses)) if losses else Undefined("no losing round trip")
        )
    durations = [trip.duration_ms for trip in trips]
    return TradeFigures(
        round_trips=len(trips),
        wins=len(wins),
        losses=len(losses),
        win_rate=(
            percent_figure(Fraction(len(wins), decided))
            if decided
            else Undefined("no round trip won or lost in the period")
        ),
        currency=currencies[0] if len(currencies) == 1 else None,
        average_duration_ms=sum(durations) // len(durations) if durations else None,
        exposure=_exposure(open_spans, period),
        **money,
    )


def _exposure(spans: Sequence[tuple[int, int]], period: tuple[int, int]) -> Figure:
    start, end = period
    if end <= start:
        return Undefined("the period is empty")
    covered, reach = 0, start
    for opened, closed in sorted(spans):
        first, last = max(opened, reach), min(closed, end)
        if last > first:
            covered += last - first
            reach = last
    return percent_figure(Fraction(covered, end - start))
