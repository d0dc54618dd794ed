"""What a paper fill pays: maker and taker rates per exchange, the fee in quote currency.

The taker rates are the ledger's own (the rate it reserves with a buy: Kraken 0.26 %,
Binance 0.1 %, 0.26 % elsewhere), so a paper order's reservation always covers its fee.
Maker rates are the exchanges' base-tier maker fees; where tradedb knows none, a maker
pays the taker rate, which never makes a paper result look better than it would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradedb.errors import ValidationError
from tradedb.models.fields import OrderType
from tradedb.models.values import to_decimal
from tradedb.services.ledger.arithmetic import quantize
from tradedb.services.ledger.orders import fee_reserve_rate

MAKER_FEE_RATES: dict[str, Decimal] = {"kraken": Decimal("0.0016"), "binance": Decimal("0.001")}
# A fee rate above this is a typo (10 % per fill), not an exchange's schedule.
MAX_FEE_RATE = Decimal("0.1")


@dataclass(frozen=True)
class FeeSchedule:
    """The rates a session's fills pay, as fractions of the fill's value."""

    maker: Decimal
    taker: Decimal

    @classmethod
    def of(cls, exchange: str, *, taker: object = None, maker: object = None) -> FeeSchedule:
        """The exchange's defaults, with either rate overridden. A taker rate given alone
        applies to makers too: `--fee-rate 0.001` means every fill pays 0.1 %."""
        taker_rate = fee_reserve_rate(exchange) if taker is None else _rate(taker, "fee_rate")
        if maker is not None:
            maker_rate = _rate(maker, "maker_fee_rate")
        elif taker is not None:
            maker_rate = taker_rate
        else:
            maker_rate = MAKER_FEE_RATES.get(exchange, taker_rate)
        return cls(maker_rate, taker_rate)

    def rate(self, order_type: OrderType) -> Decimal:
        """A resting limit order adds liquidity (maker); a market order takes it, and so
        do stop-loss and take-profit orders, which become market orders when triggered."""
        return self.maker if order_type == "limit" else self.taker

    def fee(self, value: Decimal, order_type: OrderType) -> Decimal:
        """The fee of a fill worth `value` in quote currency, half-even at 1e-8."""
        return quantize(value * self.rate(order_type))


def _rate(value: object, field: str) -> Decimal:
    rate = to_decimal(value, field)
    if not Decimal(0) <= rate <= MAX_FEE_RATE:
        raise ValidationError(
            field, value, f"must be a fraction from 0 to {MAX_FEE_RATE} (0.001 is 0.1 %)"
        )
    return rate
