"""`tradedb maintain`: runs the maintenance jobs that are due, and remembers when each ran.

A job is a name, a calendar period (day, ISO week, month, in UTC) and a callable. It is
due when it has never succeeded, or its last success fell in an earlier period than now:
run from cron every hour, the daily snapshot runs once a day, at the first run after
midnight UTC, and a missed night is made up at the next run. A job that fails is reported
and stays due, so the next run retries it; the jobs after it still run.

The times are kept in a small JSON file beside the database (`<database>-maintain.json`;
for a PostgreSQL database beside its companion base in the user data folder, see
`companion_base`), written atomically, rather than in bot_config: restoring a snapshot of
the database must not roll the schedule back with it (the restored database would then
seem freshly backed up), and the file can be read when the database cannot.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from tradedb import file_locks, owner_only
from tradedb.errors import TradeDBError
from tradedb.services.location import (
    config_file,
    config_section,
    ensure_backup_dir,
    resolve_backup_dir,
)
from tradedb.store.engines import Target, companion_base

Period = Literal["day", "week", "month"]
Status = Literal["done", "failed", "unavailable", "skipped", "not due"]
OWNER_ONLY = owner_only.FILE_MODE
MAX_PROBLEMS_LOGGED = 20


class MaintainError(TradeDBError):
    """The schedule cannot be run (another `tradedb maintain` holds it, unreadable state)."""


class JobUnavailable(TradeDBError):
    """The job's implementation is not part of this tradedb installation."""


class JobNotConfigured(TradeDBError):
    """The job needs a setting the user has not given (the cloud copy's URL)."""


class DatabaseDamaged(TradeDBError):
    """The engine's check found the database damaged."""

    def __init__(self, database: Target, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"database {database} is damaged: {problems[0]}{more}; restore the newest "
            "backup that verifies"
        )


@dataclass(frozen=True)
class JobContext:
    database: Target
    env: Mapping[str, str]
    now: datetime


@dataclass(frozen=True)
class Job:
    name: str
    period: Period
    run: Callable[[JobContext], str]  # returns one line saying what it did
    # A check for damage: when it fails, the jobs after it that change or copy the
    # database are skipped (retention would delete rows read from damaged pages, and a
    # backup would copy the damage over the last good one in rotation).
    checks_database: bool = False
    needs_sound_database: bool = False


@dataclass
class JobState:
    last_success: str | None = None  # ISO 8601 UTC
    last_attempt: str | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class JobOutcome:
    name: str
    period: Period
    status: Status
    detail: str
    seconds: float = 0.0
    last_success: str | None = None


@dataclass
class Schedule:
    """When each job last ran, as stored in the state file."""

    path: Path
    jobs: dict[str, JobState] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Schedule:
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            jobs = {name: JobState(**state) for name, state in data["jobs"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MaintainError(f"schedule file {path} cannot be read: {exc}") from None
        return cls(path, jobs)

    def state(self, name: str) -> JobState:
        return self.jobs.setdefault(name, JobState())

    def save(self) -> None:
        """Write a new file and rename it over the old one: a crash leaves either."""
        data = {"jobs": {name: vars(state) for name, state in sorted(self.jobs.items())}}
        descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".maintain-")
        try:
            owner_only.restrict(Path(temporary), folder=False)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def schedule_path(database: Target) -> Path:
    return Path(f"{companion_base(database)}-maintain.json")


def period_of(period: Period, moment: datetime) -> str:
    """The calendar period (UTC) a moment falls in: 2024-01-31, 2024-W05, 2024-01."""
    moment = moment.astimezone(UTC)
    if period == "day":
        return moment.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    return moment.strftime("%Y-%m")


def next_period_start(period: Period, moment: datetime) -> datetime:
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day + timedelta(days=1)
    if period == "week":
        return day + timedelta(days=7 - day.weekday())
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def is_due(job: Job, state: JobState, now: datetime) -> bool:
    if state.last_success is None:
        return True
    last = datetime.fromisoformat(state.last_success)
    return period_of(job.period, last) != period_of(job.period, now)


def run_due(
    database: Target,
    jobs: Sequence[Job] | None = None,
    *,
    now: datetime | None = None,
    env: Mapping[str, str] | None = None,
    force: Sequence[str] = (),
    on_start: Callable[[Job], None] | None = None,
) -> list[JobOutcome]:
    """Run every due job (and those named in `force`) once, in order; return what each
    did. A failure is recorded and reported, never raised: the next job still runs."""
    jobs = default_jobs() if jobs is None else jobs
    unknown = set(force) - {job.name for job in jobs}
    if unknown:
        names = ", ".join(job.name for job in jobs)
        raise MaintainError(f"unknown job {sorted(unknown)[0]!r}; the jobs are {names}")
    env = os.environ if env is None else env
    now = now or datetime.now(UTC)
    outcomes = []
    damage: str | None = None
    with _exclusive(database):
        schedule = Schedule.load(schedule_path(database))
        for job in jobs:
            state = schedule.state(job.name)
            if job.name not in force and not is_due(job, state, now):
                outcomes.append(
                    JobOutcome(job.name, job.period, "not due", "", 0.0, state.last_success)
                )
                continue
            if damage is not None and job.needs_sound_database:
                detail = f"not run: {damage} found the database damaged"
                outcomes.append(
                    JobOutcome(job.name, job.period, "skipped", detail, 0.0, state.last_success)
                )
                continue
            if on_start is not None:
                on_start(job)
            outcome = _run_one(job, state, JobContext(database, env, now))
            schedule.save()
            outcomes.append(outcome)
            if job.checks_database and outcome.status == "failed":
                damage = job.name
    return outcomes


def next_due(
    database: Target, jobs: Sequence[Job] | None = None, *, now: datetime | None = None
) -> datetime:
    """When the next job falls due (now, if one is due or last failed)."""
    jobs = default_jobs() if jobs is None else jobs
    now = now or datetime.now(UTC)
    schedule = Schedule.load(schedule_path(database))
    times = []
    for job in jobs:
        state = schedule.jobs.get(job.name, JobState())
        if state.last_success is None or is_due(job, state, now):
            return now
        times.append(next_period_start(job.period, datetime.fromisoformat(state.last_success)))
    return min(times)


def run_forever(
    database: Target,
    *,
    check_every_s: float = 3600.0,
    report: Callable[[list[JobOutcome]], None],
    jobs: Sequence[Job] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run due jobs, then sleep until the next is due (at most `check_every_s`, so that a
    failed job is retried within that time), until interrupted."""
    while True:
        report(run_due(database, jobs))
        wait = (next_due(database, jobs) - datetime.now(UTC)).total_seconds()
        sleep(min(max(wait, 1.0), check_every_s))


def _run_one(job: Job, state: JobState, context: JobContext) -> JobOutcome:
    started = time.monotonic()
    state.last_attempt = context.now.isoformat()
    status: Status
    try:
        detail = job.run(context)
        status = "done"
        state.last_success = context.now.isoformat()
        state.last_error = None
    except JobNotConfigured as exc:
        status, detail = "skipped", str(exc)
    except JobUnavailable as exc:
        status, detail = "unavailable", str(exc)
        state.last_error = detail
    except Exception as exc:  # one job's failure, whatever it is, must not stop the others
        status, detail = "failed", f"{type(exc).__name__}: {exc}"
        state.last_error = detail
    seconds = time.monotonic() - started
    return JobOutcome(job.name, job.period, status, detail, seconds, state.last_success)


@contextmanager
def _exclusive(database: Target) -> Iterator[None]:
    """One `tradedb maintain` at a time per database: cron may start one while the last
    is still taking the monthly backup."""
    base = companion_base(database)
    # A server database's companion folder is tradedb's own, made on first use.
    if base != database:
        owner_only.make_folders(base.parent)
    with file_locks.tried(Path(f"{base}-maintain.lock"), OWNER_ONLY) as taken:
        if not taken:
            raise MaintainError(
                f"another `tradedb maintain` is running on {database}; try again later"
            )
        yield


# --- the jobs ------------------------------------------------------------------------------


def default_jobs() -> list[Job]:
    """The spec's schedule, after a check for damage: SQLite's integrity_check weekly
    and quick_check daily (PostgreSQL: its foreign-key check, see Database.damage_problems),
    then retention and a snapshot daily, the cloud copy weekly, the full backup monthly.
    Retention runs before the snapshot, so that the snapshot is of the trimmed database,
    and the snapshot before the cloud copy, which uploads the newest one."""
    return [
        Job("integrity_check", "week", check_thoroughly, checks_database=True),
        Job("quick_check", "day", check_quickly, checks_database=True),
        Job("retention", "day", run_retention, needs_sound_database=True),
        Job("snapshot", "day", take_snapshot, needs_sound_database=True),
        Job("cloud", "week", copy_to_cloud),
        Job("full", "month", take_full_backup, needs_sound_database=True),
    ]


def check_quickly(context: JobContext) -> str:
    return _check(context, "quick_check", thorough=False)


def check_thoroughly(context: JobContext) -> str:
    return _check(context, "integrity_check", thorough=True)


def _check(context: JobContext, name: str, *, thorough: bool) -> str:
    """Run the engine's check; damage is raised (the job fails, exit status 1) after a
    CRITICAL row goes into bot_logs, where the bot's own log readers see it."""
    store_module = importlib.import_module("tradedb.store")
    try:
        with store_module.Store.open(context.database, readonly=True) as store:
            problems = store.db.damage_problems(thorough=thorough)
    except Exception as exc:  # a file too damaged to open is the worst case of all
        problems = [f"{name}: the database cannot be read: {_first_line(exc)}"]
    if not problems:
        return f"{name}: ok"
    _record_damage(context, name, problems)
    raise DatabaseDamaged(context.database, problems)


def _record_damage(context: JobContext, name: str, problems: list[str]) -> bool:
    """A CRITICAL row in bot_logs, if the database still takes writes (whether it does
    depends on where the damage is); False when it could not be written."""
    store_module = importlib.import_module("tradedb.store")
    logs = importlib.import_module("tradedb.services.ops.logs")
    records = importlib.import_module("tradedb.store.logs")
    message = f"tradedb maintain: {name} found the database damaged: {problems[0]}"
    row = (
        int(context.now.timestamp() * 1000),
        "CRITICAL",
        message,
        "tradedb.maintain",
        None,
        None,
        None,
        logs.metadata_json({"check": name, "problems": problems[:MAX_PROBLEMS_LOGGED]}),
    )
    try:
        with store_module.Store.open(context.database) as store:
            records.LogRecords(store.db).insert_rows([row])
    except Exception:  # the damage may well be in bot_logs itself; the exit status remains
        return False
    return True


def run_retention(context: JobContext) -> str:
    retention = _public("tradedb.services.ops.retention", "retention")
    store_module = importlib.import_module("tradedb.store")
    policy = retention.Policy.from_config(dict(context.env))
    with store_module.Store.open(context.database) as store:
        report = retention.run(store, policy)
    return (
        f"{report.candles_moved} candles and {report.tickers_moved} tickers archived, "
        f"{len(report.deletions)} deletions"
    )


def take_snapshot(context: JobContext) -> str:
    snapshots = _public("tradedb.services.ops.backup_snapshot", "snapshots")
    folder = backup_folder(context)
    manifest = snapshots.take_snapshot(context.database, folder)
    return f"snapshot {manifest.id} in {folder}{_rotate_local(folder, context)}"


def copy_to_cloud(context: JobContext) -> str:
    section = config_section("maintain", context.env)
    url = section.get("cloud_to")
    if not isinstance(url, str) or not url:
        raise JobNotConfigured(
            "no cloud_to in the config's [maintain] table (an s3:// URL or a folder)"
        )
    uploads = _public("tradedb.services.ops.backup_upload", "cloud copies")
    rotation = _public("tradedb.services.ops.backup_rotation", "backup rotation")
    endpoint = section.get("cloud_endpoint")
    passphrase = uploads.passphrase_from(context.env) if section.get("encrypt") else None
    options = uploads.storage_options(url, endpoint if isinstance(endpoint, str) else None)
    transfers = uploads.upload(backup_folder(context), url, passphrase=passphrase, options=options)
    copied = sum(1 for transfer in transfers if not transfer.skipped)
    deleted = uploads.rotate(url, rotation.Policy.for_cloud(context.env), options=options)
    rotated = f"; rotation deleted {len(deleted)} old copy(ies)" if deleted else ""
    return f"{copied} backup(s) copied to {url}{rotated}"


def take_full_backup(context: JobContext) -> str:
    full = _public("tradedb.services.ops.backup_full", "full backups")
    folder = backup_folder(context)
    manifest = full.take_full(
        context.database,
        folder,
        archives=full.archive_dir(None, context.database, context.env),
        config=config_file(context.env),
    )
    return f"full backup {manifest.id} in {folder}{_rotate_local(folder, context)}"


def _rotate_local(folder: Path, context: JobContext) -> str:
    """`tradedb backup prune` after each backup, so that the folder keeps what the
    rotation policy says and no more."""
    rotation = _public("tradedb.services.ops.backup_rotation", "backup rotation")
    plan = rotation.plan_prune(folder, rotation.Policy.from_config(context.env))
    rotation.prune(folder, plan)
    return f"; rotation deleted {len(plan.delete)} old backup(s)" if plan.delete else ""


def backup_folder(context: JobContext) -> Path:
    """The database's backup folder (see `location.resolve_backup_dir`), created
    owner-only if it is missing."""
    location = resolve_backup_dir(None, env=context.env, database=context.database)
    return ensure_backup_dir(location)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _public(module: str, what: str) -> Any:
    """The module that implements a job, imported when the job runs: a missing one
    makes that job unavailable, not `tradedb maintain` unusable."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise JobUnavailable(f"{what} are not available in this installation ({exc})") from None
