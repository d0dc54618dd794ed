"""The HTML report's charts as plotly figures, each a JSON document that the page's script
(report.js) hands to plotly.js when the chart comes into view.

Long series travel as compact columns rather than plotly's arrays: candle times as their
first time and steps of a common unit, amounts as integers over a power of ten. The
browser divides them back, and an integer over a power of ten is the same double as the
decimal it stands for, so a price is drawn and shown exactly as stored (to a double's 15
to 17 significant digits). Elsewhere the geometry is drawn from floats, converted in
`_floats` and nowhere else; hover texts show the exact amounts.
"""

from __future__ import annotations

import html
import itertools
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import reduce
from typing import TYPE_CHECKING, Any

from tradedb.models.values import AMOUNT, VOLUME, format_plain, market_assets, ms_to_datetime
from tradedb.services.reports.comparison import MarketChart, StrategyRow
from tradedb.services.reports.indicators import OSCILLATOR, PRICE, parameters

if TYPE_CHECKING:
    from plotly.graph_objects import Figure

# Strategies' colours: distinct from each other, from the candles' teal and red, and from
# the portfolio's black and grey. The shipped strategies have their own; any other keeps
# the one its name chooses from report to report, unless two strategies of one report
# would share it.
PALETTE = (
    "#2563eb",
    "#f97316",
    "#9333ea",
    "#db2777",
    "#ca8a04",
    "#78350f",
    "#1e3a8a",
    "#84cc16",
)
PINNED = {"sma_cross": 0, "rsi_revert": 1}
PORTFOLIO = "#111827"  # "all strategies" over all exchanges
PORTFOLIO_EXCHANGE = "#6b7280"  # "all strategies" on one exchange, and fills without a strategy
# Exchanges are told apart by the line's dash (and the bars' pattern), in name order.
DASHES = ("solid", "dot", "dash", "dashdot", "longdash")
PATTERNS = {"solid": "", "dot": ".", "dash": "/", "dashdot": "x", "longdash": "-"}
CANDLE_UP = "#26a69a"
CANDLE_DOWN = "#ef5350"
VOLUME_AREA = "#b8c2d1"
MARKER_EDGE = "#111827"
# The plot areas' background: a tint the page uses nowhere else, so a plot area is easy to
# tell from the page (the screenshot tests find the charts by it).
PLOT_BACKGROUND = "#f3f5f9"
CUT_BAND = "#d1d5db"
CHART_HEIGHT = 420
EQUITY_HEIGHT = 560
CANDLE_HEIGHT = 560
CANDLE_HEIGHT_WITH_OSCILLATOR = 680
LINE_WIDTH = 2.5
WIDE_LINE = 5.0
# Longer stretches without performance rows are cut out of the date axis.
GAP_DAYS = 7
DAY_MS = 86_400_000
# A long candle chart opens on this many candles from just before its first fill; the
# range slider and the buttons above the chart reach the rest.
FIRST_VIEW_CANDLES = 360


@dataclass(frozen=True)
class Look:
    """How one report row is drawn, the same in every chart and in the table."""

    colour: str
    dash: str
    width: float

    @property
    def pattern(self) -> str:
        return PATTERNS[self.dash]


class Looks:
    """Colours per strategy and dashes per exchange for one report."""

    def __init__(self, strategies: Iterable[str | None], exchanges: Iterable[str | None]):
        names = sorted({name for name in strategies if name is not None})
        self._colours = {name: PALETTE[PINNED[name]] for name in names if name in PINNED}
        free = [slot for slot in range(len(PALETTE)) if slot not in PINNED.values()]
        taken: set[int] = set()
        for name in names:
            if name in PINNED:
                continue
            preferred = zlib.crc32(name.encode()) % len(free)
            # A collision moves to the next free colour; past len(free) strategies the
            # colours repeat (their names and dashes still tell them apart).
            step = next(
                (step for step in range(len(free)) if (preferred + step) % len(free) not in taken),
                0,
            )
            slot = (preferred + step) % len(free)
            taken = set() if len(taken) + 1 == len(free) else taken | {slot}
            self._colours[name] = PALETTE[free[slot]]
        named = sorted({name for name in exchanges if name is not None})
        self._dashes = {name: DASHES[index % len(DASHES)] for index, name in enumerate(named)}

    def colour(self, strategy: str | None) -> str:
        """A strategy's colour; fills without a strategy are grey."""
        return PORTFOLIO_EXCHANGE if strategy is None else self._colours[strategy]

    def of(self, row: StrategyRow) -> Look:
        dash = "solid" if row.exchange is None else self._dashes[row.exchange]
        if row.strategy is None:
            # Drawn thick and black across all exchanges, thin and grey per exchange on top
            # of it: where one exchange holds all of the portfolio, both stay visible.
            if row.exchange is None:
                return Look(PORTFOLIO, "solid", WIDE_LINE)
            return Look(PORTFOLIO_EXCHANGE, dash, LINE_WIDTH)
        return Look(self._colours[row.strategy], dash, LINE_WIDTH)


def looks_of(rows: Sequence[StrategyRow], markets: Sequence[MarketChart]) -> Looks:
    strategies = [row.strategy for row in rows]
    strategies += [m.strategy for market in markets for m in market.markers]
    strategies += [line.strategy for market in markets for line in market.indicators]
    return Looks(strategies, [row.exchange for row in rows])


@dataclass(frozen=True)
class Chart:
    """One chart of the page: its element id, heading and plotly figure as JSON data."""

    anchor: str
    heading: str
    spec: dict[str, Any]
    note: str = ""  # HTML shown between the heading and the chart


# --- equity, drawdown and daily P&L -------------------------------------------------------


def performance_charts(rows: Sequence[StrategyRow], looks: Looks) -> list[Chart]:
    """Equity (strategies and the portfolio in panels of their own), drawdown and daily
    P&L of every row with daily performance rows; [] when none has any."""
    charted = [row for row in rows if row.days]
    if not charted:
        return []
    import plotly.graph_objects as go

    strategies = [row for row in charted if row.strategy is not None]
    # The portfolio over all exchanges first, so that each exchange's thin line is drawn
    # on top of its thick one.
    portfolio = sorted(
        (row for row in charted if row.strategy is None), key=lambda row: row.exchange is not None
    )
    equity = _figure("USD", height=EQUITY_HEIGHT if strategies and portfolio else CHART_HEIGHT)
    if strategies and portfolio:
        equity.update_layout(
            yaxis={"domain": [0.47, 1], "title": {"text": "USD, strategies"}},
            yaxis2={
                "domain": [0, 0.4],
                "anchor": "x",
                "title": {"text": "USD, all strategies"},
                "tickformat": ",.2~f",
                "zerolinecolor": "#9ca3af",
            },
            xaxis={"anchor": "y2"},
        )
    drawdown = _figure("% below peak")
    daily = _figure("USD")
    daily.update_layout(barmode="group", bargap=0.25)
    for figure in (equity, daily):
        figure.update_yaxes(tickformat=",.2~f")
    for row in strategies + portfolio:
        look = looks.of(row)
        # plotly reads legend text as a little HTML; a strategy name is shown as typed.
        style = {"name": html.escape(row.label), "legendgroup": row.label}
        line = {"color": look.colour, "width": look.width, "dash": look.dash}
        # The day before the first holds the equity the first day began with (its end
        # minus its P&L): a scope with one day of rows is a line, not a lone dot.
        first = row.days[0]
        dates = [_day_before(first.date), *(day.date for day in row.days)]
        opening = first.equity - first.pnl
        values = [opening, *(day.equity for day in row.days)]
        mode = "lines+markers" if len(dates) <= 60 else "lines"
        equity.add_trace(
            go.Scatter(
                x=dates,
                y=_floats(values),
                customdata=[format_plain(value) for value in values],
                hovertemplate="%{x}: %{customdata} USD",
                mode=mode,
                line=line,
                yaxis="y2" if row.strategy is None and strategies else "y",
                **style,
            )
        )
        drawdown.add_trace(
            go.Scatter(
                x=dates,
                y=_floats([Decimal(0), *(-day.drawdown for day in row.days)]),
                customdata=["0", *(format_plain(day.drawdown) for day in row.days)],
                hovertemplate="%{x}: %{customdata} % below peak",
                mode=mode,
                line=line,
                **style,
            )
        )
        daily.add_trace(
            go.Bar(
                x=[day.date for day in row.days],
                y=_floats(day.pnl for day in row.days),
                customdata=[format_plain(day.pnl) for day in row.days],
                hovertemplate="%{x}: %{customdata} USD",
                marker={"color": look.colour, "pattern": {"shape": look.pattern}},
                **style,
            )
        )
    shown = sorted(
        {_day_before(row.days[0].date) for row in charted}
        | {day.date for row in charted for day in row.days}
    )
    for figure in (equity, drawdown, daily):
        # An explicit range: plotly pads an autorange for markers by a share of the whole
        # span, cut-out years included, which would push the data into the middle.
        figure.update_xaxes(range=[f"{_day_before(shown[0])} 12:00", f"{shown[-1]} 12:00"])
        _cut(figure, shown)
    return [
        Chart("equity", "Equity (USD, end of day)", _spec(equity)),
        Chart("drawdown", "Drawdown (% below the running peak)", _spec(drawdown)),
        Chart("daily-pnl", "Daily P&L (USD)", _spec(daily)),
    ]


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def long_gaps(dates: Sequence[str]) -> list[tuple[str, str]]:
    """Stretches of more than GAP_DAYS days without a performance row, as (day after the
    last row, day of the next row): the date axis leaves them out, so periods years apart
    (the demo's 2018 and 2023 data) are not squeezed into slivers at either end."""
    found = []
    for before, after in itertools.pairwise(dates):
        first, last = date.fromisoformat(before), date.fromisoformat(after)
        if (last - first).days > GAP_DAYS:
            found.append(((first + timedelta(days=1)).isoformat(), last.isoformat()))
    return found


def _cut(figure: Figure, shown: Sequence[str]) -> None:
    """Cut the long gaps out of the date axis, leaving a day's width of each where a grey
    band, labelled with what was cut, marks it."""
    skipped = long_gaps(shown)
    if not skipped:
        return
    breaks, shapes, labels = [], [], []
    for first_missing, next_row in skipped:
        last = date.fromisoformat(first_missing) - timedelta(days=1)
        following = date.fromisoformat(next_row)
        # Visible: the day after the last row and the day before the next; cut: between.
        breaks.append({"bounds": [first_missing, _day_before(next_row)]})
        band_start = f"{last.isoformat()} 14:24"
        band_end = f"{(following - timedelta(days=1)).isoformat()} 09:36"
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": band_start,
                "x1": band_end,
                "y0": 0,
                "y1": 1,
                "fillcolor": CUT_BAND,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        cut_days = (following - last).days - 1
        labels.append(
            {
                # At the cut, on its visible side: a point inside a cut has no place.
                "x": f"{last.isoformat()} 23:59:59",
                "y": 0.5,
                "xref": "x",
                "yref": "paper",
                "text": f"{cut_days:,} days cut: {first_missing} to {_day_before(next_row)}",
                "textangle": -90,
                "showarrow": False,
                "font": {"size": 11, "color": "#374151"},
            }
        )
    # plotly spaces its ticks over the whole range, cut-out years included, and would
    # label years only; about ten ticks over the days actually shown instead.
    every = max(1, math.ceil(len(shown) / 10)) * DAY_MS
    figure.update_xaxes(rangebreaks=breaks, dtick=every, tickformat="%b %d\n%Y")
    figure.update_layout(shapes=shapes, annotations=labels)


# --- candles, volume, indicators and fills ----------------------------------------------


def market_chart(market: MarketChart, looks: Looks) -> Chart:
    """The market's candles with the fills marked and the strategies' indicators over
    them, the volume below, and an RSI panel when a strategy that traded it reads RSI."""
    import plotly.graph_objects as go

    base, quote = market_assets(market.symbol)
    title = f"{market.symbol} on {market.exchange}"
    heading = f"{title}, {market.timeframe} candles (UTC)" if market.timeframe else title
    oscillators = [line for line in market.indicators if line.panel == OSCILLATOR]
    panels = _panels(bool(market.candles), bool(oscillators))
    figure = _figure(quote, height=CANDLE_HEIGHT_WITH_OSCILLATOR if oscillators else CANDLE_HEIGHT)
    figure.update_layout(
        margin={"t": 100, "b": 30},
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.01, "yanchor": "bottom"},
        # Dragging moves along the time axis; the price axes follow what is in view.
        dragmode="pan",
    )
    columns: dict[str, dict[str, Any]] = {}
    refs: list[dict[str, Any]] = []  # per trace: its keys that take columns
    traces: list[Any] = []
    note = ""
    if market.candles:
        times, opens, highs, lows, closes, volumes = zip(*market.candles, strict=True)
        columns["t"] = _times(times)
        for key, units in (("o", opens), ("h", highs), ("l", lows), ("c", closes)):
            columns[key] = _units(units, AMOUNT.scale)
        columns["v"] = _units(volumes, VOLUME.scale)
        traces.append(
            go.Candlestick(
                name=f"{market.symbol} {market.timeframe}",
                increasing={"line": {"color": CANDLE_UP, "width": 1}, "fillcolor": CANDLE_UP},
                decreasing={"line": {"color": CANDLE_DOWN, "width": 1}, "fillcolor": CANDLE_DOWN},
                yhoverformat=".8~f",
                showlegend=False,
            )
        )
        refs.append({"x": "t", "open": "o", "high": "h", "low": "l", "close": "c"})
        # Volume as one stepped area rather than a bar per candle: thousands of bars take
        # seconds to draw, the area one path.
        traces.append(
            go.Scatter(
                name="volume",
                xaxis="x2",
                yaxis="y2",
                mode="lines",
                line={"shape": "hv", "width": 0, "color": VOLUME_AREA},
                fill="tozeroy",
                fillcolor=VOLUME_AREA,
                hovertemplate=f"volume %{{y:,.8~f}} {base}<extra></extra>",
                showlegend=False,
            )
        )
        refs.append({"x": "t", "y": "v"})
        for index, line in enumerate(market.indicators):
            key = f"i{index}"
            columns[key] = _decimals(line.values, line.decimals)
            # A strategy's slower average is dashed, its faster one solid.
            slower = any(
                other.strategy == line.strategy and other.panel == PRICE
                for other in market.indicators[:index]
            )
            panel = "3" if line.panel == OSCILLATOR else ""
            traces.append(
                go.Scatter(
                    name=f"{html.escape(line.strategy)} {line.label}",
                    legendgroup=line.strategy,
                    mode="lines",
                    line={
                        "color": looks.colour(line.strategy),
                        "width": 1.5,
                        "dash": "dash" if slower else "solid",
                    },
                    xaxis=f"x{panel}",
                    yaxis=f"y{panel}",
                    # plotly names the trace beside the value; a strategy's name is not
                    # put in the template, where "%{...}" in it would be read as a field.
                    hovertemplate="%{y}",
                )
            )
            refs.append({"x": "t", "y": key})
        if len(times) > FIRST_VIEW_CANDLES:
            figure.update_xaxes(range=_first_view(times, market))
    else:
        note = (
            f"No candles of {html.escape(title)} are stored around its trades; only the "
            "fills are shown (tradedb download or import brings the candles)."
        )
    for strategy, side in sorted({(m.strategy or "", m.side) for m in market.markers}):
        fills = [m for m in market.markers if (m.strategy or "") == strategy and m.side == side]
        name = html.escape(strategy or "(no strategy)")
        traces.append(
            go.Scatter(
                x=[_utc(m.timestamp) for m in fills],
                y=_floats(m.price for m in fills),
                customdata=[_fill_text(m, base, quote) for m in fills],
                hovertemplate="%{customdata}<extra></extra>",
                mode="markers",
                name=f"{name} {side}s",
                legendgroup=strategy,
                marker={
                    "symbol": "triangle-up" if side == "buy" else "triangle-down",
                    "size": 13,
                    "color": looks.colour(strategy or None),
                    "line": {"color": MARKER_EDGE, "width": 1.2},
                },
            )
        )
        refs.append({})
    for trace in traces:
        figure.add_trace(trace)
    _lay_out(figure, panels, base, oscillators, slider=bool(market.candles))
    anchor = "market-" + "".join(ch if ch.isalnum() else "-" for ch in title.lower())
    spec = _spec(figure, columns=columns, follow=["yaxis", "yaxis2"])
    for data, keys in zip(spec["data"], refs, strict=True):
        _refer(data, keys)
    return Chart(anchor, heading, spec, note)


def _panels(candles: bool, oscillator: bool) -> dict[str, list[float]]:
    """Each panel's share of the chart's height, bottom to top: price, volume, RSI."""
    if not candles:
        return {"": [0, 1]}
    if oscillator:
        return {"": [0.4, 1], "2": [0.25, 0.36], "3": [0, 0.21]}
    return {"": [0.3, 1], "2": [0, 0.26]}


def _lay_out(
    figure: Figure, panels: dict[str, list[float]], base: str, oscillators: Any, *, slider: bool
) -> None:
    """One x axis per panel, all moving together (`matches`); the lowest carries the date
    labels and the range slider, which so draws only its own panel's one line, not the
    thousands of candles again."""
    lowest = min(panels, key=lambda panel: panels[panel][0])
    for panel, domain in panels.items():
        x_axis: dict[str, Any] = {
            "type": "date",
            "anchor": f"y{panel}",
            "showticklabels": panel == lowest,
        }
        if panel:
            x_axis["matches"] = "x"
        # plotly gives a candlestick's axis a slider of its own unless told otherwise.
        x_axis["rangeslider"] = (
            {"visible": True, "thickness": 0.05}
            if panel == lowest and slider
            else {"visible": False}
        )
        figure.update_layout({f"xaxis{panel}": x_axis, f"yaxis{panel}": {"domain": domain}})
    figure.update_layout(
        xaxis={
            "rangeselector": {
                "buttons": [
                    {"count": 1, "label": "1 day", "step": "day", "stepmode": "backward"},
                    {"count": 7, "label": "1 week", "step": "day", "stepmode": "backward"},
                    {"step": "all", "label": "all"},
                ],
                "x": 0,
                "y": 1.01,
                "yanchor": "bottom",
            }
        },
        # Prices as written (0.00010756), not with SI prefixes (107.56µ).
        yaxis={"tickformat": ".8~f", "fixedrange": True},
    )
    if "2" in panels:
        figure.update_layout(
            yaxis2={
                "title": {"text": f"volume, {base}"},
                "tickformat": "~s",
                "rangemode": "tozero",
                "fixedrange": True,
                "zerolinecolor": "#9ca3af",
            }
        )
    if "3" in panels:
        levels = sorted({level for line in oscillators for level in line.levels})
        figure.update_layout(
            yaxis3={
                "range": [0, 100],
                "fixedrange": True,
                "tickvals": [0, *(float(level) for level in levels), 100],
                "title": {"text": "RSI"},
            },
            shapes=[
                {
                    "type": "line",
                    "xref": "x3 domain",
                    "yref": "y3",
                    "x0": 0,
                    "x1": 1,
                    "y0": float(level),
                    "y1": float(level),
                    "line": {"color": "#6b7280", "width": 1, "dash": "dot"},
                }
                for level in levels
            ],
        )


def _refer(trace: dict[str, Any], keys: dict[str, Any]) -> None:
    """Point a trace's keys (nested like its own) at columns, {"column": name}, which
    report.js replaces with the decoded values."""
    for key, column in keys.items():
        if isinstance(column, dict):
            _refer(trace.setdefault(key, {}), column)
        else:
            trace[key] = {"column": column}


def _first_view(times: Sequence[int], market: MarketChart) -> list[str]:
    """FIRST_VIEW_CANDLES candles, starting a few candles before the first fill."""
    first_fill = market.markers[0].timestamp if market.markers else times[0]
    start = max(0, sum(1 for stamp in times if stamp < first_fill) - FIRST_VIEW_CANDLES // 10)
    start = min(start, len(times) - FIRST_VIEW_CANDLES)
    return [_utc(times[start]), _utc(times[start + FIRST_VIEW_CANDLES - 1])]


def _fill_text(marker: Any, base: str, quote: str) -> str:
    """A fill's hover text, exact; a closing fill adds its round trip's P&L."""
    strategy = html.escape(marker.strategy or "(no strategy)")
    text = (
        f"<b>{strategy}</b> {marker.side} {format_plain(marker.amount)} {base} at "
        f"{format_plain(marker.price)} {quote}<br>{_utc(marker.timestamp)} UTC"
    )
    if marker.profit_loss is not None:
        sign = "+" if marker.profit_loss > 0 else ""
        text += (
            f"<br>round trip P&amp;L: <b>{sign}{format_plain(marker.profit_loss)} {quote}</b>"
            " (net of fees)"
        )
    return text


def indicator_note(markets: Sequence[MarketChart]) -> str:
    """Which parameters the indicators are drawn with, as text."""
    described = []
    for name in sorted({line.strategy for market in markets for line in market.indicators}):
        chosen = parameters(name) or {}
        settings = ", ".join(f"{key} {format_plain(value)}" for key, value in chosen.items())
        described.append(f"{name} ({settings})")
    if not described:
        return ""
    return (
        "Indicators are drawn with the strategies' default parameters: "
        + "; ".join(described)
        + ". A paper session does not store its parameters, so a session run with others "
        "traded on lines that differ from these."
    )


# --- compact columns ------------------------------------------------------------------------


def _times(stamps: Sequence[int]) -> dict[str, Any]:
    """Candle times (epoch ms) as the first, a unit (the steps' greatest common divisor,
    the timeframe) and each step in units: mostly 1s, two characters a candle."""
    steps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    unit = reduce(math.gcd, steps, 0) or 1
    return {"first": stamps[0], "unit": unit, "steps": [0, *(step // unit for step in steps)]}


def _units(values: Sequence[int | None], scale: int) -> dict[str, Any]:
    """Amounts stored as integer units of 10^-scale, with the trailing zeros that every
    value has dropped (BTC/USDT's 16500.12 is 1650012 at scale 2, not 1650012000000 at 8)."""
    common = reduce(math.gcd, (abs(value) for value in values if value is not None), 0)
    shift = 0
    while shift < scale and common % 10 ** (shift + 1) == 0:
        shift += 1
    divisor = 10**shift
    return {
        "scale": scale - shift,
        "units": [None if value is None else value // divisor for value in values],
    }


def _decimals(values: Sequence[Decimal | None], scale: int) -> dict[str, Any]:
    return _units([None if value is None else int(value.scaleb(scale)) for value in values], scale)


# --- shared -----------------------------------------------------------------------------------


def _figure(unit: str, *, height: int = CHART_HEIGHT) -> Figure:
    import plotly.graph_objects as go

    # The page gives every chart plotly_white (once, see `template`); applying it here
    # would only be stripped again, at a tenth of a second a figure.
    figure = go.Figure(layout={"template": "none"})
    figure.update_layout(
        plot_bgcolor=PLOT_BACKGROUND,
        paper_bgcolor="#ffffff",
        height=height,
        margin={"l": 80, "r": 30, "t": 36, "b": 40},
        legend={"orientation": "h", "y": -0.15},
        yaxis={"title": {"text": unit}, "zerolinecolor": "#9ca3af"},
        hovermode="closest",
    )
    return figure


def _spec(
    figure: Figure, *, columns: dict[str, Any] | None = None, follow: Sequence[str] = ()
) -> dict[str, Any]:
    """The figure as report.js reads it. The layout's template is left out: the page holds
    it once for every chart."""
    payload: dict[str, Any] = figure.to_plotly_json()
    payload["layout"].pop("template", None)
    return {
        "data": payload["data"],
        "layout": payload["layout"],
        "columns": columns or {},
        "follow": list(follow) if columns else [],
    }


def template() -> dict[str, Any]:
    import plotly.io

    shared: dict[str, Any] = plotly.io.templates["plotly_white"].to_plotly_json()
    return shared


def _floats(values: Any) -> list[float]:
    """Chart coordinates: the one place amounts become floats, for plotly to draw."""
    return [float(value) for value in values]


def _utc(millis: int) -> str:
    return f"{ms_to_datetime(millis):%Y-%m-%d %H:%M:%S}"
