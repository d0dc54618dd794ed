"""The tools' shared argument types: each says what it takes, and a limit says its bounds,
so an agent sees them in the tool's input schema before it calls."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

DEFAULT_ROWS = 100
# An agent's context is small: no list tool returns more than this in one call.
MAX_ROWS = 1000

Limit = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_ROWS,
        description=f"At most this many rows (1 to {MAX_ROWS}); `truncated` says if more exist.",
    ),
]
Exchange = Annotated[str, Field(description="A lowercase ccxt exchange id, e.g. 'kraken'.")]
OptionalExchange = Annotated[
    str | None, Field(description="Only this exchange (a ccxt id, e.g. 'kraken').")
]
Symbol = Annotated[str, Field(description="A ccxt market symbol, e.g. 'BTC/USDT'.")]
OptionalSymbol = Annotated[str | None, Field(description="Only this market, e.g. 'BTC/USDT'.")]
OptionalStrategy = Annotated[str | None, Field(description="Only this strategy.")]
Time = Annotated[
    str | int | None,
    Field(
        description="YYYY-MM-DD (00:00 UTC), ISO 8601 with an offset "
        "('2024-01-05T14:30:00+00:00'), or epoch milliseconds."
    ),
]
# For what is kept per UTC day (performance rows, P&L): the days whose midnight is in range.
DaysSince = Annotated[
    str | int | None,
    Field(
        description="The days from this time on (each day whose 00:00 UTC is at or after "
        "it): YYYY-MM-DD, ISO 8601 with an offset, or epoch milliseconds."
    ),
]
DaysUntil = Annotated[
    str | int | None,
    Field(
        description="The days before this time (same forms as since): '2024-01-01' to "
        "'2024-02-01' is January."
    ),
]
After = Annotated[
    str | None,
    Field(description="The `next_after` of the previous page, to continue the listing."),
]
