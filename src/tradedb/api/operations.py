"""Keeping one database healthy: retention with Parquet archives, the ledger's audit,
and (see `backups`) backups and their rotation."""

from __future__ import annotations

from tradedb.services.ledger.audit import audit
from tradedb.services.ops import retention
from tradedb.services.ops.retention import Event, Policy, RetentionReport
from tradedb.store import Store


class Operations:
    """Retention, audit and maintenance of one database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @staticmethod
    def retention_policy() -> Policy:
        """The retention policy of the config file's `[retention]` table (else the
        defaults: candles and tickers a year, then archived; DEBUG logs 30 days;
        balance history 2 years; trading records for ever)."""
        return Policy.from_config()

    def retention_plan(self, policy: Policy | None = None) -> RetentionReport:
        """What a retention run would archive and delete, touching nothing."""
        return retention.plan(self._store, policy or self.retention_policy())

    def run_retention(
        self, policy: Policy | None = None, *, on_event: Event | None = None
    ) -> RetentionReport:
        """Archive candles and tickers past their horizon to Parquet, delete what the
        policy lets go, give the space back. Trades and performance records are never
        touched."""
        return retention.run(self._store, policy or self.retention_policy(), on_event=on_event)

    def audit(self) -> list[str]:
        """The ledger's invariants and the engine's own consistency checks; empty when
        everything holds."""
        return audit(self._store)
