"""Reading ccxt's unified structures (fetch_balance) into exact ledger values."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tradedb.errors import ValidationError
from tradedb.models.values import check_asset, to_decimal
from tradedb.store.ledger import Balance

# Keys of a ccxt balance that are not currencies.
_NOT_CURRENCIES = {"info", "free", "used", "total", "debt", "timestamp", "datetime"}


def parse_balance(balance: Mapping[str, Any]) -> dict[str, Balance]:
    """ccxt's fetch_balance() result as exact balances per currency.

    Each currency entry holds 'free', 'used' and 'total' (ccxt numbers, Decimals with
    exchange.number = Decimal, or strings). One missing figure is derived from the other
    two; when all three are given, total must equal free + used exactly.
    """
    if not isinstance(balance, Mapping):
        raise ValidationError(
            "ccxt_balance", balance, "must be the dict returned by ccxt's fetch_balance()"
        )
    result: dict[str, Balance] = {}
    for currency, entry in balance.items():
        if currency in _NOT_CURRENCIES:
            continue
        if not isinstance(entry, Mapping):
            raise ValidationError(
                f"ccxt_balance[{currency!r}]", entry, "must map 'free', 'used' and 'total'"
            )
        asset = check_asset(currency, "ccxt_balance currency")
        free, used, total = (
            _figure(entry.get(key), f"{asset}.{key}") for key in ("free", "used", "total")
        )
        if free is None and used is None:
            if total is None:
                continue
            free, used = total, Decimal(0)
        elif free is None:
            assert used is not None
            free = _derived(total, used, asset)
        elif used is None:
            used = _derived(total, free, asset)
        elif total is not None and total != free + used:
            raise ValidationError(
                f"{asset}.total",
                total,
                f"is not free + used ({free} + {used} = {free + used}); the balance is "
                "inconsistent, fetch it again",
            )
        result[asset] = Balance(free, used)
    return result


def _figure(value: object, name: str) -> Decimal | None:
    if value is None:
        return None
    number = to_decimal(value, name)
    if number < 0:
        raise ValidationError(name, value, "must not be negative (margin debt is not a balance)")
    return number


def _derived(total: Decimal | None, other: Decimal, asset: str) -> Decimal:
    if total is None:
        return Decimal(0)
    value = total - other
    if value < 0:
        raise ValidationError(f"{asset}.total", total, f"is less than the {other} it contains")
    return value


def ccxt_fee(trade: Mapping[str, Any]) -> tuple[object, str | None]:
    """The fee of a ccxt trade as (cost, currency). ccxt gives `fee` or a `fees` list;
    several fees must share one currency, since a fill's fee has one currency here."""
    fees = [fee for fee in trade.get("fees") or [] if fee] or [trade.get("fee")]
    fees = [fee for fee in fees if fee and fee.get("cost") is not None]
    if not fees:
        return 0, None
    currencies = {fee.get("currency") for fee in fees}
    if len(currencies) > 1:
        raise ValidationError(
            "fees", trade.get("fees"), "fees in several currencies; record them as separate fills"
        )
    total = sum((to_decimal(fee["cost"], "fee") for fee in fees), Decimal(0))
    return total, currencies.pop()
