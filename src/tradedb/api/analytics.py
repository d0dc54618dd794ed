"""Analytics of one database: valuation, portfolio snapshots, daily performance, the
strategy comparison report, and paper trading on stored candles."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tradedb.models import Performance, ReferencePrice
from tradedb.models.values import to_epoch_ms
from tradedb.services.analytics import reading, references
from tradedb.services.analytics.metrics import MetricsResult, compute_metrics
from tradedb.services.analytics.snapshots import Snapshot, snapshot_days, snapshot_portfolio
from tradedb.services.analytics.valuation import (
    DEFAULT_MAX_AGE_MS,
    DEFAULT_USD_ASSETS,
    Valuation,
    Valuer,
)
from tradedb.services.paper import (
    SessionPlan,
    SessionResult,
    Strategy,
    direct,
    plan_session,
    run_session,
)
from tradedb.services.reports import ReportFilters, compare
from tradedb.services.reports import html as html_report
from tradedb.services.reports.comparison import Report
from tradedb.store import Page, Store


class Analytics:
    """What the ledger's records are worth and how each strategy did."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # --- valuation and snapshots --------------------------------------------------------

    def valuer(
        self,
        reference_prices: Mapping[str, object] | None = None,
        *,
        usd_assets: Sequence[str] = DEFAULT_USD_ASSETS,
        max_age_ms: int = DEFAULT_MAX_AGE_MS,
        configured_references: bool = True,
    ) -> Valuer:
        """A valuer of assets in USD from stored tickers and candles, and reference
        prices: given here (they hold at any time, for this valuer only), or stored with
        their periods (`set_reference_price`), which are read unless
        `configured_references` is False. Make one per task: it remembers the quotes it
        has looked up."""
        return Valuer(
            self._store,
            reference_prices,
            usd_assets=usd_assets,
            max_age_ms=max_age_ms,
            configured_references=configured_references,
        )

    def value(
        self,
        asset: str,
        at: object,
        *,
        exchange: str | None = None,
        reference_prices: Mapping[str, object] | None = None,
    ) -> Valuation:
        """The USD price of one unit of `asset` at a time, and the route that gave it."""
        at_ms = to_epoch_ms(at, "at")
        return self.valuer(reference_prices).price_usd(asset, at_ms, exchange=exchange)

    # --- reference prices ------------------------------------------------------------------

    def set_reference_price(
        self,
        asset: str,
        price_usd: object,
        *,
        source: str,
        valid_from: object = None,
        valid_until: object = None,
    ) -> ReferencePrice:
        """Store a USD price of `asset` for the period from `valid_from` (inclusive) to
        `valid_until` (exclusive); an end left out is open. `source` says where the figure
        comes from. A period overlapping another of the same asset is refused."""
        return references.set_reference_price(
            self._store,
            asset,
            price_usd,
            source=source,
            valid_from=valid_from,
            valid_until=valid_until,
        )

    def reference_prices(
        self, asset: str | None = None, *, at: object = None
    ) -> list[ReferencePrice]:
        """The stored reference prices (of `asset`); with `at`, those holding then."""
        at_ms = None if at is None else to_epoch_ms(at, "at")
        return references.list_reference_prices(self._store, asset, at=at_ms)

    def remove_reference_price(self, price_id: int) -> ReferencePrice:
        """Delete one stored reference price by its id; the row that was removed."""
        return references.remove_reference_price(self._store, price_id)

    def snapshot(self, at: object, valuer: Valuer | None = None) -> Snapshot:
        """Balances at a time, valued in USD, written as that time's portfolio snapshot
        (replacing one taken for the same time)."""
        return snapshot_portfolio(self._store, at, valuer)

    def snapshot_days(
        self,
        start: object,
        end: object,
        valuer: Valuer | None = None,
        *,
        progress: Callable[[Snapshot], None] | None = None,
    ) -> list[Snapshot]:
        """One snapshot at the end of each UTC day from `start` to `end`."""
        return snapshot_days(self._store, start, end, valuer, progress=progress)

    def portfolio(self, *, at: object = None, exchange: str | None = None) -> reading.PortfolioView:
        """Every exchange's newest stored snapshot at or before `at`, each with its own time."""
        return reading.latest_snapshot(self._store, at=at, exchange=exchange)

    # --- performance ---------------------------------------------------------------------

    def compute_metrics(
        self,
        start_date: object = None,
        end_date: object = None,
        valuer: Valuer | None = None,
        *,
        risk_free_rate: float = 0.0,
        progress: Callable[[str, int], None] | None = None,
    ) -> MetricsResult:
        """Daily performance rows per strategy and exchange (and portfolio-wide),
        upserted into performance_metrics."""
        return compute_metrics(
            self._store,
            start_date,
            end_date,
            valuer,
            risk_free_rate=risk_free_rate,
            progress=progress,
        )

    def performance(
        self,
        *,
        strategy: str | None = None,
        exchange: str | None = None,
        first_date: object = None,
        last_date: object = None,
        limit: int = 100,
        after: str | None = None,
    ) -> Page[Performance]:
        return reading.performance_page(
            self._store,
            strategy=strategy,
            exchange=exchange,
            first_date=first_date,
            last_date=last_date,
            limit=limit,
            after=after,
        )

    def report(
        self,
        *,
        strategies: Iterable[str] | None = None,
        exchange: str | None = None,
        first_date: object = None,
        last_date: object = None,
    ) -> Report:
        """Strategies side by side: equity, returns, P&L, fees, trades, Sharpe, drawdown."""
        filters = ReportFilters.parse(
            strategies=strategies, exchange=exchange, first_date=first_date, last_date=last_date
        )
        return compare(self._store, filters)

    @staticmethod
    def write_report_html(report: Report, path: str | os.PathLike[str]) -> int:
        """Write a report as one HTML file that opens offline; its size in bytes."""
        return html_report.write(report, path)

    # --- paper trading -------------------------------------------------------------------

    @staticmethod
    def plan_paper_session(
        *,
        strategies: Sequence[str | type[Strategy]],
        exchange: str,
        symbols: Sequence[str],
        since: object,
        until: object,
        timeframe: str = "5m",
        capital: object = 1,
        allocation: str | None = None,
        fee_rate: object = None,
        maker_fee_rate: object = None,
        quote_usd: object = None,
        parameters: Mapping[str, Mapping[str, object]] | None = None,
    ) -> SessionPlan:
        """Check a paper session's parameters (nothing is read or written yet, so this
        needs no database: `Analytics.plan_paper_session(...)` before one is opened)."""
        return plan_session(
            strategies=strategies,
            exchange=exchange,
            symbols=symbols,
            since=since,
            until=until,
            timeframe=timeframe,
            capital=capital,
            allocation=allocation,
            fee_rate=fee_rate,
            maker_fee_rate=maker_fee_rate,
            quote_usd=quote_usd,
            parameters=parameters,
        )

    def run_paper_session(self, plan: SessionPlan, *, progress: Any = None) -> SessionResult:
        """Replay stored candles through the strategies; every order and fill goes
        through the ledger, as live trading records them."""
        return run_session(self._store, plan, progress=progress)

    def place_paper_order(
        self,
        *,
        exchange: str,
        symbol: str,
        side: str,
        amount: object,
        order_type: str = "market",
        price: object = None,
        strategy: str | None = None,
        client_order_id: str | None = None,
        at: object = None,
    ) -> direct.PaperOrderResult:
        """One paper order filled at the latest stored price (a market order) or recorded
        open (a limit order away from it), through the ledger."""
        return direct.place_paper_order(
            self._store,
            exchange=exchange,
            symbol=symbol,
            side=side,
            order_type=order_type,
            amount=amount,
            price=price,
            strategy=strategy,
            client_order_id=client_order_id,
            at=at,
        )
