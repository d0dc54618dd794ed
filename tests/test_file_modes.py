"""Every file tradedb writes is readable by its owner only (0600) and every folder it
creates is 0700: backups, archives, cloud copies in a folder, fetched and restored files,
the members of a full backup, reports. Modes are what `stat` shows; the tests run as root
in CI, which bypasses permission checks but not the modes themselves."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_harness import isolated_environ
from market_files import ohlcv_rows, read_feather
from tradedb.store import Store


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems give users (022): without care, files come out 0644."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def tradedb(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "tradedb", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=180,
    )
    assert done.returncode == 0, (args, done.stderr)
    return done


def loose_modes(root: Path) -> list[str]:
    """Every file under `root` (and `root`) that is not 0600, every folder not 0700."""
    found = []
    for path in [root, *sorted(root.rglob("*"))]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        wanted = 0o700 if path.is_dir() else 0o600
        if mode != wanted:
            found.append(f"{path.relative_to(root.parent)}: {mode:o}")
    return found


def test_every_file_and_folder_tradedb_writes_is_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    database = data / "bot.sqlite"
    rows = [
        [ms, *(f"{value:.8f}" for value in values)]
        for ms, *values in ohlcv_rows(read_feather("ETH_BTC-5m.feather"))
    ]
    with Store.open(database) as store:
        store.write_candles(rows, exchange="binance", symbol="ETH/BTC", timeframe="5m")
    # The user's own config file, readable by everyone as editors leave it.
    config = tmp_path / "config.toml"
    config.write_text("[backup]\nkeep_daily = 7\n")
    os.chmod(config, 0o644)
    env = isolated_environ(tmp_path)
    env["TRADEDB_CONFIG"] = str(config)
    db = ("--db", str(database))

    tradedb("retention", "run", *db, env=env)
    # The backup folder is tradedb's default for this database: backups/ beside it.
    snapshot = json.loads(tradedb("backup", "snapshot", *db, "--json", env=env).stdout)
    full = json.loads(tradedb("backup", "full", *db, "--json", env=env).stdout)
    cloud = tmp_path / "cloud" / "bot" / "weekly"
    backups = ("--backup-dir", str(data / "backups"))
    tradedb("backup", "upload", "--to", str(cloud), "all", *backups, env=env)
    fetched = tmp_path / "fetched"
    tradedb(
        "backup", "fetch", full["id"], "--from", str(cloud), "--backup-dir", str(fetched), env=env
    )
    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    tradedb("restore", snapshot["id"], "--to", str(restored / "db.sqlite"), *backups, env=env)
    tradedb("restore", full["id"], "--to", str(tmp_path / "restored-full"), *backups, env=env)

    assert (data / "bot-archives" / "manifest.json").is_file()
    assert list((data / "backups").glob("full-*.tar"))
    assert (tmp_path / "restored-full" / "archives" / "manifest.json").is_file()
    assert (tmp_path / "restored-full" / "config.toml").is_file()
    assert list((tmp_path / "restored-full" / "manifests").iterdir())
    problems = [
        *loose_modes(data),
        *loose_modes(tmp_path / "cloud"),
        *loose_modes(fetched),
        *loose_modes(restored),
        *loose_modes(tmp_path / "restored-full"),
    ]
    assert problems == []


def test_a_full_backups_members_are_owner_only_whatever_their_source(
    db_path: Path, tmp_path: Path
) -> None:
    from tradedb.services.ops import backup_full

    Store.open(db_path).close()
    archives = tmp_path / "archives"
    (archives / "market_data").mkdir(parents=True, mode=0o755)
    (archives / "manifest.json").write_text("{}")
    os.chmod(archives, 0o755)
    os.chmod(archives / "manifest.json", 0o644)
    config = tmp_path / "config.toml"
    config.write_text("")
    os.chmod(config, 0o644)
    folder = tmp_path / "backups"
    folder.mkdir(mode=0o700)

    manifest = backup_full.take_full(db_path, folder, archives=archives, config=config)

    with tarfile.open(folder / manifest.file) as tar:
        modes = {member.name: stat.S_IMODE(member.mode) for member in tar.getmembers()}
    assert {name: mode for name, mode in modes.items() if mode not in (0o600, 0o700)} == {}
    assert modes["archives"] == 0o700
    assert modes["config/config.toml"] == 0o600
