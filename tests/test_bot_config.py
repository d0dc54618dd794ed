"""bot_config: typed settings, per-strategy keys, is_active, and secrets refused.

Each rule a user relies on is checked through the service, and the command's behaviour
(output, --json, one-line errors with exit status 2) through typer's runner.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
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
def test_cli_user_errors_are_one_line_and_exit_2(
    db_path: Path, args: tuple[str, ...], message: str
) -> None:
    Store.open(db_path).close()
    code, _, err = run(db_path, *args)
    assert code == USER_ERROR
    assert message in err
    assert err.strip().count("\n") == 0
    assert "Traceback" not in err
