"""Reports: the per-strategy comparison (exact figures checked against independent
computations), `tradedb report` as a user runs it, and what the HTML report holds (how
it draws in a browser: tests/test_report_html.py).

The scenario is built the way a bot builds it: real Binance TRX/BTC 5m candles from
January 2018 (tests/data), fills recorded through the Ledger at those candles' prices, and
daily performance_metrics rows written through the store's repository, as analytics does.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
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
from tradedb.services.analytics.figures import ReturnSeries, Undefined, daily_return
from tradedb.services.ledger import Ledger
from tradedb.services.reports import ReportFilters, compare
from tradedb.services.reports import html as html_report
from tradedb.services.reports.html_charts import long_gaps
from tradedb.services.reports.table import FIGURE_HEADERS, HEADERS, cells, figure_cells
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
        assert row.curve.total_return == expected_return.quantize(FOUR, rounding=ROUND_HALF_EVEN)
        assert row.fills == len(trades) == len([f for f in FILLS if f.strategy == strategy])
        # Each closing fill here leaves its position flat: one round trip each.
        assert row.trades.round_trips == len(closing)
        assert row.trades.wins == sum(pnl > 0 for pnl in closing)
        assert row.trades.losses == sum(pnl < 0 for pnl in closing)
        assert row.fees == {"BTC": sum(trade.fee for trade in trades)}
        assert row.realized_pnl == {"BTC": sum(closing)}
        # Largest fall from any earlier peak (the opening equity counts as one).
        points = [OPENING, *equity]
        worst = max(
            (points[i] - points[j]) / points[i]
            for i in range(len(points))
            for j in range(i, len(points))
        )
        assert row.curve.max_drawdown == (worst * 100).quantize(FOUR, rounding=ROUND_HALF_EVEN)
        # A Sharpe ratio from a few days is noise: the report says why it gives none.
        assert row.curve.sharpe == Undefined(
            f"needs 30 daily returns, the period has {row.curve.returns}"
        )
        # The same code with the threshold lowered gives quantstats' figure (periods=365).
        returns = [float(gain / (value - gain)) for gain, value in zip(gains, equity, strict=True)]
        series = ReturnSeries(min_returns=2)
        for day, daily in zip(row.days, returns, strict=True):
            series.add(day.date, Decimal(daily))
        sharpe = statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(365)
        assert abs(float(series.sharpe_ratio()) - sharpe) <= 0.0001  # type: ignore[arg-type]

    # The real prices decide wins and losses: the first sma_cross trip won, the second lost.
    assert (rows["sma_cross"].trades.wins, rows["sma_cross"].trades.losses) == (1, 1)
    assert rows["sma_cross"].trades.win_rate == Decimal("50.0000")
    assert (rows["rsi_revert"].trades.wins, rows["rsi_revert"].trades.losses) == (1, 0)
    portfolio = rows[None]
    assert portfolio.exchange is None
    assert portfolio.fills == len(FILLS)
    assert portfolio.final_equity == sum(
        (row.final_equity for row in rows.values() if row.strategy is not None), Decimal(0)
    )
    assert portfolio.trades.win_rate == Decimal("66.6667")  # 2 of 3, half-even at 4 decimals


def test_a_strategy_without_trades_says_no_trades_not_nan(scenario: Store) -> None:
    idle = report(scenario)["idle"]
    shown = dict(zip(HEADERS, cells(idle), strict=True))
    figures = dict(zip(FIGURE_HEADERS, figure_cells(idle), strict=True))

    assert shown["fills"] == "no trades"
    assert shown["win rate"] == shown["round trips"] == shown["fees"] == "—"
    # Flat equity: no return, no drawdown; a Sharpe ratio is undefined, not 0 or NaN.
    flat = (shown["return"], figures["max drawdown"], figures["Sharpe"])
    assert flat == ("0.0000 %", "0.0000 %", "—")
    assert not [cell for cell in figures.values() if NOT_A_NUMBER.search(cell)]
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
    trades = row.trades
    assert (row.fills, trades.round_trips, trades.wins, trades.losses) == (1, 0, 0, 0)
    assert trades.win_rate == Undefined("no round trip won or lost in the period")


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
    series = ReturnSeries()
    for day, (gain, value) in enumerate(zip(gains, equity, strict=True), start=1):
        series.add(f"2018-01-{day:02}", Fraction(gain) / Fraction(value - gain))
        peak = max(points[: day + 1])
        assert series.drawdown() == percent_exact((peak - points[day]) / peak)
    assert series.max_drawdown() == max(
        percent_exact((max(points[: day + 1]) - points[day]) / max(points[: day + 1]))
        for day in range(len(points))
    )
    ratio = Fraction(equity[-1]) / Fraction(OPENING) - 1
    assert series.total_return() == percent_exact(ratio)


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
    comparison, figures = result.stdout.split("risk and round trips")
    rows = table_rows(comparison)
    header = rows.pop("strategy")
    assert header == list(HEADERS)
    assert list(table_rows(figures))[:4] == ["strategy", "idle", "rsi_revert", "sma_cross"]
    assert list(rows) == ["idle", "rsi_revert", "sma_cross", "all strategies"]
    sma = dict(zip(HEADERS, rows["sma_cross"], strict=True))
    counts = (sma["fills"], sma["round trips"], sma["win rate"])
    assert counts == ("4", "2", "50.0000 %")
    assert sma["final equity"] == "10165.25"
    assert dict(zip(HEADERS, rows["idle"], strict=True))["fills"] == "no trades"
    assert "— needs 30 daily returns, the period has" in result.stdout
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
        re.sub(r"<script[^>]*>.*?</script>", "", document, flags=re.S).replace("binance", "")
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
    assert (row.strategy, row.exchange, row.fills) == ("fresh", "kraken", 1)
    assert row.fees == {"USD": Decimal("0.78")}  # no fee currency given: the quote's
    assert shown["final equity"] == shown["return"] == "—"
    assert row.curve.sharpe == Undefined("needs 30 daily returns, the period has 0")
    assert shown["win rate"] == "—"  # an opening trade is neither a win nor a loss
    assert "No daily performance rows in this period" in document
    assert "No candles of ETH/USD on kraken are stored around its trades" in document


def test_a_scope_without_capital_has_no_percentages_rather_than_an_error() -> None:
    # Analytics leaves a strategy without allocated capital at equity 0 (P&L alone): a
    # day that began with nothing has no return.
    assert daily_return(Decimal(0), Decimal(5)) is None
    assert daily_return(Decimal(-10), Decimal(5)) is None
    series = ReturnSeries()
    assert series.total_return() == Undefined("no daily return in the period")
    assert series.sharpe_ratio() == Undefined("needs 30 daily returns, the period has 0")
    assert series.drawdown() == Decimal(0)


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

    assert long_gaps(dates) == [
        ("2018-01-12", "2018-01-30"),
        ("2018-01-31", "2023-01-01"),
    ]
    assert long_gaps(["2018-01-10", "2018-01-17"]) == []


def test_the_html_report_shows_every_figure_and_why_one_is_unknown(scenario: Store) -> None:
    result = compare(scenario, ReportFilters.parse())
    document = html_report.render(result)

    assert "<h2>Risk and round trips</h2>" in document
    for header in FIGURE_HEADERS:
        assert f">{header}</th>" in document
    # A "—" carries its reason on hover, and the reasons are listed under the table.
    assert "<span title='needs 30 daily returns, the period has" in document
    assert "— needs 30 daily returns, the period has" in document


def test_report_json_lists_each_round_trip_with_its_duration_and_return(
    run: Any, scenario: Store
) -> None:
    result = run("--json", "--strategy", "sma_cross")

    (row,) = json.loads(result.stdout)["rows"]
    trips = row["round_trip_list"]
    assert len(trips) == row["round_trips"] == 2
    closing = [t.profit_loss for t in fills_of("sma_cross", scenario) if t.profit_loss is not None]
    assert [Decimal(trip["pnl"]) for trip in trips] == closing
    for trip in trips:
        assert trip["duration_ms"] == trip["closed_at"] - trip["opened_at"] > 0
        expected = Decimal(trip["pnl"]) / Decimal(trip["cost"]) * 100
        assert Decimal(trip["return_percent"]) == expected.quantize(FOUR)
