"""The full backup (the spec's monthly full system backup): one tar file holding

    database.sqlite.zst     a snapshot taken as `take_snapshot` takes one (on PostgreSQL,
     or database.pgdump     pg_dump's custom format, as a PostgreSQL snapshot holds it)
    archives/...            the Parquet archives of retention (a local archive folder; one in
                            an object store is not copied: it lives in the store)
    config/config.toml      the config file, when there is one
    manifests/...           the manifests of every backup in the folder at that moment

with its manifest beside it, like a snapshot's. Parquet is already zstd-compressed and the
database is compressed on its own, so the tar itself is not compressed again.
`restore_full` puts it all back into one folder with a single call; a PostgreSQL dump
goes into a new database on a server instead (`--to-db`). It records the restored archive
folder beside the restored database (archive_location's link), so the restored database
reads its archives with nothing to configure.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from tradedb import owner_only
from tradedb.services.location import BackupLocation, config_section
from tradedb.services.ops import archive_location
from tradedb.services.ops.backup_manifest import (
    MANIFEST_SUFFIX,
    TEMP_PREFIX,
    BackupError,
    Manifest,
    fsync_folder,
    new_backup_id,
    owner_only_file,
)
from tradedb.services.ops.backup_snapshot import (
    Database,
    Progress,
    SnapshotData,
    finish,
    install_copy,
    ready_folder,
    storage_error,
    write_snapshot_data,
)
from tradedb.store.engines import Target, companion_base, parse_target
from tradedb.store.engines.backups import RestoreMethod, StoredCopy, backup_source, file_sha256

ARCHIVES = "archives"
CONFIG_MEMBER = "config/config.toml"
MANIFESTS = "manifests"
RESTORED_CONFIG = "config.toml"


@dataclass(frozen=True)
class FullRestore:
    database: Target
    archives: Path | None
    config: Path | None
    manifests: Path | None


def archive_dir(
    option: str | None, database: Database, env: Mapping[str, str] | None = None
) -> Path | None:
    """Where retention keeps its Parquet archives: the option, else retention's own rule
    (`archive_location.locate`: the folder a restore recorded, `[retention] archive_dir`,
    else `<stem>-archives/` beside the database's companion base). None when that default
    folder does not exist, as before retention's first run, and for an object store."""
    if option:
        return Path(option).expanduser()
    base = companion_base(parse_target(database))
    folder = archive_location.locate(base, env)
    if not folder.is_local:
        return None
    named = archive_location.read_link(base) is not None
    configured = config_section("retention", env).get("archive_dir") is not None
    return folder.path if named or configured or folder.path.is_dir() else None


def take_full(
    database: Database,
    folder: Path | BackupLocation,
    *,
    archives: Path | None,
    config: Path | None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> Manifest:
    now = now or datetime.now(UTC)
    if archives is not None and not archives.is_dir():
        raise BackupError(f"archive folder {archives} does not exist")
    source = backup_source(database)
    source.check()
    folder = ready_folder(folder)
    backup_id = new_backup_id(folder, "full", now)
    manifests = sorted(folder.glob(f"*{MANIFEST_SUFFIX}"))
    snapshot = write_snapshot_data(source, folder, backup_id, progress=progress)
    temp = folder / f"{TEMP_PREFIX}{backup_id}.tar"
    target = folder / f"{backup_id}.tar"
    try:
        if progress:
            progress("writing the full backup (tar)")
        with owner_only_file(temp) as handle, tarfile.open(fileobj=handle, mode="w") as tar:
            tar.add(snapshot.path, arcname=source.full_member, filter=_owner_only_member)
            if archives is not None:
                tar.add(archives, arcname=ARCHIVES, filter=_owner_only_member)
            if config is not None and config.is_file():
                tar.add(config, arcname=CONFIG_MEMBER, filter=_owner_only_member)
            for manifest in manifests:
                tar.add(manifest, arcname=f"{MANIFESTS}/{manifest.name}", filter=_owner_only_member)
        sha256, size = file_sha256(temp)
        os.replace(temp, target)
        fsync_folder(folder)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        raise storage_error(folder, exc) from None
    finally:
        snapshot.path.unlink(missing_ok=True)
    whole = replace(snapshot.copy, size_bytes=size, sha256=sha256)
    return finish(folder, backup_id, "full", now, SnapshotData(target, whole), source=source)


def _owner_only_member(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """Members are owner-only whatever the mode of the file they came from (a config
    file, an archive written by an older tradedb), so that no tool extracting the tar
    makes them readable by others."""
    mode = owner_only.FOLDER_MODE if member.isdir() else owner_only.FILE_MODE
    return member.replace(mode=mode, deep=False)


def _extract_owner_only(tar: tarfile.TarFile, members: list[tarfile.TarInfo], to: Path) -> None:
    """Extract regular files and folders, each owner-only from its creation: tarfile's
    own extraction creates files and missing parent folders with the default mode and
    sets the member's mode only afterwards."""
    for member in members:
        try:
            checked = tarfile.data_filter(member, str(to))
        except tarfile.FilterError as exc:
            raise BackupError(f"the full backup holds an unsafe member: {exc}") from None
        target = to / checked.name
        if checked.isdir():
            owner_only.make_folders(target)
        elif checked.isfile():
            owner_only.make_folders(target.parent)
            source = tar.extractfile(checked)
            assert source is not None  # a regular file
            with source, owner_only.new_file(target, replace=True) as writer:
                shutil.copyfileobj(source, writer)


def open_database_member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        member = tar.extractfile(name)
    except KeyError:
        member = None
    if member is None:
        raise BackupError(f"the full backup holds no {name}")
    return member


@contextmanager
def database_member(path: Path, name: str) -> Iterator[IO[bytes]]:
    """The database's stream inside a full backup's tar."""
    with tarfile.open(path, mode="r") as tar, open_database_member(tar, name) as member:
        yield member


def database_destination(
    manifest: Manifest, method: RestoreMethod, to: Path, to_db: str | Target | None
) -> Target:
    """Where a full backup restored into the folder `to` puts its database: `to_db`, else
    the engine's place in the folder (a SQLite file; a PostgreSQL dump has none)."""
    if to_db is not None:
        return parse_target(to_db)
    default = method.default_destination(to)
    if default is None:
        raise BackupError(
            f"backup {manifest.id} holds a PostgreSQL dump: name the new database to restore "
            "it into with `to_db=postgresql://user@host/newname`"
        )
    return default


def restore_full(
    path: Path,
    manifest: Manifest,
    method: RestoreMethod,
    to: Path,
    database: Target,
    *,
    force: bool,
) -> FullRestore:
    """Restore a full backup (already checked against its manifest) into the folder `to`:
    archives/, config.toml and manifests/, and its database to `database` (accepted by
    `method.check_destination`): tradedb.sqlite in the folder by default. Anything
    already there is replaced only with `force`. The restored database's archive folder
    is recorded beside it (`<stem>-archives.json`), so it reads `to/archives`."""
    with tarfile.open(path, mode="r") as tar:
        names = tar.getnames()
        has_archives = any(n == ARCHIVES or n.startswith(f"{ARCHIVES}/") for n in names)
        has_config = CONFIG_MEMBER in names
        has_manifests = any(n.startswith(f"{MANIFESTS}/") for n in names)
        others = [
            target
            for target, present in (
                (to / ARCHIVES, has_archives),
                (to / RESTORED_CONFIG, has_config),
                (to / MANIFESTS, has_manifests),
            )
            if present and target.exists()
        ]
        if others and not force:
            raise BackupError(f"{others[0]} exists; give `force=True` to replace it")
        data = StoredCopy(
            open=lambda: database_member(path, method.full_member),
            sha256=manifest.database_sha256,
            size_bytes=manifest.database_bytes,
            backup_id=manifest.id,
            workspace=path.parent,
        )
        install_copy(method, data, database, force=force)
        for target in others:
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink()
        members = [
            m
            for m in tar.getmembers()
            if m.name.startswith((f"{ARCHIVES}/", f"{MANIFESTS}/")) or m.name == ARCHIVES
        ]
        _extract_owner_only(tar, members, to)
        if has_config:
            config = tar.extractfile(CONFIG_MEMBER)
            assert config is not None  # a regular file, by the check above
            with config, owner_only.new_file(to / RESTORED_CONFIG, replace=True) as writer:
                shutil.copyfileobj(config, writer)
    base = companion_base(database)
    if has_archives:
        archive_location.write_link(base, to / ARCHIVES)
    else:
        # A link left there names the archives of the database just replaced.
        archive_location.remove_link(base)
    return FullRestore(
        database=database,
        archives=to / ARCHIVES if has_archives else None,
        config=to / RESTORED_CONFIG if has_config else None,
        manifests=to / MANIFESTS if has_manifests else None,
    )
