"""Shared fixtures: every test gets its own database file in a temporary folder.

Property tests, whose many examples cannot each open a database, share one per module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradedb.store import Store

DATA = Path(__file__).parent / "data"
SPEC = Path(__file__).parents[1] / "docs" / "spec" / "crypto-trading-bot-schema.md"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tradedb.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path) as opened:
        yield opened


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One Store for all tests and examples of a module; each clears what it uses."""
    path = tmp_path_factory.mktemp("shared") / "tradedb.sqlite"
    with Store.open(path) as opened:
        yield opened
