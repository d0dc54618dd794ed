"""Daily performance metrics: equity curves, P&L net of funding, trade counts, Sharpe
ratio and maximum drawdown, checked against a hand-computed example and against
empyrical on the same returns."""

from __future__ import annotations

import json
import math
import statistics
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import empyrical
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tradedb.cli.app import app
from tradedb.services.analytics.figures import ReturnSeries, Undefined
from tradedb.services.analytics.metrics import compute_metrics
from tradedb.services.analytics.round_trips import RoundTrip, trade_figures
from tradedb.services.analytics.valuation import Valuer
from tradedb.services.ledger import Ledger
from tradedb.store import Store

HOUR = 3_600_000


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def close_day(store: Store, day: str, price: str) -> None:
    """A BTC/USD ticker at 23:00 of `day`: the price at the end of that day."""
    store.write_tickers(
        [{"symbol": "BTC/USD", "last_price": price, "timestamp": ms(f"{day}T23:00:00")}],
        exchange="kraken",
    )


class Trader:
    """Market orders filled at once, through the ledger."""

    def __init__(self, store: Store, strategy: str | None = "trend") -> None:
        self.ledger = Ledger(store)
        self.strategy = strategy
        self.count = 0

    def trade(self, side: str, amount: str, price: str, fee: str, at: int, **kw: Any) -> None:
        self.count += 1
        order_id = f"{self.strategy}-{self.count}"
        self.ledger.place_order(
            exchange="kraken", order_id=order_id, symbol=kw.get("symbol", "BTC/USD"),
            side=side, order_type="market", amount=amount, strategy=self.strategy,
            timestamp=at - 1,
        )  # fmt: skip
        self.ledger.record_fill(
            exchange="kraken", order_id=order_id, exchange_trade_id=f"F-{order_id}",
            amount=amount, price=price, fee=fee, fee_currency=kw.get("fee_currency"),
            timestamp=at,
        )  # fmt: skip


def set_capital(store: Store, strategy: str, exchange: str, usd: str) -> None:
    store.config.upsert(
        {
            "config_key": f"capital.{strategy}.{exchange}",
            "config_value": usd,
            "config_type": "number",
        }
    )


@pytest.fixture
def example(store: Store) -> Store:
    """Four days on kraken, all in USD (the hand-computed example of docs/metrics.md):

    day 1: deposit 10000 USD; 'trend' (capital 10000) buys 0.1 BTC at 50000, fee 5;
           BTC closes at 51000
    day 2: BTC closes at 49000
    day 3: sells 0.1 BTC at 52000, fee 5.2 (P&L 189.8); closes at 53000
    day 4: deposit 1000 USD; buys 0.05 BTC at 53000, fee 2.65; closes at 52000
    """
    set_capital(store, "trend", "kraken", "10000")
    trader = Trader(store)
    trader.ledger.deposit(
        exchange="kraken", asset="USD", amount="10000", timestamp=ms("2024-03-01T09:00:00")
    )
    trader.trade("buy", "0.1", "50000", "5", ms("2024-03-01T10:00:00"))
    trader.trade("sell", "0.1", "52000", "5.2", ms("2024-03-03T12:00:00"))
    trader.ledger.deposit(
        exchange="kraken", asset="USD", amount="1000", timestamp=ms("2024-03-04T08:00:00")
    )
    trader.trade("buy", "0.05", "53000", "2.65", ms("2024-03-04T10:00:00"))
    for day, price in (("01", "51000"), ("02", "49000"), ("03", "53000"), ("04", "52000")):
        close_day(store, f"2024-03-{day}", price)
    return store


def rows_by_scope(store: Store) -> dict[tuple[str | None, str | None], list[Any]]:
    scopes: dict[tuple[str | None, str | None], list[Any]] = {}
    for row in store.performance.list(limit=1000).items:
        scopes.setdefault((row.strategy, row.exchange), []).append(row)
    return scopes


def pct(numerator: str, denominator: str) -> Decimal:
    exact = Fraction(Decimal(numerator)) / Fraction(Decimal(denominator)) * 100
    return Decimal(round(exact * 10_000)).scaleb(-4)


def test_hand_computed_portfolio_and_strategy_curves(example: Store) -> None:
    result = compute_metrics(example, None, None, Valuer(example))
    assert result.skipped == []
    assert result.without_capital == []
    scopes = rows_by_scope(example)
    assert set(scopes) == {(None, None), (None, "kraken"), ("trend", "kraken")}
    dates = ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]

    portfolio = scopes[(None, "kraken")]
    assert [r.date for r in portfolio] == dates
    assert [r.total_portfolio_value for r in portfolio] == [
        Decimal(v) for v in ("10095", "9895", "10189.8", "11137.15")
    ]
    # deposits are not profit: day 1 is 10095 - 10000, day 4 is 11137.15 - 10189.8 - 1000
    assert [r.daily_pnl for r in portfolio] == [
        Decimal(v) for v in ("95", "-200", "294.8", "-52.65")
    ]
    assert [r.daily_pnl_percent for r in portfolio] == [
        None,
        pct("-200", "10095"),
        pct("294.8", "9895"),
        pct("-52.65", "10189.8"),
    ]
    assert [r.total_trades for r in portfolio] == [0, 0, 1, 1]
    assert [r.winning_trades for r in portfolio] == [0, 0, 1, 1]
    assert [r.win_rate for r in portfolio] == [None, None, Decimal(100), Decimal(100)]
    # a drawdown is a fact from the first return on (day 1 has none: it began with nothing)
    assert [r.max_drawdown for r in portfolio] == [None, *[Decimal("1.9812")] * 3]
    assert portfolio[1].sharpe_ratio is None  # one return is not enough
    # the all-exchanges rows are the sum over exchanges: here, kraken's
    everything = scopes[(None, None)]
    assert [(r.total_portfolio_value, r.daily_pnl) for r in everything] == [
        (r.total_portfolio_value, r.daily_pnl) for r in portfolio
    ]

    trend = scopes[("trend", "kraken")]
    # capital + realised + unrealised: 10000 + 95 (0.1 x 1000 - 5), 10000 - 105,
    # 10000 + 189.8, 10000 + 189.8 - 52.65 (0.05 x -1000 - 2.65)
    assert [r.total_portfolio_value for r in trend] == [
        Decimal(v) for v in ("10095", "9895", "10189.8", "10137.15")
    ]
    assert [r.daily_pnl for r in trend] == [Decimal(v) for v in ("95", "-200", "294.8", "-52.65")]
    assert trend[0].daily_pnl_percent == Decimal("0.95")  # of the capital
    returns = [
        Fraction(95, 10000),
        Fraction(Decimal(-200)) / 10095,
        Fraction(Decimal("294.8")) / 9895,
        Fraction(Decimal("-52.65")) / Fraction(Decimal("10189.8")),
    ]
    # Four days are far fewer than a Sharpe ratio needs (MIN_RETURNS): it stays NULL.
    assert [row.sharpe_ratio for row in trend] == [None] * 4
    series = ReturnSeries(min_returns=2)
    for day, (row, daily) in enumerate(zip(trend, returns, strict=True)):
        series.add(row.date, daily)
        if day:
            expected = statistics.mean(returns[: day + 1]) / statistics.stdev(returns[: day + 1])
            exact = float(expected) * math.sqrt(365)
            assert series.sharpe_ratio() == Decimal(exact).quantize(Decimal("0.0001"))
    assert trend[-1].max_drawdown == Decimal("1.9812")


def test_stored_statistics_match_empyrical_on_the_same_returns(example: Store) -> None:
    compute_metrics(example, None, None, Valuer(example))
    trend = rows_by_scope(example)[("trend", "kraken")]
    returns = np.array(
        [float(Fraction(r.daily_pnl) / Fraction(prev)) for r, prev in zip(
            trend, [Decimal(10000)] + [r.total_portfolio_value for r in trend], strict=False
        )]
    )  # fmt: skip
    last = trend[-1]
    assert abs(last.max_drawdown - Decimal(-empyrical.max_drawdown(returns) * 100)) < Decimal(
        "0.00005"
    )


def test_recomputing_changes_nothing_and_any_range_gives_the_same_rows(example: Store) -> None:
    compute_metrics(example, None, None, Valuer(example))
    before = [row.model_dump() for row in example.performance.list(limit=1000).items]
    again = compute_metrics(example, "2024-03-03", "2024-03-03", Valuer(example))
    assert {row.date for row in again.rows} == {"2024-03-03"}
    assert [row.model_dump() for row in example.performance.list(limit=1000).items] == before
    compute_metrics(example, None, None, Valuer(example))
    assert [row.model_dump() for row in example.performance.list(limit=1000).items] == before


def test_withdrawals_are_not_losses(store: Store) -> None:
    ledger = Ledger(store)
    ledger.deposit(
        exchange="kraken", asset="USD", amount="1000", timestamp=ms("2024-03-01T09:00:00")
    )
    ledger.withdraw(
        exchange="kraken", asset="USD", amount="400", timestamp=ms("2024-03-02T09:00:00")
    )
    compute_metrics(store, None, None, Valuer(store))
    rows = rows_by_scope(store)[(None, "kraken")]
    assert [(r.total_portfolio_value, r.daily_pnl) for r in rows] == [
        (Decimal(1000), Decimal(0)),
        (Decimal(600), Decimal(0)),
    ]
    assert rows[1].daily_pnl_percent == Decimal(0)


def test_win_rate_leaves_out_trades_that_broke_even(store: Store) -> None:
    set_capital(store, "scalp", "kraken", "1000")
    trader = Trader(store, strategy="scalp")
    trader.ledger.deposit(
        exchange="kraken", asset="USD", amount="1000", timestamp=ms("2024-03-01T00:00:00")
    )
    for n, (buy, sell) in enumerate((("100", "100"), ("100", "110"), ("100", "90"), ("100", "95"))):
        trader.trade("buy", "1", buy, "0", ms("2024-03-01T01:00:00") + 2 * n * HOUR)
        trader.trade("sell", "1", sell, "0", ms("2024-03-01T02:00:00") + 2 * n * HOUR)
    compute_metrics(store, None, None, Valuer(store))
    (row,) = rows_by_scope(store)[("scalp", "kraken")]
    assert (row.total_trades, row.winning_trades, row.losing_trades) == (4, 1, 2)
    assert row.win_rate == Decimal("33.3333")


def test_trade_counts_are_cumulative_from_the_first_day(store: Store) -> None:
    set_capital(store, "scalp", "kraken", "1000")
    trader = Trader(store, strategy="scalp")
    trader.ledger.deposit(
        exchange="kraken", asset="USD", amount="1000", timestamp=ms("2024-03-01T00:00:00")
    )
    trader.trade("buy", "1", "100", "0", ms("2024-03-01T01:00:00"))
    trader.trade("sell", "1", "110", "0", ms("2024-03-01T02:00:00"))
    trader.trade("buy", "1", "100", "0", ms("2024-03-02T01:00:00"))
    trader.trade("sell", "1", "90", "0", ms("2024-03-02T02:00:00"))
    compute_metrics(store, None, None, Valuer(store))
    rows = rows_by_scope(store)[("scalp", "kraken")]
    assert [(r.total_trades, r.winning_trades, r.losing_trades) for r in rows] == [
        (1, 1, 0),
        (2, 1, 1),
    ]
    assert [r.win_rate for r in rows] == [Decimal(100), Decimal(50)]


def test_strategy_equity_equals_the_ledgers_positions_marked_at_the_same_price(
    store: Store,
) -> None:
    """The equity curve replays fills by the ledger's rules (fees in base currency, a
    flip from long to short); on the last day it must agree with the ledger's own
    positions marked at the day's closing price."""
    set_capital(store, "flip", "kraken", "100000")
    trader = Trader(store, strategy="flip")
    trader.ledger.deposit(
        exchange="kraken", asset="USD", amount="100000", timestamp=ms("2024-03-01T00:00:00")
    )
    trader.ledger.deposit(
        exchange="kraken", asset="BTC", amount="1", timestamp=ms("2024-03-01T00:00:00")
    )
    trader.trade("buy", "0.5", "50000", "0.0005", ms("2024-03-01T01:00:00"), fee_currency="BTC")
    trader.trade("buy", "0.25", "51000", "12.75", ms("2024-03-01T02:00:00"))
    trader.trade("sell", "1.0", "52000", "0.001", ms("2024-03-02T01:00:00"), fee_currency="BTC")
    trader.trade("buy", "0.1", "51500", "5", ms("2024-03-02T02:00:00"))
    close_day(store, "2024-03-01", "50500")
    close_day(store, "2024-03-02", "51234.5")
    trader.ledger.mark_to_market({"BTC/USD": "51234.5"})
    positions = store.positions.list({"strategy": "flip"}).items
    expected = Decimal(100000) + sum(
        (p.realized_pnl or 0) + (p.unrealized_pnl or 0)
        if p.status == "open"
        else p.realized_pnl or 0
        for p in positions
    )
    assert any(p.side == "short" and p.status == "open" for p in positions)
    compute_metrics(store, None, None, Valuer(store))
    last = rows_by_scope(store)[("flip", "kraken")][-1]
    assert last.total_portfolio_value == expected


def test_pnl_in_another_quote_is_converted_at_the_end_of_the_day(store: Store) -> None:
    set_capital(store, "alt", "kraken", "27000")  # 2 BTC at 13500
    trader = Trader(store, strategy="alt")
    trader.ledger.deposit(
        exchange="kraken", asset="BTC", amount="2", timestamp=ms("2024-03-01T00:00:00")
    )
    trader.trade("buy", "10", "0.1", "0.001", ms("2024-03-01T01:00:00"), symbol="ETH/BTC")
    store.write_tickers(
        [{"symbol": "ETH/BTC", "last_price": "0.11", "timestamp": ms("2024-03-01T23:00:00")}],
        exchange="kraken",
    )
    compute_metrics(store, None, None, Valuer(store, {"BTC": "13500"}))
    (row,) = rows_by_scope(store)[("alt", "kraken")]
    # unrealised 10 x 0.01 - 0.001 = 0.099 BTC, at 13500 USD
    assert row.total_portfolio_value == Decimal("27000") + Decimal("0.099") * 13500


def test_a_scope_that_cannot_be_valued_gets_no_rows_and_is_reported(store: Store) -> None:
    trader = Trader(store, strategy="alt")
    trader.ledger.deposit(
        exchange="kraken", asset="BTC", amount="2", timestamp=ms("2024-03-01T00:00:00")
    )
    trader.trade("buy", "10", "0.1", "0", ms("2024-03-01T01:00:00"), symbol="ETH/BTC")
    result = compute_metrics(store, None, None, Valuer(store))
    assert result.rows == []
    assert {(s.scope.strategy, s.scope.exchange) for s in result.skipped} == {
        (None, "kraken"), (None, None), ("alt", "kraken")
    }  # fmt: skip
    assert all("no USD price" in s.reason for s in result.skipped)
    assert [(s.strategy, s.exchange) for s in result.without_capital] == [("alt", "kraken")]


# --- the statistics against empyrical ----------------------------------------------------------

RETURNS = st.lists(
    st.decimals(min_value=Decimal("-0.5"), max_value=Decimal("0.5"), places=10),
    min_size=0,
    max_size=60,
)


def _close(ours: Decimal | Undefined, theirs: float, scale: float = 1.0) -> bool:
    """Ours, at 4 decimals, is theirs rounded (allowing for float noise in theirs); a
    figure past DECIMAL(10,4) is "too large to show"."""
    if ours == Undefined("too large to show"):
        return abs(theirs * scale) >= 999_999.9999
    assert isinstance(ours, Decimal), ours
    return abs(float(ours) - theirs * scale) <= 0.00005 + 1e-9 * abs(theirs * scale)


@settings(max_examples=200, deadline=None)
@given(RETURNS, st.sampled_from([0.0, 0.04]))
def test_every_curve_figure_agrees_with_empyrical(
    returns: list[Decimal], risk_free_rate: float
) -> None:
    series = ReturnSeries(risk_free_rate, min_returns=2)
    for day, daily in enumerate(returns):
        series.add(f"2024-{1 + day // 28:02}-{1 + day % 28:02}", daily)
    floats = np.array([float(r) for r in returns])
    daily_rf = (1 + risk_free_rate) ** (1 / 365) - 1
    if len(returns) < 2:
        assert isinstance(series.sharpe_ratio(), Undefined)
        assert isinstance(series.cagr(), Undefined)
    else:
        if len(set(returns)) > 1:
            sharpe = empyrical.sharpe_ratio(floats, risk_free=daily_rf, annualization=365)
            assert _close(series.sharpe_ratio(), sharpe)
            volatility = empyrical.annual_volatility(floats, annualization=365)
            assert _close(series.volatility(), volatility, 100)
        if any(r - daily_rf < 0 for r in floats):
            sortino = empyrical.sortino_ratio(floats, required_return=daily_rf, annualization=365)
            assert _close(series.sortino_ratio(), sortino)
        assert _close(series.cagr(), empyrical.annual_return(floats, annualization=365), 100)
        drawdown = empyrical.max_drawdown(floats)
        if drawdown < -1e-6:  # below that, float noise in theirs moves the ratio
            calmar = empyrical.calmar_ratio(floats, annualization=365)
            assert _close(series.calmar_ratio(), calmar)
    if returns:
        assert _close(series.max_drawdown(), -empyrical.max_drawdown(floats), 100)
        assert _close(series.best_day(), float(max(returns)), 100)
        assert _close(series.worst_day(), float(min(returns)), 100)
        assert _close(series.total_return(), empyrical.cum_returns_final(floats), 100)


def test_annualised_figures_need_a_month_of_daily_returns() -> None:
    series = ReturnSeries()
    for day in range(29):
        series.add(f"2024-03-{day + 1:02}", Fraction((-1) ** day, 100))
    for figure in (series.sharpe_ratio(), series.sortino_ratio(), series.cagr()):
        assert figure == Undefined("needs 30 daily returns, the period has 29")
    assert isinstance(series.max_drawdown(), Decimal)  # a fact, not an estimate: always given
    series.add("2024-03-30", Fraction(1, 100))
    assert isinstance(series.sharpe_ratio(), Decimal)


# --- the command -------------------------------------------------------------------------------


def test_metrics_command_prints_json_with_fixed_point_values(
    example: Store, db_target: str
) -> None:
    result = CliRunner().invoke(
        app, ["metrics", "--db", db_target, "--json", "--since", "2024-03-04"]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["skipped"] == []
    trend = [r for r in data["rows"] if r["strategy"] == "trend"]
    assert [(r["date"], r["total_portfolio_value"], r["daily_pnl"]) for r in trend] == [
        ("2024-03-04", "10137.15000000", "-52.65000000")
    ]
    assert trend[0]["max_drawdown"] == "1.9812"


def test_metrics_command_exits_1_naming_what_it_could_not_value(
    store: Store, db_target: str
) -> None:
    Ledger(store).deposit(
        exchange="kraken", asset="DOGE", amount="5", timestamp=ms("2024-03-01T00:00:00")
    )
    result = CliRunner().invoke(app, ["metrics", "--db", db_target])
    assert result.exit_code == 1
    assert "DOGE" in result.stderr
    assert "--reference-price DOGE=" in result.stderr
    ok = CliRunner().invoke(app, ["metrics", "--db", db_target, "--reference-price", "DOGE=0.1"])
    assert ok.exit_code == 0, ok.stderr
    assert store.performance.count() == 2


def test_fees_paid_in_a_third_currency_are_valued_and_taken_off(store: Store) -> None:
    set_capital(store, "bnb", "kraken", "1000")
    trader = Trader(store, strategy="bnb")
    start = ms("2024-03-01T00:00:00")
    trader.ledger.deposit(exchange="kraken", asset="USD", amount="1000", timestamp=start)
    trader.ledger.deposit(exchange="kraken", asset="BNB", amount="1", timestamp=start)
    trader.trade("buy", "1", "100", "0.01", start + HOUR, fee_currency="BNB")
    trader.trade("sell", "1", "100", "0.01", start + 2 * HOUR, fee_currency="BNB")
    store.write_tickers(
        [{"symbol": "BNB/USD", "last_price": "400", "timestamp": ms("2024-03-01T23:00:00")}],
        exchange="kraken",
    )
    compute_metrics(store, None, None, Valuer(store))
    (row,) = rows_by_scope(store)[("bnb", "kraken")]
    # the round trip broke even before fees; 0.02 BNB at 400 USD were paid
    assert row.total_portfolio_value == Decimal(1000) - Decimal("0.02") * 400
    assert (row.total_trades, row.winning_trades, row.losing_trades) == (1, 0, 0)


# --- the round trips' figures --------------------------------------------------------------


def _trip(symbol: str, opened: int, closed: int, pnl: str) -> RoundTrip:
    return RoundTrip("s", "kraken", symbol, "long", opened, closed, Decimal(100), Decimal(pnl))


def test_round_trip_figures_are_those_of_their_p_and_l() -> None:
    trips = [
        _trip("BTC/USD", 0, 10, "30"),
        _trip("BTC/USD", 5, 20, "-10"),
        _trip("ETH/USD", 40, 50, "-5"),
        _trip("ETH/USD", 60, 70, "0"),
    ]
    spans = [(t.opened_at, t.closed_at) for t in trips]
    figures = trade_figures(trips, spans, (0, 100))

    assert (figures.round_trips, figures.wins, figures.losses) == (4, 1, 2)
    assert figures.win_rate == Decimal("33.3333")  # the break-even one is neither
    assert figures.profit_factor == Decimal(2)  # 30 / (10 + 5)
    assert figures.expectancy == Decimal("3.75")  # (30 - 10 - 5 + 0) / 4
    assert (figures.average_win, figures.average_loss) == (Decimal(30), Decimal("-7.5"))
    assert figures.average_duration_ms == (10 + 15 + 10 + 10) // 4
    # Open 0-20 (two overlapping trips count once), 40-50 and 60-70: 40 of 100 ms.
    assert figures.exposure == Decimal(40)
    assert trips[0].return_percent == Decimal(30)


def test_round_trips_in_several_currencies_give_no_money_figures() -> None:
    trips = [_trip("BTC/USD", 0, 10, "30"), _trip("BCH/EUR", 20, 30, "-10")]
    figures = trade_figures(trips, [], (0, 100))

    several = Undefined("the round trips are in several currencies (EUR, USD)")
    assert (figures.profit_factor, figures.expectancy, figures.average_win) == (several,) * 3
    assert figures.win_rate == Decimal(50)  # a count needs no common currency
    assert figures.currency is None
    assert figures.exposure == Decimal(0)
