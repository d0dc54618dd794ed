"""The write-ahead log as a whole: resetting it while no tradedb writer can write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tradedb.store.engines.sqlite import BUSY_TIMEOUT_MS, writer_turn


def reset_wal(path: Path) -> bool:
    """Copy the WAL into the database and truncate it to nothing, holding the writer
    gate so that no tradedb writer appends meanwhile; False if a reader kept it from
    finishing within the busy timeout (the WAL is then left as it was, consistent).

    Frames a killed writer left past the last commit SQLite knows of go with the WAL, so
    that nothing that reads the WAL file itself (Litestream) can take them for committed.
    """
    with writer_turn(path):
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.close()
    return int(busy) == 0
