"""The report as one self-contained HTML file: the metrics table, equity curves, drawdown,
daily P&L, and a candle chart of every traded market with the fills, the volume and the
strategies' indicators.

plotly.js is embedded once, inline, for all the charts, with the page's own script and
style (report.js, report.css beside this module), so the file opens offline and
references nothing on the network. The charts are built in `html_charts`; this module
lays out the page. Amounts are exact in the tables and in the charts' hover text.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable, Sequence
from datetime import UTC
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from tradedb import owner_only
from tradedb.errors import ValidationError
from tradedb.models.values import PERCENT, format_fixed, ms_to_datetime, now_epoch_ms
from tradedb.services.reports.comparison import MarketChart, Report, StrategyRow
from tradedb.services.reports.html_charts import (
    Chart,
    Look,
    Looks,
    indicator_note,
    looks_of,
    market_chart,
    performance_charts,
    template,
)
from tradedb.services.reports.table import (
    COLUMNS,
    FIGURE_COLUMNS,
    NUMERIC,
    cells,
    figure_cells,
    notes,
    reasons_by_header,
)

# Cells that list an amount per currency wrap between currencies, not inside one.
PER_CURRENCY = frozenset({"realized", "fees"})
# The monthly returns' heatmap: gains in green, losses in red, the deeper the larger; a
# month's colour is full at HEAT_FULL percent or more.
GAIN = (22, 163, 74)
LOSS = (220, 38, 38)
HEAT_FULL = Decimal(10)
# SVG dash patterns of plotly's line dashes, for the table's swatches.
SWATCH_DASHES = {"solid": "", "dot": "2 3", "dash": "6 3", "dashdot": "6 2 2 2", "longdash": "9 3"}


def render(report: Report, *, generated_at: int | None = None) -> str:
    """The whole report as one HTML document."""
    plotly = _plotly()
    when = ms_to_datetime(generated_at if generated_at is not None else now_epoch_ms())
    looks = looks_of(report.rows, report.markets)
    sections = [
        f"<h1>tradedb report</h1><p class=scope>{html.escape(report.filters.describe())}"
        f" · generated {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC</p>",
        "<h2>Strategies compared</h2>" + _metrics_table(report.rows, looks, COLUMNS, cells),
        "<h2>Risk and round trips</h2>"
        + _metrics_table(report.rows, looks, FIGURE_COLUMNS, figure_cells)
        + "".join(f"<p class=scope>{html.escape(line)}</p>" for line in notes(report.rows)),
        *_monthly_section(report.rows, looks),
        *_performance_sections(report.rows, looks),
        *_market_sections(report.markets, looks),
    ]
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
        "<meta name=viewport content='width=device-width, initial-scale=1'>\n"
        "<title>tradedb report</title>\n"
        f"<style>{_asset('report.css')}</style>\n"
        f"</head>\n<body>\n<main>\n{body}\n</main>\n"
        f"{_json_script('plotly-template', template())}\n"
        f"<script>{plotly.offline.get_plotlyjs()}</script>\n"
        f"<script>{_asset('report.js')}</script>\n"
        "</body>\n</html>\n"
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


def _asset(name: str) -> str:
    return resources.files("tradedb.services.reports").joinpath(name).read_text("utf-8")


# --- the table ----------------------------------------------------------------------------


def _metrics_table(
    rows: Sequence[StrategyRow],
    looks: Looks,
    columns: Sequence[tuple[str, str]],
    render: Callable[[StrategyRow], Sequence[str]],
) -> str:
    """One table of the report's figures; hovering a "—" says why it is unknown."""
    head = "".join(
        f"<th class={'number' if header in NUMERIC else 'text'} title='{html.escape(meaning)}'>"
        f"{html.escape(header)}</th>"
        for header, meaning in columns
    )
    body = []
    for row in rows:
        row_cells = []
        reasons = reasons_by_header(row)
        for (header, _), text in zip(columns, render(row), strict=True):
            kind = "number" if header in NUMERIC else "text"
            content = html.escape(text)
            if text in {"—", "no trades"}:
                kind += " quiet"
                if header in reasons:
                    content = f"<span title='{html.escape(reasons[header])}'>{content}</span>"
            elif header in PER_CURRENCY and ", " in text:
                kind += " amounts"
                parts = text.split(", ")
                content = ", ".join(f"<span>{html.escape(part)}</span>" for part in parts)
            if header == "strategy":
                content = _swatch(looks.of(row)) + content
            row_cells.append(f"<td class='{kind}'>{content}</td>")
        body.append(f"<tr>{''.join(row_cells)}</tr>")
    table = f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
    return f"<div class=table-box><table class=compared>{table}</table></div>"


def _monthly_section(rows: Sequence[StrategyRow], looks: Looks) -> list[str]:
    """Each scope's return per calendar month (time-weighted, in percent), months down the
    side and scopes across, each cell tinted by its sign and size."""
    shown = [row for row in rows if row.monthly_returns]
    if not shown:
        return []
    months = sorted({entry.month for row in shown for entry in row.monthly_returns})
    head = "".join(
        f"<th class=number>{_swatch(looks.of(row))}{html.escape(row.label)}</th>" for row in shown
    )
    by_row = [{entry.month: entry.percent for entry in row.monthly_returns} for row in shown]
    body = []
    for month in months:
        shown_cells = []
        for returns in by_row:
            if month not in returns:
                shown_cells.append("<td></td>")
            elif (value := returns[month]) is None:
                shown_cells.append("<td class=quiet title='no return that month'>—</td>")
            else:
                shown_cells.append(
                    f"<td style='background:{_heat(value)}'>{format_fixed(value, PERCENT)}</td>"
                )
        body.append(f"<tr><td class=scope>{month}</td>{''.join(shown_cells)}</tr>")
    table = (
        f"<table class=monthly><thead><tr><th>month</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )
    return [
        "<h2>Monthly returns (%, time-weighted)</h2>"
        "<p class=note>Each month's daily returns compounded; a blank cell is a month the "
        "scope has no daily rows in.</p>"
        f"<div class=table-box>{table}</div>"
    ]


def _heat(percent: Decimal) -> str:
    """A month's background: white blended toward green or red by the return's size."""
    share = float(min(abs(percent), HEAT_FULL) / HEAT_FULL) * 0.55
    tint = GAIN if percent >= 0 else LOSS
    red, green, blue = (round(255 + (channel - 255) * share) for channel in tint)
    return f"#{red:02x}{green:02x}{blue:02x}"


def _swatch(look: Look) -> str:
    """The row's line as its charts draw it: colour, dash, and thickness."""
    dashes = SWATCH_DASHES[look.dash]
    dash = f" stroke-dasharray='{dashes}'" if dashes else ""
    return (
        f"<svg class=swatch width=24 height=10 aria-hidden=true><line x1=1 y1=5 x2=23 y2=5 "
        f"stroke='{look.colour}' stroke-width='{min(look.width, 4)}'{dash}/></svg>"
    )


# --- charts ---------------------------------------------------------------------------------


def _performance_sections(rows: Sequence[StrategyRow], looks: Looks) -> list[str]:
    charts = performance_charts(rows, looks)
    if not charts:
        return [
            "<h2>Equity, drawdown and daily P&amp;L</h2><p class=note>No daily performance "
            "rows in this period, so there are no equity curves yet (analytics writes them "
            "to performance_metrics).</p>"
        ]
    return [f"<h2>{html.escape(chart.heading)}</h2>{_chart(chart)}" for chart in charts]


def _market_sections(markets: Sequence[MarketChart], looks: Looks) -> list[str]:
    if not markets:
        return []
    charts = [market_chart(market, looks) for market in markets]
    ids = [f"market-{index}" for index in range(len(charts))]
    parts = [f"<h2>Markets traded ({len(markets)})</h2>"]
    if len(markets) > 1:
        options = "".join(
            f"<option value={id_}{' selected' if not index else ''}>"
            f"{html.escape(_market_label(market))}</option>"
            for index, (id_, market) in enumerate(zip(ids, markets, strict=True))
        )
        parts.append(
            "<div class=picker><label for=market-choice>Market</label>"
            f"<select id=market-choice>{options}</select>"
            "<span class=note>the most traded first</span></div>"
        )
    note = indicator_note(markets)
    if note:
        parts.append(f"<p class=note>{html.escape(note)}</p>")
    parts.append(
        "<p class=note>▲ buy, ▼ sell, in the strategy's colour; hover a fill for its amount, "
        "price and, on a fill that closes a round trip, the round trip's P&amp;L. Drag to "
        "zoom, use the slider under the chart to move, double-click to see it all.</p>"
    )
    for index, (id_, chart) in enumerate(zip(ids, charts, strict=True)):
        hidden = " hidden" if index else ""
        parts.append(
            f"<section class=market id={id_}{hidden}><h3>{html.escape(chart.heading)}</h3>"
            f"{_chart(chart)}</section>"
        )
    return parts


def _market_label(market: MarketChart) -> str:
    fills = len(market.markers)
    return f"{market.symbol} on {market.exchange} ({fills} fill{'s' if fills != 1 else ''})"


def _chart(chart: Chart) -> str:
    note = f"<p class=note>{chart.note}</p>" if chart.note else ""
    figure = f"{chart.anchor}-figure"
    return f"{note}<div class=chart id={chart.anchor} data-figure={figure}></div>" + _json_script(
        figure, chart.spec
    )


def _json_script(element_id: str, data: Any) -> str:
    """Data for the page's script. `<` is escaped so that no text in it (a strategy's
    name, say) can close the script element."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"<script type=application/json id={element_id}>{text}</script>"
