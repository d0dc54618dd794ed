"""`tradedb demo`: what a user gets from it on a fresh machine, offline.

The demo runs end to end twice here: once in-process through the service (the module's
`demo` fixture, shared by most tests) and once through the command with CliRunner, as a
user runs it without arguments. The expectations about the imported data are computed
independently from the shipped files (pyarrow and the csv module), not through tradedb.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import empyrical
import numpy as np
import plotly.offline
import pytest
from pyarrow import feather
from typer.testing import CliRunner

from cli_harness import isolated_environ
from conftest import sha256
from tradedb.cli.app import app
from tradedb.errors import ValidationError
from tradedb.models.values import to_epoch_ms
from tradedb.services.analytics.figures import ReturnSeries, Undefined, daily_return
from tradedb.services.analytics.references import list_reference_prices
from tradedb.services.demo import (
    DEMO_KEY,
    SAMPLE_DATA,
    STRATEGIES,
    DemoResult,
    StepReport,
    choose_database,
    default_demo_path,
    run_demo,
)
from tradedb.services.ledger.audit import audit
from tradedb.store import Store

USER_ERROR = 2
BINANCE_MARKETS = ("ADA/BTC", "ETC/BTC", "ETH/BTC", "LTC/BTC", "TRX/BTC")
KRAKEN_FILES = ("BCHEUR.csv", "BCHEUR-incremental_q2.csv")
QUARTER_HOUR_S = 900
STEPS = (
    "database",
    "import-binance",
    "import-kraken",
    "references",
    "paper-binance",
    "paper-kraken",
    "snapshots",
    "metrics",
    "report",
)


class Recorder:
    """A DemoProgress that remembers what it heard."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.finished_steps: list[StepReport] = []

    def started(self, step: str, title: str) -> None:
        self.events.append(("started", step))

    def advanced(self, step: str, done: int, total: int | None) -> None:
        assert total is None or 0 <= done <= total
        self.events.append(("advanced", step))

    def finished(self, report: StepReport) -> None:
        self.events.append(("finished", report.step))
        self.finished_steps.append(report)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, Recorder]:
    folder = tmp_path_factory.mktemp("demo")
    recorder = Recorder()
    result = run_demo(folder / "demo.sqlite", folder / "report.html", progress=recorder)
    return result, recorder


@pytest.fixture
def store(demo: tuple[DemoResult, Recorder]) -> Iterator[Store]:
    with Store.open(demo[0].database, readonly=True) as opened:
        yield opened


# --- what the database holds ------------------------------------------------------------------


def feather_rows(symbol: str) -> int:
    name = symbol.replace("/", "_") + "-5m.feather"
    return int(feather.read_table(SAMPLE_DATA / "binance" / name).num_rows)


def kraken_trades() -> list[tuple[int, Decimal, Decimal]]:
    trades = []
    for name in KRAKEN_FILES:
        with (SAMPLE_DATA / "kraken" / name).open(newline="") as handle:
            trades += [(int(t), Decimal(p), Decimal(v)) for t, p, v in csv.reader(handle)]
    return trades


def test_the_database_holds_the_candles_of_all_six_markets(store: Store) -> None:
    stored = {(c.exchange, c.symbol, c.timeframe): c.candles for c in store.market.coverage()}
    quarter_hours = {seconds // QUARTER_HOUR_S for seconds, _, _ in kraken_trades()}

    assert stored == {
        **{("binance", symbol, "5m"): feather_rows(symbol) for symbol in BINANCE_MARKETS},
        ("kraken", "BCH/EUR", "15m"): len(quarter_hours),
    }


def test_kraken_candles_are_the_trades_of_both_files_bucketed_by_quarter_hour(
    store: Store,
) -> None:
    trades = kraken_trades()
    first_bucket = min(t for t, _, _ in trades) // QUARTER_HOUR_S * QUARTER_HOUR_S
    in_first = [(price, volume) for t, price, volume in trades if t < first_bucket + 900]
    last_bucket = max(t for t, _, _ in trades) // QUARTER_HOUR_S * QUARTER_HOUR_S
    in_last = [(price, volume) for t, price, volume in trades if t >= last_bucket]
    candles = store.candles.list(
        {"exchange": "kraken", "symbol": "BCH/EUR", "timeframe": "15m"}, limit=1000
    ).items

    first, last = candles[0], candles[-1]
    assert first.timestamp == first_bucket * 1000
    assert (first.open_price, first.close_price) == (in_first[0][0], in_first[-1][0])
    assert first.volume == sum(volume for _, volume in in_first)
    assert last.timestamp == last_bucket * 1000
    assert last.high_price == max(price for price, _ in in_last)
    assert sum(c.volume for c in candles) == sum(volume for _, _, volume in trades)


def test_the_float_values_rounded_are_those_with_noise_past_8_decimals(
    demo: tuple[DemoResult, Recorder],
) -> None:
    noisy = 0
    for symbol in BINANCE_MARKETS:
        table = feather.read_table(
            SAMPLE_DATA / "binance" / (symbol.replace("/", "_") + "-5m.feather")
        )
        for column in ("open", "high", "low", "close", "volume"):
            noisy += sum(
                Decimal(repr(value)).as_tuple().exponent < -8  # type: ignore[operator]
                for value in table.column(column).to_pylist()
            )
    result = demo[0]

    assert noisy > 0
    assert sum(m.rounded for m in result.markets) == noisy
    assert f"{noisy:,} values carry float noise past the 8th decimal" in result.notes[0]


def test_the_readme_gives_the_demos_own_figures(demo: tuple[DemoResult, Recorder]) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    demo_section = readme.split("\n## Demo\n", 1)[1].split("\n## ", 1)[0]
    markets = demo[0].markets
    binance = [m for m in markets if m.exchange == "binance"]
    kraken = [m for m in markets if m.exchange == "kraken"]

    assert f"({sum(m.candles for m in binance):,} candles)" in demo_section
    assert f"{sum(m.rounded for m in binance):,} values carry" in demo_section
    assert f"{sum(m.trades for m in kraken):,} trades" in demo_section
    assert f"become {kraken[0].timeframe}" in demo_section


def test_both_strategies_traded_on_both_exchanges_through_the_ledger(store: Store) -> None:
    for exchange in ("binance", "kraken"):
        for strategy in STRATEGIES:
            assert store.trades.count({"exchange": exchange, "strategy": strategy}) > 0
    assert audit(store) == []  # every order, fill, position and wallet adds up


def test_wallets_were_funded_in_each_exchanges_quote_currency(store: Store) -> None:
    deposits = store.ledger.movement_sums(["deposit"])

    assert deposits == {("binance", "BTC"): Decimal(1), ("kraken", "EUR"): Decimal(10000)}


def test_reference_prices_are_configured_and_said_not_to_be_market_data(
    store: Store, demo: tuple[DemoResult, Recorder]
) -> None:
    config = {c.config_key: c for c in store.config.list(limit=100).items}
    prices = {row.asset: row for row in list_reference_prices(store)}

    assert prices["BTC"].price_usd == 12000
    assert prices["EUR"].price_usd == Decimal("1.07")
    assert "not market data" in prices["BTC"].source
    # Each holds over its own exchange's days (and up to the end of the day after them).
    assert (prices["BTC"].valid_from, prices["BTC"].valid_until) == (
        to_epoch_ms(datetime(2018, 1, 10, tzinfo=UTC), "t"),
        to_epoch_ms(datetime(2018, 2, 1, tzinfo=UTC), "t"),
    )
    assert prices["EUR"].covers(to_epoch_ms(datetime(2023, 1, 2, tzinfo=UTC), "t"))
    assert not prices["BTC"].covers(to_epoch_ms(datetime(2023, 1, 2, tzinfo=UTC), "t"))
    assert config[DEMO_KEY].config_value == "true"
    # Each strategy's capital in USD, as analytics reads it: half of 1 BTC, half of 10,000 EUR.
    assert Decimal(config["capital.sma_cross.binance"].config_value) == 6000
    assert Decimal(config["capital.rsi_revert.kraken"].config_value) == 5350
    assert any("not market data" in note for note in demo[0].notes)


def test_snapshots_value_each_period_only_with_its_own_reference_price(store: Store) -> None:
    rows = store.snapshots.list(limit=1000).items
    days = {datetime.fromtimestamp(r.timestamp / 1000, UTC).date().isoformat() for r in rows}
    btc = [r for r in rows if r.asset == "BTC"]

    assert len(days) == 25  # 2018-01-10..31 at 00:00, and 2023-01-01..03
    assert btc
    assert all(r.price_per_unit == 12000 for r in btc)
    assert all(r.timestamp < 1_600_000_000_000 for r in btc)  # never valued in 2023
    first = [r for r in rows if r.timestamp == 1_515_542_400_000]  # 2018-01-10 00:00
    assert [(r.exchange, r.asset, r.usd_value) for r in first] == [("binance", "BTC", 12000)]


def test_daily_metrics_cover_each_strategy_on_its_own_days(store: Store) -> None:
    rows = store.performance.list(limit=1000).items
    dates: dict[tuple[str | None, str | None], set[str]] = {}
    for row in rows:
        dates.setdefault((row.strategy, row.exchange), set()).add(str(row.date))

    for strategy in STRATEGIES:
        assert dates[(strategy, "binance")] <= {f"2018-01-{day:02}" for day in range(10, 31)}
        assert dates[(strategy, "kraken")] <= {"2023-01-01", "2023-01-02"}
    assert len(dates[(None, "binance")]) == 21
    assert dates[(None, "kraken")] == {"2023-01-01", "2023-01-02"}


def test_metrics_and_snapshot_run_again_on_the_demo_database_add_nothing_outside_the_periods(
    demo: tuple[DemoResult, Recorder], tmp_path: Path
) -> None:
    copy = tmp_path / "copy.sqlite"
    with sqlite3.connect(demo[0].database) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    env = isolated_environ(tmp_path)
    with Store.open(copy, readonly=True) as before_store:
        before = {(r.date, r.strategy, r.exchange) for r in _performance(before_store)}

    metrics = CliRunner().invoke(app, ["metrics", "--db", str(copy)], env=env)
    snapshot = CliRunner().invoke(
        app, ["snapshot", "--db", str(copy), "--at", "2023-01-02T12:00:00+00:00"], env=env
    )

    assert metrics.exit_code == 1, metrics.output  # Binance cannot be valued after January 2018
    assert snapshot.exit_code == 1, snapshot.output  # its coins have no price in 2023
    with Store.open(copy, readonly=True) as after_store:
        after = _performance(after_store)
        taken = after_store.snapshots.list({"timestamp": 1_672_660_800_000}).items
    dates = {r.date for r in after}
    in_periods = {f"2018-01-{day:02}" for day in range(10, 31)} | {"2023-01-01", "2023-01-02"}
    assert dates <= in_periods | {"2023-01-03"}, sorted(dates - in_periods)[:5]
    assert len(after) < 200  # before reference prices had periods: 1,886 rows
    assert before <= {(r.date, r.strategy, r.exchange) for r in after}
    assert {(r.exchange, r.asset) for r in taken} == {("kraken", "BCH"), ("kraken", "EUR")}


def _performance(store: Store) -> list[Any]:
    return list(store.performance.every())


# --- what the user sees -----------------------------------------------------------------------


def test_every_step_is_reported_in_order_with_its_timing(
    demo: tuple[DemoResult, Recorder],
) -> None:
    result, recorder = demo
    starts = [step for event, step in recorder.events if event == "started"]
    ends = [report.step for report in recorder.finished_steps]

    assert starts == ends == list(STEPS)
    assert ("advanced", "paper-binance") in recorder.events  # the long step shows progress
    assert all(report.seconds >= 0 and report.summary for report in recorder.finished_steps)
    assert sum(report.seconds for report in result.steps) <= result.seconds


def test_the_comparison_has_a_row_per_strategy_and_exchange(
    demo: tuple[DemoResult, Recorder],
) -> None:
    rows = {(row.strategy, row.exchange): row for row in demo[0].comparison.rows}

    for exchange in ("binance", "kraken"):
        for strategy in STRATEGIES:
            row = rows[(strategy, exchange)]
            assert row.fills > 0
            assert row.final_equity is not None


def test_the_figures_of_the_demos_curves_agree_with_empyrical(
    demo: tuple[DemoResult, Recorder], store: Store
) -> None:
    """One implementation: the report's figures, and the same code with the 30-day
    threshold lowered, against empyrical on the demo's own daily curves."""
    for row in demo[0].comparison.rows:
        stored = [r for r in _performance(store) if (r.strategy, r.exchange) == row.key]
        returns = [
            daily_return(before.total_portfolio_value, after.daily_pnl)
            for before, after in itertools.pairwise(stored)
        ]
        if row.strategy is not None and stored:  # the first day's return is on the capital
            first = stored[0]
            returns.insert(
                0, daily_return(first.total_portfolio_value - first.daily_pnl, first.daily_pnl)
            )
        exact = [r for r in returns if r is not None]
        assert row.curve.returns == len(exact), row.label
        if len(exact) < 2:
            continue
        floats = np.array([float(r) for r in exact])
        series = ReturnSeries(min_returns=2)
        for day, daily in enumerate(exact):
            series.add(f"d{day}", daily)
        assert row.curve.max_drawdown == series.max_drawdown()
        assert row.curve.sharpe == Undefined(f"needs 30 daily returns, the period has {len(exact)}")
        theirs = {
            "sharpe_ratio": empyrical.sharpe_ratio(floats, annualization=365),
            "sortino_ratio": empyrical.sortino_ratio(floats, annualization=365),
            "volatility": empyrical.annual_volatility(floats, annualization=365) * 100,
            "cagr": empyrical.annual_return(floats, annualization=365) * 100,
            "calmar_ratio": empyrical.calmar_ratio(floats, annualization=365),
            "max_drawdown": -empyrical.max_drawdown(floats) * 100,
            "best_day": max(floats) * 100,
            "worst_day": min(floats) * 100,
        }
        for name, value in theirs.items():
            ours = getattr(series, name)()
            assert abs(float(ours) - value) <= 0.00005 + 1e-9 * abs(value), (row.label, name)


def test_round_trips_are_the_closed_positions_and_no_row_mixes_periods(
    demo: tuple[DemoResult, Recorder], store: Store
) -> None:
    rows = {(row.strategy, row.exchange): row for row in demo[0].comparison.rows}
    for (strategy, exchange), row in rows.items():
        if strategy is None:
            continue
        closed = store.positions.list(
            {"strategy": strategy, "exchange": exchange, "status": "closed"}, limit=1000
        ).items
        assert row.trades.round_trips == len(closed), row.label
        gains = sum(p.realized_pnl for p in closed if p.realized_pnl > 0)
        losses = -sum(p.realized_pnl for p in closed if p.realized_pnl < 0)
        if gains and losses:
            assert row.trades.profit_factor == (gains / losses).quantize(Decimal("0.0001"))
    # The portfolio-wide row has performance rows in January 2018 only (Binance cannot be
    # valued later): its trades are January 2018's, not Kraken's of 2023.
    everything = rows[(None, None)]
    assert (everything.first_date, everything.last_date) == ("2018-01-10", "2018-01-30")
    assert everything.fills == rows[(None, "binance")].fills
    assert "EUR" not in everything.fees


class Addresses(HTMLParser):
    """Whatever the document would load: address attributes and CSS url()s."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in ("src", "href", "srcset", "data", "poster", "action"):
                self.found.append(value)
            if value and name == "style" and "url(" in value:
                self.found.append(value)


def test_the_report_is_one_self_contained_file(demo: tuple[DemoResult, Recorder]) -> None:
    result = demo[0]
    document = result.report.read_text(encoding="utf-8")
    parser = Addresses()
    parser.feed(document)
    # plotly.js names sites in its own strings (map tiles, docs) that the charts never load.
    outside_plotly = document.replace(plotly.offline.get_plotlyjs(), "")

    assert result.report_bytes == result.report.stat().st_size > 1_000_000
    assert parser.found == []
    assert not re.search(r"https?:|//cdn", outside_plotly)
    for strategy in STRATEGIES:
        assert f"{strategy} @ binance" in document
        assert f"{strategy} @ kraken" in document


# --- the database it writes to ----------------------------------------------------------------


NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_the_default_is_a_new_file_beside_the_default_database(tmp_path: Path) -> None:
    first = default_demo_path(NOW, tmp_path)
    first.touch()

    assert first == tmp_path / "demo-20240506-070809.sqlite"
    assert default_demo_path(NOW, tmp_path) == tmp_path / "demo-20240506-070809-2.sqlite"


@pytest.mark.fault("bad input")
def test_a_database_holding_anything_else_is_refused_untouched(tmp_path: Path) -> None:
    own = tmp_path / "bot.sqlite"
    Store.open(own).close()  # a database without a single row is someone's too
    text = tmp_path / "notes.txt"
    text.write_text("not a database")
    before = {path: sha256(path) for path in (own, text)}

    for path in (own, text):
        with pytest.raises(ValidationError, match="not a database made by tradedb demo"):
            choose_database(path, NOW)
    assert {path: sha256(path) for path in before} == before


def test_an_empty_file_or_an_earlier_demo_database_is_used(
    tmp_path: Path, demo: tuple[DemoResult, Recorder]
) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    earlier = tmp_path / "earlier.sqlite"
    earlier.write_bytes(demo[0].database.read_bytes())
    Path(f"{earlier}-wal").write_bytes(b"")

    assert not choose_database(empty, NOW).replaced
    assert not empty.exists()  # so that it is created owner-only
    assert choose_database(earlier, NOW).replaced
    assert not earlier.exists()
    assert not Path(f"{earlier}-wal").exists()


# --- the command ------------------------------------------------------------------------------


def invoke(*args: str, env: dict[str, str]) -> Any:
    return CliRunner().invoke(app, ["demo", *args], env=env)


def one_line_error(result: Any) -> str:
    assert result.exit_code == USER_ERROR, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert result.stdout == ""
    assert len(lines) == 1, result.stderr
    return str(lines[0])


def test_the_command_without_arguments_leaves_the_users_databases_alone(
    tmp_path: Path,
) -> None:
    """What the README's first command does: a new database in the default folder, the
    output naming it and the report; the default database and $TRADEDB_DB untouched."""
    env = isolated_environ(tmp_path)
    data = Path(env["XDG_DATA_HOME"]) / "tradedb"
    mine = tmp_path / "mine.sqlite"
    Store.open(mine).close()
    digest = sha256(mine)

    result = invoke(env={**env, "TRADEDB_DB": str(mine)})

    assert result.exit_code == 0, result.stdout + result.stderr
    created = sorted(data.glob("demo-*.sqlite"))
    assert len(created) == 1
    report = created[0].with_name(created[0].stem + "-report.html")
    assert report.exists()
    assert not (data / "tradedb.sqlite").exists()
    assert sha256(mine) == digest
    out = result.stdout
    assert f"database: {created[0]}" in out
    assert f"report:   {report}" in out
    for step in ("Import Binance candles", "Paper-trade on Kraken", "Compare the strategies"):
        assert re.search(rf"✓ {step}.* \d+\.\d\d s ", out), out
    assert "rsi_revert" in out
    assert "sma_cross" in out
    assert "not market data" in out

    # Running it on that demo database again replaces it; --json is for programs.
    again = invoke("--db", str(created[0]), "--json", env=env)
    assert again.exit_code == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["database"] == str(created[0])
    assert summary["report"] == str(report)
    assert summary["replaced_earlier_demo"] is True
    assert [step["step"] for step in summary["steps"]] == list(STEPS)
    assert {(s["exchange"], s["quote"]) for s in summary["sessions"]} == {
        ("binance", "BTC"),
        ("kraken", "EUR"),
    }
    strategies = {(r["strategy"], r["exchange"]): r for r in summary["comparison"]}
    assert re.fullmatch(r"-?\d+\.\d{8}", strategies[("sma_cross", "kraken")]["final_equity"])
    with Store.open(created[0], readonly=True) as replaced:
        assert replaced.config.count({"config_key": DEMO_KEY}) == 1
        assert replaced.trades.count() == sum(r["fills"] for r in summary["comparison"][:4])


@pytest.mark.fault("bad input")
def test_the_command_refuses_an_existing_database_in_one_line(tmp_path: Path) -> None:
    env = isolated_environ(tmp_path)
    own = tmp_path / "bot.sqlite"
    with Store.open(own) as store:
        store.config.upsert({"config_key": "risk", "config_value": "low"})
    digest = sha256(own)

    line = one_line_error(invoke("--db", str(own), env=env))

    assert str(own) in line
    assert "not a database made by tradedb demo" in line
    assert sha256(own) == digest


@pytest.mark.fault("bad input")
def test_a_report_path_in_a_missing_folder_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    env = isolated_environ(tmp_path)
    target = tmp_path / "new.sqlite"

    line = one_line_error(
        invoke("--db", str(target), "--html", str(tmp_path / "no" / "r.html"), env=env)
    )

    assert "folder does not exist" in line
    assert not target.exists()
