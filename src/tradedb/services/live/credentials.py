"""API credentials of exchange accounts, from environment variables only.

`TRADEDB_<EXCHANGE>_API_KEY` and `_SECRET`, and `_PASSWORD` (a passphrase) or `_UID` where
the exchange needs them (ccxt's `requiredCredentials`). Never from bot_config or a file:
bot_config is copied into every backup and replica, and refuses secrets anyway. A value is
never shown: messages name the variables only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tradedb.errors import ValidationError
from tradedb.services.marketdata.download import connect

# ccxt's name of each credential, and the suffix of its environment variable.
VARIABLES = {"apiKey": "API_KEY", "secret": "SECRET", "password": "PASSWORD", "uid": "UID"}


def variable(exchange: str, credential: str) -> str:
    return f"TRADEDB_{exchange.upper()}_{VARIABLES[credential]}"


def account_client(exchange: str, env: Mapping[str, str] | None = None) -> Any:
    """A rate-limited ccxt client of `exchange` that reads amounts as Decimals, signed with
    the account's credentials from the environment; refused, naming the variables that are
    missing, when the exchange needs one that is not set."""
    client = connect(exchange)
    source = os.environ if env is None else env
    required = getattr(client, "requiredCredentials", {}) or {}
    missing = []
    for credential in VARIABLES:
        value = source.get(variable(exchange, credential), "").strip()
        if value:
            setattr(client, credential, value)
        elif required.get(credential):
            missing.append(variable(exchange, credential))
    if missing:
        raise ValidationError(
            "exchange",
            exchange,
            f"needs its account's credentials in the environment: set {', '.join(missing)}",
        )
    return client
