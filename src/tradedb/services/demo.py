"""`tradedb demo`: the whole of tradedb on the real market data it ships, offline, at once.

One run makes a new database and, step by step (each reported to a `DemoProgress`):

1. creates it: `--db`, else a new `demo-<UTC time>.sqlite` beside the default database,
   never the default database itself nor one named by $TRADEDB_DB or the config file;
2. imports the shipped data: Binance's 5m candles of five BTC markets (January 2018,
   freqtrade floats rounded to 8 decimals) and Kraken's BCH/EUR trades as 15m candles
   (January 2023);
3. stores a USD reference price for each quote currency (BTC, EUR) with the period it
   holds for (the data's days), since the data holds no BTC/USD or EUR/USD market;
4. paper-trades `sma_cross` and `rsi_revert` side by side, 50/50, on each exchange (one
   session per exchange: their quote currencies differ); each session funds its wallet
   and marks the open positions at the last close;
5. writes daily portfolio snapshots and daily performance metrics over each exchange's
   days;
6. compares the strategies and writes the self-contained HTML report.

The two exchanges' data are five years apart, so each reference price is stored with its
period and values only that: BTC's January 2018 price must not value a 2023 holding, in
the demo or in any later `tradedb metrics` or `snapshot` on its database. Where that
leaves a holding without a price (the Binance coins in 2023), tradedb writes no row rather
than a wrong one, and the result says so.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Protocol

import tradedb
from tradedb.api import Analytics, TradeDB
from tradedb.errors import TradeDBError, ValidationError
from tradedb.models.timeframes import timeframe_of
from tradedb.models.values import format_plain, market_assets, ms_to_datetime
from tradedb.services.analytics.metrics import Scope
from tradedb.services.location import (
    DatabaseLocation,
    default_database_path,
    parse_database_url,
    prepare_for_writing,
    report_beside,
)
from tradedb.services.marketdata import files
from tradedb.services.marketdata.importing import ImportResult
from tradedb.services.paper import SessionResult
from tradedb.services.reports import Report

SAMPLE_DATA = Path(str(resources.files("tradedb") / "sample_data"))
STRATEGIES = ("sma_cross", "rsi_revert")
# Half the capital each: a fixed split works on any data, where inverse-vol needs days of
# candles before the start that the Kraken sample (47 hours) does not have.
ALLOCATION = "fixed:0.5,0.5"
# Marks a database as the demo's own, so that running the demo on it again may replace it.
DEMO_KEY = "demo.database"
SIDECARS = ("-wal", "-shm", "-journal", "-writer.lock")


@dataclass(frozen=True)
class ReferencePrice:
    """A configured USD price (table reference_prices), not market data."""

    asset: str
    usd: Decimal
    source: str


@dataclass(frozen=True)
class Venue:
    """One exchange's part of the demo: its shipped files and how they are traded."""

    exchange: str
    folder: str  # under SAMPLE_DATA
    timeframe: str
    capital: Decimal  # deposited in the quote currency
    reference: ReferencePrice  # the quote currency's USD price over this data's period
    # freqtrade candle files, stored as floats (some with noise past 8 decimals).
    float_files: bool
    why_timeframe: str


BINANCE = Venue(
    exchange="binance",
    folder="binance",
    timeframe="5m",
    capital=Decimal(1),
    reference=ReferencePrice(
        "BTC",
        Decimal(12000),
        "BTC's daily closes ran from about 10,100 to 15,000 USD, averaging about 12,100, "
        "from 10 to 30 January 2018 in public price histories such as CoinMarketCap's",
    ),
    float_files=True,
    why_timeframe="the files' own timeframe",
)
KRAKEN = Venue(
    exchange="kraken",
    folder="kraken",
    timeframe="15m",
    capital=Decimal(10000),
    reference=ReferencePrice(
        "EUR",
        Decimal("1.07"),
        "the euro was worth about 1.07 USD at the turn of 2022/2023, and 1.055 at the New "
        "York close of 3 January 2023 (Dow Jones market data)",
    ),
    float_files=False,
    # Measured on the shipped files: 634 trades over 47 hours fill 32 % of the 5m buckets,
    # 62 % of the 15m ones, and 44 1h candles.
    why_timeframe=(
        "the finest timeframe in which most buckets hold a trade (in 5m, two buckets of "
        "three would have none; 1h gives 44 candles, fewer than sma_cross's 48-candle window)"
    ),
)
VENUES = (BINANCE, KRAKEN)


# --- progress ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StepReport:
    step: str  # a short key, e.g. "import-binance"
    title: str
    seconds: float
    summary: str


class DemoProgress(Protocol):
    """What a front end hears while the demo runs: each step's start, its advance (when it
    can count its work), and its end with what it did."""

    def started(self, step: str, title: str) -> None: ...

    def advanced(self, step: str, done: int, total: int | None) -> None: ...

    def finished(self, report: StepReport) -> None: ...


class _Step:
    def __init__(self, key: str, progress: DemoProgress | None) -> None:
        self.key = key
        self.summary = ""
        self._progress = progress

    def advance(self, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress.advanced(self.key, done, total)


class _Steps:
    def __init__(self, progress: DemoProgress | None, clock: Callable[[], float]) -> None:
        self.reports: list[StepReport] = []
        self._progress = progress
        self._clock = clock

    @contextmanager
    def step(self, key: str, title: str) -> Iterator[_Step]:
        if self._progress is not None:
            self._progress.started(key, title)
        began = self._clock()
        current = _Step(key, self._progress)
        yield current
        report = StepReport(key, title, self._clock() - began, current.summary)
        self.reports.append(report)
        if self._progress is not None:
            self._progress.finished(report)


# --- the result -------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketImported:
    exchange: str
    symbol: str
    timeframe: str
    candles: int  # stored after the import
    first: int  # first and last candle time, epoch ms
    last: int
    rounded: int  # float values rounded to 8 decimals
    trades: int  # trades turned into candles (trade files only)
    files: tuple[str, ...]


@dataclass(frozen=True)
class Period:
    """An exchange's days in the data (UTC, both included)."""

    exchange: str
    first_day: date
    last_day: date

    @property
    def start(self) -> str:
        return self.first_day.isoformat()

    @property
    def end(self) -> str:
        """The midnight after the last day: sessions run up to it, exclusive."""
        return (self.last_day + timedelta(days=1)).isoformat()


@dataclass(frozen=True)
class Unpriced:
    """Holdings or scopes left without a row on some days for want of a price: tradedb
    writes no row rather than a wrong one. `reason` is the first one met."""

    what: tuple[str, ...]
    days: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class DemoResult:
    database: Path
    report: Path
    report_bytes: int
    replaced: bool  # an earlier demo database at --db was replaced
    steps: tuple[StepReport, ...]
    markets: tuple[MarketImported, ...]
    references: tuple[tuple[Venue, Period], ...]
    sessions: tuple[SessionResult, ...]
    snapshot_days: int
    snapshot_rows: int
    snapshots_unpriced: Unpriced | None
    metrics_rows: int
    metrics_unpriced: Unpriced | None
    comparison: Report
    seconds: float
    notes: tuple[str, ...] = field(default=())


# --- the database -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    path: Path
    replaced: bool


def default_demo_path(now: datetime, folder: Path | None = None) -> Path:
    """`demo-<YYYYmmdd-HHMMSS>.sqlite` (UTC) in the default database's folder; a name taken
    already gets a counter, so that the demo never opens an existing file."""
    folder = default_database_path().parent if folder is None else folder
    stem = f"demo-{now.astimezone(UTC):%Y%m%d-%H%M%S}"
    path = folder / f"{stem}.sqlite"
    counter = 2
    while path.exists():
        path = folder / f"{stem}-{counter}.sqlite"
        counter += 1
    return path


def choose_database(db: str | os.PathLike[str] | None, now: datetime) -> Target:
    """Where the demo writes, refusing anything that could hold someone's data.

    `db` may be a new path, an empty file, or an earlier demo database (which is
    replaced whole). Any other existing file is refused: demo data is never mixed into a
    database that holds anything else.
    """
    if db is None:
        path = default_demo_path(now)
        prepare_for_writing(DatabaseLocation(path, "default"))
        return Target(path, replaced=False)
    path = _demo_file(db)
    prepare_for_writing(DatabaseLocation(path, "--db"))
    if path.is_dir():
        raise ValidationError("db", str(path), "is a folder; give a file for the demo database")
    if not path.exists():
        return Target(path, replaced=False)
    if path.stat().st_size == 0:
        path.unlink()  # so that the database is created owner-only
        return Target(path, replaced=False)
    if not is_demo_database(path):
        raise ValidationError(
            "db",
            str(path),
            "already exists and is not a database made by tradedb demo; the demo writes only "
            "into a new file, so that its data never mixes with yours (give another "
            "`db=PATH`, or none for a new file)",
        )
    for suffix in ("", *SIDECARS):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return Target(path, replaced=True)


def is_demo_database(path: Path) -> bool:
    """Whether `path` is a tradedb database marked as the demo's (read-only look)."""
    try:
        with tradedb.open(path, readonly=True) as db:
            return db.tables.bot_config.count({"config_key": DEMO_KEY}) > 0
    except (TradeDBError, sqlite3.Error, OSError):
        # Not a tradedb database, another schema version, unreadable: not the demo's.
        return False


# --- the run ----------------------------------------------------------------------------


def run_demo(
    db: str | os.PathLike[str] | None = None,
    html: str | os.PathLike[str] | None = None,
    *,
    progress: DemoProgress | None = None,
    now: datetime | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> DemoResult:
    """Run the whole demo into a new database and write its HTML report (see the module)."""
    began = clock()
    now = datetime.now(UTC) if now is None else now
    html_path = None if html is None else Path(html).expanduser()
    if html_path is not None:
        _check_report_path(html_path, db)
    steps = _Steps(progress, clock)
    with ExitStack() as cleanup:
        with steps.step("database", "Create the database") as step:
            target = choose_database(db, now)
            database = cleanup.enter_context(tradedb.open(target.path))
            _mark_as_demo(database, now)
            done = "replaced the earlier demo database" if target.replaced else "created"
            step.summary = f"{done} {target.path}"
        report_path = report_beside(target.path) if html_path is None else html_path
        markets, notes = _import(database, steps)
        periods = {venue.exchange: _period(venue, markets) for venue in VENUES}
        with steps.step("references", "Configure reference prices") as step:
            for venue in VENUES:
                _configure_reference(database, venue.reference, periods[venue.exchange])
            prices = (f"{v.reference.asset} = {format_plain(v.reference.usd)} USD" for v in VENUES)
            step.summary = (
                f"{', '.join(prices)}, each for its exchange's days (configured, not market data)"
            )
        sessions = tuple(
            _paper(database, steps, venue, periods[venue.exchange], markets) for venue in VENUES
        )
        days, rows, snapshots_unpriced = _snapshots(database, steps, periods)
        metrics_rows, metrics_unpriced = _metrics(database, steps, periods)
        with steps.step("report", "Compare the strategies, write the HTML report") as step:
            comparison = database.analytics.report()
            size = Analytics.write_report_html(comparison, report_path)
            step.summary = f"{len(comparison.rows)} rows; {report_path} ({size / 1e6:.1f} MB)"
    return DemoResult(
        database=target.path,
        report=report_path,
        report_bytes=size,
        replaced=target.replaced,
        steps=tuple(steps.reports),
        markets=markets,
        references=tuple((venue, periods[venue.exchange]) for venue in VENUES),
        sessions=sessions,
        snapshot_days=days,
        snapshot_rows=rows,
        snapshots_unpriced=snapshots_unpriced,
        metrics_rows=metrics_rows,
        metrics_unpriced=metrics_unpriced,
        comparison=comparison,
        seconds=clock() - began,
        notes=(
            *notes,
            _reference_note(periods),
            *_unpriced_notes(snapshots_unpriced, metrics_unpriced),
        ),
    )


def _demo_file(db: str | os.PathLike[str]) -> Path:
    target = parse_database_url(os.fspath(db))
    if not isinstance(target, Path):
        raise ValidationError("db", str(target), "the demo makes a SQLite file; give a path")
    return target


def _check_report_path(path: Path, db: str | os.PathLike[str] | None) -> None:
    """Refused before anything runs, rather than after the whole demo."""
    if path.is_dir():
        raise ValidationError("html", str(path), "is a folder; give a file for the report")
    if not path.parent.is_dir():
        raise ValidationError("html", str(path), "its folder does not exist")
    if db is not None and path.resolve() == _demo_file(db).resolve():
        raise ValidationError("html", str(path), "is the database itself; give another file")


def _mark_as_demo(db: TradeDB, now: datetime) -> None:
    db.config.set(
        DEMO_KEY,
        True,
        config_type="boolean",
        description=(
            f"made by tradedb demo at {now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC; "
            "running the demo on this file again replaces it"
        ),
    )


def _import(db: TradeDB, steps: _Steps) -> tuple[tuple[MarketImported, ...], list[str]]:
    markets: list[MarketImported] = []
    notes: list[str] = []
    for venue in VENUES:
        folder = SAMPLE_DATA / venue.folder
        count = len(files.candidates(folder))
        title = (
            "Import Binance candles"
            if venue.exchange == "binance"
            else "Turn Kraken trades into candles"
        )
        with steps.step(f"import-{venue.exchange}", title) as step:
            done = 0

            def advance(_path: Path, step: _Step = step, total: int = count) -> None:
                nonlocal done
                done += 1
                step.advance(done, total)

            results = db.market.import_path(
                folder,
                exchange=venue.exchange,
                timeframe=venue.timeframe,
                progress=advance,
            )
            imported = _markets_of(db, venue, results)
            markets += imported
            step.summary = _import_summary(venue, imported)
        notes.append(_import_note(venue, imported))
    return tuple(markets), notes


def _markets_of(db: TradeDB, venue: Venue, results: Sequence[ImportResult]) -> list[MarketImported]:
    stored = {
        s.coverage.symbol: s.coverage
        for s in db.market.list_data(exchange=venue.exchange)
        if s.coverage.timeframe == venue.timeframe
    }
    by_symbol: dict[str, list[ImportResult]] = {}
    for result in results:
        by_symbol.setdefault(result.symbol, []).append(result)
    imported = []
    for symbol, parts in sorted(by_symbol.items()):
        coverage = stored[symbol]
        imported.append(
            MarketImported(
                exchange=venue.exchange,
                symbol=symbol,
                timeframe=venue.timeframe,
                candles=coverage.candles,
                first=coverage.first,
                last=coverage.last,
                rounded=sum(part.rounded for part in parts),
                trades=sum(part.trades for part in parts),
                files=tuple(part.path.name for part in parts),
            )
        )
    return imported


def _import_summary(venue: Venue, imported: Sequence[MarketImported]) -> str:
    candles = sum(m.candles for m in imported)
    names = ", ".join(m.symbol for m in imported)
    if venue.float_files:
        return f"{names}: {candles:,} {venue.timeframe} candles"
    trades = sum(m.trades for m in imported)
    read = sum(len(m.files) for m in imported)
    return f"{names}: {trades:,} trades from {read} files -> {candles:,} {venue.timeframe} candles"


def _import_note(venue: Venue, imported: Sequence[MarketImported]) -> str:
    if venue.float_files:
        rounded = sum(m.rounded for m in imported)
        return (
            f"{venue.exchange.title()} candles: freqtrade stored them as floats, and {rounded:,} "
            "values carry float noise past the 8th decimal (0.00010756000000000001); they were "
            "rounded half-even to 8 decimals (as `tradedb import` does unless `--strict`). Every "
            "other value is "
            "exactly its float's shortest form."
        )
    names = ", ".join(m.symbol for m in imported)
    return (
        f"{venue.exchange.title()}'s {names} trades became {venue.timeframe} candles, "
        f"{venue.why_timeframe}."
    )


def _period(venue: Venue, markets: Sequence[MarketImported]) -> Period:
    mine = [m for m in markets if m.exchange == venue.exchange]
    first = min(m.first for m in mine)
    # The last candle's last millisecond, so a candle ending at midnight stays on its day.
    last = timeframe_of(venue.timeframe).end(max(m.last for m in mine)) - 1
    return Period(venue.exchange, ms_to_datetime(first).date(), ms_to_datetime(last).date())


def _configure_reference(db: TradeDB, reference: ReferencePrice, period: Period) -> None:
    """The price holds over the data's days and up to the end of the day after them, so
    that the valuations at the midnight closing the last day (snapshots, metrics) have it;
    its end is exclusive."""
    db.analytics.set_reference_price(
        reference.asset,
        reference.usd,
        valid_from=period.start,
        valid_until=(period.last_day + timedelta(days=2)).isoformat(),
        source=(
            f"tradedb demo: approximate USD price of {reference.asset} over "
            f"{period.start} to {period.last_day.isoformat()}, configured, not market "
            f"data: {reference.source}"
        ),
    )


def _paper(
    db: TradeDB,
    steps: _Steps,
    venue: Venue,
    period: Period,
    markets: Sequence[MarketImported],
) -> SessionResult:
    symbols = [m.symbol for m in markets if m.exchange == venue.exchange]
    quote = market_assets(symbols[0])[1]
    title = f"Paper-trade on {venue.exchange.title()}"
    with steps.step(f"paper-{venue.exchange}", title) as step:
        plan = Analytics.plan_paper_session(
            strategies=STRATEGIES,
            exchange=venue.exchange,
            symbols=symbols,
            since=period.start,
            until=period.end,
            timeframe=venue.timeframe,
            capital=venue.capital,
            allocation=ALLOCATION,
        )
        result = db.analytics.run_paper_session(plan, progress=step.advance)
        fills = ", ".join(f"{s.strategy} {s.fills:,}" for s in result.strategies)
        step.summary = (
            f"{' and '.join(STRATEGIES)}, 50/50 of {format_plain(venue.capital)} {quote}, "
            f"{period.start} to {period.end}, {result.candles:,} candles; fills: {fills}; "
            "open positions marked at the last close"
        )
    return result


def _snapshots(
    db: TradeDB, steps: _Steps, periods: dict[str, Period]
) -> tuple[int, int, Unpriced | None]:
    with steps.step("snapshots", "Daily portfolio snapshots") as step:
        # 00:00 of each day from the first day to the midnight after the last.
        total = sum((p.last_day - p.first_day).days + 2 for p in periods.values())
        done = 0

        def advance(_snapshot: object) -> None:
            nonlocal done
            done += 1
            step.advance(done, total)

        snapshots = []
        for venue in VENUES:
            period = periods[venue.exchange]
            snapshots += db.analytics.snapshot_days(
                period.start,
                period.end,
                progress=advance,
            )
        rows = sum(len(s.rows) for s in snapshots)
        unvalued = [(s, holding) for s in snapshots for holding in s.unvalued]
        unpriced = None
        if unvalued:
            first = unvalued[0][1]
            held: dict[str, set[str]] = {}
            for _, holding in unvalued:
                held.setdefault(holding.exchange, set()).add(holding.asset)
            unpriced = Unpriced(
                tuple(f"{x}'s {', '.join(sorted(assets))}" for x, assets in sorted(held.items())),
                tuple(sorted({_day(s.timestamp) for s, _ in unvalued})),
                f"{first.asset} {first.reason}",
            )
        step.summary = f"{len(snapshots)} days, {rows:,} rows"
        if unpriced is not None:
            step.summary += f" ({len(unvalued)} holdings without a price left out)"
    return len(snapshots), rows, unpriced


def _metrics(db: TradeDB, steps: _Steps, periods: dict[str, Period]) -> tuple[int, Unpriced | None]:
    with steps.step("metrics", "Daily performance metrics") as step:
        total = sum((p.last_day - p.first_day).days + 1 for p in periods.values())
        done = 0

        def advance(_day: str, _rows: int) -> None:
            nonlocal done
            done += 1
            step.advance(done, total)

        rows = 0
        unpriced: set[Scope] = set()
        days: set[str] = set()
        reason = ""
        for venue in VENUES:
            period = periods[venue.exchange]
            result = db.analytics.compute_metrics(
                period.start,
                period.last_day.isoformat(),
                progress=advance,
            )
            rows += len(result.rows)
            # A scope skipped before this period began already has its rows from an
            # earlier period; it is reported as having none in this one.
            for skipped in result.skipped:
                unpriced.add(skipped.scope)
                days.update(_days(max(skipped.date, period.start), period.last_day.isoformat()))
                reason = reason or skipped.reason
        step.summary = f"{rows:,} rows"
        if unpriced:
            step.summary += f" ({len(unpriced)} scopes without a price on some days)"
    if not unpriced:
        return rows, None
    labels = tuple(
        f"{scope.strategy or 'all strategies'} on {scope.exchange or 'all exchanges'}"
        for scope in sorted(unpriced, key=_scope_order)
    )
    return rows, Unpriced(labels, tuple(sorted(days)), reason)


def _scope_order(scope: Scope) -> tuple[str, str]:
    return (scope.exchange or "~", scope.strategy or "~")


def _day(millis: int) -> str:
    return ms_to_datetime(millis).date().isoformat()


def _days(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


# --- what the user should know ------------------------------------------------------------


def _reference_note(periods: dict[str, Period]) -> str:
    prices = " ".join(
        f"{v.reference.asset} = {format_plain(v.reference.usd)} USD for "
        f"{_span(periods[v.exchange])}: {v.reference.source}."
        for v in VENUES
    )
    return (
        "Reference prices are configured, not market data (the sample holds no BTC/USD or "
        "EUR/USD market), and each is stored with its period (`tradedb reference-price "
        f"list`), so it values only that period. {prices}"
    )


def _unpriced_notes(snapshots: Unpriced | None, metrics: Unpriced | None) -> list[str]:
    notes = []
    if snapshots is not None:
        notes.append(
            f"Snapshots of {_list_days(snapshots.days)} leave out {', '.join(snapshots.what)}: "
            "no price for them then (the sample's exchanges are five years apart, and a "
            "reference price values only its own period); tradedb writes no row rather than "
            "a wrong one."
        )
    if metrics is not None:
        notes.append(
            f"No performance rows on {_list_days(metrics.days)} for "
            f"{', '.join(metrics.what)}: their holdings have no price then, so their figures "
            "cover their own period only. The report's daily charts show both periods side "
            "by side, the years between them cut out of the date axis."
        )
    return notes


def _span(period: Period) -> str:
    return f"{period.start} to {period.last_day.isoformat()}"


def _list_days(days: Sequence[str]) -> str:
    contiguous = len(_days(days[0], days[-1])) == len(days)
    if len(days) > 2 and contiguous:
        return f"{days[0]} to {days[-1]}"
    return ", ".join(days)
