"""USD reference prices: a configured price of an asset, valid for a stated period.

Market data values most holdings. Where it cannot (the Binance sample holds no BTC/USD
market), a reference price stands in, but only for the period it was meant for: a price
for January 2018 says nothing about 2023. The rules (docs/metrics.md, "Reference prices"):

- A price holds from `valid_from` (inclusive) until `valid_until` (exclusive), epoch ms
  UTC; an open end is None. Every reader (valuation, snapshots, metrics, paper funding)
  asks for the price *at* an instant and gets none outside the period.
- The periods of one asset never overlap, so the price at any instant is unambiguous.
  Setting the same price, period and source again changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from tradedb.errors import UnknownRecord, ValidationError
from tradedb.models import ReferencePrice, ReferencePriceCreate, validate_record
from tradedb.models.values import check_asset, format_plain, ms_to_datetime, parse_time_bound
from tradedb.store import Store


@dataclass(frozen=True)
class ReferencePrices:
    """The stored reference prices of one database, by asset, earliest period first."""

    by_asset: dict[str, list[ReferencePrice]] = field(default_factory=dict)

    @classmethod
    def load(cls, store: Store, asset: str | None = None) -> ReferencePrices:
        by_asset: defaultdict[str, list[ReferencePrice]] = defaultdict(list)
        for row in _all(store, asset):
            by_asset[row.asset].append(row)
        for rows in by_asset.values():
            rows.sort(key=_start)
        return cls(dict(by_asset))

    def at(self, asset: str, at_ms: int) -> ReferencePrice | None:
        """The price of `asset` that holds at `at_ms`, if any."""
        return next((row for row in self.by_asset.get(asset, ()) if row.covers(at_ms)), None)

    def rows(self) -> list[ReferencePrice]:
        return [row for asset in sorted(self.by_asset) for row in self.by_asset[asset]]


def set_reference_price(
    store: Store,
    asset: str,
    price_usd: object,
    *,
    source: str,
    valid_from: object = None,
    valid_until: object = None,
) -> ReferencePrice:
    """Store `asset`'s USD price for the period; the existing row when the same price,
    period and source are stored already. A period overlapping another of the same asset
    is refused, naming that one."""
    wanted = validate_record(
        ReferencePriceCreate,
        {
            "asset": asset,
            "price_usd": price_usd,
            "source": source.strip() if isinstance(source, str) else source,
            "valid_from": None
            if valid_from is None
            else parse_time_bound(valid_from, "valid_from"),
            "valid_until": (
                None if valid_until is None else parse_time_bound(valid_until, "valid_until")
            ),
        },
    )
    with store.db.transaction():
        for row in _all(store, wanted.asset):
            if ReferencePriceCreate.model_validate(row.model_dump(include=_FIELDS)) == wanted:
                return row
            if row.overlaps(wanted):
                raise ValidationError(
                    "valid_from",
                    describe_period(wanted),
                    f"overlaps reference price #{row.id} of {row.asset} "
                    f"({format_plain(row.price_usd)} USD, {describe_period(row)}); the periods "
                    "of one asset must not overlap: remove that one first or choose another "
                    "period",
                )
        return store.reference_prices.insert(wanted)


def remove_reference_price(store: Store, price_id: int) -> ReferencePrice:
    removed = store.reference_prices.delete(price_id)
    if removed is None:
        raise UnknownRecord("reference_prices", price_id, "no reference price has this id")
    return removed


def list_reference_prices(
    store: Store, asset: str | None = None, *, at: int | None = None
) -> list[ReferencePrice]:
    """Every stored reference price (of `asset`), by asset and period; with `at`, only
    those that hold at that instant."""
    with store.db.snapshot():
        prices = ReferencePrices.load(store, asset)
    return [row for row in prices.rows() if at is None or row.covers(at)]


def describe_period(row: ReferencePriceCreate) -> str:
    """The period in words, e.g. 'from 2018-01-10 00:00 UTC until 2018-02-01 00:00 UTC'."""
    if row.valid_from is None and row.valid_until is None:
        return "at any time"
    parts = []
    if row.valid_from is not None:
        parts.append(f"from {_when(row.valid_from)}")
    if row.valid_until is not None:
        parts.append(f"until {_when(row.valid_until)}")
    return " ".join(parts)


_FIELDS = set(ReferencePriceCreate.model_fields)


def _all(store: Store, asset: str | None) -> Iterable[ReferencePrice]:
    where = {} if asset is None else {"asset": check_asset(asset, "asset")}
    return store.reference_prices.every(where)


def _start(row: ReferencePrice) -> int:
    return -(2**63) if row.valid_from is None else row.valid_from


def _when(millis: int) -> str:
    return ms_to_datetime(millis).strftime("%Y-%m-%d %H:%M UTC")
