"""The report as one self-contained HTML file: the metrics table, equity curves, drawdown,
daily P&L and candle charts with the fills marked.

Charts are plotly figures. plotly.js is embedded once, inline, for all of them, so the
file opens offline and references nothing on the network. Amounts are exact in the table
and in the charts' hover text; the chart geometry itself is drawn from floats, converted
explicitly here and nowhere else.
"""

from __future__ import annotations

import html
import itertools
import math
import os
from collections.abc import Sequence
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tradedb import owner_only
from tradedb.errors import ValidationError
from tradedb.models.values import format_plain, ms_to_datetime, now_epoch_ms
from tradedb.services.reports.comparison import (
    MarketChart,
    Report,
    StrategyRow,
    candle_decimals,
)
from tradedb.services.reports.table import COLUMNS, NUMERIC, cells

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

# One colour per report row, the same in every chart and in the table's swatches
# (plotly's own qualitative palette, which its users know).
PALETTE = (
    "#636efa",
    "#ef553b",
    "#00cc96",
    "#ab63fa",
    "#ffa15a",
    "#19d3f3",
    "#ff6692",
    "#b6e880",
    "#ff97ff",
    "#fecb52",
)
# Candle and fill colours, kept apart from the palette so a fill never reads as a strategy.
CANDLE_UP = "#26a69a"
CANDLE_DOWN = "#ef5350"
BUY = "#2563eb"
SELL = "#f97316"
# The plot areas' background: a tint the page uses nowhere else, so a plot area is easy
# to tell from the page (the screenshot test finds the charts by it).
PLOT_BACKGROUND = "#f3f5f9"
CHART_HEIGHT = 420
# Longer stretches without performance rows are cut out of the date axis.
GAP_DAYS = 7
DAY_MS = 86_400_000
CANDLE_HEIGHT = 480
LINE_WIDTH = 3

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1f2937; background: #ffffff; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 8px; }
p.scope, p.note { color: #4b5563; margin: 4px 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 6px 8px; border-bottom: 1px solid #e5e7eb; text-align: left;
  white-space: nowrap; }
th { background: #ffffff; border-bottom: 2px solid #9ca3af; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums; }
td.quiet { color: #6b7280; font-style: italic; }
span.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 6px; }
.chart { width: 100%; }
"""


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def render(report: Report, *, generated_at: int | None = None) -> str:
    """The whole report as one HTML document."""
    plotly = _plotly()
    when = ms_to_datetime(generated_at if generated_at is not None else now_epoch_ms())
    sections = [
        f"<h1>tradedb report</h1><p class=scope>{html.escape(report.filters.describe())}"
        f" · generated {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC</p>",
        "<h2>Strategies compared</h2>" + _metrics_table(report.rows),
        *_performance_sections(report.rows),
        *(_market_section(market) for market in report.markets),
    ]
    charts = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
        "<title>tradedb report</title>\n"
        f"<style>{_STYLE}</style>\n"
        f"<script>{plotly.offline.get_plotlyjs()}</script>\n"
        f"</head>\n<body>\n<main>\n{charts}\n</main>\n</body>\n</html>\n"
    )


def write(report: Report, path: str | os.PathLike[str]) -> int:
    """Write the report to `path` (replacing it) and return its size in bytes."""
    target = Path(path)
    if not target.parent.is_dir():
        raise ValidationError("html", str(target), "its folder does not exist")
    document = render(report).encode()
    try:
        # The report shows balances and trades: readable by its owner only, as the
        # database is.
        with owner_only.new_file(target, replace=True, fsync=False) as handle:
            handle.write(document)
    except OSError as exc:
        raise ValidationError("html", str(target), f"cannot be written: {exc.strerror}") from None
    return len(document)


def _plotly() -> Any:
    try:
        import plotly.offline
    except ImportError:
        raise ValidationError(
            "html", "plotly", "the HTML report needs plotly: pip install 'tradedb[report]'"
        ) from None
    return plotly


# --- the table ----------------------------------------------------------------------------


def _metrics_table(rows: Sequence[StrategyRow]) -> str:
    head = "".join(
        f"<th class={'number' if header in NUMERIC else 'text'} title='{html.escape(meaning)}'>"
        f"{html.escape(header)}</th>"
        for header, meaning in COLUMNS
    )
    body = []
    for index, row in enumerate(rows):
        row_cells = []
        for (header, _), text in zip(COLUMNS, cells(row), strict=True):
            kind = "number" if header in NUMERIC else "text"
            if text in {"—", "no trades"}:
                kind += " quiet"
            content = html.escape(text)
            if header == "strategy":
                content = f"<span class=swatch style='background:{colour(index)}'></span>{content}"
            row_cells.append(f"<td class='{kind}'>{content}</td>")
        body.append(f"<tr>{''.join(row_cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# --- equity, drawdown and daily P&L -----------------------------------------------------------


def _performance_sections(rows: Sequence[StrategyRow]) -> list[str]:
    charted = [(index, row) for index, row in enumerate(rows) if row.days]
    if not charted:
        return [
            "<h2>Equity, drawdown and daily P&amp;L</h2><p class=note>No daily performance "
            "rows in this period, so there are no equity curves yet (analytics writes them "
            "to performance_metrics).</p>"
        ]
    import plotly.graph_objects as go

    equity = _figure("USD")
    drawdown = _figure("%")
    daily = _figure("USD")
    daily.update_layout(barmode="group", bargap=0.25)
    for figure in (equity, daily):
        figure.update_yaxes(tickformat=",.2~f")
    # The portfolio-wide curves hold every strategy's money: on the left axis with the
    # strategies they would flatten them into lines, so they get an axis of their own.
    split = any(row.strategy is None for _, row in charted) and any(
        row.strategy is not None for _, row in charted
    )
    if split:
        equity.update_layout(
            yaxis2={
                "title": {"text": "USD, all strategies (dashed)"},
                "overlaying": "y",
                "side": "right",
                "showgrid": False,
                "tickformat": ",.2~f",
            },
            margin={"r": 80},
        )
    for index, row in charted:
        dates = [day.date for day in row.days]
        # plotly reads legend text as a little HTML; a strategy name is shown as typed.
        style = {"name": html.escape(row.label), "legendgroup": row.label}
        whole = split and row.strategy is None
        equity.add_trace(
            go.Scatter(
                x=dates,
                y=_floats(day.equity for day in row.days),
                customdata=[format_plain(day.equity) for day in row.days],
                hovertemplate="%{x}: %{customdata} USD",
                mode="lines+markers" if len(dates) <= 60 else "lines",
                line={
                    "color": colour(index),
                    "width": LINE_WIDTH,
                    "dash": "dash" if whole else "solid",
                },
                yaxis="y2" if whole else "y",
                **style,
            )
        )
        drawdown.add_trace(
            go.Scatter(
                x=dates,
                y=_floats(-day.drawdown for day in row.days),
                customdata=[format_plain(day.drawdown) for day in row.days],
                hovertemplate="%{x}: %{customdata} % below peak",
                mode="lines",
                fill="tozeroy",
                line={"color": colour(index), "width": LINE_WIDTH},
                **style,
            )
        )
        daily.add_trace(
            go.Bar(
                x=dates,
                y=_floats(day.pnl for day in row.days),
                customdata=[format_plain(day.pnl) for day in row.days],
                hovertemplate="%{x}: %{customdata} USD",
                marker={"color": colour(index)},
                **style,
            )
        )
    shown = sorted({day.date for _, row in charted for day in row.days})
    skipped = _long_gaps(shown)
    if skipped:
        # plotly spaces its ticks over the whole range, cut-out years included, and would
        # label years only; about ten ticks over the days actually shown instead.
        every = max(1, math.ceil(len(shown) / 10)) * DAY_MS
        for figure in (equity, drawdown, daily):
            figure.update_xaxes(
                rangebreaks=[{"bounds": list(gap)} for gap in skipped],
                dtick=every,
                tickformat="%b %d\n%Y",
            )
    return [
        "<h2>Equity (USD, end of day)</h2>" + _div(equity, "equity"),
        "<h2>Drawdown (% below the running peak)</h2>" + _div(drawdown, "drawdown"),
        "<h2>Daily P&amp;L (USD)</h2>" + _div(daily, "daily-pnl"),
    ]


def _long_gaps(dates: Sequence[str]) -> list[tuple[str, str]]:
    """Stretches of more than GAP_DAYS days without a performance row, as (day after the
    last row, day of the next row): the date axis leaves them out, so periods years apart
    (the demo's 2018 and 2023 data) are not squeezed into slivers at either end."""
    found = []
    for before, after in itertools.pairwise(dates):
        first, last = date.fromisoformat(before), date.fromisoformat(after)
        if (last - first).days > GAP_DAYS:
            found.append(((first + timedelta(days=1)).isoformat(), last.isoformat()))
    return found


# --- candles with the fills -------------------------------------------------------------------


def _market_section(market: MarketChart) -> str:
    import plotly.graph_objects as go

    title = f"{market.symbol} on {market.exchange}"
    heading = f"{title}, {market.timeframe} candles (UTC)" if market.timeframe else title
    figure = _figure(market.symbol.partition("/")[2], height=CANDLE_HEIGHT)
    # Prices as written (0.00010756), not with SI prefixes (107.56µ).
    figure.update_yaxes(tickformat=".8~f")
    note = ""
    if market.candles:
        times, opens, highs, lows, closes = zip(
            *(candle_decimals(candle) for candle in market.candles), strict=True
        )
        figure.add_trace(
            go.Candlestick(
                x=[_utc(stamp) for stamp in times],
                open=_floats(opens),
                high=_floats(highs),
                low=_floats(lows),
                close=_floats(closes),
                name=f"{market.symbol} {market.timeframe}",
                increasing={"line": {"color": CANDLE_UP}, "fillcolor": CANDLE_UP},
                decreasing={"line": {"color": CANDLE_DOWN}, "fillcolor": CANDLE_DOWN},
            )
        )
    else:
        note = (
            f"<p class=note>No candles of {html.escape(title)} are stored around its trades; "
            "only the fills are shown (tradedb download or import brings the candles).</p>"
        )
    for side, symbol, fill_colour in (
        ("buy", "triangle-up", BUY),
        ("sell", "triangle-down", SELL),
    ):
        fills = [marker for marker in market.markers if marker.side == side]
        if not fills:
            continue
        figure.add_trace(
            go.Scatter(
                x=[_utc(marker.timestamp) for marker in fills],
                y=_floats(marker.price for marker in fills),
                customdata=[
                    [
                        marker.strategy or "(no strategy)",
                        format_plain(marker.amount),
                        format_plain(marker.price),
                    ]
                    for marker in fills
                ],
                hovertemplate=f"{side} %{{customdata[1]}} at %{{customdata[2]}}"
                "<br>%{customdata[0]}<extra></extra>",
                mode="markers",
                name=f"{side}s",
                marker={
                    "symbol": symbol,
                    "size": 15,
                    "color": fill_colour,
                    "line": {"color": "#111827", "width": 1.5},
                },
            )
        )
    figure.update_layout(xaxis_rangeslider_visible=False)
    anchor = "candles-" + "".join(ch if ch.isalnum() else "-" for ch in title.lower())
    return f"<h2>{html.escape(heading)}</h2>{note}" + _div(figure, anchor)


# --- shared -----------------------------------------------------------------------------------


def _figure(unit: str, *, height: int = CHART_HEIGHT) -> Figure:
    import plotly.graph_objects as go

    figure = go.Figure()
    figure.update_layout(
        template="plotly_white",
        plot_bgcolor=PLOT_BACKGROUND,
        paper_bgcolor="#ffffff",
        height=height,
        margin={"l": 70, "r": 30, "t": 36, "b": 40},
        legend={"orientation": "h", "y": -0.15},
        yaxis={"title": {"text": unit}, "zerolinecolor": "#9ca3af"},
        hovermode="closest",
    )
    return figure


def _div(figure: Figure, anchor: str) -> str:
    chart: str = figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=anchor,
        config={"displaylogo": False, "responsive": True},
    )
    return f"<div class=chart>{chart}</div>"


def _floats(values: Any) -> list[float]:
    """Chart coordinates: the one place amounts become floats, for plotly to draw."""
    return [float(value) for value in values]


def _utc(millis: int) -> str:
    return f"{ms_to_datetime(millis):%Y-%m-%d %H:%M:%S}"
