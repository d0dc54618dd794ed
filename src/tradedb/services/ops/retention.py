"""Retention: candles and tickers past their horizon move to Parquet archives; DEBUG logs
and old balance history are deleted; trading records are never touched.

The order of a partition's move (a market's candles, or its tickers, of one year) is what
makes a kill at any moment harmless:
1. read the partition's rows from the database (and its existing archive file, checked
   against the manifest), merge them;
2. write the archive to a temporary file, fsync it, read it back and compare (row count
   and a SHA-256 of the rows), rename it over the old file, fsync the folder;
3. record the file in the manifest (atomically replaced);
4. delete the rows, in one transaction that first checks they are still exactly the
   archived ones.
Killed before 2 ends, the old file and every row are intact. Killed between 2 and 4, the
rows are in the file and still in the database: readers prefer the database's copy of a
timestamp, and the next run merges the same rows into the same file again (a partition
holds each timestamp once), then deletes them. So nothing is lost and nothing doubles.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tradedb.errors import ValidationError
from tradedb.models.values import now_epoch_ms
from tradedb.services.location import config_section
from tradedb.services.ops import archive
from tradedb.services.ops.archive_location import Folder, locate
from tradedb.store import Store
from tradedb.store.retention import PERMANENT, PermanentTable, RetentionRecords
from tradedb.store.retention import CandleSpan as CandleSpan  # noqa: PLC0414 - Events carry it
from tradedb.store.retention import TickerSpan as TickerSpan  # noqa: PLC0414 - Events carry it

DAY_MS = 86_400_000
DEFAULT_KEEP_DAYS = {
    "market_data": 365,  # the spec: raw market data, 1 year, older compressed
    "tickers": 365,  # the spec's rule for market data: 1 year, older compressed
    "bot_logs": 30,  # the spec: DEBUG logs, 30 days (other levels are kept)
    "balance_history": 730,  # the spec: 2 years
}
# Measured (zstd level 9): a year of a random walk of 1m prices took 24.7 bytes a candle.
ARCHIVE_BYTES_PER_CANDLE = 25
# Measured likewise: tickers of one market every minute for a year, all seven amounts set.
ARCHIVE_BYTES_PER_TICKER = 40
# Tables whose rows past the horizon are only deleted.
DELETED_TABLES = ("bot_logs", "balance_history")
Vacuum = Literal["auto", "full", "incremental", "none"]
VACUUM_CHOICES = ("auto", "full", "incremental", "none")
Event = Callable[[str, CandleSpan | TickerSpan | None], None]


@dataclass(frozen=True)
class Policy:
    """How long each retainable table keeps its rows, in days, and how space is
    reclaimed. Trading records have no entry: they are permanent."""

    keep_days: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_KEEP_DAYS))
    vacuum: Vacuum = "auto"

    def __post_init__(self) -> None:
        for table, days in self.keep_days.items():
            if table in PERMANENT:
                raise PermanentTable(
                    f"retention.keep_days.{table}",
                    days,
                    f"{table} is permanent: retention never deletes trading records",
                )
            if table not in DEFAULT_KEEP_DAYS:
                known = ", ".join(DEFAULT_KEEP_DAYS)
                raise ValidationError(
                    f"retention.keep_days.{table}", days, f"has no retention policy ({known})"
                )
            if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                raise ValidationError(
                    f"retention.keep_days.{table}", days, "must be a whole number of days >= 1"
                )
        if self.vacuum not in VACUUM_CHOICES:
            raise ValidationError(
                "retention.vacuum", self.vacuum, "must be " + "|".join(VACUUM_CHOICES)
            )

    @classmethod
    def from_config(cls, env: dict[str, str] | None = None) -> Policy:
        """The `[retention]` table of the config file over the defaults:
        `[retention.keep_days]` market_data, tickers, bot_logs, balance_history; `vacuum`."""
        section = config_section("retention", env)
        keep = section.get("keep_days", {})
        if not isinstance(keep, dict):
            raise ValidationError("retention.keep_days", keep, "must be a table of days")
        vacuum = section.get("vacuum", "auto")
        return cls({**DEFAULT_KEEP_DAYS, **keep}, vacuum)  # type: ignore[arg-type]

    def cutoff(self, table: str, now: int) -> int:
        """A table the policy leaves out keeps its default horizon."""
        return now - self.keep_days.get(table, DEFAULT_KEEP_DAYS[table]) * DAY_MS


@dataclass
class PartitionMove:
    """One archive partition: the candles (or tickers, with no timeframe) moved, or to be
    moved, out of the database."""

    exchange: str
    symbol: str
    timeframe: str
    year: int
    rows: int
    file: str
    archive_rows: int = 0
    archive_bytes: int = 0
    status: str = "planned"  # planned | moved | changed (a writer changed a row: kept)


@dataclass
class Deletion:
    table: str
    group: str
    rows: int


@dataclass
class RetentionReport:
    dry_run: bool
    now: int
    archive_dir: str
    cutoffs: dict[str, int]
    partitions: list[PartitionMove] = field(default_factory=list)
    ticker_partitions: list[PartitionMove] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    database_bytes_freed_estimate: int = 0
    archive_bytes_estimate: int = 0
    vacuum: str = "none"
    size_before: int = 0
    size_after: int = 0
    vacuum_seconds: float = 0.0
    recovered: list[str] = field(default_factory=list)

    @property
    def candles_moved(self) -> int:
        return sum(p.rows for p in self.partitions if p.status in ("moved", "planned"))

    @property
    def tickers_moved(self) -> int:
        return sum(p.rows for p in self.ticker_partitions if p.status in ("moved", "planned"))


def plan(store: Store, policy: Policy, *, now: int | None = None) -> RetentionReport:
    """What a run would move and delete, touching nothing."""
    now = now_epoch_ms() if now is None else now
    records = RetentionRecords(store.db)
    report = _report(store, policy, now, dry_run=True)
    for span in candle_spans(records, report.cutoffs["market_data"]):
        report.partitions.append(_move_of(span))
    for ticker_span in ticker_spans(records, report.cutoffs["tickers"]):
        report.ticker_partitions.append(_ticker_move_of(ticker_span))
    for table in DELETED_TABLES:
        for group, rows in records.count_before(table, report.cutoffs[table]):
            report.deletions.append(Deletion(table, group, rows))
    _estimate(records, report)
    return report


def run(
    store: Store,
    policy: Policy,
    *,
    now: int | None = None,
    on_event: Event | None = None,
) -> RetentionReport:
    """Archive candles and tickers past their horizon, delete what the policy lets go,
    reclaim space."""
    now = now_epoch_ms() if now is None else now
    event = on_event or (lambda _name, _span: None)
    records = RetentionRecords(store.db)
    report = _report(store, policy, now, dry_run=False)
    folder = locate(store.db.companion_base)
    report.size_before = store.db.size_bytes()
    with archive.locked(folder):
        manifest = recover(folder, report)
        spans = candle_spans(records, report.cutoffs["market_data"])
        event("start", None)
        for span in spans:
            report.partitions.append(_archive_span(records, folder, manifest, span, event))
        for ticker_span in ticker_spans(records, report.cutoffs["tickers"]):
            move = _archive_span(records, folder, manifest, ticker_span, event)
            report.ticker_partitions.append(move)
        for table in DELETED_TABLES:
            counted = records.count_before(table, report.cutoffs[table])
            deleted = records.delete_before(table, report.cutoffs[table])
            if deleted:
                report.deletions.extend(Deletion(table, g, n) for g, n in counted)
            event(f"deleted {table}", None)
    _estimate(records, report)
    report.vacuum = _reclaim(store, records, policy, report)
    report.size_after = store.db.size_bytes()
    return report


def candle_spans(records: RetentionRecords, cutoff: int) -> list[CandleSpan]:
    """Each market's candles older than `cutoff`, one span per UTC year."""
    spans = []
    for exchange, symbol, timeframe, oldest in records.candle_markets_before(cutoff):
        for start, end in _years(oldest, cutoff):
            rows = records.candle_count(exchange, symbol, timeframe, start, end)
            if rows:
                spans.append(CandleSpan(exchange, symbol, timeframe, start, end, rows))
    return spans


def ticker_spans(records: RetentionRecords, cutoff: int) -> list[TickerSpan]:
    """Each market's tickers older than `cutoff`, one span per UTC year."""
    spans = []
    for exchange, symbol, oldest in records.ticker_markets_before(cutoff):
        for start, end in _years(oldest, cutoff):
            rows = records.ticker_count(exchange, symbol, start, end)
            if rows:
                spans.append(TickerSpan(exchange, symbol, start, end, rows))
    return spans


def _years(oldest: int, cutoff: int) -> list[tuple[int, int]]:
    return [
        (archive.year_start(year), min(archive.year_start(year + 1), cutoff))
        for year in range(archive.year_of(oldest), archive.year_of(cutoff - 1) + 1)
    ]


def recover(
    folder: Folder | Any, report: RetentionReport | None = None
) -> dict[str, archive.ArchiveFile]:
    """Bring the manifest in line with the files after a killed run: temporary files are
    removed, a renamed file the manifest does not know yet is checked against its own
    metadata and recorded. A listed file that is missing or damaged stops the run.

    A local file is compared with its manifest entry by its SHA-256; an object, whose
    every byte would have to be fetched for that, by its size (a PUT replaces an object
    whole, and a file rewritten with more rows is larger)."""
    folder = archive.as_folder(folder)
    if folder.is_local:
        for leftover in archive.leftover_temporaries(folder.path):
            leftover.unlink()
            if report is not None:
                report.recovered.append(f"removed {leftover.relative_to(folder.path)}")
    manifest = archive.read_manifest(folder)
    files = archive.archive_files(folder)
    changed = False
    for relative, size in files.items():
        entry = manifest.get(relative)
        if entry is not None and _unchanged(folder, relative, size, entry):
            continue
        manifest[relative] = archive.entry_of_file(folder, relative)
        changed = True
        if report is not None:
            report.recovered.append(f"recorded {relative}")
    for relative in manifest:
        if relative not in files:
            raise archive.ArchiveError(
                f"archive {folder}/{relative} is in the manifest but missing"
            )
    if changed:
        archive.write_manifest(folder, manifest)
    return manifest


def _unchanged(folder: Folder, relative: str, size: int, entry: archive.ArchiveFile) -> bool:
    if folder.is_local:
        return archive.file_sha256(folder.path / relative) == entry.sha256
    return entry.bytes == size


@dataclass(frozen=True)
class _Kind:
    """What differs between archiving a span of candles and a span of tickers: how its
    rows are read (int64 columns, or rows), merged with the file's, written and deleted."""

    move_of: Callable[[Any], PartitionMove]
    fresh: Callable[[RetentionRecords, Any], Any]
    count: Callable[[Any], int]
    older: Callable[[Any], Any]
    none: Callable[[], Any]
    merge: Callable[[Any, Any], Any]
    write: Callable[..., archive.ArchiveFile]
    delete: Callable[[RetentionRecords, Any, Any], int | None]


def _archive_span(
    records: RetentionRecords,
    folder: Folder,
    manifest: dict[str, archive.ArchiveFile],
    span: CandleSpan | TickerSpan,
    event: Event,
) -> PartitionMove:
    kind = _CANDLES if isinstance(span, CandleSpan) else _TICKERS
    move = kind.move_of(span)
    fresh = kind.fresh(records, span)
    move.rows = kind.count(fresh)
    existing = manifest.get(move.file)
    older = (
        kind.older(archive.checked_table(folder, move.file, existing))
        if existing is not None
        else kind.none()
    )
    merged = kind.merge(fresh, older)
    market = {"exchange": span.exchange, "symbol": span.symbol}
    if isinstance(span, CandleSpan):
        market["timeframe"] = span.timeframe
    market["year"] = str(archive.year_of(span.start))
    entry = kind.write(folder, move.file, merged, market, fault=lambda step: event(step, span))
    _record(folder, manifest, entry, span, event)
    deleted = kind.delete(records, span, fresh)
    return _moved(move, deleted, entry, span, event)


def _record(
    folder: Folder,
    manifest: dict[str, archive.ArchiveFile],
    entry: archive.ArchiveFile,
    span: CandleSpan | TickerSpan,
    event: Event,
) -> None:
    event("renamed", span)
    manifest[entry.path] = entry
    archive.write_manifest(folder, manifest)
    event("manifest", span)


def _moved(
    move: PartitionMove,
    deleted: int | None,
    entry: archive.ArchiveFile,
    span: CandleSpan | TickerSpan,
    event: Event,
) -> PartitionMove:
    move.status = "moved" if deleted is not None else "changed"
    move.archive_rows = entry.rows
    move.archive_bytes = entry.bytes or 0
    event("deleted", span)
    return move


def _move_of(span: CandleSpan) -> PartitionMove:
    year = archive.year_of(span.start)
    return PartitionMove(
        span.exchange,
        span.symbol,
        span.timeframe,
        year,
        span.rows,
        archive.partition_path(span.exchange, span.symbol, span.timeframe, year),
    )


def _ticker_move_of(span: TickerSpan) -> PartitionMove:
    year = archive.year_of(span.start)
    relative = archive.ticker_partition_path(span.exchange, span.symbol, year)
    return PartitionMove(span.exchange, span.symbol, "", year, span.rows, relative)


_CANDLES = _Kind(
    _move_of,
    RetentionRecords.candle_columns,
    lambda columns: int(columns.shape[1]),
    archive.candle_columns_of,
    archive.empty_columns,
    archive.merge,
    archive.write_partition,
    RetentionRecords.delete_candles_if_unchanged,
)
_TICKERS = _Kind(
    _ticker_move_of,
    RetentionRecords.ticker_rows,
    len,
    archive.ticker_rows_of,
    list,
    archive.merge_rows,
    archive.write_ticker_partition,
    RetentionRecords.delete_tickers_if_unchanged,
)


def _report(store: Store, policy: Policy, now: int, *, dry_run: bool) -> RetentionReport:
    cutoffs = {table: policy.cutoff(table, now) for table in DEFAULT_KEEP_DAYS}
    return RetentionReport(
        dry_run=dry_run,
        now=now,
        archive_dir=str(locate(store.db.companion_base)),
        cutoffs=cutoffs,
    )


def _estimate(records: RetentionRecords, report: RetentionReport) -> None:
    freed = 0.0
    candles = sum(p.rows for p in report.partitions)
    tickers = sum(p.rows for p in report.ticker_partitions)
    freed += candles * (records.bytes_per_row("market_data") or 0)
    freed += tickers * (records.bytes_per_row("tickers") or 0)
    for table in DELETED_TABLES:
        rows = sum(d.rows for d in report.deletions if d.table == table)
        freed += rows * (records.bytes_per_row(table) or 0) if rows else 0
    report.database_bytes_freed_estimate = int(freed)
    report.archive_bytes_estimate = (
        candles * ARCHIVE_BYTES_PER_CANDLE + tickers * ARCHIVE_BYTES_PER_TICKER
    )


def _reclaim(
    store: Store, records: RetentionRecords, policy: Policy, report: RetentionReport
) -> str:
    """Give the space of the deleted rows back to the file system (see
    Database.reclaim_space for what `auto` does on each engine)."""
    started = time.perf_counter()
    how = records.reclaim(policy.vacuum)
    if how != "none":
        report.vacuum_seconds = round(time.perf_counter() - started, 3)
    return how
