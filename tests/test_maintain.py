"""tradedb maintain: what is due runs, what ran is remembered, a failure is retried next
time without blocking the other jobs, and the real jobs run against a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli_harness import isolated_environ
from tradedb.services.ops import maintain
from tradedb.services.ops.maintain import Job, JobContext, MaintainError, run_due
from tradedb.store import Store

MONDAY = datetime(2024, 1, 29, 3, 0, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.failing: set[str] = set()

    def job(self, name: str, period: maintain.Period) -> Job:
        def run(context: JobContext) -> str:
            self.calls.append(name)
            if name in self.failing:
                raise OSError(f"{name} broke")
            return f"{name} ok"

        return Job(name, period, run)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def jobs(recorder: Recorder) -> list[Job]:
    return [
        recorder.job("daily", "day"),
        recorder.job("weekly", "week"),
        recorder.job("m", "month"),
    ]


def test_everything_runs_the_first_time_then_only_what_is_due(
    db_path: Path, recorder: Recorder
) -> None:
    first = run_due(db_path, jobs(recorder), now=MONDAY, env={})
    assert [o.status for o in first] == ["done", "done", "done"]

    run_due(db_path, jobs(recorder), now=MONDAY.replace(hour=23), env={})  # same day
    run_due(db_path, jobs(recorder), now=datetime(2024, 1, 30, 0, 5, tzinfo=UTC), env={})
    run_due(db_path, jobs(recorder), now=datetime(2024, 2, 4, 12, tzinfo=UTC), env={})  # Sunday
    run_due(db_path, jobs(recorder), now=datetime(2024, 2, 5, 1, tzinfo=UTC), env={})  # Monday

    assert recorder.calls == [
        "daily", "weekly", "m",
        "daily",  # next UTC day
        "daily", "m",  # same ISO week, new month
        "daily", "weekly",  # new ISO week
    ]  # fmt: skip


def test_a_failed_job_is_reported_retried_and_does_not_block_the_others(
    db_path: Path, recorder: Recorder
) -> None:
    recorder.failing.add("daily")

    outcomes = run_due(db_path, jobs(recorder), now=MONDAY, env={})

    assert [o.status for o in outcomes] == ["failed", "done", "done"]
    assert outcomes[0].detail == "OSError: daily broke"
    recorder.failing.clear()
    again = run_due(db_path, jobs(recorder), now=MONDAY.replace(hour=4), env={})
    assert [o.status for o in again] == ["done", "not due", "not due"]
    state = json.loads(maintain.schedule_path(db_path).read_text())["jobs"]["daily"]
    assert state["last_error"] is None
    assert state["last_success"] == MONDAY.replace(hour=4).isoformat()


def test_the_schedule_survives_a_new_process_and_is_owner_only(
    db_path: Path, recorder: Recorder
) -> None:
    run_due(db_path, jobs(recorder), now=MONDAY, env={})

    reloaded = maintain.Schedule.load(maintain.schedule_path(db_path))

    assert reloaded.jobs["weekly"].last_success == MONDAY.isoformat()
    assert maintain.schedule_path(db_path).stat().st_mode & 0o777 == 0o600
    assert maintain.next_due(db_path, jobs(recorder), now=MONDAY) == datetime(
        2024, 1, 30, tzinfo=UTC
    )


@pytest.mark.fault("bad input")
def test_force_runs_a_job_that_is_not_due_and_unknown_names_are_refused(
    db_path: Path, recorder: Recorder
) -> None:
    run_due(db_path, jobs(recorder), now=MONDAY, env={})

    outcomes = run_due(db_path, jobs(recorder), now=MONDAY, env={}, force=["m"])

    assert [o.status for o in outcomes] == ["not due", "not due", "done"]
    with pytest.raises(MaintainError, match="unknown job 'nope'"):
        run_due(db_path, jobs(recorder), now=MONDAY, env={}, force=["nope"])


@pytest.mark.fault("load")
def test_a_second_maintain_on_the_same_database_is_refused(
    db_path: Path, recorder: Recorder
) -> None:
    # Another process running `maintain` holds the schedule's lock (POSIX locks are per
    # process, so the holder must be another one; on Windows, per handle).
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, f"{db_path}-maintain.lock"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(MaintainError, match="another `tradedb maintain` is running"):
            run_due(db_path, jobs(recorder), now=MONDAY, env={})
    finally:
        holder.kill()
        holder.wait()
    assert recorder.calls == []
    run_due(db_path, jobs(recorder), now=MONDAY, env={})  # the lock went with the process
    assert recorder.calls == ["daily", "weekly", "m"]


HOLD_LOCK = (
    "import os, sys, time\n"
    "from tradedb import file_locks\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
    "file_locks.lock(fd)\n"
    "print('locked', flush=True)\n"
    "time.sleep(60)\n"
)


def test_the_cloud_copy_is_skipped_until_configured(db_path: Path, tmp_path: Path) -> None:
    env = {"TRADEDB_CONFIG": str(tmp_path / "none.toml")}
    cloud = [job for job in maintain.default_jobs() if job.name == "cloud"]

    outcomes = run_due(db_path, cloud, now=MONDAY, env=env)

    assert outcomes[0].status == "skipped"
    assert "cloud_to" in outcomes[0].detail
    assert (
        maintain.Schedule.load(maintain.schedule_path(db_path)).jobs["cloud"].last_success is None
    )


def test_a_missing_implementation_is_unavailable_not_a_crash(db_path: Path) -> None:
    def needs_missing(context: JobContext) -> str:
        maintain._public("tradedb.services.ops.no_such_module", "widgets")
        return "never"

    outcomes = run_due(db_path, [Job("widgets", "day", needs_missing)], now=MONDAY, env={})

    assert outcomes[0].status == "unavailable"
    assert "widgets are not available" in outcomes[0].detail


def test_the_real_jobs_run_on_a_real_database(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite"
    Store.open(database).close()
    backups = tmp_path / "backups"
    config = tmp_path / "config.toml"
    config.write_text(f'[maintain]\ncloud_to = "{tmp_path / "cloud"}"\n')
    env = {**os.environ, "TRADEDB_BACKUP_DIR": str(backups), "TRADEDB_CONFIG": str(config)}

    outcomes = {o.name: o for o in run_due(database, now=MONDAY, env=env)}

    report = {name: (o.status, o.detail) for name, o in outcomes.items()}
    assert outcomes["snapshot"].status == "done", report
    assert outcomes["retention"].status == "done", report
    assert outcomes["cloud"].status == "done", report
    assert outcomes["full"].status == "done", report
    assert any((tmp_path / "cloud").rglob("*")), "nothing reached the cloud folder"


def test_cli_once_prints_a_json_report_and_print_schedule(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite"
    Store.open(database).close()
    env = isolated_environ(tmp_path)
    env["TRADEDB_BACKUP_DIR"] = str(tmp_path / "backups")
    command = [sys.executable, "-m", "tradedb", "maintain", "--db", str(database)]

    shown = subprocess.run(
        [*command, "--print-schedule"], env=env, capture_output=True, text=True, check=True
    )
    assert f"maintain --once --db {database}" in shown.stdout
    assert "schtasks /Create" in shown.stdout

    ran = subprocess.run(
        [*command, "--once", "--json"], env=env, capture_output=True, text=True, check=False
    )
    statuses = {o["name"]: o["status"] for o in json.loads(ran.stdout)}
    assert statuses["snapshot"] == "done", ran.stdout
    assert statuses["cloud"] == "skipped"
    assert ran.returncode == (1 if "failed" in statuses.values() else 0)
    again = subprocess.run(
        [*command, "--once", "--json"], env=env, capture_output=True, text=True, check=False
    )
    assert {o["name"]: o["status"] for o in json.loads(again.stdout)}["snapshot"] == "not due"


def old_snapshots(database: Path, folder: Path, days: list[int]) -> list[str]:
    """Snapshots taken on these days of January 2024, as earlier runs would have."""
    from tradedb.services.ops import backup_snapshot

    folder.mkdir(mode=0o700, exist_ok=True)
    return [
        backup_snapshot.take_snapshot(
            database, folder, now=datetime(2024, 1, day, 3, tzinfo=UTC)
        ).id
        for day in days
    ]


def test_each_backup_is_followed_by_rotation_of_the_folder(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite"
    Store.open(database).close()
    backups = tmp_path / "backups"
    old = old_snapshots(database, backups, [20, 21, 22, 23])
    config = tmp_path / "config.toml"
    config.write_text("[backup]\nkeep_daily = 2\nkeep_weekly = 0\nkeep_monthly = 0\n")
    env = {**os.environ, "TRADEDB_BACKUP_DIR": str(backups), "TRADEDB_CONFIG": str(config)}
    snapshot = [job for job in maintain.default_jobs() if job.name == "snapshot"]

    [outcome] = run_due(database, snapshot, now=MONDAY, env=env)

    assert outcome.status == "done", outcome.detail
    assert "rotation deleted 3 old backup(s)" in outcome.detail
    kept = sorted(path.name for path in backups.glob("*.manifest.json"))
    assert len(kept) == 2
    assert f"{old[-1]}.manifest.json" in kept


def test_the_cloud_copies_rotate_by_their_own_policy(tmp_path: Path) -> None:
    from tradedb.services.ops import backup_upload

    database = tmp_path / "bot.sqlite"
    Store.open(database).close()
    backups, cloud = tmp_path / "backups", tmp_path / "cloud"
    old = old_snapshots(database, backups, [8, 15, 22, 23])
    backup_upload.upload(backups, str(cloud), backup_ids=["all"])
    config = tmp_path / "config.toml"
    config.write_text(
        f'[maintain]\ncloud_to = "{cloud}"\n'
        "cloud_keep_daily = 1\ncloud_keep_weekly = 2\ncloud_keep_monthly = 0\n"
    )
    env = {**os.environ, "TRADEDB_BACKUP_DIR": str(backups), "TRADEDB_CONFIG": str(config)}
    cloud_job = [job for job in maintain.default_jobs() if job.name == "cloud"]

    [outcome] = run_due(database, cloud_job, now=MONDAY, env=env)

    assert outcome.status == "done", outcome.detail
    remaining = sorted(path.name.removesuffix(".manifest.json") for path in cloud.glob("*.json"))
    # The newest (23rd), and the newest of the two most recent ISO weeks (the 23rd, the 15th).
    assert remaining == sorted([old[1], old[3]])
    assert sorted(path.name for path in cloud.glob("*.zst")) == [
        f"{i}.sqlite.zst" for i in remaining
    ]
    # The local folder keeps its own policy (7 daily): nothing was deleted there.
    assert len(list(backups.glob("*.manifest.json"))) == 4


def test_backups_go_beside_the_database_by_default(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    database = folder / "bot.sqlite"
    Store.open(database).close()
    env = {**isolated_environ(tmp_path)}
    snapshot = [job for job in maintain.default_jobs() if job.name == "snapshot"]

    [outcome] = run_due(database, snapshot, now=MONDAY, env=env)

    assert outcome.status == "done", outcome.detail
    assert len(list((folder / "backups").glob("snapshot-*.sqlite.zst"))) == 1


def test_every_takes_a_duration_as_tickers_every_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from tradedb.api.admin import Maintenance
    from tradedb.cli.app import app

    database = tmp_path / "bot.sqlite"
    Store.open(database).close()
    waits: list[float] = []
    monkeypatch.setattr(
        Maintenance, "run_forever", lambda self, check_every_s, report: waits.append(check_every_s)
    )
    runner = CliRunner()

    ran = runner.invoke(app, ["maintain", "--db", str(database), "--every", "10m"])
    refused = runner.invoke(app, ["maintain", "--db", str(database), "--every", "3600"])

    assert ran.exit_code == 0, ran.output
    assert waits == [600.0]
    assert refused.exit_code == 2
    assert "every='3600'" in refused.stderr
    assert refused.stderr.strip().count("\n") == 0
