"""A session's money: the deposit that funds it and the capital it records per strategy.

- The capital is deposited into the exchange's wallet of the quote currency through
  `Ledger.deposit`, with the reference `paper-<session id>`, at the session's start: run
  again, the same session does not deposit twice.
- Each strategy's allocated capital goes into `bot_config` under
  `capital.<strategy>.<exchange>` (config_type 'number'), in USD, the unit analytics reads
  it in: the capital in the quote currency times the quote's USD price, half-even at
  1e-8. The price is the session's `quote_usd`, else the quote's stored reference price
  holding at the session's start (table reference_prices); a USD quote is worth 1. With
  no price known nothing is recorded and the session warns.
"""

from __future__ import annotations

from decimal import Decimal

from tradedb.errors import ValidationError
from tradedb.models.values import format_decimal, format_plain, to_decimal
from tradedb.services.analytics.references import ReferencePrices
from tradedb.services.ledger import Ledger
from tradedb.services.ledger.arithmetic import quantize
from tradedb.store import Store

USD = "USD"


def deposit_reference(session_id: str) -> str:
    return f"paper-{session_id}"


def capital_key(strategy: str, exchange: str) -> str:
    return f"capital.{strategy}.{exchange}"


def fund(
    ledger: Ledger, *, exchange: str, asset: str, amount: Decimal, at: int, session_id: str
) -> bool:
    """Deposit the session's capital; False when this session had deposited it already."""
    result = ledger.deposit(
        exchange=exchange,
        asset=asset,
        amount=amount,
        timestamp=at,
        reference=deposit_reference(session_id),
    )
    return not result.duplicate


def already_funded(store: Store, exchange: str, session_id: str) -> bool:
    return store.ledger.movement(exchange, "deposit", deposit_reference(session_id)) is not None


def quote_usd_price(store: Store, quote: str, at_ms: int, given: object = None) -> Decimal | None:
    """The quote currency's USD price at `at_ms`: given, else its stored reference price
    holding then, else 1 for USD itself, else None."""
    if given is not None:
        price = to_decimal(given, "quote_usd")
        if price <= 0:
            raise ValidationError("quote_usd", given, "must be greater than zero")
        return price
    with store.db.snapshot():
        stored = ReferencePrices.load(store, quote).at(quote, at_ms)
    if stored is not None:
        return stored.price_usd
    return Decimal(1) if quote == USD else None


def record_capital(
    store: Store,
    *,
    strategy: str,
    exchange: str,
    capital: Decimal,
    quote: str,
    quote_usd: Decimal,
    session_id: str,
) -> Decimal:
    """Store the strategy's capital in USD under capital.<strategy>.<exchange>; return it."""
    usd = quantize(capital * quote_usd)
    store.config.upsert(
        {
            "config_key": capital_key(strategy, exchange),
            "config_value": format_decimal(usd),
            "config_type": "number",
            "strategy": strategy,
            "description": (
                f"paper session {session_id}: {format_plain(capital)} {quote} at "
                f"{format_plain(quote_usd)} USD"
            ),
        }
    )
    return usd
