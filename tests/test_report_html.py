"""The HTML report as its users meet it.

Most tests read the report of `tradedb demo`'s database, the one users first see: two
exchanges five years apart, six traded markets, 5,760 five-minute candles a market, two
strategies. They check what the page holds against the ledger and against independent
computations: every traded market charted, every fill marked in its strategy's colour with
its round trip's P&L, exact candles, the strategies' own indicators, the cut in the date
axis. Then the page is opened in headless Chromium (Debian's `chromium`) at 1280 and 1920
px: a script run in the page hovers a fill, zooms, switches markets and measures the
layout, and the screenshot's pixels must show every chart drawn. `tradedb report --open`
is run with BROWSER set to a script that records what it was asked to open.
"""

from __future__ import annotations

import bisect
import html
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli_harness import isolated_environ
from tradedb.cli.app import app
from tradedb.models.values import PERCENT, format_fixed, format_plain, market_assets
from tradedb.services.demo import DemoResult, run_demo
from tradedb.services.ledger import Ledger
from tradedb.services.reports import ReportFilters, compare
from tradedb.services.reports import html as html_report
from tradedb.services.reports import html_charts as charts
from tradedb.services.reports.comparison import Report
from tradedb.store import Store

# --- the demo's report ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    folder = tmp_path_factory.mktemp("demo")
    return run_demo(folder / "demo.sqlite", folder / "report.html")


@pytest.fixture(scope="module")
def demo_store(demo: DemoResult) -> Iterator[Store]:
    with Store.open(demo.database, readonly=True) as opened:
        yield opened


@pytest.fixture(scope="module")
def report(demo_store: Store) -> Report:
    return compare(demo_store, ReportFilters.parse())


@pytest.fixture(scope="module")
def document(demo: DemoResult) -> str:
    return demo.report.read_text(encoding="utf-8")


FIGURE = re.compile(r"<script type=application/json id=([\w-]+)>(.*?)</script>", re.S)


def figures(page: str) -> dict[str, dict[str, Any]]:
    """The page's embedded JSON (figures and the shared template) by element id."""
    return {name: json.loads(text) for name, text in FIGURE.findall(page)}


def decoded(spec: dict[str, Any], name: str) -> list[Any]:
    """A compact column as report.js decodes it: times as epoch ms, amounts exact."""
    column = spec["columns"][name]
    if "steps" in column:
        at, times = column["first"], []
        for step in column["steps"]:
            at += step * column["unit"]
            times.append(at)
        return times
    return [None if u is None else Decimal(u).scaleb(-column["scale"]) for u in column["units"]]


def market_specs(page: str) -> list[dict[str, Any]]:
    """The market charts' figures in page order."""
    found = figures(page)
    ids = re.findall(r"<section class=market id=[\w-]+[^>]*><h3>.*?data-figure=([\w-]+)>", page)
    return [found[name] for name in ids]


def ledger_fills(store: Store, exchange: str, symbol: str) -> list[Any]:
    where = {"exchange": exchange, "symbol": symbol}
    fills = store.trades.list(where, limit=10_000).items
    return sorted(fills, key=lambda fill: (fill.timestamp, fill.id))


def test_every_traded_market_has_a_chart_most_traded_first(
    demo_store: Store, report: Report, document: str
) -> None:
    traded: dict[tuple[str, str], int] = {}
    for fill in demo_store.trades.list({}, limit=10_000).items:
        traded[(fill.exchange, fill.symbol)] = traded.get((fill.exchange, fill.symbol), 0) + 1
    ranked = sorted(traded, key=lambda market: (-traded[market], market))

    assert [(m.exchange, m.symbol) for m in report.markets] == ranked
    assert ("kraken", "BCH/EUR") in ranked  # the market the user never saw before
    options = re.findall(r"<option value=(market-\d+)[^>]*>(.*?)</option>", document)
    assert [label for _, label in options] == [
        f"{symbol} on {exchange} ({traded[(exchange, symbol)]} fills)"
        for exchange, symbol in ranked
    ]
    sections = re.findall(r"<section class=market id=(market-\d+)( hidden)?>", document)
    assert [name for name, _ in sections] == [name for name, _ in options]
    assert [bool(hidden) for _, hidden in sections] == [False] + [True] * (len(ranked) - 1)


def test_candles_are_exact_and_a_long_series_opens_on_a_window(
    report: Report, document: str
) -> None:
    for market, spec in zip(report.markets, market_specs(document), strict=True):
        times, opens, highs, lows, closes, volumes = zip(*market.candles, strict=True)
        assert decoded(spec, "t") == list(times)
        for name, units in (("o", opens), ("h", highs), ("l", lows), ("c", closes)):
            assert decoded(spec, name) == [Decimal(u).scaleb(-8) for u in units]
        assert decoded(spec, "v") == [Decimal(u).scaleb(-8) for u in volumes]
        layout = spec["layout"]
        sliders = [
            key for key, axis in layout.items() if key.startswith("xaxis")
            if axis.get("rangeslider", {}).get("visible")
        ]  # fmt: skip
        assert len(sliders) == 1, market.symbol  # one range slider, under the lowest panel
        if len(times) > charts.FIRST_VIEW_CANDLES:
            first, last = layout["xaxis"]["range"]
            shown = [t for t in times if charts._utc(t) >= first and charts._utc(t) <= last]
            assert len(shown) == charts.FIRST_VIEW_CANDLES
            assert charts._utc(market.markers[0].timestamp) <= last  # the first fill in view
        else:
            assert "range" not in layout["xaxis"]
    assert any(len(m.candles) > charts.FIRST_VIEW_CANDLES for m in report.markets)


def test_fills_are_marked_in_their_strategys_colour_with_the_round_trips_pnl(
    demo_store: Store, report: Report, document: str
) -> None:
    looks = charts.looks_of(report.rows, report.markets)
    closing = 0
    for market, spec in zip(report.markets, market_specs(document), strict=True):
        base, quote = market_assets(market.symbol)
        markers = {trace["name"]: trace for trace in spec["data"] if trace.get("mode") == "markers"}
        for fill in ledger_fills(demo_store, market.exchange, market.symbol):
            trace = markers[f"{fill.strategy} {fill.side}s"]
            assert trace["marker"]["color"] == looks.colour(fill.strategy)
            index = trace["x"].index(charts._utc(fill.timestamp))
            text = trace["customdata"][index]
            expected = (
                f"{fill.side} {format_plain(fill.amount)} {base} at "
                f"{format_plain(fill.price)} {quote}"
            )
            assert expected in text
            if fill.profit_loss is None:
                assert "round trip" not in text
            else:
                closing += 1
                sign = "+" if fill.profit_loss > 0 else ""
                pnl = f"round trip P&amp;L: <b>{sign}{format_plain(fill.profit_loss)} {quote}</b>"
                assert pnl in text
    assert closing > 100


def test_one_colour_per_strategy_everywhere(report: Report, document: str) -> None:
    """The table's swatch, the equity, drawdown and P&L curves, the fills and the
    indicator lines of a strategy share one colour, and no two strategies share one."""
    seen: dict[str, set[str]] = {}
    for label, colour in re.findall(
        r"<tr><td class='text'><svg class=swatch[^>]*><line [^>]*stroke='(#\w+)'[^>]*/></svg>"
        r"([^<]+)</td>",
        document,
    ):
        seen.setdefault(colour.strip(), set()).add(label)
    by_label = {row.label: row.strategy or "all strategies" for row in report.rows}
    colours: dict[str, set[str]] = {}
    for name, spec in figures(document).items():
        if not name.endswith("-figure"):
            continue
        for trace in spec["data"]:
            group = trace.get("legendgroup")
            if not group:
                continue
            strategy = by_label.get(group, group)
            colour = trace.get("line", {}).get("color") or trace["marker"]["color"]
            colours.setdefault(strategy, set()).add(colour)
    for colour, labels in seen.items():
        for label in labels:
            colours.setdefault(label, set()).add(colour)

    assert set(colours) >= {"sma_cross", "rsi_revert", "all strategies"}
    for strategy in ("sma_cross", "rsi_revert"):
        assert len(colours[strategy]) == 1, (strategy, colours[strategy])
    assert colours["sma_cross"] != colours["rsi_revert"]
    # The portfolio: black over all exchanges, grey per exchange; never a strategy's.
    assert colours["all strategies"] == {charts.PORTFOLIO, charts.PORTFOLIO_EXCHANGE}
    assert not colours["all strategies"] & (colours["sma_cross"] | colours["rsi_revert"])


def test_colours_stay_with_a_strategy_and_differ_within_a_report() -> None:
    names = [f"strategy_{number}" for number in range(6)]
    looks = charts.Looks(names, [])
    assert len({looks.colour(name) for name in names}) == len(names)
    # A strategy keeps its colour when the others in the report change, and the shipped
    # ones always have their own.
    alone = charts.Looks(["strategy_3"], [])
    assert alone.colour("strategy_3") == charts.Looks(["strategy_3", "sma_cross"], []).colour(
        "strategy_3"
    )
    for shipped in ("sma_cross", "rsi_revert"):
        with_others = charts.Looks([*names, shipped], []).colour(shipped)
        assert with_others == charts.Looks([shipped], []).colour(shipped)
    assert not {looks.colour(name) for name in names} & {
        charts.CANDLE_UP,
        charts.CANDLE_DOWN,
        charts.PORTFOLIO,
        charts.PORTFOLIO_EXCHANGE,
    }


def _half_even(value: Fraction, decimals: int) -> Decimal:
    return Decimal(round(value * 10**decimals)).scaleb(-decimals)


def test_the_indicators_are_the_ones_the_strategies_traded_on(
    demo_store: Store, report: Report
) -> None:
    """sma_cross bought where its fast average had just crossed above the slow one and
    sold where it crossed below, at the close before each fill; rsi_revert bought below
    RSI 30 and sold above 70. The chart's lines show exactly that."""
    checked = 0
    for market in report.markets:
        times = [candle[0] for candle in market.candles]
        closes = [Decimal(candle[4]).scaleb(-8) for candle in market.candles]
        lines = {(line.strategy, line.label): line.values for line in market.indicators}
        fast, slow = lines[("sma_cross", "SMA 12")], lines[("sma_cross", "SMA 48")]
        rsi = lines[("rsi_revert", "RSI 14")]
        # The averages against an independent computation, where the chart's candles
        # alone hold the window.
        for index in range(47, len(closes), 97):
            window = sum(map(Fraction, closes[index - 47 : index + 1]), Fraction(0))
            assert slow[index] == _half_even(window / 48, 8)
        for fill in ledger_fills(demo_store, market.exchange, market.symbol):
            decided = bisect.bisect_left(times, fill.timestamp) - 1  # the close before
            if fill.strategy == "sma_cross":
                now, before = (fast[decided], slow[decided]), (fast[decided - 1], slow[decided - 1])
                # A buy: fast at or above slow now, at or below it a candle before; a sell
                # the other way round.
                crossed = (now[0] >= now[1], before[0] <= before[1])
                if fill.side == "sell":
                    crossed = (now[0] <= now[1], before[0] >= before[1])
                assert crossed == (True, True), fill
            else:
                value = rsi[decided]
                assert value is not None
                assert value < 30 if fill.side == "buy" else value > 70, (fill, value)
            checked += 1
    assert checked == sum(len(m.markers) for m in report.markets) > 900


def test_the_cut_in_the_date_axis_is_marked(report: Report, document: str) -> None:
    equity = figures(document)["equity-figure"]
    layout = equity["layout"]
    assert layout["xaxis"]["rangebreaks"] == [{"bounds": ["2018-01-31", "2022-12-30"]}]
    [band] = [shape for shape in layout["shapes"] if shape["type"] == "rect"]
    assert band["fillcolor"] == charts.CUT_BAND
    assert band["x0"] < "2018-01-31"
    assert band["x1"] > "2022-12-30"
    [label] = layout["annotations"]
    assert label["text"] == "1,795 days cut: 2018-01-31 to 2022-12-30"
    # A scope with one day of rows is a line from the equity it began that day with.
    for trace in equity["data"]:
        assert len(trace["x"]) >= 2, trace["name"]
    kraken = next(row for row in report.rows if row.label == "rsi_revert @ kraken")
    [trace] = [t for t in equity["data"] if t["name"] == "rsi_revert @ kraken"]
    first = kraken.days[0]
    assert trace["customdata"][:2] == [
        format_plain(first.equity - first.pnl),
        format_plain(first.equity),
    ]


def test_the_portfolio_has_a_panel_of_its_own_drawn_under_each_exchange(document: str) -> None:
    """ "all strategies" over all exchanges equals "all strategies @ binance" in 2018: it is
    drawn first and thicker, so that the thin line on top of it leaves it visible."""
    equity = figures(document)["equity-figure"]
    portfolio = [t for t in equity["data"] if t["name"].startswith("all strategies")]
    assert portfolio[0]["name"] == "all strategies"
    assert {t.get("yaxis") for t in portfolio} == {"y2"}
    assert all(t.get("yaxis", "y") == "y" for t in equity["data"] if t not in portfolio)
    widths = [t["line"]["width"] for t in portfolio]
    assert widths[0] > max(widths[1:])


def test_monthly_returns_are_shown_for_every_scope(report: Report, document: str) -> None:
    table = re.search(r"<table class=monthly>(.*?)</table>", document, re.S)
    assert table
    head = re.findall(r"<th class=number><svg.*?</svg>(.*?)</th>", table.group(1))
    labels = [html.unescape(label) for label in head]
    body = {
        month: re.findall(r"<td(?: [^>]*)?>([^<]*)</td>", cells)
        for month, cells in re.findall(
            r"<tr><td class=scope>([\d-]+)</td>(.*?)</tr>", table.group(1)
        )
    }
    rows = {row.label: row for row in report.rows}

    assert labels == [row.label for row in report.rows if row.monthly_returns]
    assert sorted(body) == ["2018-01", "2023-01"]
    for column, label in enumerate(labels):
        months = {entry.month: entry.percent for entry in rows[label].monthly_returns}
        for month, cells in body.items():
            expected = "" if month not in months else format_fixed(months[month], PERCENT)
            assert cells[column] == expected, (label, month)
        # Each scope of the demo lies within one month: its month is its whole period.
        [(month, value)] = months.items()
        assert value == rows[label].curve.total_return


def test_the_demo_report_stays_a_few_megabytes(demo: DemoResult) -> None:
    """plotly.js is most of the file; six markets of 5,760 candles, their volume and three
    indicators add less than 2.5 MB (compact columns, the template written once)."""
    import plotly.offline

    assert demo.report_bytes - len(plotly.offline.get_plotlyjs()) < 2_500_000


# --- fills and their P&L, on both engines -----------------------------------------------------


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def trade(ledger: Ledger, number: int, side: str, amount: str, *, price: str, at: str) -> None:
    ledger.place_order(
        exchange="kraken", order_id=f"O-{number}", symbol="ETH/USD", side=side,
        order_type="limit", amount=amount, price=price, strategy="swing", timestamp=ms(at),
    )  # fmt: skip
    ledger.record_fill(
        exchange="kraken", order_id=f"O-{number}", exchange_trade_id=f"T-{number}",
        amount=amount, price=price, fee="0.5", timestamp=ms(at),
    )  # fmt: skip


def test_fills_carry_their_round_trips_profit_loss(store: Store) -> None:
    ledger = Ledger(store)
    ledger.deposit(exchange="kraken", asset="USD", amount="10000", timestamp=ms("2024-03-01"))
    trade(ledger, 1, "buy", "1.5", price="3000", at="2024-03-01 10:00")
    trade(ledger, 2, "sell", "1", price="3100.12345678", at="2024-03-02 10:00")
    trade(ledger, 3, "sell", "0.5", price="2900", at="2024-03-03 10:00")

    [market] = compare(store, ReportFilters.parse()).markets
    ledger_pnl = [fill.profit_loss for fill in ledger_fills(store, "kraken", "ETH/USD")]

    assert [marker.profit_loss for marker in market.markers] == ledger_pnl
    opening, winning, losing = ledger_pnl
    assert opening is None
    assert winning is not None
    assert losing is not None
    assert winning > 0 > losing
    document = html_report.render(compare(store, ReportFilters.parse()))
    # One market: no selector. No candles stored: the fills alone, and a note saying so.
    assert "<select" not in document
    assert "No candles of ETH/USD on kraken are stored around its trades" in document
    [spec] = market_specs(document)
    texts = [text for trace in spec["data"] for text in trace["customdata"]]
    assert sum("round trip" in text for text in texts) == 2
    assert f"round trip P&amp;L: <b>+{format_plain(ledger_pnl[1])} USD</b>" in texts[1]
    assert f"round trip P&amp;L: <b>{format_plain(ledger_pnl[2])} USD</b>" in texts[2]


# --- in a browser -----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="Debian's chromium is not installed (.ci/run installs it; CI=true requires it)",
)
PAGE_HEIGHT = 4000

# Run in the page once its first charts are drawn: measures the layout, hovers the first
# closing fill in view, zooms into a stretch of candles, opens the last market from the
# selector and back, and writes what it found into the page as JSON for --dump-dom.
PROBE = """
(function () {
  var result = {};
  function until(check, then, tries) {
    tries = tries === undefined ? 400 : tries;
    if (check() || tries === 0) { then(); } else {
      setTimeout(function () { until(check, then, tries - 1); }, 25);
    }
  }
  function finish() {
    var out = document.createElement("pre");
    out.id = "probe";
    out.textContent = JSON.stringify(result);
    document.body.appendChild(out);
  }
  until(function () { return document.documentElement.dataset.drawn; }, function () {
    result.drawnAtMs = performance.now();
    result.pageWidth = document.documentElement.scrollWidth;
    result.windowWidth = window.innerWidth;
    var box = document.querySelector(".table-box");
    result.table = [box.scrollWidth, box.clientWidth];
    var chart = document.querySelector("section.market:not([hidden]) div[data-figure]");
    var range = chart.layout.xaxis.range;
    chart.data.forEach(function (trace, curve) {
      if (result.hovered || trace.mode !== "markers" || !/ sells$/.test(trace.name)) { return; }
      trace.x.forEach(function (x, point) {
        if (result.hovered || x < range[0] || x > range[1]) { return; }
        if (trace.customdata[point].indexOf("round trip") < 0) { return; }
        Plotly.Fx.hover(chart, [{curveNumber: curve, pointNumber: point}]);
        var label = chart.querySelector(".hoverlayer");
        result.hovered = {x: x, text: label ? label.textContent : ""};
        Plotly.Fx.unhover(chart);
      });
    });
    var x = chart.data[0].x;
    var span = [x[2000], x[2099]];
    var before = JSON.stringify(chart.layout.yaxis.range);
    Plotly.relayout(chart, {"xaxis.range": span});
    until(function () { return JSON.stringify(chart.layout.yaxis.range) !== before; }, function () {
      result.zoom = {x: span, price: chart.layout.yaxis.range,
                     volume: chart.layout.yaxis2.range};
      var choice = document.getElementById("market-choice");
      var first = choice.value;
      choice.value = choice.options[choice.options.length - 1].value;
      choice.dispatchEvent(new Event("change"));
      var other = document.querySelector("#" + choice.value + " div[data-figure]");
      until(function () { return other.dataset.drawn === "yes"; }, function () {
        var shown = document.querySelectorAll("section.market:not([hidden])");
        result.other = {
          shown: Array.prototype.map.call(shown, function (s) { return s.id; }),
          id: choice.value,
          candles: other.data[0].x.length,
          width: other.getBoundingClientRect().width
        };
        choice.value = first;
        choice.dispatchEvent(new Event("change"));
        finish();
      });
    });
  });
})();
"""


def open_in_chromium(page: Path, width: int, *, probe: bool) -> tuple[Any, dict[str, Any]]:
    """The page as headless Chromium draws it (an RGB array) and, with `probe`, what the
    probe found. The network is cut off (every host name fails, every connection goes to
    a closed port), so whatever draws, drew from the file alone."""
    assert CHROMIUM is not None, "CI=true: chromium must be installed (see .ci/run)"
    np = pytest.importorskip("numpy")
    image = pytest.importorskip("PIL.Image")
    if probe:
        probed = page.with_name(f"probed-{width}.html")
        probed.write_text(
            page.read_text(encoding="utf-8").replace("</body>", f"<script>{PROBE}</script></body>"),
            encoding="utf-8",
        )
        page = probed
    png = page.with_name(f"{page.stem}-{width}.png")
    done = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--force-color-profile=srgb", "--virtual-time-budget=30000",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
            f"--user-data-dir={page.parent / 'chromium-profile'}",
            f"--screenshot={png}", f"--window-size={width},{PAGE_HEIGHT}",
            *(["--dump-dom"] if probe else []), page.as_uri(),
        ],
        check=True, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    found: dict[str, Any] = {}
    if probe:
        match = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
        assert match, "the probe did not finish"
        found = json.loads(
            match.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
        )
    return np.asarray(image.open(png).convert("RGB")), found


def near(pixels: Any, colour: str, tolerance: int = 8) -> Any:
    """Which pixels are within `tolerance` (per channel) of a #rrggbb colour."""
    target = [int(colour[index : index + 2], 16) for index in (1, 3, 5)]
    return (abs(pixels.astype(int) - target)).max(axis=2) <= tolerance


def plot_areas(pixels: Any) -> list[tuple[int, int]]:
    """Rows (first, last) of each panel's plot area, top to bottom: runs of rows mostly in
    the plot background, a colour the page uses nowhere else (gridlines bridged)."""
    background = near(pixels, charts.PLOT_BACKGROUND, tolerance=2).sum(axis=1)
    rows = (background > pixels.shape[1] // 4).nonzero()[0]
    areas: list[list[int]] = []
    for row in rows:
        if areas and row - areas[-1][1] <= 8:
            areas[-1][1] = row
        else:
            areas.append([row, row])
    return [(first, last) for first, last in areas if last - first > 30]


def missing(pixels: Any, looks: charts.Looks) -> list[str]:
    """What the screenshot of the demo's report lacks; [] when every panel drew: equity of
    the strategies and of the portfolio (black under grey: both seen), the cut band,
    drawdown, daily P&L, candles with the indicators, volume and RSI, and the table's
    swatches above them."""
    areas = plot_areas(pixels)
    names = ("equity", "portfolio", "drawdown", "daily P&L", "candles", "volume", "RSI")
    if len(areas) != len(names):
        return [f"found {len(areas)} plot areas, expected {len(names)}: {areas}"]
    panel = dict(zip(names, (pixels[first : last + 1] for first, last in areas), strict=True))
    table = pixels[: areas[0][0]]
    sma, rsi = looks.colour("sma_cross"), looks.colour("rsi_revert")
    wanted = [
        ("table", sma, 40), ("table", rsi, 40), ("table", charts.PORTFOLIO, 40),
        ("equity", sma, 400), ("equity", rsi, 400), ("equity", charts.CUT_BAND, 1500),
        ("portfolio", charts.PORTFOLIO, 400), ("portfolio", charts.PORTFOLIO_EXCHANGE, 300),
        ("drawdown", sma, 400), ("drawdown", rsi, 400), ("drawdown", charts.CUT_BAND, 1500),
        ("daily P&L", sma, 300), ("daily P&L", rsi, 300),
        ("candles", charts.CANDLE_UP, 1000), ("candles", charts.CANDLE_DOWN, 1000),
        ("candles", sma, 300), ("volume", charts.VOLUME_AREA, 2000), ("RSI", rsi, 300),
    ]  # fmt: skip
    panel["table"] = table
    return [
        f"{name}: {colour} drew {count} pixels, fewer than {least}"
        for name, colour, least in wanted
        if (count := int(near(panel[name], colour).sum())) < least
    ]


@needs_chromium
@pytest.mark.parametrize("width", [1280, 1920])
def test_the_report_reads_well_in_chromium(
    demo: DemoResult, demo_store: Store, report: Report, width: int
) -> None:
    pixels, probe = open_in_chromium(demo.report, width, probe=True)

    assert pixels.shape[:2] == (PAGE_HEIGHT, width)
    assert missing(pixels, charts.looks_of(report.rows, report.markets)) == []
    # Nothing wider than the window; the comparison table fits without scrolling its box.
    assert probe["pageWidth"] <= probe["windowWidth"] == width
    assert probe["table"][0] <= probe["table"][1]
    # Hovering a closing fill shows its round trip's P&L, exactly as the ledger has it.
    first = report.markets[0]
    hovered = probe["hovered"]
    [fill] = [
        f for f in ledger_fills(demo_store, first.exchange, first.symbol)
        if charts._utc(f.timestamp) == hovered["x"] and f.side == "sell"
    ]  # fmt: skip
    quote = market_assets(first.symbol)[1]
    pnl = f"{'+' if fill.profit_loss > 0 else ''}{format_plain(fill.profit_loss)} {quote}"
    assert f"round trip P&L: {pnl} (net of fees)" in hovered["text"]
    # Zoomed into 100 candles, the price and volume axes fit those candles, not the series.
    start, end = probe["zoom"]["x"]
    inside = [c for c in first.candles if start <= charts._utc(c[0]) <= end]
    assert len(inside) == 100
    low = float(min(Decimal(c[3]).scaleb(-8) for c in inside))
    high = float(max(Decimal(c[2]).scaleb(-8) for c in inside))
    bottom, top = probe["zoom"]["price"]
    assert bottom < low
    assert top > high
    assert top - bottom < (high - low) * 1.5
    volume = float(max(Decimal(c[5]).scaleb(-8) for c in inside))
    assert probe["zoom"]["volume"][0] == 0
    assert volume < probe["zoom"]["volume"][1] < volume * 1.2
    # The selector shows the last market alone, drawn when first shown, as wide as the page.
    last = report.markets[-1]
    assert probe["other"]["shown"] == [probe["other"]["id"]]
    assert probe["other"]["candles"] == len(last.candles) > 0
    assert probe["other"]["width"] > width * 0.8


@needs_chromium
def test_the_pixel_check_sees_charts_that_draw_nothing(
    report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above fails when the charts draw no data: every coordinate None, the
    axes and panels drawn, no line, bar or candle in them."""
    monkeypatch.setattr(charts, "_floats", lambda values: [None for _ in values])
    monkeypatch.setattr(
        charts, "_units", lambda values, scale: {"scale": scale, "units": [None] * len(values)}
    )
    blank = tmp_path / "blank.html"
    html_report.write(report, blank)
    pixels, _ = open_in_chromium(blank, 1280, probe=False)

    problems = missing(pixels, charts.looks_of(report.rows, report.markets))
    drawn_anyway = {"table", "equity: " + charts.CUT_BAND, "drawdown: " + charts.CUT_BAND}
    assert len(problems) >= 12, problems
    assert not any(problem.startswith(tuple(drawn_anyway)) for problem in problems), problems


# --- tradedb report --open --------------------------------------------------------------------


def small_database(path: Path) -> Path:
    with Store.open(path) as store:
        ledger = Ledger(store)
        ledger.deposit(exchange="kraken", asset="USD", amount="10000", timestamp=ms("2024-03-01"))
        trade(ledger, 1, "buy", "1", price="3000", at="2024-03-01 10:00")
        trade(ledger, 2, "sell", "1", price="3100", at="2024-03-02 10:00")
    return path


def test_report_open_writes_beside_the_database_and_opens_it(tmp_path: Path) -> None:
    database = small_database(tmp_path / "bot.sqlite")
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {opened}\n')
    browser.chmod(0o755)
    environ = isolated_environ(tmp_path, drop=("TRADEDB_DB", "DISPLAY", "WAYLAND_DISPLAY"))
    environ["BROWSER"] = str(browser)

    done = subprocess.run(
        [sys.executable, "-m", "tradedb", "report", "--db", str(database), "--open"],
        env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    written = tmp_path / "bot-report.html"
    assert opened.read_text() == written.as_uri()
    assert "tradedb report" in written.read_text(encoding="utf-8")
    assert f"wrote {written}" in done.stderr
    assert "swing" in done.stdout  # the table is printed as without --open


def test_report_open_without_a_browser_says_where_the_report_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = small_database(tmp_path / "bot.sqlite")
    target = tmp_path / "elsewhere.html"
    asked: list[str] = []

    def no_browser(url: str) -> bool:
        asked.append(url)
        return False

    monkeypatch.setattr("webbrowser.open", no_browser)
    result = CliRunner().invoke(
        app, ["report", "--db", str(database), "--html", str(target), "--open"]
    )

    assert result.exit_code == 0, result.stderr
    assert asked == [target.resolve().as_uri()]
    assert f"no web browser found; open {target} in one" in result.stderr
    assert target.stat().st_size > 1_000_000


def test_a_report_without_performance_rows_or_markets_still_renders() -> None:
    document = html_report.render(Report(ReportFilters.parse(), (), ()))
    assert "Markets traded" not in document
    assert "No daily performance rows in this period" in document
