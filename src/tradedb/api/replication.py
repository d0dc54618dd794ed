"""Real-time replication of a SQLite database file with Litestream, supervised, and
point-in-time restores from its replica (docs/operations.md). A PostgreSQL database is
replicated by PostgreSQL itself (streaming replication or WAL archiving), which a
PostgreSQL location is told in one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tradedb.api.admin import Locator, locate
from tradedb.services.location import DatabaseLocation
from tradedb.services.ops import replication
from tradedb.services.ops.replica_generations import Generation


class Replication:
    """One database file and its replica: `replica` (a folder or s3://bucket/path), else
    `replica` in the config's [replication] table, else <backup folder>/replica/<file name>."""

    def __init__(
        self,
        database: Locator | DatabaseLocation | None = None,
        *,
        replica: str | None = None,
        sync_interval: str | None = None,
    ) -> None:
        path = replication.replicated_file(locate(database))
        self.settings = replication.replication_settings(
            path, to=replica, sync_interval=sync_interval
        )

    def litestream_config(self) -> str:
        """The Litestream configuration a run started now would use (each run replicates
        into a new generation named by its start time, UTC)."""
        return self.settings.litestream_config(replication.generation_name(int(time.time() * 1000)))

    def run(
        self,
        *,
        started: Callable[[replication.Replicator], None] | None = None,
        announce: Callable[[str], None] | None = None,
    ) -> int:
        """Replicate in the foreground until Ctrl-C or SIGTERM (then 0)."""
        return replication.replicate(self.settings, started=started, announce=announce)

    def restore(self, to: Path, *, timestamp_ms: int | None = None) -> replication.RestoreResult:
        """Restore into the new file `to` the newest generation that passes integrity_check
        (with `timestamp_ms`: the newest started at or before it)."""
        return replication.restore(self.settings, to, timestamp_ms=timestamp_ms)

    def generations(self) -> list[Generation]:
        """The replica's generations, oldest first."""
        return replication.generations(self.settings)
