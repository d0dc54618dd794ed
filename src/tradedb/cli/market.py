"""Market-data commands: list-data, gaps, resample, import, candles, download, tickers,
ticker-history."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.progress import Progress
from rich.table import Table

from tradedb.api import MarketData
from tradedb.cli import freqtrade
from tradedb.cli.common import (
    DbOption,
    JsonOption,
    as_options,
    err,
    moment,
    open_database,
    out,
    print_json,
    user_errors,
)
from tradedb.cli.options import (
    CSV_FORMATS,
    SEVERAL,
    CsvFormatOption,
    FormatOption,
    NumbersOption,
    SinceOption,
    UntilOption,
    listed,
    output_format,
)
from tradedb.cli.tables import add_rows, exact, percent
from tradedb.models.values import format_fixed, parse_every
from tradedb.services.ccxt_format import Numbers
from tradedb.services.ledger.freqtrade_db import looks_like_database
from tradedb.services.marketdata import files
from tradedb.services.marketdata import tickers as recording
from tradedb.services.marketdata.candles import AMOUNTS
from tradedb.services.marketdata.importing import ImportResult

ExchangeArg = Annotated[str, typer.Option(help="The exchange, e.g. kraken.")]
SymbolArg = Annotated[str, typer.Option(help="The market, e.g. BTC/USD.")]
SymbolsOption = Annotated[
    list[str], typer.Option("--symbol", help=f"The markets, e.g. BTC/USD ({SEVERAL}).")
]


def list_data(
    db: DbOption = None,
    exchange: Annotated[str | None, typer.Option(help="Only this exchange.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show what candles are stored: per exchange, market and timeframe, the first and
    last candle, how many there are, how many are missing in between and in how many
    gaps."""
    with open_database(db, readonly=True) as database:
        summaries = database.market.list_data(exchange=exchange)
    if as_json:
        print_json(
            [
                {
                    "exchange": s.coverage.exchange,
                    "symbol": s.coverage.symbol,
                    "timeframe": s.coverage.timeframe,
                    "first": s.coverage.first,
                    "last": s.coverage.last,
                    "candles": s.coverage.candles,
                    "missing": s.missing,
                    "gaps": s.gaps,
                }
                for s in summaries
            ]
        )
        return
    table = Table(title="stored candles")
    for header in ("exchange", "symbol", "timeframe", "first", "last"):
        table.add_column(header)
    for header in ("candles", "missing", "gaps"):
        table.add_column(header, justify="right")
    for s in summaries:
        table.add_row(
            s.coverage.exchange,
            s.coverage.symbol,
            s.coverage.timeframe,
            moment(s.coverage.first),
            moment(s.coverage.last),
            f"{s.coverage.candles:,}",
            f"{s.missing:,}",
            f"{s.gaps:,}",
        )
    out.print(table)


def gaps(
    exchange: ExchangeArg,
    symbol: SymbolArg,
    timeframe: Annotated[
        str, typer.Option(help="A ccxt timeframe: 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M.")
    ],
    since: SinceOption = None,
    until: UntilOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the ranges of candles missing between the first and the last stored one."""
    with open_database(db, readonly=True) as database:
        found = database.market.gaps(
            exchange=exchange, symbol=symbol, timeframe=timeframe, since=since, until=until
        )
    if as_json:
        print_json([{"start": g.start, "end": g.end, "missing": g.missing} for g in found])
        return
    table = Table(title=f"gaps: {exchange} {symbol} {timeframe}")
    table.add_column("first missing")
    table.add_column("last missing")
    table.add_column("candles", justify="right")
    for gap in found:
        table.add_row(moment(gap.start), moment(gap.end), f"{gap.missing:,}")
    out.print(table)
    out.print(f"{len(found)} gaps, {sum(g.missing for g in found):,} candles missing")


def resample(
    exchange: ExchangeArg,
    symbol: SymbolArg,
    source: Annotated[
        str, typer.Option("--timeframe", help="The stored timeframe to build from, e.g. 1m.")
    ],
    targets: Annotated[
        list[str],
        typer.Option(
            "--into",
            metavar="TIMEFRAME",
            help=f"The timeframes to build, e.g. 5m 1h 1d ({SEVERAL}).",
        ),
    ],
    since: SinceOption = None,
    until: UntilOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build longer candles exactly from stored shorter ones (UTC buckets)."""
    wanted = listed(targets)
    with open_database(db) as database:
        results = database.market.resample(
            exchange=exchange,
            symbol=symbol,
            source=source,
            targets=wanted,
            since=since,
            until=until,
        )
    if as_json:
        print_json(
            [
                {
                    "timeframe": r.timeframe,
                    "source_candles": r.source_candles,
                    "candles": r.written.received,
                    "inserted": r.written.inserted,
                    "updated": r.written.updated,
                    "unchanged": r.written.unchanged,
                }
                for r in results
            ]
        )
        return
    for r in results:
        out.print(
            f"{exchange} {symbol} {source} -> {r.timeframe}: {r.written.received:,} candles from "
            f"{r.source_candles:,} ({r.written.inserted:,} added, {r.written.updated:,} "
            f"updated, {r.written.unchanged:,} unchanged)",
            highlight=False,
        )


def import_files(
    path: Annotated[
        Path,
        typer.Argument(help="A data file, a folder of them, or a freqtrade tradesv3.sqlite."),
    ],
    exchange: Annotated[
        str | None, typer.Option(help="The exchange (else the name of the file's folder).")
    ] = None,
    symbol: Annotated[
        str | None, typer.Option(help="The market (else from the file name).")
    ] = None,
    timeframe: Annotated[
        str | None,
        typer.Option(help="The candles' timeframe (else from the file name; trades: 1m)."),
    ] = None,
    format: Annotated[
        str | None, typer.Option("--format", help=f"One of {', '.join(files.FORMATS)}.")
    ] = None,
    on_conflict: Annotated[
        str, typer.Option(help="A stored candle with other values: replace or keep it.")
    ] = "replace",
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Refuse float values with noise past 8 decimals (else rounded half-even, "
            "and counted).",
        ),
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import candles (or trades, as candles) from freqtrade, Binance or Kraken files, or a
    freqtrade bot's database (tradesv3.sqlite) into the ledger, comparing each trade's P&L
    with freqtrade's."""
    if format is None and looks_like_database(path):
        options = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe}
        freqtrade.import_database(path, db, strict=strict, as_json=as_json, market_options=options)
        return
    candidates = files.candidates(path)
    with (
        open_database(db) as database,
        Progress(
            transient=True,
            console=err,
            # Only at a terminal: piped, rich leaves a blank line before an error.
            disable=as_json or len(candidates) < 2 or not err.is_terminal,
        ) as bar,
    ):
        task = bar.add_task("importing", total=len(candidates))
        results = database.market.import_path(
            path,
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
            format=format,
            on_conflict=on_conflict,  # type: ignore[arg-type]
            strict=strict,
            progress=lambda _item: bar.advance(task),
        )
    for r in results:
        if r.repeated:
            err.print(
                f"{r.path.name}: {r.repeated:,} candles listed again with the same time and "
                "values; each was stored once",
                highlight=False,
                soft_wrap=True,
            )
        for start in r.boundary_kept:
            err.print(
                f"{r.exchange} {r.symbol} {r.timeframe}: kept the stored candle of "
                f"{moment(start)} UTC; it differs from this import's, which holds only part "
                "of that bucket's trades. Import the trade files on both sides of it "
                "together to rebuild it exactly.",
                highlight=False,
                soft_wrap=True,
            )
    if as_json:
        print_json(
            [
                {
                    "file": str(r.path),
                    "format": r.format,
                    "exchange": r.exchange,
                    "symbol": r.symbol,
                    "timeframe": r.timeframe,
                    "candles": r.written.received,
                    "inserted": r.written.inserted,
                    "updated": r.written.updated,
                    "unchanged": r.written.unchanged,
                    "trades": r.trades,
                    "rounded": r.rounded,
                    "first_trade": r.first_trade,
                    "last_trade": r.last_trade,
                    "market_files": [str(item) for item in r.market_files],
                    "boundary_kept": list(r.boundary_kept),
                    "repeated": r.repeated,
                    "status": r.status,
                    "reason": _reason(r),
                }
                for r in results
            ]
        )
        _end_import(results)
        return
    imported = [r for r in results if r.status == "imported"]
    _show_imported(path, imported)
    for r in results:
        if r.status != "imported":
            out.print(f"{r.status}: {r.path} ({_reason(r)})", highlight=False)
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    out.print(", ".join(f"{counts[s]:,} files {s}" for s in STATUSES), highlight=False)
    _end_import(results)


# How each file of an import ended, in the order the summary counts them.
STATUSES = ("imported", "failed", "skipped")
SOME_FAILED = 1


def _reason(result: ImportResult) -> str | None:
    """Why a file was not imported, with the library's arguments as this command's
    options (`strict=True` as `--strict`)."""
    reason = result.failed or result.skipped
    return None if reason is None else as_options(reason, import_files)


def _end_import(results: list[ImportResult]) -> None:
    """Exit 1 when a file of a folder failed (the others are imported)."""
    if any(r.status == "failed" for r in results):
        raise typer.Exit(SOME_FAILED)


def _show_imported(path: Path, results: list[ImportResult]) -> None:
    if not results:
        return
    table = Table(title=f"imported {path}")
    for header in ("file", "format", "exchange", "symbol", "timeframe"):
        table.add_column(header)
    for header in ("trades", "candles", "added", "updated", "unchanged", "rounded"):
        table.add_column(header, justify="right")
    for r in results:
        counts = (r.written.received, r.written.inserted, r.written.updated, r.written.unchanged)
        table.add_row(
            r.path.name,
            r.format,
            r.exchange,
            r.symbol,
            r.timeframe,
            f"{r.trades:,}" if r.market_files else "",
            *(f"{count:,}" if r.carries_write else "-" for count in counts),
            f"{r.rounded:,}",
        )
    if any(len(r.market_files) > 1 for r in results):
        table.caption = (
            "A market's trade files become candles together; "
            "their candles are counted once, on its last file."
        )
    out.print(table)


def candles(
    exchange: ExchangeArg,
    symbol: SymbolArg,
    timeframe: Annotated[
        str, typer.Option(help="A ccxt timeframe: 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M.")
    ],
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[
        int | None, typer.Option(help="Only the last this many (tables show 50 unless set).")
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV for programs.")] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
    format: CsvFormatOption = None,
    numbers: NumbersOption = "string",
) -> None:
    """Show a market's candles, exact: a table, or every row with --json, --csv or
    --format ccxt (ccxt's OHLCV arrays)."""
    shown_as = output_format(
        format, as_json=as_json, as_csv=as_csv, numbers=numbers, choices=CSV_FORMATS
    )
    with open_database(db, readonly=True) as database:
        rows = database.market.exact_candles(exchange, symbol, timeframe, start=since, end=until)
    shown = limit if limit is not None else (None if shown_as != "table" else TABLE_ROWS)
    if shown is not None:
        rows = rows[-shown:] if shown > 0 else []
    if shown_as == "ccxt":
        print_json(database.ccxt.ohlcv(rows, numbers=cast(Numbers, numbers)))
        return
    if shown_as == "json":
        print_json(
            [
                {
                    "timestamp": ts,
                    **{n: format_fixed(v) for n, v in zip(AMOUNTS, values, strict=True)},
                }
                for ts, *values in rows
            ]
        )
        return
    if shown_as == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(("timestamp", *AMOUNTS))
        writer.writerows((ts, *(format_fixed(v) for v in values)) for ts, *values in rows)
        return
    table = Table(title=f"{exchange} {symbol} {timeframe}")
    table.add_column("time (UTC)")
    for name in AMOUNTS:
        table.add_column(name, justify="right")
    add_rows(table, ([moment(ts), *(exact(v) for v in values)] for ts, *values in rows))
    out.print(table)


TABLE_ROWS = 50


def download_candles(
    exchange: ExchangeArg,
    symbols: SymbolsOption,
    timeframes: Annotated[
        list[str] | None,
        typer.Option("--timeframe", help=f"The timeframes, e.g. 1m 1h ({SEVERAL}); default 1m."),
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    fill_gaps: Annotated[
        bool,
        typer.Option("--fill-gaps", help="Also fetch the candles missing inside the stored range."),
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Download candles through ccxt, resuming after the last stored candle; a --since
    before the first stored candle fetches the earlier range too (a backfill)."""
    markets = listed(symbols)
    frames = listed(timeframes) or ["1m"]
    client = MarketData.exchange_client(exchange)
    with (
        open_database(db) as database,
        Progress(transient=True, console=err, disable=as_json or not err.is_terminal) as bar,
    ):
        task = bar.add_task(f"{exchange}: candles", total=None)
        results = database.market.download(
            client,
            symbols=markets,
            timeframes=frames,
            since=since,
            until=until,
            fill_gaps=fill_gaps,
            progress=lambda _symbol, _timeframe, rows: bar.advance(task, rows),
        )
        holes = {
            (r.symbol, r.timeframe): database.market.gaps(
                exchange=exchange, symbol=r.symbol, timeframe=r.timeframe
            )
            for r in results
        }
    if as_json:
        print_json(
            [
                {
                    "symbol": r.symbol,
                    "timeframe": r.timeframe,
                    "candles": r.received,
                    "inserted": r.inserted,
                    "updated": r.updated,
                    "gaps": len(holes[r.symbol, r.timeframe]),
                    "cut_short": r.cut_short,
                    "failed": r.failed,
                }
                for r in results
            ]
        )
        return
    for r in results:
        gaps_found = len(holes[r.symbol, r.timeframe])
        out.print(
            f"{exchange} {r.symbol} {r.timeframe}: {r.received:,} candles ({r.inserted:,} "
            f"added, {r.updated:,} updated), {gaps_found:,} gaps stored",
            highlight=False,
        )
        if r.cut_short:
            out.print(
                f"  {exchange} served less history than asked for (Kraken keeps only its "
                "latest 720 candles); for older data use `tradedb import` with the "
                "exchange's files",
                highlight=False,
            )
        if r.failed:
            out.print(f"  stopped early ({r.failed}); the next run resumes here", highlight=False)


def record_tickers(
    exchange: ExchangeArg,
    symbols: SymbolsOption,
    every: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="Poll at this interval: 500ms, 10s, 1m, 1h."),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(help="Poll this many times (default: once, or with --every until Ctrl-C)."),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record tickers (bid, ask, last, 24h volume and change, and the rest of ccxt's
    ticker: open, high, low, vwap, ...) through ccxt into `tickers`."""
    interval = None if every is None else parse_every(every)
    markets = listed(symbols)
    client = MarketData.exchange_client(exchange)
    planned = recording.planned_polls(interval, count)
    # Only at a terminal: piped or logged, rich would leave a blank line behind.
    live = not as_json and err.is_terminal
    with (
        open_database(db) as database,
        Progress(transient=True, console=err, disable=not live) as bar,
    ):
        task = bar.add_task(f"{exchange}: tickers", total=planned)
        done = {"polls": 0, "inserted": 0, "failed": 0}

        def shown(poll: recording.Poll) -> None:
            done["polls"] += 1
            done["inserted"] += poll.inserted
            done["failed"] += poll.failed is not None
            when = moment(poll.started)
            if poll.failed is not None:
                err.print(f"{when} poll failed: {poll.failed}", highlight=False, soft_wrap=True)
            for symbol, why in poll.skipped:
                err.print(f"{when} {symbol} left out: {why}", highlight=False, soft_wrap=True)
            bar.update(
                task,
                advance=1,
                description=(
                    f"{exchange}: {done['polls']:,} polls, {done['inserted']:,} tickers added, "
                    f"{done['failed']:,} failed"
                ),
            )

        # An exchange that cannot be reached at the start is ExchangeUnavailable, one line
        # by user_errors; a poll that fails later is reported by `shown`.
        result = database.market.record_tickers(
            client, markets, every_ms=interval, count=count, on_poll=shown
        )
    if as_json:
        print_json(
            {
                "exchange": result.exchange,
                "symbols": list(result.symbols),
                "polls": len(result.polls),
                "failed_polls": result.failed_polls,
                "received": result.received,
                "inserted": result.inserted,
                "updated": result.updated,
                "missed_slots": result.missed_slots,
                "interrupted": result.interrupted,
                "results": [
                    {
                        "started": p.started,
                        "received": p.received,
                        "inserted": p.inserted,
                        "updated": p.updated,
                        "skipped": dict(p.skipped),
                        "failed": p.failed,
                    }
                    for p in result.polls
                ],
            }
        )
    else:
        out.print(
            f"{exchange} {','.join(result.symbols)}: {len(result.polls):,} polls, "
            f"{result.received:,} tickers ({result.inserted:,} added, {result.updated:,} "
            f"updated), {result.failed_polls:,} failed polls",
            highlight=False,
        )
        if result.missed_slots:
            out.print(
                f"  {result.missed_slots:,} scheduled polls skipped: a poll took longer than "
                "--every",
                highlight=False,
            )
        if result.interrupted:
            out.print("  stopped by Ctrl-C", highlight=False)
    if result.all_failed:
        raise typer.Exit(1)


# What a ticker's JSON leaves out: the market is the command's, and archived tickers
# have no row id.
TICKER_JSON_OMITS = {"id", "created_at", "symbol", "exchange", "timestamp"}


def ticker_history(
    exchange: ExchangeArg,
    symbol: SymbolArg,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[
        int, typer.Option(help="At most this many: from --since on, else the newest.")
    ] = 100,
    db: DbOption = None,
    as_json: JsonOption = False,
    format: FormatOption = None,
    numbers: NumbersOption = "string",
) -> None:
    """Show a market's stored tickers, archived ones included, oldest first."""
    shown_as = output_format(format, as_json=as_json, numbers=numbers)
    with open_database(db, readonly=True) as database:
        page = database.market.tickers(
            exchange=exchange, symbol=symbol, since=since, until=until, limit=limit
        )
    if shown_as == "ccxt":
        print_json(database.ccxt.tickers(page, numbers=cast(Numbers, numbers)))
    elif shown_as == "json":
        print_json(
            [
                {
                    "timestamp": t.timestamp,
                    # The models write each amount fixed-point at its column's scale.
                    **t.model_dump(mode="json", exclude=TICKER_JSON_OMITS),
                }
                for t in page.tickers
            ]
        )
    else:
        table = Table(title=f"tickers: {exchange} {symbol}")
        table.add_column("time (UTC)")
        for name in ("bid", "ask", "last", "24h volume", "24h change", "24h change %"):
            table.add_column(name, justify="right")
        add_rows(
            table,
            (
                [
                    moment(t.timestamp),
                    exact(t.bid_price),
                    exact(t.ask_price),
                    exact(t.last_price),
                    exact(t.volume_24h),
                    exact(t.price_change_24h),
                    percent(t.price_change_percent_24h),
                ]
                for t in page.tickers
            ),
        )
        out.print(table)
    if page.truncated:
        err.print(f"more tickers in the range than --limit {limit}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the market-data commands to the `tradedb` app."""
    app.command("list-data")(user_errors(list_data))
    app.command()(user_errors(gaps))
    app.command()(user_errors(resample))
    app.command("import")(user_errors(import_files))
    app.command()(user_errors(candles))
    app.command("download")(user_errors(download_candles))
    app.command("tickers")(user_errors(record_tickers))
    app.command("ticker-history")(user_errors(ticker_history))
