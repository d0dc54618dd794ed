"""Shared fixtures: every test gets its own database file in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tradedb.store import Store

DATA = Path(__file__).parent / "data"
SPEC = Path(__file__).parents[1] / "docs" / "spec" / "crypto-trading-bot-schema.md"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tradedb.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path) as opened:
        yield opened
