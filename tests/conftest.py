"""Shared fixtures: every test gets its own database, on each engine it runs on.

`engine` is a fixture parameter: tests that take `store` or `db_target` run once on SQLite
(a file in a temporary folder) and once on PostgreSQL (a new database on a server the
session starts, see pg_server.py). Property tests, whose many examples cannot each open
a database, share one per module and engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradedb.store import Store

DATA = Path(__file__).parent / "data"
SPEC = Path(__file__).parents[1] / "docs" / "spec" / "crypto-trading-bot-schema.md"
ENGINES = ("sqlite", "postgresql")
# Fixtures whose parameter is the engine a test runs on.
ENGINE_FIXTURES = ("engine", "shared_store", "database")
# The fault suite's marker, figures and the gate of slow tests; pytester checks them.
pytest_plugins = ["faults", "pytester"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked sqlite_only (or postgresql_only) run on that engine alone: the other
    engine's variant is deselected, not skipped, since it never applies."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        engine = next(
            (params[name] for name in ENGINE_FIXTURES if params.get(name) in ENGINES), None
        )
        wrong = (engine == "postgresql" and item.get_closest_marker("sqlite_only")) or (
            engine == "sqlite" and item.get_closest_marker("postgresql_only")
        )
        (dropped if wrong else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _user_folders_of_its_own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every test's user data and config folders are temporary ones (platformdirs follows
    the XDG variables), so that nothing a test does lands in the real user's folders: a
    PostgreSQL database's archives live under the user data folder, for one."""
    folders = tmp_path_factory.mktemp("xdg")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(folders / "data"))
        patch.setenv("XDG_CONFIG_HOME", str(folders / "config"))
        yield


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """The session's PostgreSQL server (skipped, or failed with CI=true, without one)."""
    import pg_server as servers

    server = servers.start_for_tests()
    try:
        yield server
    finally:
        servers.remove(server)


@pytest.fixture(scope="session")
def pg_template(pg_server: object) -> str:
    """A database holding tradedb's schema and nothing else, copied for each test."""
    name = pg_server.create_database()  # type: ignore[attr-defined]
    Store.open(pg_server.url(name)).close()  # type: ignore[attr-defined]
    return str(name)


def new_pg_database(request: pytest.FixtureRequest, *, schema: bool = True) -> str:
    """The URL of a new database for one test (dropped after it), with tradedb's schema
    or empty."""
    server = request.getfixturevalue("pg_server")
    template = request.getfixturevalue("pg_template") if schema else None
    name = server.create_database(template)
    request.addfinalizer(lambda: server.drop_database(name))
    return str(server.url(name))


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tradedb.sqlite"


@pytest.fixture
def db_target(engine: str, db_path: Path, request: pytest.FixtureRequest) -> str:
    """Where this test's database is: a SQLite path, or a PostgreSQL URL (with schema)."""
    if engine == "sqlite":
        return str(db_path)
    return new_pg_database(request)


@pytest.fixture
def store(db_target: str) -> Iterator[Store]:
    with Store.open(db_target) as opened:
        yield opened


@pytest.fixture
def database(
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    engine: str,
    request: pytest.FixtureRequest,
) -> str:
    """The MCP tests' database (mcp_database.py), copied for one test, on each engine."""
    import mcp_database

    return mcp_database.copy_of_template(tmp_path_factory, tmp_path, engine, request)


@pytest.fixture(scope="module", params=ENGINES)
def shared_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """One Store per engine for all tests and examples of a module; each clears what it
    uses."""
    if request.param == "sqlite":
        target = str(tmp_path_factory.mktemp("shared") / "tradedb.sqlite")
    else:
        target = new_pg_database(request)
    with Store.open(target) as opened:
        yield opened
