"""The spec's `usd_value` columns of an exchange account, filled after each sync.

- `wallets.usd_value`: the wallet's total balance (available plus locked) at its USD
  price at the time given, the sync's own time.
- `balance_history.usd_value`: each row's balance at the USD price at the row's own
  timestamp, for the rows written since an id the caller noted before the sync (and
  still without a value, so a later run fills what an earlier one could not).

Prices come from the valuation service (stored tickers and candles, that exchange's
first). Where nothing gives one, the value stays NULL and the result says why: a price
is never invented. A balance of zero is worth zero whatever the price, so it needs none.

All of it is one transaction: the account's values are filled together or not at all.
Running it again with nothing new changes nothing, not even `updated_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradedb.errors import Unvaluable, ValidationError
from tradedb.models.values import check_exchange, format_plain, to_epoch_ms
from tradedb.services.analytics.snapshots import UnvaluedHolding
from tradedb.services.analytics.valuation import Valuer
from tradedb.services.ledger.arithmetic import exact, quantize
from tradedb.store import Store
from tradedb.store.usd_values import UsdValueRecords

ZERO_USD = quantize(Decimal(0))


@dataclass(frozen=True)
class UsdValues:
    """What one fill of an exchange's usd_value columns found and wrote."""

    exchange: str
    at_ms: int
    # USD value by asset, of every wallet that could be valued at at_ms.
    wallets: dict[str, Decimal]
    # The wallets whose usd_value is NULL, with the reason.
    unvalued: list[UnvaluedHolding]
    # balance_history rows given a value by this run, and rows still without one.
    history_valued: int
    history_unvalued: int

    @property
    def total_usd(self) -> Decimal:
        """The USD value of the wallets valued (those without a price are not in it)."""
        return sum(self.wallets.values(), ZERO_USD)

    @property
    def complete(self) -> bool:
        return not self.unvalued and not self.history_unvalued


def last_balance_history_id(store: Store) -> int:
    """The newest balance_history id (0 for none): note it before a sync, and pass it to
    `fill_usd_values` after, as `history_after_id`."""
    return UsdValueRecords(store.db).last_history_id()


@exact
def fill_usd_values(
    store: Store,
    exchange: str,
    *,
    history_after_id: int,
    at_ms: object,
    valuer: Valuer | None = None,
) -> UsdValues:
    """Fill the usd_value of every wallet of `exchange` (valued at `at_ms`, epoch ms or an
    aware datetime) and of its balance_history rows with an id above `history_after_id`
    (each valued at its own timestamp), in one transaction."""
    exchange = check_exchange(exchange)
    when = to_epoch_ms(at_ms, "at_ms")
    if isinstance(history_after_id, bool) or not isinstance(history_after_id, int):
        raise ValidationError("history_after_id", history_after_id, "must be a row id (int)")
    if history_after_id < 0:
        raise ValidationError("history_after_id", history_after_id, "must not be negative")
    records = UsdValueRecords(store.db)
    prices = valuer or Valuer(store)
    return store.db.retrying(
        lambda: _fill(records, prices, exchange, history_after_id=history_after_id, at_ms=when)
    )


def _fill(
    records: UsdValueRecords,
    valuer: Valuer,
    exchange: str,
    *,
    history_after_id: int,
    at_ms: int,
) -> UsdValues:
    pricing = _Pricing(valuer, exchange, records.limit)
    with records.db.transaction():
        valued: dict[str, Decimal] = {}
        unvalued: list[UnvaluedHolding] = []
        changed: dict[str, Decimal | None] = {}
        for wallet in records.wallets(exchange):
            value = pricing.usd_value(wallet.total, wallet.asset, at_ms)
            if isinstance(value, Decimal):
                valued[wallet.asset] = value
            else:
                unvalued.append(UnvaluedHolding(exchange, wallet.asset, wallet.total, value))
            new = value if isinstance(value, Decimal) else None
            if new != wallet.usd_value:
                changed[wallet.asset] = new
        records.set_wallet_values(exchange, changed)

        history: dict[int, Decimal] = {}
        missing = 0
        for row in records.unvalued_history(exchange, history_after_id):
            value = pricing.usd_value(row.balance, row.asset, row.timestamp)
            if isinstance(value, Decimal):
                history[row.id] = value
            else:
                missing += 1
        records.set_history_values(history)
    return UsdValues(exchange, at_ms, valued, unvalued, len(history), missing)


@dataclass(frozen=True)
class _Pricing:
    valuer: Valuer
    exchange: str
    # The largest value the usd_value columns hold on this engine.
    limit: Decimal

    def usd_value(self, amount: Decimal, asset: str, at_ms: int) -> Decimal | str:
        """The USD value of `amount` of `asset` at `at_ms`, or why there is none."""
        if not amount:
            return ZERO_USD
        try:
            value = self.valuer.value_usd(amount, asset, at_ms, exchange=self.exchange)
        except Unvaluable as exc:
            return exc.rule
        if abs(value) > self.limit:
            # Stored, it would be refused and take the whole account's values with it.
            return (
                f"its USD value {format_plain(value)} is beyond ±{format_plain(self.limit)}, "
                "the most the usd_value column holds"
            )
        return value
