"""A real PostgreSQL server for the tests: a cluster made with initdb in a temporary
folder, started with pg_ctl on a free loopback port, stopped at the end.

PostgreSQL refuses to run as root, and CI runs as root: then the cluster belongs to the
`postgres` user (Debian's package creates it) and its commands run through runuser.
Without PostgreSQL, the tests that need it are skipped with a message saying how to
install it; with CI=true they fail instead, so CI cannot pass without them.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

INSTALL_HINT = (
    "PostgreSQL is not installed: install Debian's package (apt-get install postgresql) "
    "to run the PostgreSQL tests; .ci/run does"
)
SUPERUSER = "postgres"
_names = itertools.count(1)


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin folder (initdb, pg_ctl, pg_dump...)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb") or shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """One running cluster; `url(name)` names a database on it."""

    bindir: Path
    folder: Path
    port: int
    as_user: str | None
    version: int = 0

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def command(self, tool: str, *args: str) -> list[str]:
        argv = [str(self.bindir / tool), *args]
        return ["runuser", "-u", self.as_user, "--", *argv] if self.as_user else argv

    def run(self, tool: str, *args: str) -> None:
        subprocess.run(self.command(tool, *args), check=True, capture_output=True, cwd=self.folder)

    def url(self, database: str = "postgres", *, user: str = SUPERUSER, password: str = "") -> str:
        credentials = f"{user}:{password}" if password else user
        return f"postgresql://{credentials}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(), autocommit=True)

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (or a copy of `template`); its name."""
        name = f"t{os.getpid()}_{next(_names)}"
        suffix = ""
        if template:
            # Copying the files is faster than logging them, for databases this small.
            suffix = f" TEMPLATE {template}" + (
                " STRATEGY FILE_COPY" if self.version >= 150000 else ""
            )
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name}{suffix}")
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def start(self) -> None:
        self.run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


def start_server(*, fsync: bool = False) -> Server:
    """A new cluster, started. Without fsync the tests run faster; what they prove about
    clients killed mid-write does not depend on it (the server itself never crashes)."""
    bindir = find_bindir()
    if bindir is None:
        raise FileNotFoundError(INSTALL_HINT)
    as_user = SUPERUSER if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="tradedb-pg-"))
    if as_user:
        shutil.chown(folder, as_user)
    server = Server(bindir, folder, _free_port(), as_user)
    server.run(
        "initdb",
        "-D",
        str(server.data),
        "-U",
        SUPERUSER,
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-sync",
    )
    settings = [
        f"fsync = {'on' if fsync else 'off'}",
        "full_page_writes = off" if not fsync else "",
        "max_connections = 200",
        "shared_buffers = 128MB",
        # A deadlock is found after this wait (1 s by default); the tests that make
        # writers deadlock on purpose would spend most of their time in it.
        "deadlock_timeout = 100ms",
    ]
    conf = server.data / "postgresql.conf"
    with conf.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(line for line in settings if line) + "\n")
    # The superuser is trusted on loopback; every other role must give its password, so
    # that the tests can try a wrong one.
    (server.data / "pg_hba.conf").write_text(
        f"local all {SUPERUSER} trust\n"
        f"host all {SUPERUSER} 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n",
        encoding="utf-8",
    )
    server.start()
    with server.admin() as conn:
        server.version = int(conn.info.server_version)
    return server


def start_for_tests() -> Server:
    """A new server for a test session or module; without PostgreSQL the tests that need
    it are skipped with INSTALL_HINT, or failed when CI=true (CI must run them)."""
    import pytest

    try:
        return start_server()
    except FileNotFoundError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires PostgreSQL: {exc}")
        pytest.skip(str(exc))


def remove(server: Server) -> None:
    try:
        server.stop("immediate")
    finally:
        shutil.rmtree(server.folder, ignore_errors=True)
