"""Where files go and which database paths are refused, on Windows and elsewhere (issue 18,
item 5 and its bad input).

The machines here run Linux, so Windows is simulated: `Platform(windows=True, ...)` makes
tradedb read paths as Windows does and answer its questions about drives from the test
(platformdirs' Windows folders come from its WIN_PD_OVERRIDE_* variables). Linux's own
rules and its network mounts are checked for real through the CLI, with the mount table
the test gives.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest
from typer.testing import CliRunner

import tradedb
from cli_harness import isolated_environ, run_cli
from tradedb import errors, platform_paths
from tradedb.api.backups import Backups
from tradedb.cli.app import app
from tradedb.errors import DatabaseLocationError, NetworkShareWarning
from tradedb.platform_paths import Platform
from tradedb.services.location import (
    default_backup_dir,
    default_layout,
    prepare_for_writing,
    resolve_database,
)

LOCAL_APPDATA = r"C:\Users\Satoshi Nakamoto\AppData\Local"


def windows(
    drives: str = "CD",
    *,
    remote: str = "",
    long_paths: bool = False,
    current_folder: str = r"C:\Users\Satoshi Nakamoto",
) -> Platform:
    """A Windows machine with these drive letters, of which `remote` are network drives."""
    return Platform(
        windows=True,
        drive_exists=lambda root: root[:1].upper() in drives and root[1:] == ":\\",
        long_paths_enabled=lambda: long_paths,
        drive_is_remote=lambda root: root[:1].upper() in remote,
        current_folder=current_folder,
    )


@pytest.fixture
def windows_user_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", LOCAL_APPDATA)
    monkeypatch.setenv("WIN_PD_OVERRIDE_APPDATA", LOCAL_APPDATA.replace("Local", "Roaming"))


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts as a new process would: no network-share warning shown yet."""
    monkeypatch.setattr(errors, "_said", set())
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        yield


# --- the default layout -----------------------------------------------------------------


def test_with_a_d_drive_windows_uses_the_specifications_layout(
    windows_user_folders: None,
) -> None:
    layout = default_layout(windows("CD"))

    assert layout.database == PureWindowsPath(r"D:\crypto-bot\tradedb.sqlite")
    assert layout.backups == PureWindowsPath(r"D:\backups\crypto-bot")
    assert layout.archives == PureWindowsPath(r"D:\crypto-bot\tradedb-archives")
    assert layout.report == PureWindowsPath(r"D:\crypto-bot\tradedb-report.html")
    # The config file stays with the user's settings, not on the data drive.
    assert layout.config.is_relative_to(PureWindowsPath(LOCAL_APPDATA))


def test_without_a_d_drive_windows_uses_the_users_app_data_folder(
    windows_user_folders: None,
) -> None:
    layout = default_layout(windows("C"))

    folder = PureWindowsPath(LOCAL_APPDATA) / "tradedb" / "tradedb"
    assert layout.database == folder / "tradedb.sqlite"
    assert layout.backups == folder / "backups"
    assert layout.archives == folder / "tradedb-archives"
    assert layout.report == folder / "tradedb-report.html"


def test_linux_uses_the_xdg_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    d_drive_everywhere = Platform(windows=False, drive_exists=lambda root: True)

    layout = default_layout(d_drive_everywhere)

    folder = PurePosixPath(tmp_path / "data" / "tradedb")
    assert layout.database == folder / "tradedb.sqlite"
    assert layout.backups == folder / "backups"
    assert layout.archives == folder / "tradedb-archives"
    assert layout.config == PurePosixPath(tmp_path / "config" / "tradedb" / "config.toml")
    # What the commands use is this layout.
    assert default_backup_dir(None) == Path(layout.backups)


# --- Windows paths that work ------------------------------------------------------------

GOOD_WINDOWS_PATHS = [
    r"D:\crypto-bot\tradedb.sqlite",
    r"D:\crypto bot\my trades.sqlite",
    "D:/crypto-bot/tradedb.sqlite",
    r"\\nas\bot share\tradedb.sqlite",
    r"bots\kraken.sqlite",
    r"C:\Program Files (x86)\bot & co\tradedb.sqlite",
]


@pytest.mark.parametrize("given", GOOD_WINDOWS_PATHS)
def test_windows_paths_resolve_as_given_from_every_source(
    given: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    # Single quotes: TOML's literal strings keep backslashes as they are.
    config.write_text(f"[database]\npath = '{given}'\n", encoding="utf-8")
    sources = {
        "--db": (given, {}),
        "TRADEDB_DB": (None, {"TRADEDB_DB": given}),
        "config file": (None, {"TRADEDB_CONFIG": str(config)}),
    }
    for source, (option, env) in sources.items():
        found = resolve_database(option, env=env, platform=windows())

        assert found.source == source
        assert PureWindowsPath(str(found.target)) == PureWindowsPath(given)
    as_url = resolve_database("sqlite:///" + given.replace("\\", "/"), env={}, platform=windows())
    if PureWindowsPath(given).drive[1:] == ":":
        assert PureWindowsPath(str(as_url.target)) == PureWindowsPath(given)


def test_a_double_quoted_windows_path_in_the_config_file_is_explained(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[database]\npath = "D:\\crypto-bot\\tradedb.sqlite"\n', encoding="utf-8")

    with pytest.raises(DatabaseLocationError) as refused:
        resolve_database(None, env={"TRADEDB_CONFIG": str(config)}, platform=windows())

    assert "write a Windows path in single quotes" in str(refused.value)


# --- Windows paths that are refused, in one line ----------------------------------------

BAD_WINDOWS_PATHS = [
    (r"E:\crypto-bot\tradedb.sqlite", "drive E: does not exist on this computer"),
    (r"D:\bot\CON", "'CON' is a device name on Windows"),
    (r"D:\bot\nul.sqlite", "'nul.sqlite' is a device name on Windows"),
    (r"D:\com1\tradedb.sqlite", "'com1' is a device name on Windows"),
    (r"D:\bot\LPT9.db", "'LPT9.db' is a device name on Windows"),
    (r"D:\bot\tradedb.sqlite.", "ends in a space or a dot"),
    (r"D:\bot \tradedb.sqlite", "'bot ' ends in a space or a dot"),
    (r"D:\bot\trade|db.sqlite", "holds '|', which Windows does not allow"),
    ("D:\\bot\tnew.sqlite", "a double-quoted \\t or \\n is a tab or a newline"),
    ("D:\\" + "a" * 230 + "\\tradedb.sqlite", "the path is too long for Windows"),
]


@pytest.mark.parametrize(("given", "reason"), BAD_WINDOWS_PATHS)
def test_a_path_windows_cannot_hold_is_refused_in_one_line(given: str, reason: str) -> None:
    with pytest.raises(DatabaseLocationError) as refused:
        resolve_database(given, env={}, platform=windows())

    message = str(refused.value)
    assert reason in message
    assert "\n" not in message
    assert message.startswith(repr(given) if "\t" in given else given)


def test_the_length_limit_counts_tradedbs_longest_file_beside_the_database() -> None:
    # 259 characters is MAX_PATH without its NUL; tradedb adds "-maintain.lock" (14).
    fits = "D:\\" + "b" * (259 - 3 - 14 - len("\\x.sqlite")) + "\\x.sqlite"
    one_more = fits.replace("\\x.sqlite", "\\xy.sqlite")

    assert len(fits) + 14 == 259
    resolve_database(fits, env={}, platform=windows())
    with pytest.raises(DatabaseLocationError, match="260 characters, at most 259"):
        resolve_database(one_more, env={}, platform=windows())
    # A relative path is as long as the folder it is in makes it.
    with pytest.raises(DatabaseLocationError, match="too long for Windows"):
        resolve_database(fits[3:], env={}, platform=windows(current_folder="C:\\" + "c" * 40))
    # With Windows' long paths enabled, the limit is 32,767.
    resolve_database(one_more, env={}, platform=windows(long_paths=True))


# --- network shares ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "share"),
    [
        (r"\\nas\bot\tradedb.sqlite", r"\\nas\bot is a network share"),
        (r"\\?\UNC\nas\bot\tradedb.sqlite", r"\\?\UNC\nas\bot is a network share"),
        (r"Z:\crypto-bot\tradedb.sqlite", "drive Z: is a network drive"),
    ],
)
def test_a_new_database_on_a_windows_share_is_refused_unless_allowed(
    given: str, share: str
) -> None:
    platform = windows("CDZ", remote="Z")
    found = resolve_database(given, env={}, platform=platform)

    with pytest.raises(DatabaseLocationError) as refused:
        prepare_for_writing(found, platform=platform)

    assert f"{given}: {share}; SQLite's file locks are unreliable" in str(refused.value)
    assert "tradedb init --force" in str(refused.value)
    with pytest.warns(NetworkShareWarning, match="keep every writer of this database on one"):
        prepare_for_writing(found, platform=platform, allow_network_share=True)


def test_local_windows_drives_are_not_shares() -> None:
    platform = windows("CDZ", remote="Z")
    for given in (r"D:\crypto-bot\tradedb.sqlite", r"\\?\D:\bot\tradedb.sqlite", "bot.sqlite"):
        assert platform_paths.network_share(given, platform) is None


NFS_MOUNT = "99 1 0:50 / {mount} rw,relatime - nfs4 nas:/export/bot rw,vers=4.2\n"


@pytest.fixture
def nfs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder this process believes is an NFS mount (with a space in its name, written
    as mountinfo writes one)."""
    folder = tmp_path / "nas mount"
    folder.mkdir()
    real = platform_paths._mount_table()
    mount = str(folder).replace(" ", "\\040")
    monkeypatch.setattr(
        platform_paths, "_mount_table", lambda: real + NFS_MOUNT.format(mount=mount)
    )
    return folder


def test_on_linux_a_new_database_on_an_nfs_mount_is_refused_and_force_creates_it(
    nfs_folder: Path, tmp_path: Path
) -> None:
    database = nfs_folder / "tradedb.sqlite"
    runner = CliRunner()
    env = isolated_environ(tmp_path)

    refused = runner.invoke(app, ["init", "--db", str(database)], env=env)

    assert refused.exit_code == 2
    assert refused.output.count("\n") == 1, refused.output
    assert f"{nfs_folder} is a network mount (nfs4 from nas:/export/bot)" in refused.output
    assert list(nfs_folder.iterdir()) == []  # nothing was written

    with pytest.warns(NetworkShareWarning, match="nfs4"):
        forced = runner.invoke(app, ["init", "--db", str(database), "--force"], env=env)
    assert forced.exit_code == 0, forced.output
    assert database.is_file()


def test_an_existing_database_on_a_share_opens_with_one_warning(nfs_folder: Path) -> None:
    database = nfs_folder / "tradedb.sqlite"
    with pytest.raises(DatabaseLocationError, match="network mount"):
        tradedb.open(database)
    with pytest.warns(NetworkShareWarning):
        tradedb.open(database, allow_network_share=True).close()

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        for _ in range(3):
            with tradedb.open(database) as db:
                db.ledger.deposit(exchange="kraken", asset="USD", amount="1")

    assert shown == []  # shown once per process: this process already saw it
    with tradedb.open(database, readonly=True) as db:
        assert db.ledger.balance("kraken", "USD").available == 3


def test_a_restore_onto_a_share_is_refused_unless_forced(nfs_folder: Path, tmp_path: Path) -> None:
    local = tmp_path / "local.sqlite"
    with tradedb.open(local) as db:
        db.ledger.deposit(exchange="kraken", asset="USD", amount="7.5")
    backups = Backups(tmp_path / "backups", database=local)
    manifest = backups.snapshot()
    restored = nfs_folder / "restored.sqlite"

    with pytest.raises(DatabaseLocationError, match=r"network mount .*--force \(force=True\)"):
        backups.restore(manifest.id, str(restored))
    assert list(nfs_folder.iterdir()) == []

    with pytest.warns(NetworkShareWarning):
        backups.restore(manifest.id, str(restored), force=True)
    with tradedb.open(restored, readonly=True) as db:
        assert db.ledger.balance("kraken", "USD").available == Decimal("7.5")


def test_a_local_folder_is_not_a_share(tmp_path: Path) -> None:
    assert platform_paths.network_share(tmp_path / "x.sqlite") is None


# --- Linux's own limit, through the CLI -------------------------------------------------


def test_a_file_name_longer_than_linux_allows_is_one_line_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    name = "n" * 245 + ".sqlite"

    ran = run_cli(tmp_path, "init", "--db", name)

    assert ran.returncode == 2
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert "a name in the path is too long: 266 bytes" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["home"]
