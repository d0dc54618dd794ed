"""Reports: the per-strategy comparison (exact figures checked against independent
computations), `tradedb report` as a user runs it, and the HTML report rendered in
headless Chromium, whose screenshot must show every chart drawn.

The scenario is built the way a bot builds it: real Binance TRX/BTC 5m candles from
January 2018 (tests/data), fills recorded through the Ledger at those candles' prices, and
daily performance_metrics rows written through the store's repository, as analytics does.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import statistics
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from market_files import ohlcv_rows, read_feather
from tradedb.cli import common
from tradedb.cli.app import app
from tradedb.services.ledger import Ledger
from tradedb.services.reports import ReportFilters, compare
from tradedb.services.reports import html as html_report
from tradedb.services.reports.comparison import drawdown_series, sharpe_ratio, total_return
from tradedb.services.reports.table import HEADERS, cells
from tradedb.store import Store

EXCHANGE = "binance"
TRX = "TRX/BTC"
USER_ERROR = 2
FOUR = Decimal("0.0001")
FIRST_DAY = date(2018, 1, 11)
NOT_A_NUMBER = re.compile(r"\b(nan|inf|infinity|none|null)\b", re.IGNORECASE)
DAYS = 18  # 2018-01-11 .. 2018-01-28, inside the candle file's 2018-01-10 .. 01-30


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# --- the scenario -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fill:
    strategy: str
    side: str
    at: str  # a 5m candle's open time (UTC); the fill is at that candle's close
    amount: str


# sma_cross: a winning round trip, then a losing one; rsi_revert: one winning round trip.
# The prices are the real candles' closes, so which trip wins is checked below, not assumed.
FILLS = (
    Fill("sma_cross", "buy", "2018-01-11 05:00", "2000"),
    Fill("sma_cross", "sell", "2018-01-13 11:00", "2000"),
    Fill("sma_cross", "buy", "2018-01-15 11:00", "1500"),
    Fill("sma_cross", "sell", "2018-01-17 05:00", "1500"),
    Fill("rsi_revert", "buy", "2018-01-17 11:00", "3000"),
    Fill("rsi_revert", "sell", "2018-01-19 17:00", "3000"),
)
FEE_RATE = Decimal("0.001")

# Daily P&L (USD) per strategy; equity starts at 10,000 USD each, and "idle" never trades.
PNL = {
    "sma_cross": [
        "120.5", "-40.25", "310", "-505.75", "80", "0", "45.5", "-120", "60", "15",
        "-30", "200", "-10", "5.25", "0", "75", "-60", "20",
    ],
    "rsi_revert": [
        "0", "0", "0", "0", "0", "0", "0", "0", "0", "80.12345678",
        "-20", "150", "-300", "410", "12", "-5", "0", "33",
    ],
    "idle": ["0"] * DAYS,
}  # fmt: skip
OPENING = Decimal("10000")


def closes(store: Store) -> dict[int, Decimal]:
    return {
        candle.timestamp: candle.close_price
        for candle in store.candles.list({"symbol": TRX}, limit=10_000).items
    }


def percent_of(part: Decimal, whole: Decimal) -> Decimal:
    return (part / whole * 100).quantize(FOUR, rounding=ROUND_HALF_EVEN)


def build(store: Store) -> None:
    rows = ohlcv_rows(read_feather("TRX_BTC-5m.feather"))
    # The file carries float noise past 8 decimals, which the store refuses; its values
    # at 8 decimals are Binance's prices.
    rows = [[row[0], *(f"{value:.8f}" for value in row[1:])] for row in rows]
    store.write_candles(rows, exchange=EXCHANGE, symbol=TRX, timeframe="5m")
    close = closes(store)
    ledger = Ledger(store)
    ledger.deposit(exchange=EXCHANGE, asset="BTC", amount="2", timestamp=ms("2018-01-10 06:00"))
    for number, fill in enumerate(FILLS):
        price = close[ms(fill.at)]
        when = ms(fill.at) + 300_000
        fee = (Decimal(fill.amount) * price * FEE_RATE).quantize(Decimal("1e-8"))
        order_id = f"O-{number}"
        ledger.place_order(
            exchange=EXCHANGE, order_id=order_id, symbol=TRX, side=fill.side,
            order_type="limit", amount=fill.amount, price=price, strategy=fill.strategy,
            timestamp=when,
        )  # fmt: skip
        ledger.record_fill(
            exchange=EXCHANGE, order_id=order_id, exchange_trade_id=f"T-{number}",
            amount=fill.amount, price=price, fee=fee, fee_currency="BTC", timestamp=when,
        )  # fmt: skip
    portfolio = [Decimal(0)] * DAYS
    for strategy, gains in PNL.items():
        equity = OPENING
        for day, gain in enumerate(map(Decimal, gains)):
            opening, equity = equity, equity + gain
            portfolio[day] += gain
            store.performance.insert(
                {
                    "date": FIRST_DAY + timedelta(days=day),
                    "total_portfolio_value": equity,
                    "daily_pnl": gain,
                    "daily_pnl_percent": percent_of(gain, opening),
                    "strategy": strategy,
                    "exchange": EXCHANGE,
                }
            )
    equity = OPENING * len(PNL)
    for day, gain in enumerate(portfolio):
        opening, equity = equity, equity + gain
        store.performance.insert(
            {
                "date": FIRST_DAY + timedelta(days=day),
                "total_portfolio_value": equity,
                "daily_pnl": gain,
                "daily_pnl_percent": percent_of(gain, opening),
            }
        )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("reports") / "tradedb.sqlite"
    with Store.open(path) as store:
        build(store)
        yield store


def report(store: Store, **filters: Any) -> dict[str, Any]:
    """The report's rows keyed by strategy (None: the portfolio-wide scope)."""
    result = compare(store, ReportFilters.parse(**filters))
    return {row.strategy: row for row in result.rows}


def fills_of(strategy: str | None, store: Store) -> list[Any]:
    where = {} if strategy is None else {"strategy": strategy}
    return store.trades.list(where, limit=1000).items


# --- the figures ------------------------------------------------------------------------------


def test_each_strategys_figures_equal_independent_computations(scenario: Store) -> None:
    rows = report(scenario)
    assert list(rows) == ["idle", "rsi_revert", "sma_cross", None]
    for strategy in ("sma_cross", "rsi_revert"):
        row = rows[strategy]
        gains = [Decimal(gain) for gain in PNL[strategy]]
        equity = [OPENING + sum(gains[: day + 1], Decimal(0)) for day in range(DAYS)]
        trades = fills_of(strategy, scenario)
        closing = [trade.profit_loss for trade in trades if trade.profit_loss is not None]

        assert row.exchange == EXCHANGE
        assert row.days[0].date == "2018-01-11"
        assert row.final_equity == equity[-1]
        assert row.total_pnl == sum(gains)
        # No money came in or went out, so the time-weighted return is final / opening - 1.
        with localcontext() as exact:
            exact.prec = 50
            expected_return = (equity[-1] / OPENING - 1) * 100
        assert row.total_return == expected_return.quantize(FOUR, rounding=ROUND_HALF_EVEN)
        assert row.trades == len(trades) == len([f for f in FILLS if f.strategy == strategy])
        assert row.wins == sum(pnl > 0 for pnl in closing)
        assert row.losses == sum(pnl < 0 for pnl in closing)
        assert row.fees == {"BTC": sum(trade.fee for trade in trades)}
        assert row.realized_pnl == {"BTC": sum(closing)}
        # Largest fall from any earlier peak (the opening equity counts as one).
        points = [OPENING, *equity]
        worst = max(
            (points[i] - points[j]) / points[i]
            for i in range(len(points))
            for j in range(i, len(points))
        )
        assert row.max_drawdown == (worst * 100).quantize(FOUR, rounding=ROUND_HALF_EVEN)
        # Sharpe as quantstats computes it (periods=365), in floats: equal to 4 decimals.
        returns = [float(gain / (value - gain)) for gain, value in zip(gains, equity, strict=True)]
        sharpe = statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(365)
        assert row.sharpe is not None
        assert abs(float(row.sharpe) - sharpe) <= 0.0001

    # The real prices decide wins and losses: the first sma_cross trip won, the second lost.
    assert (rows["sma_cross"].wins, rows["sma_cross"].losses) == (1, 1)
    assert rows["sma_cross"].win_rate == Decimal("50.0000")
    assert (rows["rsi_revert"].wins, rows["rsi_revert"].losses) == (1, 0)
    portfolio = rows[None]
    assert portfolio.exchange is None
    assert portfolio.trades == len(FILLS)
    assert portfolio.final_equity == sum(
        (row.final_equity for row in rows.values() if row.strategy is not None), Decimal(0)
    )
    assert portfolio.win_rate == Decimal("66.6667")  # 2 of 3, half-even at 4 decimals


def test_a_strategy_without_trades_says_no_trades_not_nan(scenario: Store) -> None:
    idle = report(scenario)["idle"]
    shown = dict(zip(HEADERS, cells(idle), strict=True))

    assert shown["trades"] == "no trades"
    assert shown["win rate"] == shown["wins"] == shown["fees"] == "—"
    # Flat equity: no return, no drawdown; a Sharpe ratio is undefined, not 0 or NaN.
    assert (shown["return"], shown["max drawdown"], shown["Sharpe"]) == ("0 %", "0 %", "—")
    assert not [cell for cell in shown.values() if NOT_A_NUMBER.search(cell)]


def test_period_filters_choose_the_days_and_the_trades(scenario: Store) -> None:
    rows = report(
        scenario, strategies=["sma_cross"], first_date="2018-01-15", last_date="2018-01-16"
    )
    assert list(rows) == ["sma_cross"]
    row = rows["sma_cross"]
    assert [day.date for day in row.days] == ["2018-01-15", "2018-01-16"]
    gains = [Decimal(gain) for gain in PNL["sma_cross"]]
    assert row.final_equity == OPENING + sum(gains[:6])
    assert row.total_pnl == gains[4] + gains[5]
    # Only the buy of 2018-01-15 11:05 falls inside the two days: an opening trade.
    assert (row.trades, row.wins, row.losses, row.win_rate) == (1, 0, 0, None)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.decimals(min_value=Decimal("-500"), max_value=Decimal("500"), places=2),
        min_size=1,
        max_size=40,
    )
)
def test_drawdown_and_return_match_brute_force(gains: list[Decimal]) -> None:
    equity = [OPENING + sum(gains[: day + 1], Decimal(0)) for day in range(len(gains))]
    points = [OPENING, *equity]
    series = drawdown_series(equity, gains)
    for day, down in enumerate(series, start=1):
        peak = max(points[: day + 1])
        assert down == percent_exact((peak - points[day]) / peak)
        assert down >= 0
    ratio = Fraction(equity[-1]) / Fraction(OPENING) - 1
    assert total_return(equity, gains) == percent_exact(ratio)
    sharpe = sharpe_ratio(equity, gains)
    if sharpe is not None:
        mean = sum(
            Fraction(gain) / Fraction(value - gain)
            for gain, value in zip(gains, equity, strict=True)
        )
        assert (sharpe > 0) == (mean > 0) or sharpe == 0


def percent_exact(ratio: Fraction | Decimal) -> Decimal:
    exact = Fraction(ratio) * 100
    return Decimal(round(exact * 10_000)).scaleb(-4)


# --- tradedb report ---------------------------------------------------------------------------

FIXED_POINT = re.compile(r"^-?\d+\.\d+$")


@pytest.fixture
def run(scenario: Store, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`tradedb report --db <scenario> ...` in-process, as a pipe would see it."""
    monkeypatch.delenv("TRADEDB_DB", raising=False)
    monkeypatch.setattr(common.out, "width", common.PIPED_WIDTH)

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(app, ["report", "--db", str(scenario.db.path), *args])

    return invoke


def user_error(result: Any) -> str:
    """Exit 2 with exactly one line on stderr and no traceback; that line."""
    assert result.exit_code == USER_ERROR, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def table_rows(text: str) -> dict[str, list[str]]:
    """A rich table's body rows by their first cell."""
    rows = {}
    for line in text.splitlines():
        parts = [part.strip() for part in re.split("[│┃]", line)[1:-1]]
        if parts and parts[0]:
            rows[parts[0]] = parts
    return rows


def test_report_prints_one_row_per_strategy(run: Any) -> None:
    result = run()

    assert result.exit_code == 0, result.stderr
    rows = table_rows(result.stdout)
    header = rows.pop("strategy")
    assert header == list(HEADERS)
    assert list(rows) == ["idle", "rsi_revert", "sma_cross", "all strategies"]
    sma = dict(zip(HEADERS, rows["sma_cross"], strict=True))
    assert (sma["trades"], sma["wins"], sma["losses"], sma["win rate"]) == ("4", "1", "1", "50 %")
    assert sma["final equity"] == "10165.25"
    assert dict(zip(HEADERS, rows["idle"], strict=True))["trades"] == "no trades"
    assert not NOT_A_NUMBER.search(result.stdout.replace("binance", ""))


def test_report_json_is_exact_fixed_point(run: Any, scenario: Store) -> None:
    result = run("--json", "--strategy", "sma_cross", "--strategy", "idle")

    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["filters"]["strategies"] == ["sma_cross", "idle"]
    rows = {row["strategy"]: row for row in data["rows"]}
    assert list(rows) == ["idle", "sma_cross"]
    sma = rows["sma_cross"]
    for name in ("final_equity", "total_pnl", "total_return_percent", "max_drawdown_percent"):
        assert FIXED_POINT.match(sma[name]), (name, sma[name])
    fees = sum(trade.fee for trade in fills_of("sma_cross", scenario))
    assert Decimal(sma["fees"]["BTC"]) == fees
    assert not re.search(r"\d[eE][-+]?\d", result.stdout)  # never "1E-8"
    assert rows["idle"]["note"] == "no trades"
    assert rows["idle"]["win_rate_percent"] is None
    assert rows["idle"]["sharpe_ratio"] is None


def test_strategies_repeated_or_comma_separated_are_the_same_report(run: Any) -> None:
    """`--strategy a,b` matched no strategy at all before it was split."""
    repeated = run("--json", "--strategy", "sma_cross", "--strategy", "idle")
    commas = run("--json", "--strategy", "sma_cross,idle")

    assert commas.exit_code == 0, commas.stderr
    assert json.loads(commas.stdout) == json.loads(repeated.stdout)
    assert {row["strategy"] for row in json.loads(commas.stdout)["rows"]} == {"sma_cross", "idle"}


def test_since_and_until_take_a_date_a_datetime_or_epoch_ms(run: Any) -> None:
    """The days whose midnight is in [since, until): 2018-01-15 and 2018-01-16."""
    dates = run("--json", "--since", "2018-01-15", "--until", "2018-01-17")
    exact = run(
        *("--json", "--since", "2018-01-15T00:00:00+00:00", "--until", "1516147200000"),
    )
    after_midnight = run(
        "--json", "--since", "2018-01-14T00:00:01Z", "--until", "2018-01-16T12:00:00Z"
    )

    assert dates.exit_code == 0, dates.stderr
    report = json.loads(dates.stdout)
    assert (report["filters"]["first_date"], report["filters"]["last_date"]) == (
        "2018-01-15",
        "2018-01-16",
    )
    assert json.loads(exact.stdout) == report
    assert json.loads(after_midnight.stdout) == report


def test_a_named_strategy_with_nothing_stored_says_no_trades(run: Any) -> None:
    result = run("--json", "--strategy", "sma_cross", "--strategy", "never_ran")

    assert result.exit_code == 0, result.stderr
    rows = {row["strategy"]: row for row in json.loads(result.stdout)["rows"]}
    assert rows["never_ran"]["note"] == "no trades"
    assert rows["never_ran"]["final_equity"] is None
    assert rows["never_ran"]["days"] == 0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--strategy", "never_ran"), "no daily performance rows and no trades"),
        (("--exchange", "kraken"), "no daily performance rows and no trades"),
        (("--since", "2019-01-01"), "no daily performance rows and no trades"),
        (("--since", "2018-01-20", "--until", "2018-01-10"), "leaves no UTC midnight after"),
        (("--since", "January"), "since='January': is not an ISO 8601 time"),
        (("--exchange", "Kraken!"), "lowercase ccxt exchange id"),
    ],
)
@pytest.mark.fault("bad input")
def test_filters_that_match_nothing_are_one_line(
    run: Any, args: tuple[str, ...], says: str
) -> None:
    assert says in user_error(run(*args))


@pytest.mark.fault("bad input")
def test_html_into_a_missing_folder_is_one_line(run: Any, tmp_path: Path) -> None:
    line = user_error(run("--html", str(tmp_path / "missing" / "report.html")))
    assert "folder does not exist" in line


# --- the HTML report --------------------------------------------------------------------------


class Resources(HTMLParser):
    """Every address the document would load or link: src/href-like attributes and
    url(...) in style attributes and style elements, and whether a script loads a file."""

    ADDRESS_ATTRIBUTES = frozenset({"src", "href", "srcset", "data", "poster", "action"})

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []
        self.scripts = 0
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self._in_style = tag == "style"
        for name, value in attrs:
            if value is None:
                continue
            if name in self.ADDRESS_ATTRIBUTES:
                self.addresses.append(value)
            if name == "style":
                self.addresses += CSS_URL.findall(value)

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.addresses += CSS_URL.findall(data)
            self.addresses += CSS_IMPORT.findall(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False


CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)")
CSS_IMPORT = re.compile(r"@import\s+['\"]([^'\"]+)")
PLOTLY_BANNER = re.compile(r"\* plotly\.js v\d+\.\d+\.\d+")


@pytest.fixture(scope="module")
def html_file(scenario: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    html_report.write(compare(scenario, ReportFilters.parse()), path)
    return path


def test_the_html_report_is_one_file_that_loads_nothing_from_the_network(html_file: Path) -> None:
    document = html_file.read_text()
    parser = Resources()
    parser.feed(document)

    assert parser.addresses == []  # no src, href or url() at all: nothing to load
    assert parser.scripts >= 5  # plotly.js, then one per chart
    assert "<script src" not in document.lower()
    assert len(PLOTLY_BANNER.findall(document)) == 1  # one copy of plotly.js for all charts
    # plotly.js itself names sites in strings (map tiles, its docs) that these charts never
    # load; outside it, the document names no web address at all.
    outside_plotly = document.replace(plotly_js(), "")
    assert not re.search(r"https?:|//cdn|\bwss?:", outside_plotly)


def plotly_js() -> str:
    import plotly.offline

    text: str = plotly.offline.get_plotlyjs()
    return text


def test_the_html_report_shows_the_metrics_table_exactly(html_file: Path, scenario: Store) -> None:
    document = html_file.read_text()
    for row in compare(scenario, ReportFilters.parse()).rows:
        for cell in cells(row):
            assert f">{cell}</td>" in document or f"</span>{cell}</td>" in document, cell
    assert "no trades" in document
    assert not NOT_A_NUMBER.search(
        re.sub(r"<script>.*?</script>", "", document, flags=re.S).replace("binance", "")
    )


def test_strategy_names_cannot_inject_markup(tmp_path: Path) -> None:
    with Store.open(tmp_path / "names.sqlite") as store:
        store.performance.insert(
            {
                "date": "2024-01-01",
                "total_portfolio_value": "1",
                "strategy": "<script>alert(1)</script>",
                "exchange": "kraken",
            }
        )
        document = html_report.render(compare(store, ReportFilters.parse()))
    assert "<script>alert(1)" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document


# --- the HTML report in a real browser --------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="Debian's chromium is not installed (.ci/run installs it; CI=true requires it)",
)
WINDOW = (1400, 3000)


def screenshot(page: Path, png: Path) -> Any:
    """The page as headless Chromium draws it, as an RGB array. The network is cut off
    (every host name fails, every connection goes to a closed port), so whatever draws,
    drew from the file alone. The virtual-time budget lets plotly's scripts finish."""
    assert CHROMIUM is not None, "CI=true: chromium must be installed (see .ci/run)"
    np = pytest.importorskip("numpy")
    image = pytest.importorskip("PIL.Image")
    subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--force-color-profile=srgb", "--virtual-time-budget=20000",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
            f"--user-data-dir={png.parent / 'chromium-profile'}",
            f"--screenshot={png}", f"--window-size={WINDOW[0]},{WINDOW[1]}", page.as_uri(),
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return np.asarray(image.open(png).convert("RGB"))


def near(pixels: Any, colour: str, tolerance: int = 8) -> Any:
    """Which pixels are within `tolerance` (per channel) of a #rrggbb colour."""
    target = [int(colour[index : index + 2], 16) for index in (1, 3, 5)]
    return (abs(pixels.astype(int) - target)).max(axis=2) <= tolerance


def plot_areas(pixels: Any) -> list[tuple[int, int]]:
    """Rows (first, last) of each chart's plot area, top to bottom. A plot area is a run
    of rows mostly in the report's plot background, a colour the page uses nowhere else;
    gridlines break a run for a row or two and are bridged."""
    rows = (near(pixels, html_report.PLOT_BACKGROUND, tolerance=2).sum(axis=1) > 100).nonzero()[0]
    areas: list[list[int]] = []
    for row in rows:
        if areas and row - areas[-1][1] <= 20:
            areas[-1][1] = row
        else:
            areas.append([row, row])
    return [(first, last) for first, last in areas if last - first > 100]


def charts_drawn(pixels: Any, strategies: int) -> list[str]:
    """What is missing from the screenshot of the scenario's report: [] when the equity,
    drawdown, daily P&L and candle charts all drew. Each chart's lines, areas, bars and
    candles are counted in its own plot area by their exact colours."""
    areas = plot_areas(pixels)
    if len(areas) != 4:
        return [f"found {len(areas)} chart areas, expected 4 (equity, drawdown, P&L, candles)"]
    equity, drawdown, daily, candles = (pixels[first : last + 1] for first, last in areas)
    palette = html_report.PALETTE[:strategies]
    problems = [
        f"equity: the curve in {colour} drew {count} pixels"
        for colour in palette
        if (count := int(near(equity, colour).sum())) < 300
    ]
    for name, area in (("drawdown", drawdown), ("daily P&L", daily)):
        ink = sum(int(near(area, colour).sum()) for colour in palette)
        if ink < 2000:
            problems.append(f"{name}: only {ink} pixels in the strategies' colours")
    for name, colour, least in (
        ("rising candles", html_report.CANDLE_UP, 1000),
        ("falling candles", html_report.CANDLE_DOWN, 1000),
        ("buy markers", html_report.BUY, 60),
        ("sell markers", html_report.SELL, 60),
    ):
        if (count := int(near(candles, colour).sum())) < least:
            problems.append(f"candles: {name} drew {count} pixels")
    return problems


@needs_chromium
def test_every_chart_draws_in_headless_chromium(
    scenario: Store, html_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    strategies = len(report(scenario))
    pixels = screenshot(html_file, tmp_path / "report.png")
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    assert charts_drawn(pixels, strategies) == []

    # The check fails when the charts do not draw. Without plotly.js the page has the
    # table and the chart placeholders but no chart at all:
    document = html_file.read_text()
    without_js = tmp_path / "no-plotly.html"
    without_js.write_text(document.replace(plotly_js(), "", 1))
    assert charts_drawn(screenshot(without_js, tmp_path / "no-plotly.png"), strategies) == [
        "found 0 chart areas, expected 4 (equity, drawdown, P&L, candles)"
    ]
    # With plotly.js but nothing to plot (every coordinate NaN), the axes draw and the
    # lines, bars and candles do not:
    monkeypatch.setattr(html_report, "_floats", lambda values: [math.nan for _ in values])
    blank = tmp_path / "blank.html"
    html_report.write(compare(scenario, ReportFilters.parse()), blank)
    problems = charts_drawn(screenshot(blank, tmp_path / "blank.png"), strategies)
    assert len(problems) == strategies + 2 + 4, problems


def test_trades_without_performance_rows_or_candles_still_report(tmp_path: Path) -> None:
    with Store.open(tmp_path / "young.sqlite") as store:
        ledger = Ledger(store)
        ledger.deposit(exchange="kraken", asset="USD", amount="1000", timestamp=ms("2024-03-01"))
        ledger.place_order(
            exchange="kraken", order_id="O-1", symbol="ETH/USD", side="buy", order_type="limit",
            amount="0.1", price="3000", strategy="fresh", timestamp=ms("2024-03-01 10:00"),
        )  # fmt: skip
        ledger.record_fill(
            exchange="kraken", order_id="O-1", exchange_trade_id="T-1", amount="0.1",
            price="3000", fee="0.78", timestamp=ms("2024-03-01 10:00"),
        )  # fmt: skip
        result = compare(store, ReportFilters.parse())
        document = html_report.render(result)

    [row] = result.rows
    shown = dict(zip(HEADERS, cells(row), strict=True))
    assert (row.strategy, row.exchange, row.trades) == ("fresh", "kraken", 1)
    assert row.fees == {"USD": Decimal("0.78")}  # no fee currency given: the quote's
    assert shown["final equity"] == shown["return"] == shown["Sharpe"] == "—"
    assert shown["win rate"] == "—"  # an opening trade is neither a win nor a loss
    assert "No daily performance rows in this period" in document
    assert "No candles of ETH/USD on kraken are stored around its trades" in document


def test_a_scope_without_capital_has_no_percentages_rather_than_an_error() -> None:
    # Analytics leaves a strategy without allocated capital at equity 0 (P&L alone).
    equity, pnl = [Decimal(0)] * 3, [Decimal(0)] * 3
    assert total_return(equity, pnl) is None
    assert sharpe_ratio(equity, pnl) is None
    assert drawdown_series(equity, pnl) == [Decimal(0)] * 3


def test_a_new_report_file_is_readable_by_its_owner_only(html_file: Path) -> None:
    assert html_file.stat().st_mode & 0o777 == 0o600


def test_a_report_written_over_a_readable_file_is_owner_only(
    scenario: Store, tmp_path: Path
) -> None:
    path = tmp_path / "report.html"
    path.write_text("an older report")
    os.chmod(path, 0o644)

    html_report.write(compare(scenario, ReportFilters.parse()), path)

    assert path.stat().st_mode & 0o777 == 0o600


def test_long_stretches_without_rows_are_cut_out_of_the_date_axis() -> None:
    """Periods years apart (the demo's 2018 and 2023 data) must not be squeezed into
    slivers at either end of one date axis."""
    dates = ["2018-01-10", "2018-01-11", "2018-01-30", "2023-01-01", "2023-01-02"]

    assert html_report._long_gaps(dates) == [
        ("2018-01-12", "2018-01-30"),
        ("2018-01-31", "2023-01-01"),
    ]
    assert html_report._long_gaps(["2018-01-10", "2018-01-17"]) == []
