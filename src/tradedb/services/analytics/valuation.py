"""Valuation: the USD price of any asset at a time, from stored tickers and candles.

The rules (docs/metrics.md explains them to users):

- A quote is the latest stored ticker `last_price` at or before t, or the close of the
  latest stored candle that had closed by t, whichever is newer (a ticker on a tie).
  Tickers and candles retention archived count as stored (MarketHistory).
  Quotes older than `max_age_ms` (default one day) are not used.
- USD, USDT and USDC count as USD (configurable: `usd_assets`).
- Routes, in this order: a direct market ASSET/USD or its inverse USD/ASSET; through one
  intermediate asset X (ASSET/X or X/ASSET, then X's own direct USD market); the asset's
  own reference price; through an intermediate X valued by X's reference price. Market
  data comes before reference prices, and the asset's own reference before another's.
- A stored reference price values only instants inside its period (services.analytics.
  references); one given to the Valuer holds at any time, for that Valuer alone.
- The price is computed exactly and quantized half-even to 8 decimals once, at the end.
- Nothing values the asset: `Unvaluable`, naming the asset, the time and what was tried.
  A price is never invented.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from tradedb.errors import Unvaluable, ValidationError
from tradedb.models.values import check_asset, market_assets, ms_to_datetime, to_decimal
from tradedb.services.analytics.references import ReferencePrices, describe_period
from tradedb.services.ledger.arithmetic import quantize
from tradedb.services.marketdata.history import MarketHistory
from tradedb.store import Store
from tradedb.store.analytics import DAY_MS, AnalyticsRecords, StoredQuote

DEFAULT_USD_ASSETS = ("USD", "USDT", "USDC")
DEFAULT_MAX_AGE_MS = DAY_MS
# Intermediates tried first: the quote currencies most markets are listed against.
PREFERRED_INTERMEDIATES = ("BTC", "ETH")
_UNITS_PER_ONE = 10**8


@dataclass(frozen=True)
class Leg:
    """One step of a route: a stored quote, used as it is or inverted."""

    quote: StoredQuote
    inverted: bool = False

    @property
    def factor(self) -> Fraction:
        price = Fraction(self.quote.price)
        return 1 / price if self.inverted else price

    @property
    def label(self) -> str:
        return f"{self.quote.symbol} (inverse)" if self.inverted else self.quote.symbol


@dataclass(frozen=True)
class Valuation:
    """The USD price of one unit of `asset` at `at_ms`, and how it was found."""

    asset: str
    at_ms: int
    price: Decimal
    # Each step, e.g. ("ETH/BTC", "BTC (reference)") or ("USDT/TRY (inverse)",).
    path: tuple[str, ...]
    # The stored quotes used, each with its exchange and the time it was known.
    quotes: tuple[StoredQuote, ...]


def parse_reference_prices(items: Iterable[str]) -> dict[str, Decimal]:
    """'BTC=13500' items as {asset: USD price}; a malformed one is refused."""
    prices: dict[str, Decimal] = {}
    for item in items:
        asset, sep, price = item.partition("=")
        if not sep:
            raise ValidationError("reference_price", item, "must be written ASSET=PRICE")
        prices[check_asset(asset.strip(), "reference_price")] = _positive_price(
            price.strip(), f"reference_price {asset.strip()}"
        )
    return prices


_DURATION = re.compile(r"(\d+)\s*(ms|s|m|h|d)")
_DURATION_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": DAY_MS}


def parse_max_age(text: str) -> int:
    """'1d', '6h', '30m', '90s' or '500ms' as milliseconds."""
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValidationError("max_age", text, "must be a duration such as 1d, 6h or 30m")
    return int(match.group(1)) * _DURATION_MS[match.group(2)]


def _positive_price(value: object, field: str) -> Decimal:
    price = to_decimal(value, field)
    if price <= 0:
        raise ValidationError(field, value, "a price must be greater than zero")
    return price


class Valuer:
    """Prices assets in USD from one store. Make one per operation: it remembers the
    quotes it has looked up and the markets the store holds."""

    def __init__(
        self,
        store: Store,
        reference_prices: Mapping[str, object] | None = None,
        *,
        usd_assets: Sequence[str] = DEFAULT_USD_ASSETS,
        max_age_ms: int = DEFAULT_MAX_AGE_MS,
        configured_references: bool = True,
    ) -> None:
        """`reference_prices` ({"BTC": Decimal("13500")}: USD per unit) hold at any time
        and win over the stored ones (table reference_prices, each valid for its period),
        which are read unless `configured_references` is False."""
        if not usd_assets:
            raise ValidationError("usd_assets", usd_assets, "name at least one USD asset")
        if isinstance(max_age_ms, bool) or not isinstance(max_age_ms, int) or max_age_ms <= 0:
            raise ValidationError("max_age_ms", max_age_ms, "must be a positive number of ms")
        self.records = AnalyticsRecords.of(store)
        # Quotes come from the database and its archives alike.
        self.history = MarketHistory(store)
        self.usd_assets = tuple(check_asset(asset, "usd_assets") for asset in usd_assets)
        self.max_age_ms = max_age_ms
        self.given_references = {
            check_asset(asset, "reference_prices"): _positive_price(
                price, f"reference_prices[{asset}]"
            )
            for asset, price in (reference_prices or {}).items()
        }
        self.stored_references = ReferencePrices()
        if configured_references:
            with store.db.snapshot():
                self.stored_references = ReferencePrices.load(store)
        self._symbols: set[str] | None = None
        self._quotes: dict[tuple[str, int, str | None], StoredQuote | None] = {}
        self._valuations: dict[tuple[str, int, str | None], Valuation | Unvaluable] = {}

    # --- public --------------------------------------------------------------------------

    def price_usd(self, asset: str, at_ms: int, *, exchange: str | None = None) -> Valuation:
        """The USD price of `asset` at `at_ms`. With `exchange`, that exchange's quotes are
        preferred; another exchange's are used only where it has none fresh enough.
        Raises Unvaluable when nothing values it."""
        key = (asset, at_ms, exchange)
        known = self._valuations.get(key)
        if known is None:
            try:
                known = self._value(asset, at_ms, exchange)
            except Unvaluable as exc:
                known = exc
            self._valuations[key] = known
        if isinstance(known, Unvaluable):
            raise known
        return known

    def reference_price(self, asset: str, at_ms: int) -> Decimal | None:
        """The reference price of `asset` that holds at `at_ms`: a given one, else the
        stored one whose period covers it."""
        given = self.given_references.get(asset)
        if given is not None:
            return given
        stored = self.stored_references.at(asset, at_ms)
        return None if stored is None else stored.price_usd

    def value_usd(
        self, amount: Decimal, asset: str, at_ms: int, *, exchange: str | None = None
    ) -> Decimal:
        """amount x the asset's USD price, quantized half-even to 8 decimals."""
        return quantize(amount * self.price_usd(asset, at_ms, exchange=exchange).price)

    def market_price(self, symbol: str, at_ms: int, *, exchange: str | None = None) -> Decimal:
        """The price of a market's base in its quote at `at_ms` (to mark a position): its
        own quote or its inverse market's, else the base's USD price over the quote's,
        quantized half-even to 8 decimals."""
        base, quote = market_assets(symbol)
        leg = self._pair(base, quote, at_ms, exchange)
        if leg is not None:
            return _quantized(leg.factor)
        base_usd = self.price_usd(base, at_ms, exchange=exchange).price
        quote_usd = self.price_usd(quote, at_ms, exchange=exchange).price
        if not quote_usd:
            raise Unvaluable(
                quote,
                at_ms,
                [symbol],
                f"its USD price at {_when(at_ms)} rounds to 0, so {symbol} has no price",
            )
        return _quantized(Fraction(base_usd) / Fraction(quote_usd))

    # --- routes --------------------------------------------------------------------------

    def _value(self, asset: str, at_ms: int, exchange: str | None) -> Valuation:
        if asset in self.usd_assets:
            label = asset if asset == "USD" else f"{asset} (counted as USD)"
            return Valuation(asset, at_ms, Decimal(1).quantize(Decimal("1e-8")), (label,), ())
        direct = self._direct(asset, at_ms, exchange)
        if direct is not None:
            return self._valuation(asset, at_ms, [direct])
        intermediates = self._intermediates(asset)
        for middle in intermediates:
            first = self._pair(asset, middle, at_ms, exchange)
            if first is None:
                continue
            second = self._direct(middle, at_ms, exchange)
            if second is not None:
                return self._valuation(asset, at_ms, [first, second])
        if self.reference_price(asset, at_ms) is not None:
            return self._valuation(asset, at_ms, [], reference=asset)
        for middle in intermediates:
            if self.reference_price(middle, at_ms) is None:
                continue
            first = self._pair(asset, middle, at_ms, exchange)
            if first is not None:
                return self._valuation(asset, at_ms, [first], reference=middle)
        raise self._unvaluable(asset, at_ms, intermediates)

    def _valuation(
        self, asset: str, at_ms: int, legs: list[Leg], reference: str | None = None
    ) -> Valuation:
        exact = Fraction(1)
        for leg in legs:
            exact *= leg.factor
        path = [leg.label for leg in legs]
        if reference is not None:
            price = self.reference_price(reference, at_ms)
            assert price is not None, "a route through a reference is taken only when it holds"
            exact *= Fraction(price)
            path.append(f"{reference} (reference)")
        return Valuation(
            asset, at_ms, _quantized(exact), tuple(path), tuple(leg.quote for leg in legs)
        )

    def _direct(self, asset: str, at_ms: int, exchange: str | None) -> Leg | None:
        """The freshest quote of ASSET/USD-like or USD-like/ASSET (first listed on a tie)."""
        best: Leg | None = None
        for usd in self.usd_assets:
            leg = self._pair(asset, usd, at_ms, exchange)
            if leg is not None and (best is None or leg.quote.timestamp > best.quote.timestamp):
                best = leg
        return best

    def _pair(self, base: str, quote: str, at_ms: int, exchange: str | None) -> Leg | None:
        """BASE/QUOTE's own quote, else the inverse of QUOTE/BASE's (the fresher of the
        two when both exist, the direct one on a tie)."""
        direct = self._quote(f"{base}/{quote}", at_ms, exchange)
        inverse = self._quote(f"{quote}/{base}", at_ms, exchange)
        if inverse is not None and (direct is None or inverse.timestamp > direct.timestamp):
            return Leg(inverse, inverted=True)
        return None if direct is None else Leg(direct)

    def _quote(self, symbol: str, at_ms: int, exchange: str | None) -> StoredQuote | None:
        if symbol not in self._markets():
            return None
        key = (symbol, at_ms, exchange)
        if key not in self._quotes:
            quote = None
            if exchange is not None:
                quote = self._freshest(symbol, at_ms, exchange)
            self._quotes[key] = quote or self._freshest(symbol, at_ms, None)
        return self._quotes[key]

    def _freshest(self, symbol: str, at_ms: int, exchange: str | None) -> StoredQuote | None:
        """The newer of the latest ticker and the latest closed candle (a ticker on a
        tie: it is the exchange's own last price, the candle's close a copy of one)."""
        oldest = at_ms - self.max_age_ms
        found = [
            quote
            for quote in (
                self.history.latest_ticker(symbol, at_ms, oldest, exchange),
                self.history.latest_candle(symbol, at_ms, oldest, exchange),
            )
            if quote is not None and quote.price > 0
        ]
        return max(found, key=lambda quote: quote.timestamp, default=None)

    def _markets(self) -> set[str]:
        if self._symbols is None:
            self._symbols = self.history.market_symbols()
        return self._symbols

    def _intermediates(self, asset: str) -> list[str]:
        """Assets `asset` is traded against in stored markets, BTC and ETH first."""
        others: set[str] = set()
        for symbol in self._markets():
            base, quote = market_assets(symbol)
            if ":" in symbol:
                continue  # a derivative's price is not the spot price
            if base == asset:
                others.add(quote)
            elif quote == asset:
                others.add(base)
        others -= {asset, *self.usd_assets}
        preferred = [middle for middle in PREFERRED_INTERMEDIATES if middle in others]
        return preferred + sorted(others - set(preferred))

    def _unvaluable(self, asset: str, at_ms: int, intermediates: list[str]) -> Unvaluable:
        usd = ", ".join(self.usd_assets)
        tried = [f"{asset} against {usd} (either way round)"]
        tried += [f"via {middle}" for middle in intermediates]
        tried.append(f"a reference price for {asset}")
        age = _age(self.max_age_ms)
        periods = [describe_period(row) for row in self.stored_references.by_asset.get(asset, ())]
        reference = (
            f"no reference price holding then ({asset}'s are for: {'; '.join(periods)})"
            if periods
            else "no reference price"
        )
        rule = (
            f"has no USD price at {_when(at_ms)}: no quote within {age} before it for "
            f"{asset} against {usd}"
            + (f", nor via {', '.join(intermediates)}" if intermediates else "")
            + f", and {reference} (store one for the period: `tradedb reference-price set "
            f"{asset} PRICE --since ... --until ... --source ...`, or give one: "
            f"`reference_prices={{'{asset}': PRICE}}`)"
        )
        return Unvaluable(asset, at_ms, tried, rule)


def _quantized(exact: Fraction) -> Decimal:
    # round() on a Fraction rounds half to even, once, from the exact value.
    return Decimal(round(exact * _UNITS_PER_ONE)).scaleb(-8)


def _when(at_ms: int) -> str:
    return ms_to_datetime(at_ms).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(millis: int) -> str:
    for unit in ("d", "h", "m", "s"):
        if millis % _DURATION_MS[unit] == 0:
            return f"{millis // _DURATION_MS[unit]}{unit}"
    return f"{millis}ms"
