"""bot_config: typed settings, per-strategy keys, is_active, and secrets refused.

Each rule a user relies on is checked through the service, and the command's behaviour
(output, --json, one-line errors with exit status 2) through typer's runner.
"""

from __future__ import annotations

import json
import random
import string
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tradedb.cli.app import app
from tradedb.errors import UnknownRecord, ValidationError
from tradedb.services.analytics.metrics import CAPITAL_KEY, _capitals
from tradedb.services.ops import config as bot_config
from tradedb.store import Store
from tradedb.store.analytics import AnalyticsRecords

USER_ERROR = 2
runner = CliRunner()


# --- types -------------------------------------------------------------------------------


def test_a_number_is_an_exact_decimal_stored_as_fixed_point(store: Store) -> None:
    entry = bot_config.set_value(store, "risk.max_fraction", "1E-8", config_type="number")
    assert entry.text == "0.00000001"
    assert entry.value == Decimal("0.00000001")
    assert isinstance(entry.value, Decimal)
    assert bot_config.value(store, "risk.max_fraction") == Decimal("0.00000001")


@pytest.mark.parametrize(
    ("text", "rule"),
    [("abc", "not a decimal"), ("0.000000001", "more than 8 decimal"), ("NaN", "NaN")],
)
@pytest.mark.fault("bad input")
def test_a_number_that_is_not_exact_at_8_decimals_is_refused(
    store: Store, text: str, rule: str
) -> None:
    with pytest.raises(ValidationError, match=rule):
        bot_config.set_value(store, "n", text, config_type="number")
    assert bot_config.entries(store, include_inactive=True) == []


@pytest.mark.parametrize(
    ("text", "stored"),
    [("true", "true"), ("Yes", "true"), ("on", "true"), ("1", "true"), ("FALSE", "false"),
     ("no", "false"), ("off", "false"), ("0", "false")],
)  # fmt: skip
def test_booleans_accept_the_usual_words(store: Store, text: str, stored: str) -> None:
    entry = bot_config.set_value(store, "flag", text, config_type="boolean")
    assert (entry.text, entry.value) == (stored, stored == "true")


def test_a_boolean_must_be_one_of_the_words(store: Store) -> None:
    with pytest.raises(ValidationError, match="a boolean is true or false"):
        bot_config.set_value(store, "flag", "maybe", config_type="boolean")


def test_json_is_checked_and_read_back_with_exact_numbers(store: Store) -> None:
    entry = bot_config.set_value(
        store, "pairs", '{"BTC/EUR": 0.1, "list": [1, 2]}', config_type="json"
    )
    assert entry.value == {"BTC/EUR": Decimal("0.1"), "list": [1, 2]}
    for bad in ("{not json", "NaN", "[1, Infinity]"):
        with pytest.raises(ValidationError, match="not valid JSON"):
            bot_config.set_value(store, "pairs", bad, config_type="json")
    assert bot_config.get(store, "pairs").text == '{"BTC/EUR": 0.1, "list": [1, 2]}'


def test_python_values_choose_their_type_for_a_new_key(store: Store) -> None:
    assert bot_config.set_value(store, "a", Decimal("2.5")).config_type == "number"
    assert bot_config.set_value(store, "b", True).config_type == "boolean"
    assert bot_config.set_value(store, "c", {"x": [1]}).config_type == "json"
    assert bot_config.set_value(store, "d", "text").config_type == "string"


def test_a_key_keeps_its_type_when_changed(store: Store) -> None:
    bot_config.set_value(store, "period", "14", config_type="number")
    with pytest.raises(ValidationError):
        bot_config.set_value(store, "period", "fourteen")
    assert bot_config.set_value(store, "period", "21").value == Decimal(21)


@pytest.mark.fault("bad input")
def test_an_unknown_type_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match="config_type"):
        bot_config.set_value(store, "k", "v", config_type="float")


@given(st.decimals(min_value=-(10**11), max_value=10**11, places=8, allow_nan=False))
def test_any_amount_round_trips_exactly(shared_store: Store, number: Decimal) -> None:
    entry = bot_config.set_value(shared_store, "x", number, config_type="number")
    assert entry.value == number
    assert "E" not in entry.text


# --- keys, strategies, is_active --------------------------------------------------------


def test_strategy_settings_live_under_strategy_name_key(store: Store) -> None:
    entry = bot_config.set_value(store, "period", "14", config_type="number", strategy="sma")
    assert (entry.key, entry.strategy) == ("strategy.sma.period", "sma")
    assert bot_config.value(store, "period", strategy="sma") == Decimal(14)
    bot_config.set_value(store, "strategy.rsi.period", "7", config_type="number")
    assert bot_config.get(store, "strategy.rsi.period").strategy == "rsi"


def test_listing_by_strategy_includes_its_capital(store: Store) -> None:
    bot_config.set_value(store, "period", "14", config_type="number", strategy="sma")
    bot_config.set_value(store, "capital.sma.kraken", "1000", config_type="number")
    bot_config.set_value(store, "capital.rsi.kraken", "500", config_type="number")
    keys = [entry.key for entry in bot_config.entries(store, strategy="sma")]
    assert keys == ["capital.sma.kraken", "strategy.sma.period"]
    assert [e.key for e in bot_config.entries(store, prefix="capital.")] == [
        "capital.rsi.kraken",
        "capital.sma.kraken",
    ]


def capital_by_scope(store: Store) -> dict[tuple[str, str], Decimal]:
    """The capitals the daily metrics use, read as they read them."""
    return _capitals(AnalyticsRecords.of(store).config_values(CAPITAL_KEY))


def test_capital_set_here_is_what_analytics_reads(store: Store) -> None:
    bot_config.set_value(store, "capital.sma.kraken", "1000.5", config_type="number")
    assert capital_by_scope(store) == {("sma", "kraken"): Decimal("1000.5")}


def test_an_inactive_setting_is_kept_but_not_in_force(store: Store) -> None:
    bot_config.set_value(store, "capital.sma.kraken", "1000", config_type="number")
    entry = bot_config.set_value(store, "capital.sma.kraken", active=False)
    assert (entry.is_active, entry.value) == (False, Decimal(1000))
    assert bot_config.value(store, "capital.sma.kraken", "unset") == "unset"
    assert bot_config.entries(store) == []
    assert [e.key for e in bot_config.entries(store, include_inactive=True)] == [
        "capital.sma.kraken"
    ]
    assert capital_by_scope(store) == {}
    # Changing the value keeps it inactive; --active puts it back in force.
    assert not bot_config.set_value(store, "capital.sma.kraken", "2000").is_active
    assert bot_config.set_value(store, "capital.sma.kraken", active=True).is_active


def test_options_not_given_stay_as_they_were(store: Store) -> None:
    bot_config.set_value(store, "k", "v", description="why")
    entry = bot_config.set_value(store, "k", "w")
    assert (entry.text, entry.description, entry.config_type) == ("w", "why", "string")


def test_changing_only_options_needs_an_existing_key(store: Store) -> None:
    with pytest.raises(UnknownRecord, match="is not set"):
        bot_config.set_value(store, "missing", active=False)


def test_unset_deletes_and_an_unknown_key_is_an_error(store: Store) -> None:
    bot_config.set_value(store, "k", "v")
    assert bot_config.unset(store, "k") == "k"
    with pytest.raises(UnknownRecord):
        bot_config.get(store, "k")
    with pytest.raises(UnknownRecord):
        bot_config.unset(store, "k")
    assert bot_config.value(store, "k", 7) == 7


# --- secrets ---------------------------------------------------------------------------

SECRET_KEYS = [
    "kraken.api_key",
    "binance.apiKey",
    "exchange.API-SECRET",
    "kraken.secret",
    "db.password",
    "smtp.passwd",
    "wallet.private_key",
    "exchange.passphrase",
    "telegram.auth_token",
    "wallet.mnemonic",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
@pytest.mark.fault("bad input")
def test_keys_that_name_a_secret_are_refused(store: Store, key: str) -> None:
    with pytest.raises(ValidationError, match="environment variables") as caught:
        bot_config.set_value(store, key, "x")
    assert caught.value.field == "config_key"
    assert bot_config.entries(store, include_inactive=True) == []


BINANCE_LIKE = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"  # 64
KRAKEN_SECRET_LIKE = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)
PEM = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB...\n-----END EC PRIVATE KEY-----"


@pytest.mark.parametrize("secret", [BINANCE_LIKE, KRAKEN_SECRET_LIKE, PEM])
@pytest.mark.fault("bad input")
def test_values_that_look_like_a_key_are_refused_without_echoing_them(
    store: Store, secret: str
) -> None:
    with pytest.raises(ValidationError, match="environment variables") as caught:
        bot_config.set_value(store, "exchange.note", secret)
    assert secret not in str(caught.value)
    with pytest.raises(ValidationError, match="environment variables"):
        bot_config.set_value(store, "exchange.creds", {"kraken": [secret]}, config_type="json")
    with pytest.raises(ValidationError, match="environment variables"):
        bot_config.set_value(store, "k", "v", description=f"key is {secret}")


@pytest.mark.parametrize(
    "public",
    [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",  # an Ethereum address
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",  # a Bitcoin address
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # a sha256
        "buy when the 20 period average crosses the 50 period one",
    ],
)
def test_public_identifiers_and_prose_are_accepted(store: Store, public: str) -> None:
    assert bot_config.set_value(store, "wallet.address", public).text == public


# Issue 14: each of these was accepted. Realistic shapes, made-up values.
TELEGRAM_TOKEN = "5482159632:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw4"
DISCORD_WEBHOOK = (
    "https://discord.com/api/webhooks/1142263893211476048/"
    "nQ3Xw8vR2kP7sL9mT4yB6cF1hJ5gD0aE3uI8oZ2xC7vN4bM6lK9jH1fG5dS8aQ2wE"
)
SLACK_WEBHOOK = "https://hooks.slack.com/services/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"
AWS_ACCESS_KEY = "AKIAQ3EGRV7XMZ4WJ5NB"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJib3QiLCJpYXQiOjE3MDQ0NjcyMDB9."
    "4Xb8fM2qL0nV7cR9tK3wY6hJ1pD5sG8aE2uZ0oI4mN7"
)
OPENSSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
DATABASE_URL = "postgresql://bot:Hunter2-secret@db.example.com:5432/trading"
SIGNED_URL = "https://api.example.com/v1/alerts?channel=7&api_key=9f8e7d6c5b4a"
FREQTRADE_EXCHANGE = {
    "name": "binance",
    "key": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
    "secret": "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
    "pair_whitelist": ["BTC/USDT", "ETH/USDT"],
}


@pytest.mark.parametrize(
    "key",
    ["telegram.bot_token", "discord.webhook", "aws.key", "exchange.key", "ssh.private",
     "bot.passphrase", "api.jwt", "binance.secretKey", "wallet.privkey", "notify.WebhookUrl"],
)  # fmt: skip
@pytest.mark.fault("bad input")
def test_more_keys_that_name_a_secret_are_refused(store: Store, key: str) -> None:
    with pytest.raises(ValidationError, match="names an API key, secret") as caught:
        bot_config.set_value(store, key, "x")
    assert caught.value.field == "config_key"
    assert bot_config.entries(store, include_inactive=True) == []


@pytest.mark.parametrize(
    ("secret", "looks_like"),
    [
        (TELEGRAM_TOKEN, "a Telegram bot token"),
        (f"https://api.telegram.org/bot{TELEGRAM_TOKEN}/sendMessage", "a Telegram bot token"),
        (DISCORD_WEBHOOK, "a webhook URL"),
        (SLACK_WEBHOOK, "a webhook URL"),
        (AWS_ACCESS_KEY, "an AWS access key"),
        (JWT, "a JSON Web Token"),
        (OPENSSH_KEY, "a PEM private key"),
        (DATABASE_URL, "a URL with a password"),
        (SIGNED_URL, "a URL whose 'api_key' parameter holds a secret"),
        (FREQTRADE_EXCHANGE["secret"], "an API key or secret"),
    ],
    ids=["telegram", "telegram-url", "discord", "slack", "aws", "jwt", "pem", "password-url",
         "api-key-url", "exchange-secret"],
)  # fmt: skip
@pytest.mark.fault("bad input")
def test_credentials_are_refused_under_any_key_at_any_depth_and_never_shown(
    store: Store, secret: str, looks_like: str
) -> None:
    attempts = [
        lambda: bot_config.set_value(store, "notify.target", secret),
        lambda: bot_config.set_value(store, "notify", {"targets": [{"url": secret}]}),
        lambda: bot_config.set_value(
            store, "notify", json.dumps([[[{"a": {"b": [secret]}}]]]), config_type="json"
        ),
        lambda: bot_config.set_value(store, "k", "v", description=f"ours is {secret}"),
    ]
    for attempt in attempts:
        with pytest.raises(ValidationError, match="environment variables") as caught:
            attempt()
        message = str(caught.value)
        assert looks_like in message
        # Not the value, nor any piece of it long enough to help guess it.
        assert secret[:4] not in message
        assert not any(secret[at : at + 8] in message for at in range(len(secret) - 7))
        assert "not shown" in message
    assert bot_config.entries(store, include_inactive=True) == []


@pytest.mark.fault("bad input")
def test_freqtrades_exchange_block_is_refused_by_its_keys(store: Store) -> None:
    config = {"exchange": FREQTRADE_EXCHANGE, "stake_currency": "USDT"}
    with pytest.raises(ValidationError, match=r"holds the key 'exchange\.key'") as caught:
        bot_config.set_value(store, "freqtrade", config)
    assert FREQTRADE_EXCHANGE["key"][:8] not in str(caught.value)
    for harmless_value in ("", "x"):
        with pytest.raises(ValidationError, match=r"'exchange\.secret'"):
            bot_config.set_value(
                store, "freqtrade", {"exchange": {"name": "kraken", "secret": harmless_value}}
            )
    assert bot_config.entries(store, include_inactive=True) == []


@pytest.mark.fault("bad input")
def test_json_nested_beyond_what_python_reads_is_one_clear_refusal(store: Store) -> None:
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(ValidationError, match="nested too deeply"):
        bot_config.set_value(store, "deep", deep, config_type="json")
    nested: dict[str, object] = {}
    inner = nested
    for _ in range(5000):
        inner["x"] = {}
        inner = inner["x"]  # type: ignore[assignment]
    with pytest.raises(ValidationError, match="nested too deeply"):
        bot_config.set_value(store, "deep", nested)


PUBLIC_VALUES = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",  # Ethereum address
    "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",  # Bitcoin, legacy
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",  # Bitcoin, segwit
    "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",  # Bitcoin, taproot
    "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV",  # Solana address
    "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnbJLgp8uirBgmQpjKhoR4tjF3ZpRzrFmBV6UjKdiSZkQUW",
    "TLa2f6VPqDgRE67v1736s7bJ8Ray5wYjU7",  # Tron
    "rEb8TK3gBgk5auZkwc6sHnwrGVJH8DuaLh",  # XRP
    "0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b",  # Ethereum tx
    "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16",  # Bitcoin tx
    "550e8400-e29b-41d4-a716-446655440000",  # an id
    "OQCLML-BW3P3-BUCMWZ",  # a Kraken order id
    "https://github.com/freqtrade/freqtrade/blob/develop/freqtrade/strategy/interface.py",
    "https://api.binance.com/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1000",
    "user_data/backtest_results/backtest-result-2024-01-05_14-30-02.json",
    "VolumePairListFilterWithMinimumVolume2024",
    "binance_BTCUSDT_1m_2024-01-01_2024-12-31",
    "Buy when the 20 period average crosses the 50 period one; sell on the reverse.",
]


@pytest.mark.parametrize("public", PUBLIC_VALUES)
def test_public_values_are_accepted_alone_and_inside_json(store: Store, public: str) -> None:
    assert bot_config.set_value(store, "wallet.address", public).text == public
    nested = {"pairlists": [{"method": "VolumePairList", "sort_key": "quoteVolume"}], "x": public}
    assert bot_config.set_value(store, "bot", nested).value["x"] == public


def random_tokens(alphabet: str, lengths: range, count: int, seed: int) -> list[str]:
    """Tokens drawn as API keys are: uniformly from their alphabet (a fixed seed, so that
    the test is the same every run)."""
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.choice(lengths))) for _ in range(count)]


BASE62 = string.ascii_letters + string.digits


@pytest.mark.parametrize(
    ("alphabet", "lengths"),
    [
        (BASE62, range(56, 89)),  # Binance (64), Bitfinex (43) and longer keys
        (BASE62 + "+/", range(56, 89)),  # base64: Kraken's keys (56) and secrets (88)
        (BASE62 + "-_", range(40, 65)),  # base64url: secrets.token_urlsafe(32) is 43
    ],
    ids=["base62", "base64", "base64url"],
)
@pytest.mark.fault("bad input")
def test_long_random_tokens_are_refused(store: Store, alphabet: str, lengths: range) -> None:
    tokens = random_tokens(alphabet, lengths, 200, seed=14)
    # A token in base58 (no 0, O, I, l, punctuation) of an address's length is what a
    # Solana address is, a random 32-byte number: it cannot be refused. Few are.
    refusable = [token for token in tokens if not could_be_an_address(token)]
    assert len(refusable) >= 0.97 * len(tokens)
    for token in refusable:
        with pytest.raises(ValidationError, match="API key or secret"):
            bot_config.set_value(store, "note", token)


def could_be_an_address(token: str) -> bool:
    """Base58 of the length of an address or a signature (services.ops.secrets)."""
    base58 = set(string.ascii_letters + string.digits) - set("0OIl")
    versioned = 25 <= len(token) <= 35 and token[0] in "13LMD9AXTr"
    lengths = {43, 44, 58, 59, 86, 87, 88, 95, 104, 105, 106}
    return set(token) <= base58 and (versioned or len(token) in lengths)


WORDS = ["buy", "sell", "stop", "loss", "grid", "trend", "daily", "limit", "order", "pair",
         "market", "volume", "spread", "binance", "kraken", "average", "signal"]  # fmt: skip
public_text = st.one_of(
    st.binary(min_size=16, max_size=32).map(bytes.hex),  # hashes and hex ids
    st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex()),  # addresses
    st.uuids().map(str),
    st.lists(
        st.one_of(st.sampled_from(WORDS), st.integers(10, 99_999).map(str)), min_size=1, max_size=8
    ).map("_".join),
    st.integers(0, 10**18).map(str),
)
public_json = st.recursive(
    st.one_of(public_text, st.integers(), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(WORDS), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=public_json)
def test_json_of_public_values_is_accepted(store: Store, value: object) -> None:
    entry = bot_config.set_value(store, "bot.settings", json.dumps(value), config_type="json")
    assert json.loads(entry.text) == value


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=public_json, where=st.randoms(use_true_random=False), name=st.sampled_from(
    ["key", "api_key", "secret", "password", "passphrase", "token", "webhook", "private_key"]
))  # fmt: skip
@pytest.mark.fault("bad input")
def test_a_secret_key_anywhere_in_json_is_refused(
    store: Store, value: object, where: random.Random, name: str
) -> None:
    containers: list[dict[str, object]] = []
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            containers.append(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    if not containers:
        value = {"wrapped": value}
        containers.append(value)  # type: ignore[arg-type]
    where.choice(containers)[name] = "x"

    with pytest.raises(ValidationError, match=f"holds the key '[^']*{name}'"):
        bot_config.set_value(store, "bot.settings", json.dumps(value), config_type="json")


# --- the command -------------------------------------------------------------------------


def run(db_path: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["config", *args, "--db", str(db_path)], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_cli_set_get_list_unset(db_path: Path) -> None:
    code, out, _ = run(db_path, "set", "period", "14", "--type", "number", "--strategy", "sma")
    assert (code, out.strip()) == (0, "strategy.sma.period = 14 (number)")
    assert run(db_path, "get", "period", "--strategy", "sma")[1] == "14\n"
    code, out, _ = run(db_path, "set", "capital.sma.kraken", "1000.5", "--type", "number")
    code, out, _ = run(db_path, "list", "--strategy", "sma", "--json")
    listed = json.loads(out)
    assert [(e["key"], e["value"], e["type"]) for e in listed] == [
        ("capital.sma.kraken", "1000.5", "number"),
        ("strategy.sma.period", "14", "number"),
    ]
    code, out, _ = run(db_path, "list")
    assert "capital.sma.kraken" in out
    assert "1000.5" in out
    assert run(db_path, "unset", "capital.sma.kraken")[0] == 0
    assert "capital.sma.kraken" not in run(db_path, "list")[1]


def test_cli_json_values_keep_their_types(db_path: Path) -> None:
    run(db_path, "set", "flag", "yes", "--type", "boolean", "--inactive")
    run(db_path, "set", "pairs", '["BTC/EUR"]', "--type", "json")
    flag = json.loads(run(db_path, "get", "flag", "--json")[1])
    assert (flag["value"], flag["is_active"]) == (True, False)
    assert json.loads(run(db_path, "get", "pairs", "--json")[1])["value"] == ["BTC/EUR"]
    assert [e["key"] for e in json.loads(run(db_path, "list", "--json")[1])] == ["pairs"]
    assert len(json.loads(run(db_path, "list", "--all", "--json")[1])) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "kraken.api_key", "x"), "environment variables"),
        (("set", "n", "abc", "--type", "number"), "not a decimal"),
        (("set", "n", "1", "--type", "float"), "config_type"),
        (("get", "missing"), "is not set"),
        (("unset", "missing"), "is not set"),
    ],
)
@pytest.mark.fault("bad input")
def test_cli_user_errors_are_one_line_and_exit_2(
    db_path: Path, args: tuple[str, ...], message: str
) -> None:
    Store.open(db_path).close()
    code, _, err = run(db_path, *args)
    assert code == USER_ERROR
    assert message in err
    assert err.strip().count("\n") == 0
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "secret"),
    [
        (("telegram.bot_token", TELEGRAM_TOKEN), TELEGRAM_TOKEN),
        (("notify.discord", DISCORD_WEBHOOK), DISCORD_WEBHOOK),
        (("aws.key", AWS_ACCESS_KEY), AWS_ACCESS_KEY),
        (("api.session", JWT), JWT),
        (
            ("freqtrade", json.dumps({"exchange": FREQTRADE_EXCHANGE}), "--type", "json"),
            FREQTRADE_EXCHANGE["secret"],
        ),
    ],
    ids=["telegram", "discord", "aws", "jwt", "freqtrade"],
)
@pytest.mark.fault("bad input")
def test_cli_refuses_a_secret_in_one_line_without_showing_it(
    db_path: Path, args: tuple[str, ...], secret: str
) -> None:
    code, out, err = run(db_path, "set", *args)

    assert code == USER_ERROR
    assert len(err.splitlines()) == 1, err
    assert "environment variables" in err
    assert secret[:4] not in err
    assert not any(secret[at : at + 8] in out + err for at in range(len(secret) - 7))
    assert run(db_path, "list", "--json")[1].strip() == "[]"
