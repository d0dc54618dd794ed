"""USD reference prices hold for their period and value nothing outside it (issue 17,
item 1): storing, listing and removing them, overlaps refused, every reader honouring the
period, and the move of the old period-less bot_config keys by schema 0008."""

from __future__ import annotations

import importlib
import json
import shutil
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

import tradedb
from conftest import DATA, new_pg_database
from tradedb.cli.app import app
from tradedb.errors import Unvaluable, ValidationError
from tradedb.models.values import to_epoch_ms
from tradedb.schema import migrate

USER_ERROR = 2
REVISION_0008 = importlib.import_module("tradedb.schema.migrations.versions.0008_reference_prices")
JAN_10 = to_epoch_ms(datetime(2018, 1, 10, tzinfo=UTC), "t")
FEB_1 = to_epoch_ms(datetime(2018, 2, 1, tzinfo=UTC), "t")


def cli(db: str, *args: str) -> object:
    return CliRunner().invoke(app, [*args, "--db", db])


def test_a_price_values_its_period_only_and_the_end_is_exclusive(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        db.analytics.set_reference_price(
            "BTC", "12000", valid_from="2018-01-10", valid_until="2018-02-01", source="CMC"
        )
        valuer = db.analytics.valuer()

        assert valuer.price_usd("BTC", JAN_10).price == Decimal("12000")
        assert valuer.price_usd("BTC", FEB_1 - 1).path == ("BTC (reference)",)
        for outside in (JAN_10 - 1, FEB_1, to_epoch_ms(datetime(2023, 1, 2, tzinfo=UTC), "t")):
            with pytest.raises(Unvaluable, match="BTC's are for: from 2018-01-10 00:00 UTC"):
                valuer.price_usd("BTC", outside)


def test_consecutive_periods_meet_and_each_instant_has_one_price(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        db.analytics.set_reference_price("EUR", "1.07", valid_until="2023-02-01", source="a")
        db.analytics.set_reference_price("EUR", "1.09", valid_from="2023-02-01", source="b")
        valuer = db.analytics.valuer()

        assert valuer.price_usd("EUR", FEB_1).price == Decimal("1.07")  # 2018: open start
        feb_2023 = to_epoch_ms(datetime(2023, 2, 1, tzinfo=UTC), "t")
        assert valuer.price_usd("EUR", feb_2023 - 1).price == Decimal("1.07")
        assert valuer.price_usd("EUR", feb_2023).price == Decimal("1.09")
        assert [row.source for row in db.analytics.reference_prices("EUR")] == ["a", "b"]
        assert [row.source for row in db.analytics.reference_prices(at=feb_2023)] == ["b"]


def test_an_overlapping_period_is_refused_and_nothing_is_written(db_target: str) -> None:
    with tradedb.open(db_target) as db:
        first = db.analytics.set_reference_price(
            "BTC", "12000", valid_from="2018-01-10", valid_until="2018-02-01", source="CMC"
        )
        with pytest.raises(ValidationError, match=f"overlaps reference price #{first.id} of BTC"):
            db.analytics.set_reference_price(
                "BTC", "13000", valid_from="2018-01-31", source="another"
            )
        with pytest.raises(ValidationError, match="overlaps"):
            db.analytics.set_reference_price("BTC", "13000", source="always")

        again = db.analytics.set_reference_price(
            "BTC", "12000", valid_from="2018-01-10", valid_until="2018-02-01", source="CMC"
        )
        assert again == first  # the same price, period and source: nothing new
        assert db.analytics.reference_prices() == [first]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"price_usd": "0"}, "price_usd"),
        ({"price_usd": "-1"}, "price_usd"),
        ({"price_usd": "0.000000001"}, "price_usd"),
        ({"valid_from": "2018-02-01", "valid_until": "2018-01-10"}, "valid_until"),
        ({"valid_from": "2018-02-01", "valid_until": "2018-02-01"}, "valid_until"),
        ({"source": " "}, "source"),
        ({"asset": "btc usd"}, "asset"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    db_target: str, arguments: dict[str, str], field: str
) -> None:
    values = {"asset": "BTC", "price_usd": "12000", "source": "CMC", **arguments}
    with tradedb.open(db_target) as db:
        with pytest.raises(ValidationError) as refused:
            db.analytics.set_reference_price(values.pop("asset"), values.pop("price_usd"), **values)
        assert refused.value.field == field
        assert db.tables.reference_prices.count() == 0


def test_the_command_line_sets_lists_and_removes_prices(db_target: str) -> None:
    stored = cli(
        db_target,
        "reference-price",
        "set",
        "BTC",
        "12000",
        "--since",
        "2018-01-10",
        "--until",
        "2018-02-01",
        "--source",
        "CoinMarketCap, January 2018",
        "--json",
    )
    assert stored.exit_code == 0, stored.output
    row = json.loads(stored.stdout)
    assert (row["asset"], row["valid_from"], row["valid_until"]) == ("BTC", JAN_10, FEB_1)
    assert Decimal(row["price_usd"]) == 12000

    overlapping = cli(db_target, "reference-price", "set", "BTC", "1", "--source", "x")
    assert overlapping.exit_code == USER_ERROR
    assert overlapping.stderr.count("\n") == 1
    assert f"overlaps reference price #{row['id']} of BTC (12000 USD" in overlapping.stderr

    listed = cli(db_target, "reference-price", "list")
    assert listed.exit_code == 0
    assert "CoinMarketCap, January 2018" in listed.stdout
    value = cli(db_target, "value", "BTC", "--at", "2023-01-02")
    assert value.exit_code == USER_ERROR
    assert "no reference price holding then" in value.stderr

    removed = cli(db_target, "reference-price", "remove", str(row["id"]))
    assert removed.exit_code == 0
    assert json.loads(cli(db_target, "reference-price", "list", "--json").stdout) == []
    gone = cli(db_target, "reference-price", "remove", str(row["id"]))
    assert gone.exit_code == USER_ERROR
    assert "no reference price has this id" in gone.stderr


def test_bot_config_refuses_the_old_period_less_key(db_target: str) -> None:
    refused = cli(db_target, "config", "set", "reference_price.BTC", "12000")

    assert refused.exit_code == USER_ERROR
    assert "tradedb reference-price set" in refused.stderr
    with tradedb.open(db_target) as db:
        assert db.config.entries() == []


OLD_KEYS = [
    ("reference_price.BTC", "12345678901.12345678", "from a demo", True),
    ("reference_price.EUR", "1.07", None, False),
]


def _database_at_0007(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database at schema 0007, holding the old period-less bot_config prices."""
    insert = (
        "INSERT INTO bot_config (config_key, config_value, config_type, description, "
        "is_active) VALUES (:key, :value, 'number', :description, :active)"
    )
    rows = [dict(zip(("key", "value", "description", "active"), k, strict=True)) for k in OLD_KEYS]
    if engine == "sqlite":
        path = tmp_path / "old.sqlite"
        shutil.copyfile(DATA / "tradedb-0007.sqlite", path)
        with sqlite3.connect(path) as conn:
            conn.executemany(insert, rows)
        conn.close()
        migrate.upgrade(path)
        return str(path)
    # A server database cannot be created at an old revision: take a new one, remove what
    # 0008 adds, put the old rows back and run 0008's step itself.
    url = new_pg_database(request)
    engine_ = create_engine(url, poolclass=NullPool)
    with engine_.begin() as connection:
        connection.execute(text("DROP TABLE reference_prices CASCADE"))
        connection.execute(text(insert), rows)
        REVISION_0008.apply(connection)
    engine_.dispose()
    return url


def test_schema_0008_moves_the_old_bot_config_prices_into_the_table(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    target = _database_at_0007(engine, tmp_path, request)

    with tradedb.open(target) as db:
        (moved,) = db.analytics.reference_prices()
        keys = [entry.key for entry in db.config.entries(include_inactive=True)]
        value = db.analytics.value("BTC", FEB_1)

    assert (moved.asset, moved.price_usd) == ("BTC", Decimal("12345678901.12345678"))
    assert (moved.valid_from, moved.valid_until) == (None, None)  # the old meaning: always
    assert moved.source == "bot_config reference_price.BTC: from a demo"
    assert value.price == Decimal("12345678901.12345678")
    # Inactive ones were not in force: they stay where they were, read by nothing.
    assert "reference_price.BTC" not in keys
    assert "reference_price.EUR" in keys
