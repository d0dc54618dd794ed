"""Backups of PostgreSQL databases, against the real server of the test session: pg_dump's
custom format with the same manifests, checksums and rotation as SQLite; verify restores
into a scratch database and audits the ledger; restore goes into a new database and
never replaces one holding tables without --force; the password appears nowhere.

The databases belong to a role that logs in with a password (the server requires one from
every role but the superuser), as a bot's would."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from test_backup import TIMESTAMP, fill_ledger
from tradedb.cli.app import app
from tradedb.services.ledger import Ledger
from tradedb.services.ledger.audit import audit
from tradedb.services.ops import (
    backup_catalog,
    backup_full,
    backup_rotation,
    backup_snapshot,
    backup_upload,
    maintain,
)
from tradedb.services.ops.backup_full import FullRestore
from tradedb.services.ops.backup_manifest import BackupError
from tradedb.store import Store
from tradedb.store.engines import PostgresTarget, parse_target

ROLE = "backup_bot"
# Characters that need quoting in a URL and in a passfile, and a string that cannot turn
# up anywhere by chance.
PASSWORD = "Pw-7q[x]:y@k%z-secret"
QUOTED = urllib.parse.quote(PASSWORD, safe="")
USER_ERROR = 2

runner = CliRunner()


@pytest.fixture(scope="module")
def role(pg_server: Any) -> str:
    """A login role with a password that may create databases (verify and restore do)."""
    with pg_server.admin() as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
        if not exists:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'")
    return ROLE


def role_url(server: Any, database: str, password: str = QUOTED) -> str:
    return str(server.url(database, user=ROLE, password=password))


@pytest.fixture
def new_database(pg_server: Any, role: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Makes names of databases on the server that are dropped after the test."""
    names: list[str] = []

    def make(name: str | None = None, *, owned: bool = True) -> str:
        if name is None:
            name = pg_server.create_database()
            if owned:
                with pg_server.admin() as conn:
                    conn.execute(f"ALTER DATABASE {name} OWNER TO {role}")
        names.append(name)
        return name

    yield make
    for name in names:
        pg_server.drop_database(name)
    with pg_server.admin() as conn:
        # Verify's scratch databases and restore's staging databases never outlive them.
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'tradedb\\_%'"
        ).fetchall()
    assert left == []


@pytest.fixture
def live(pg_server: Any, new_database: Any) -> str:
    """The URL (with the password) of a database the role owns, holding a ledger."""
    url = role_url(pg_server, new_database())
    with Store.open(url) as store:
        fill_ledger(store, 12)
    return url


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "backups"
    path.mkdir(mode=0o700)
    return path


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    result = runner.invoke(app, list(args), env=env)
    assert PASSWORD not in result.stdout + result.stderr
    assert QUOTED not in result.stdout + result.stderr
    return result


def one_line_error(result: Any) -> str:
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == USER_ERROR, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return str(lines[0])


def all_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, as psycopg reads them (NUMERIC as Decimal)."""
    target = parse_target(url)
    assert isinstance(target, PostgresTarget)
    with psycopg.connect(
        host=target.url.host, port=target.url.port, dbname=target.database, user="postgres"
    ) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            )
        ]
        return {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall()) for table in tables
        }


def databases(pg_server: Any) -> set[str]:
    with pg_server.admin() as conn:
        return {name for (name,) in conn.execute("SELECT datname FROM pg_database")}


def test_snapshot_verify_restore_round_trip_through_the_cli(
    live: str, folder: Path, pg_server: Any, new_database: Any
) -> None:
    taken = cli("backup", "snapshot", "--db", live, "--backup-dir", str(folder), "--json")
    assert taken.exit_code == 0, taken.stderr
    backup_id = json.loads(taken.stdout)["id"]

    manifest_text = (folder / f"{backup_id}.manifest.json").read_text()
    manifest = json.loads(manifest_text)
    assert manifest["engine"] == "postgresql"
    assert manifest["file"] == f"{backup_id}.pgdump"
    assert manifest["source"].startswith(f"postgresql://{ROLE}:***@")
    assert manifest["schema"] is not None
    assert manifest["tool"].startswith("pg_dump ")
    assert PASSWORD not in manifest_text
    assert QUOTED not in manifest_text
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert PASSWORD not in path.name
    dump = folder / manifest["file"]
    assert dump.read_bytes()[:5] == b"PGDMP"  # a plain pg_dump archive
    assert PASSWORD.encode() not in dump.read_bytes()
    listing = subprocess.run(
        [str(pg_server.bindir / "pg_restore"), "--list", str(dump)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "TABLE DATA public trades" in listing
    assert PASSWORD not in listing
    assert QUOTED not in listing

    listed = cli("backup", "list", "--backup-dir", str(folder), "--json")
    assert [(b["id"], b["engine"]) for b in json.loads(listed.stdout)] == [
        (backup_id, "postgresql")
    ]
    table = cli("backup", "list", "--backup-dir", str(folder))
    assert "postgresql" in table.stdout
    verified = cli("backup", "verify", "--db", live, "--backup-dir", str(folder), "--json")
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout) == [{"id": backup_id, "ok": True, "problems": []}]

    copy = role_url(pg_server, new_database("restored_copy"))
    restored = cli("restore", backup_id, "--to", copy, "--backup-dir", str(folder))
    assert restored.exit_code == 0, restored.stderr
    assert f"database: postgresql://{ROLE}:***@" in restored.stdout
    assert "verified: checksum and pg_restore ok" in restored.stdout

    assert all_rows(copy) == all_rows(live)
    assert len(all_rows(copy)["trades"]) == 12
    with Store.open(copy) as store:
        assert audit(store) == []
        assert store.trades.count() == 12
        trade = store.trades.list(limit=1).items[0]
        assert trade.price == Decimal("200.10")
        assert trade.amount == Decimal("0.5")


@pytest.mark.fault("damage")
def test_a_flipped_byte_fails_verify_and_restore_refuses(
    live: str, folder: Path, pg_server: Any
) -> None:
    manifest = backup_snapshot.take_snapshot(live, folder)
    data = folder / manifest.file
    damaged = bytearray(data.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    data.write_bytes(bytes(damaged))

    [verdict] = backup_catalog.verify(folder, manifest.id, server=parse_target(live))
    assert not verdict.ok
    assert "SHA-256" in verdict.problems[0]

    target = parse_target(role_url(pg_server, "never_restored"))
    with pytest.raises(BackupError, match="nothing was restored"):
        backup_catalog.restore(folder, manifest.id, target)
    assert "never_restored" not in databases(pg_server)


@pytest.mark.fault("damage")
def test_damage_under_a_matching_checksum_is_caught_by_pg_restore(
    live: str, folder: Path, pg_server: Any
) -> None:
    """A dump damaged before its checksum was taken (a bad disk under pg_dump) passes the
    checksum, and pg_restore into the scratch database catches it; the scratch database
    is dropped all the same (checked by the fixture)."""
    manifest = backup_snapshot.take_snapshot(live, folder)
    data = folder / manifest.file
    damaged = bytearray(data.read_bytes())
    middle = len(damaged) // 2
    damaged[middle : middle + 64] = b"\x00" * 64
    data.write_bytes(bytes(damaged))
    from tradedb.store.engines.backups import file_sha256

    sha, size = file_sha256(data)
    manifest_file = folder / f"{manifest.id}.manifest.json"
    fields = json.loads(manifest_file.read_text())
    fields.update(sha256=sha, size_bytes=size, database_sha256=sha, database_bytes=size)
    manifest_file.write_text(json.dumps(fields))

    [verdict] = backup_catalog.verify(folder, manifest.id, server=parse_target(live))

    assert not verdict.ok
    assert verdict.problems[0].startswith("pg_restore:")
    with pytest.raises(BackupError, match=r"pg_restore.*nothing was restored"):
        backup_catalog.restore(folder, manifest.id, parse_target(role_url(pg_server, "r_bad")))
    assert "r_bad" not in databases(pg_server)


def test_restore_replaces_a_database_holding_tables_only_with_force(
    live: str, folder: Path
) -> None:
    manifest = backup_snapshot.take_snapshot(live, folder)
    with Store.open(live) as store:
        Ledger(store).deposit(
            exchange="kraken", asset="EUR", amount="1", timestamp=TIMESTAMP, reference="later"
        )
    before = all_rows(live)

    refused = cli("restore", manifest.id, "--to", live, "--backup-dir", str(folder))

    line = one_line_error(refused)
    assert "--force" in line
    assert f"postgresql://{ROLE}:***@" in line
    assert all_rows(live) == before
    with Store.open(live) as in_use:
        in_use.row_counts()  # its pool holds a session on the database
        busy = one_line_error(
            cli("restore", manifest.id, "--to", live, "--force", "--backup-dir", str(folder))
        )
    assert "in use" in busy
    assert all_rows(live) == before

    replaced = cli("restore", manifest.id, "--to", live, "--force", "--backup-dir", str(folder))
    assert replaced.exit_code == 0, replaced.stderr
    references = [row for row in all_rows(live)["wallet_movements"] if "later" in row]
    assert references == []


def test_an_empty_existing_database_is_restored_into_without_force(
    live: str, folder: Path, pg_server: Any, new_database: Any
) -> None:
    manifest = backup_snapshot.take_snapshot(live, folder)
    empty = role_url(pg_server, new_database())

    backup_catalog.restore(folder, manifest.id, empty)

    assert all_rows(empty) == all_rows(live)


@pytest.mark.fault("bad input")
def test_restoring_across_engines_is_refused_in_one_line(
    live: str, folder: Path, tmp_path: Path, pg_server: Any, db_path: Path
) -> None:
    pg_backup = backup_snapshot.take_snapshot(live, folder)
    with Store.open(db_path) as store:
        fill_ledger(store, 1)
    sqlite_snapshot = backup_snapshot.take_snapshot(db_path, folder)
    into_file = tmp_path / "restored.sqlite"

    to_file = one_line_error(
        cli("restore", pg_backup.id, "--to", str(into_file), "--backup-dir", str(folder))
    )
    to_server = one_line_error(
        cli(
            "restore",
            sqlite_snapshot.id,
            "--to",
            role_url(pg_server, "from_sqlite"),
            "--backup-dir",
            str(folder),
        )
    )

    assert "PostgreSQL dump" in to_file
    assert "SQLite backup" in to_server
    assert not into_file.exists()
    assert "from_sqlite" not in databases(pg_server)


def bad_urls(server: Any) -> dict[str, str]:
    import pg_server as servers

    return {
        "unreachable server": f"postgresql://{ROLE}:{QUOTED}@127.0.0.1:{servers._free_port()}/x",
        "wrong password": role_url(server, "postgres", password="not-the-password"),
        "missing database": role_url(server, "no_such_database"),
    }


EXPECTED = {
    "unreachable server": "Connection refused",
    "wrong password": "password authentication failed",
    "missing database": 'database "no_such_database" does not exist',
}


@pytest.mark.parametrize("case", list(EXPECTED))
@pytest.mark.parametrize("command", ["snapshot", "full"])
@pytest.mark.fault("bad input")
def test_bad_input_is_one_line_and_writes_nothing(
    pg_server: Any, role: str, tmp_path: Path, case: str, command: str
) -> None:
    url = bad_urls(pg_server)[case]
    folder = tmp_path / "not-yet"

    line = one_line_error(cli("backup", command, "--db", url, "--backup-dir", str(folder)))

    assert f"postgresql://{ROLE}:***@127.0.0.1:" in line
    assert EXPECTED[case] in line
    assert not folder.exists()


@pytest.mark.fault("bad input")
def test_verify_and_restore_on_an_unusable_server_are_one_line(
    live: str, folder: Path, pg_server: Any
) -> None:
    manifest = backup_snapshot.take_snapshot(live, folder)
    wrong = bad_urls(pg_server)["wrong password"]

    verify = one_line_error(cli("backup", "verify", "--db", wrong, "--backup-dir", str(folder)))
    restore = one_line_error(
        cli("restore", manifest.id, "--to", wrong, "--backup-dir", str(folder))
    )
    no_server = one_line_error(
        cli("backup", "verify", "--db", str(folder / "x.sqlite"), "--backup-dir", str(folder))
    )

    assert "password authentication failed" in verify
    assert "password authentication failed" in restore
    assert "--db postgresql://" in no_server


@pytest.mark.fault("bad input")
def test_pg_dump_older_than_the_server_is_refused_naming_both_versions(
    live: str, tmp_path: Path
) -> None:
    bindir = tmp_path / "old-bin"
    bindir.mkdir()
    fake = bindir / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 12.3'\n", encoding="utf-8")
    fake.chmod(0o755)
    folder = tmp_path / "backups"

    line = one_line_error(
        cli(
            "backup",
            "snapshot",
            "--db",
            live,
            "--backup-dir",
            str(folder),
            env={"TRADEDB_PG_BINDIR": str(bindir)},
        )
    )

    assert "pg_dump 12.3" in line
    assert "PostgreSQL 15." in line or "PostgreSQL 1" in line
    assert not folder.exists()


def test_list_and_prune_rotate_postgresql_manifests_beside_sqlite_ones(
    live: str, folder: Path, db_path: Path
) -> None:
    """Rotation is per database: a SQLite database's backups in the same folder are not
    pushed out by a PostgreSQL database's newer ones."""
    start = datetime(2025, 3, 1, 3, 0, tzinfo=UTC)
    days = [
        backup_snapshot.take_snapshot(live, folder, now=start + timedelta(days=d)) for d in range(3)
    ]
    with Store.open(db_path) as store:
        fill_ledger(store, 1)
    # Older than every PostgreSQL snapshot: rotation keeps it as its own database's newest.
    sqlite_one = backup_snapshot.take_snapshot(db_path, folder, now=start - timedelta(days=9))

    plan = backup_rotation.plan_prune(folder, backup_rotation.Policy(daily=1, weekly=0, monthly=0))

    assert [m.id for m in plan.delete] == [days[0].id, days[1].id]
    assert {m.id for m, _ in plan.keep} == {days[2].id, sqlite_one.id}
    config = folder.parent / "config.toml"
    config.write_text("[backup]\nkeep_daily = 1\nkeep_weekly = 0\nkeep_monthly = 0\n")
    pruned = cli(
        "backup",
        "prune",
        "--backup-dir",
        str(folder),
        "--json",
        env={"TRADEDB_CONFIG": str(config)},
    )
    assert pruned.exit_code == 0, pruned.stderr
    assert json.loads(pruned.stdout)["delete"] == [days[0].id, days[1].id]
    assert sorted(p.name for p in folder.glob("*.pgdump")) == [days[2].file]
    listed = json.loads(cli("backup", "list", "--backup-dir", str(folder), "--json").stdout)
    assert {(b["id"], b["engine"]) for b in listed} == {
        (days[2].id, "postgresql"),
        (sqlite_one.id, "sqlite"),
    }


def test_full_backup_round_trip(
    live: str, folder: Path, tmp_path: Path, pg_server: Any, new_database: Any
) -> None:
    archives = tmp_path / "archives" / "market_data" / "exchange=kraken"
    archives.mkdir(parents=True)
    (archives / "candles.parquet").write_bytes(b"PAR1 stand-in PAR1")
    config = tmp_path / "config.toml"
    config.write_text("[backup]\nkeep_daily = 3\n", encoding="utf-8")
    snapshot = backup_snapshot.take_snapshot(live, folder)
    full = backup_full.take_full(live, folder, archives=tmp_path / "archives", config=config)

    assert full.engine == "postgresql"
    assert [v.ok for v in backup_catalog.verify(folder, server=parse_target(live))] == [True, True]
    out = tmp_path / "restored"
    needs_db = one_line_error(
        cli("restore", full.id, "--to", str(out), "--backup-dir", str(folder))
    )
    assert "--to-db" in needs_db
    assert not out.exists()

    copy = role_url(pg_server, new_database("full_copy"))
    done = cli(
        "restore", full.id, "--to", str(out), "--to-db", copy, "--backup-dir", str(folder), "--json"
    )
    assert done.exit_code == 0, done.stderr
    places = json.loads(done.stdout)
    assert places["database"].startswith(f"postgresql://{ROLE}:***@")
    assert all_rows(copy) == all_rows(live)
    assert (out / "archives/market_data/exchange=kraken/candles.parquet").read_bytes() == (
        archives / "candles.parquet"
    ).read_bytes()
    assert (out / "config.toml").read_text() == config.read_text()
    assert (out / "manifests" / f"{snapshot.id}.manifest.json").is_file()

    _, restored = backup_catalog.restore(folder, full.id, out, to_db=copy, force=True)
    assert isinstance(restored, FullRestore)
    assert all_rows(copy) == all_rows(live)


def test_upload_and_fetch_copy_postgresql_backups(live: str, folder: Path, tmp_path: Path) -> None:
    manifest = backup_snapshot.take_snapshot(live, folder)
    remote = tmp_path / "remote"

    [sent] = backup_upload.upload(folder, str(remote))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fetched = backup_upload.fetch(str(remote), manifest.id, elsewhere)

    assert sent.remote_file == manifest.file
    assert fetched == manifest
    assert [v.ok for v in backup_catalog.verify(elsewhere, server=parse_target(live))] == [True]


def test_maintain_takes_the_snapshot_and_full_backup_of_a_postgresql_database(
    live: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    env = {
        "TRADEDB_BACKUP_DIR": str(tmp_path / "backups"),
        "TRADEDB_CONFIG": str(tmp_path / "no-config.toml"),
    }
    jobs = [job for job in maintain.default_jobs() if job.name in ("snapshot", "full")]
    target = parse_target(live)

    outcomes = maintain.run_due(target, jobs, env=env)

    assert [(o.name, o.status) for o in outcomes] == [("snapshot", "done"), ("full", "done")]
    manifests = backup_catalog.list_backups(tmp_path / "backups")
    assert [(m.kind, m.engine) for m in manifests] == [
        ("snapshot", "postgresql"),
        ("full", "postgresql"),
    ]
    schedule = maintain.schedule_path(target)
    assert schedule.is_relative_to(tmp_path / "data")
    assert PASSWORD not in schedule.read_text()

    shown = cli("maintain", "--print-schedule", "--db", live)
    assert shown.exit_code == 0, shown.stderr
    assert f"--db 'postgresql://{ROLE}@127.0.0.1:" in shown.stdout
    assert "~/.pgpass" in shown.stdout


def test_the_password_goes_to_pg_dump_in_its_environment_only(
    live: str, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any user of the machine can read a command line; the password is not on it."""
    seen: list[tuple[list[str], dict[str, str]]] = []
    real = subprocess.run

    def watching(args: list[str], **kwargs: Any) -> Any:
        seen.append((list(args), dict(kwargs.get("env") or os.environ)))
        return real(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", watching)
    manifest = backup_snapshot.take_snapshot(live, folder)
    backup_catalog.verify(folder, manifest.id, server=parse_target(live))

    runs = [(args, env) for args, env in seen if Path(args[0]).name in ("pg_dump", "pg_restore")]
    assert {Path(args[0]).name for args, _ in runs} == {"pg_dump", "pg_restore"}
    for args, env in runs:
        assert not any(PASSWORD in arg or QUOTED in arg for arg in args), args
        assert env["PGPASSWORD"] == PASSWORD
