"""One paper session: strategies trading stored candles, recorded in the ledger.

`plan_session(...)` checks everything a session needs that does not depend on the
database (strategies, markets, dates, capital, allocation, fees); `run_session(store,
plan)` reads the candles, splits the capital, and only when every check has passed writes:
the deposit, each strategy's capital in bot_config, then every order, fill and cancel
through the ledger, and finally the marks of the open positions. A session is identified
by a hash of its parameters; running the same session again replays it and writes
nothing new (see `recording`), and a session that is not a replay must start flat: its
strategies may hold no open position and no live order on the exchange.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from fractions import Fraction

from tradedb.errors import ValidationError
from tradedb.models.timeframes import check_timeframe, timeframe_of
from tradedb.models.values import (
    EXACT,
    check_exchange,
    check_symbol,
    format_decimal,
    market_assets,
    ms_to_datetime,
    parse_time_bound,
    to_decimal,
)
from tradedb.services.ledger import Ledger
from tradedb.services.paper import allocation as weighting
from tradedb.services.paper import candles as market
from tradedb.services.paper import funding
from tradedb.services.paper.account import Account
from tradedb.services.paper.allocation import Allocation, parse_allocation
from tradedb.services.paper.candles import Candle
from tradedb.services.paper.exchange import PaperExchange
from tradedb.services.paper.fees import FeeSchedule
from tradedb.services.paper.recording import DryRun, LedgerRecorder, Recorder
from tradedb.services.paper.strategies import STRATEGIES, AccountView, Context, History, Strategy
from tradedb.store import Store

DAY_MS = 86_400_000
PERCENT = Decimal("0.0001")
# How often (in candles) the progress callback hears of the replay.
PROGRESS_EVERY = 500
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class StrategySpec:
    """A strategy class and its checked parameters; `build` makes a fresh instance, so
    a measurement run and the session never share indicator state."""

    cls: type[Strategy]
    parameters: Mapping[str, Decimal]

    @property
    def name(self) -> str:
        return self.cls.name

    def build(self) -> Strategy:
        return self.cls(**self.parameters)


@dataclass(frozen=True)
class SessionPlan:
    exchange: str
    symbols: tuple[str, ...]
    timeframe: str
    start: int
    end: int
    capital: Decimal
    strategies: tuple[StrategySpec, ...]
    allocation: Allocation
    fees: FeeSchedule
    quote_usd: Decimal | None = None

    @property
    def quote(self) -> str:
        return market_assets(self.symbols[0])[1]

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.strategies]

    @property
    def session_id(self) -> str:
        """A hash of everything that decides what the session does, so that the same
        session always has the same id and the same order ids."""
        identity = {
            "exchange": self.exchange,
            "symbols": self.symbols,
            "timeframe": self.timeframe,
            "start": self.start,
            "end": self.end,
            "capital": format_decimal(self.capital),
            "strategies": [
                [spec.name, {k: format_decimal(v) for k, v in sorted(spec.parameters.items())}]
                for spec in self.strategies
            ],
            "allocation": self.allocation.text,
            "fees": [format_decimal(self.fees.maker), format_decimal(self.fees.taker)],
        }
        text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class StrategyResult:
    strategy: str
    parameters: Mapping[str, Decimal]
    weight: Decimal
    capital: Decimal  # in the quote currency
    capital_usd: Decimal | None  # what bot_config holds under capital.<strategy>.<exchange>
    orders: int
    fills: int
    canceled: int
    rejected: int
    fees: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    equity: Decimal  # cash plus coins at the last close, in the quote currency
    holdings: Mapping[str, Decimal]
    volatility: Decimal | None = None  # sigma measured for inverse-vol weights

    @property
    def profit(self) -> Decimal:
        return self.equity - self.capital

    @property
    def return_percent(self) -> Decimal | None:
        """Profit as a percentage of the capital, half-even at 4 decimals."""
        if not self.capital:
            return None
        ratio = Fraction(self.profit) / Fraction(self.capital) * 100
        return Decimal(round(ratio * 10_000)).scaleb(-4).quantize(PERCENT)


@dataclass(frozen=True)
class SessionResult:
    session_id: str
    exchange: str
    quote: str
    symbols: tuple[str, ...]
    timeframe: str
    start: int
    end: int
    candles: int
    allocation: str
    fees: FeeSchedule
    quote_usd: Decimal | None
    strategies: list[StrategyResult]
    # True when this session had been run before: the replay wrote nothing new.
    replayed: bool = False
    warnings: list[str] = field(default_factory=list)


def plan_session(
    *,
    strategies: Sequence[str | type[Strategy]],
    exchange: str,
    symbols: Sequence[str],
    since: object,
    until: object,
    timeframe: str = "5m",
    capital: object = 1,
    allocation: str | None = None,
    fee_rate: object = None,
    maker_fee_rate: object = None,
    quote_usd: object = None,
    parameters: Mapping[str, Mapping[str, object]] | None = None,
) -> SessionPlan:
    """Check a session's parameters; nothing here reads or writes a database.

    `strategies` are registered names (`sma_cross`) or Strategy classes; `parameters`
    maps a strategy's name to its parameters over the defaults.
    """
    specs = _strategy_specs(strategies, parameters or {})
    check_exchange(exchange)
    markets = _markets(symbols)
    check_timeframe(timeframe)
    first_ms = parse_time_bound(since, "since")
    end_ms = parse_time_bound(until, "until")
    if first_ms >= end_ms:
        raise ValidationError("until", until, f"must be after since ({since})")
    amount = to_decimal(capital, "capital")
    if amount <= 0:
        raise ValidationError("capital", capital, "must be greater than zero")
    price = None
    if quote_usd is not None:
        price = to_decimal(quote_usd, "quote_usd")
        if price <= 0:
            raise ValidationError("quote_usd", quote_usd, "must be greater than zero")
    return SessionPlan(
        exchange=exchange,
        symbols=markets,
        timeframe=timeframe,
        start=first_ms,
        end=end_ms,
        capital=amount,
        strategies=specs,
        allocation=parse_allocation(allocation, [spec.name for spec in specs]),
        fees=FeeSchedule.of(exchange, taker=fee_rate, maker=maker_fee_rate),
        quote_usd=price,
    )


def _strategy_specs(
    strategies: Sequence[str | type[Strategy]], parameters: Mapping[str, Mapping[str, object]]
) -> tuple[StrategySpec, ...]:
    if not strategies:
        raise ValidationError("strategy", "", "name at least one strategy")
    specs: list[StrategySpec] = []
    for given in strategies:
        cls = given if isinstance(given, type) else STRATEGIES.get(given.strip())
        if cls is None:
            known = ", ".join(sorted(STRATEGIES))
            raise ValidationError("strategy", given, f"is not a paper strategy (known: {known})")
        if any(spec.name == cls.name for spec in specs):
            raise ValidationError("strategy", cls.name, "is named twice; each runs once")
        # Building one checks the parameters now, before anything is read or written.
        checked = cls(**dict(parameters.get(cls.name, {})))
        specs.append(StrategySpec(cls, dict(checked.parameters)))
    unused = sorted(set(parameters) - {spec.name for spec in specs})
    if unused:
        raise ValidationError("parameters", unused[0], "names no strategy of this session")
    return tuple(specs)


def _markets(symbols: Sequence[str]) -> tuple[str, ...]:
    markets = tuple(check_symbol(symbol.strip(), "symbols") for symbol in symbols)
    if not markets:
        raise ValidationError("symbols", "", "name at least one market, e.g. ETH/BTC")
    if len(set(markets)) != len(markets):
        raise ValidationError("symbols", ",".join(markets), "names a market twice")
    quotes = sorted({market_assets(symbol)[1] for symbol in markets})
    if len(quotes) > 1:
        raise ValidationError(
            "symbols",
            ",".join(markets),
            f"mixes quote currencies ({', '.join(quotes)}); the capital is deposited in one, "
            "so a session trades markets of one quote currency",
        )
    return markets


# --- running ------------------------------------------------------------------------------


def run_session(
    store: Store, plan: SessionPlan, *, progress: Progress | None = None
) -> SessionResult:
    """Run the session over the stored candles and record it in the ledger."""
    with localcontext(EXACT):
        return _run(store, plan, progress)


def _run(store: Store, plan: SessionPlan, progress: Progress | None) -> SessionResult:
    series = _session_candles(store, plan)
    volatilities: dict[str, Decimal] = {}
    if plan.allocation.kind == "fixed":
        weights = dict(zip(plan.names, plan.allocation.weights, strict=True))
    elif plan.allocation.kind == "inverse-vol":
        volatilities = measure_volatility(store, plan)
        weights = weighting.inverse_volatility_weights(volatilities)
    else:
        weights = weighting.equal_weights(plan.names)
    capital = weighting.split_capital(plan.capital, weights)
    session_id = plan.session_id
    replayed = funding.already_funded(store, plan.exchange, session_id)
    if not replayed:
        _check_flat(store, plan)
    price = funding.quote_usd_price(store, plan.quote, plan.start, plan.quote_usd)
    warnings = []
    if price is None:
        warnings.append(
            f"no USD price for {plan.quote} at the session's start (give `quote_usd=PRICE` "
            f"or store a reference price: `tradedb reference-price set {plan.quote} PRICE "
            "--since ... --until ... --source ...`): strategies' capital not recorded in "
            "bot_config"
        )

    # Every check has passed: from here on the session writes.
    ledger = Ledger(store)
    funding.fund(
        ledger,
        exchange=plan.exchange,
        asset=plan.quote,
        amount=plan.capital,
        at=plan.start,
        session_id=session_id,
    )
    capital_usd: dict[str, Decimal | None] = dict.fromkeys(plan.names)
    if price is not None:
        for name in plan.names:
            capital_usd[name] = funding.record_capital(
                store,
                strategy=name,
                exchange=plan.exchange,
                capital=capital[name],
                quote=plan.quote,
                quote_usd=price,
                session_id=session_id,
            )
    accounts = {name: Account.funded(name, capital[name]) for name in plan.names}
    marks, ended = replay(
        plan,
        series,
        accounts,
        LedgerRecorder(store, ledger, plan.exchange),
        session_id=session_id,
        progress=progress,
    )
    ledger.mark_to_market(
        {(plan.exchange, symbol): mark for symbol, mark in marks.items()}, timestamp=ended
    )
    return SessionResult(
        session_id=session_id,
        exchange=plan.exchange,
        quote=plan.quote,
        symbols=plan.symbols,
        timeframe=plan.timeframe,
        start=plan.start,
        end=plan.end,
        candles=sum(len(candles) for candles in series.values()),
        allocation=plan.allocation.text,
        fees=plan.fees,
        quote_usd=price,
        strategies=[
            _result(
                spec,
                weight=weights[spec.name],
                account=accounts[spec.name],
                marks=marks,
                capital_usd=capital_usd[spec.name],
                volatility=volatilities.get(spec.name),
            )
            for spec in plan.strategies
        ],
        replayed=replayed,
        warnings=warnings,
    )


def _session_candles(store: Store, plan: SessionPlan) -> dict[str, list[Candle]]:
    series = market.load(
        store, plan.exchange, plan.symbols, plan.timeframe, since=plan.start, until=plan.end
    )
    empty = [symbol for symbol, candles in series.items() if not candles]
    if empty:
        raise ValidationError(
            "since",
            _moment(plan.start),
            f"no {plan.timeframe} candles of {', '.join(empty)} on {plan.exchange} from "
            f"{_moment(plan.start)} to {_moment(plan.end)} UTC; `tradedb list-data` shows "
            "what is stored",
        )
    return series


def _check_flat(store: Store, plan: SessionPlan) -> None:
    for name in plan.names:
        where = {"exchange": plan.exchange, "strategy": name}
        positions = store.positions.count({**where, "status": "open"})
        orders = store.orders.count({**where, "status": ["pending", "open"]})
        if positions or orders:
            raise ValidationError(
                "strategy",
                name,
                f"already has {positions} open positions and {orders} live orders on "
                f"{plan.exchange} (an earlier paper session, or live trading); a paper "
                "session starts flat, so run it in a database of its own",
            )


def replay(
    plan: SessionPlan,
    series: Mapping[str, Sequence[Candle]],
    accounts: Mapping[str, Account],
    recorder: Recorder,
    *,
    session_id: str,
    progress: Progress | None = None,
    on_time: Callable[[int, Mapping[str, Decimal]], None] | None = None,
) -> tuple[dict[str, Decimal], int]:
    """Feed the candles in time order: the exchange first fills what each candle reaches,
    then every strategy sees the candle and acts. Returns the last close of each market
    and the time the session ended (when its live orders were canceled).

    `on_time(t, marks)` is called once all candles of time t have been handled."""
    frame = timeframe_of(plan.timeframe)
    strategies = {spec.name: spec.build() for spec in plan.strategies if spec.name in accounts}
    exchange = PaperExchange(
        session_id=session_id,
        timeframe=frame,
        fees=plan.fees,
        accounts=accounts,
        recorder=recorder,
        symbols=plan.symbols,
    )
    history = History(plan.symbols)
    views = {
        name: AccountView(accounts[name], plan.symbols, exchange.live_orders) for name in strategies
    }
    total = sum(len(candles) for candles in series.values())
    marks: dict[str, Decimal] = {}
    current: int | None = None
    done = 0
    try:
        for candle in market.in_time_order(series):
            if current is not None and candle.timestamp != current:
                recorder.commit()
                if on_time is not None:
                    on_time(current, marks)
            current = candle.timestamp
            exchange.match(candle)
            history.append(candle)
            marks[candle.symbol] = candle.close
            now = frame.end(candle.timestamp)
            for name, strategy in strategies.items():
                actions = strategy.on_candle(Context(candle, now, history, views[name]))
                if actions:
                    exchange.submit(name, actions, now)
            done += 1
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, total)
        if on_time is not None and current is not None:
            on_time(current, marks)
        ended = plan.end if current is None else min(plan.end, frame.end(current))
        exchange.close(ended)
        recorder.commit()
    except BaseException as error:
        recorder.rollback(error)
        raise
    if progress is not None:
        progress(done, total)
    return marks, ended


def measure_volatility(store: Store, plan: SessionPlan) -> dict[str, Decimal]:
    """Sigma of each strategy's equity returns over the lookback window before the session
    (see `allocation`), each strategy run alone from the whole capital, recording nothing."""
    lookback = plan.allocation.lookback_days * DAY_MS
    since = plan.start - lookback
    series = market.load(
        store, plan.exchange, plan.symbols, plan.timeframe, since=since, until=plan.start
    )
    short = [symbol for symbol, candles in series.items() if len(candles) < 3]
    if short:
        raise ValidationError(
            "allocation",
            plan.allocation.text,
            f"needs {plan.timeframe} candles of {', '.join(short)} on {plan.exchange} in the "
            f"{plan.allocation.lookback_days} days before since ({_moment(since)} to "
            f"{_moment(plan.start)} UTC) to measure volatility; start later, shorten the "
            "lookback (inverse-vol:1d) or use fixed weights",
        )
    accounts = {name: Account.funded(name, plan.capital) for name in plan.names}
    equity: dict[str, list[Decimal]] = {name: [] for name in plan.names}

    def sample(_time: int, marks: Mapping[str, Decimal]) -> None:
        for name, account in accounts.items():
            equity[name].append(account.equity(dict(marks)))

    replay(plan, series, accounts, DryRun(), session_id="lookback", on_time=sample)
    return {name: weighting.volatility(values) for name, values in equity.items()}


def _result(
    spec: StrategySpec,
    *,
    weight: Decimal,
    account: Account,
    marks: Mapping[str, Decimal],
    capital_usd: Decimal | None,
    volatility: Decimal | None,
) -> StrategyResult:
    prices = dict(marks)
    activity = account.activity
    return StrategyResult(
        strategy=spec.name,
        parameters=spec.parameters,
        weight=weight,
        capital=account.capital,
        capital_usd=capital_usd,
        orders=activity.orders,
        fills=activity.fills,
        canceled=activity.canceled,
        rejected=activity.rejected,
        fees=activity.fees,
        realized_pnl=activity.realized_pnl,
        unrealized_pnl=account.unrealized_pnl(prices),
        equity=account.equity(prices),
        holdings={s: account.holding(s) for s in sorted(account.coins) if account.holding(s)},
        volatility=volatility,
    )


def _moment(millis: int) -> str:
    return ms_to_datetime(millis).strftime("%Y-%m-%d %H:%M")
