"""One exchange account's ccxt client, as the sync and the order desk call it.

A read is retried on network errors with backoff; what the exchange refuses is one line
naming the exchange, the call and the exchange's own message. A request that changes the
account (create_order, cancel_order) is sent once: sent again after a lost answer it could
place a second order, so its outcome is settled by looking at the account instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tradedb.errors import ExchangeUnavailable, ValidationError
from tradedb.services.marketdata.download import call_with_retries, load_markets, reason


class ExchangeAccount:
    """A ccxt client of one account, with amounts read as the exchange's own text."""

    def __init__(self, client: Any, sleep: Callable[[float], None]) -> None:
        # Amounts as the exchange's own text, never floats: the ledger refuses what it
        # cannot keep exactly, and a float's noise past 8 decimals would stop the sync.
        # (Decimal would do too, but ccxt 4.5 drops a trade's fee when its numbers are
        # Decimals: {'cost': None, 'currency': None}.)
        client.number = str
        self.client = client
        self.id: str = client.id
        self.sleep = sleep

    def has(self, capability: str) -> bool:
        """Whether ccxt says the exchange has `capability` (True or 'emulated')."""
        return bool((getattr(self.client, "has", {}) or {}).get(capability))

    def require(self, capabilities: tuple[str, ...], purpose: str) -> None:
        lacking = [name for name in capabilities if not self.has(name)]
        if lacking:
            raise ValidationError(
                "exchange", self.id, f"cannot {purpose}: ccxt has no {', '.join(lacking)}"
            )

    def require_market(self, symbol: str) -> None:
        if symbol not in load_markets(self.client, self.sleep):
            raise ValidationError("symbol", symbol, f"is not a market {self.id} lists")

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A read, network errors retried with backoff."""
        return self._translated(method, lambda: self._retried(method, args, kwargs))

    def find(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A read of one order: None where the exchange says there is no such order."""
        import ccxt

        def request() -> Any:
            try:
                return self._retried(method, args, kwargs)
            except ccxt.OrderNotFound:
                return None

        return self._translated(method, request)

    def send(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A request that changes the account, sent once; ccxt's own errors come through,
        for the caller to tell a refusal from a lost answer."""
        return getattr(self.client, method)(*args, **kwargs)

    def credentials_refused(self, exc: Exception) -> ValidationError:
        return ValidationError("exchange", self.id, f"refused the credentials ({reason(exc)})")

    def _retried(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return call_with_retries(lambda: getattr(self.client, method)(*args, **kwargs), self.sleep)

    def _translated(self, method: str, request: Callable[[], Any]) -> Any:
        import ccxt

        try:
            return request()
        except ccxt.AuthenticationError as exc:
            raise self.credentials_refused(exc) from None
        except ccxt.BaseError as exc:
            raise ExchangeUnavailable(
                f"{self.id} {method} failed: {reason(exc)}; what was recorded before stays "
                "recorded: run it again"
            ) from None
