"""The backups in a folder, whatever their kind and engine: list, verify, restore.

Everything works from the manifests. Verifying a backup checks the stored file's SHA-256
and size, then reads the database inside back into a scratch copy (a temp file in the
folder for SQLite, a scratch database on the server for PostgreSQL), checks it against
the manifest and with the engine's own checks, opens it with tradedb and runs the ledger
audit; the scratch copy is removed afterwards. Restoring does the same checks (all but
the audit) on a copy beside the destination before it puts anything in place.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

from tradedb import owner_only
from tradedb.errors import TradeDBError
from tradedb.services.ledger.audit import audit
from tradedb.services.location import check_database_place
from tradedb.services.ops.backup_full import (
    FullRestore,
    database_destination,
    database_member,
    restore_full,
)
from tradedb.services.ops.backup_manifest import (
    BackupError,
    DamagedManifest,
    Manifest,
    find_manifest,
    read_manifests,
    scan_manifests,
)
from tradedb.services.ops.backup_snapshot import install_copy
from tradedb.store import Store
from tradedb.store.engines import (
    PostgresTarget,
    Target,
    initialize,
    parse_target,
    read_schema_status,
)
from tradedb.store.engines.backups import StoredCopy, file_sha256, restore_method


@dataclass(frozen=True)
class Verdict:
    """What verify found for one backup. `manifest` is None when the manifest itself is
    damaged (its one problem says how)."""

    backup_id: str
    problems: list[str]
    manifest: Manifest | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def list_backups(folder: Path) -> list[Manifest]:
    """The backups in the folder, oldest first (only those with a valid manifest)."""
    return read_manifests(folder)


def damaged_manifests(folder: Path) -> list[DamagedManifest]:
    """The manifests in the folder that cannot be read: backups damaged since they were
    taken, which list and verify report."""
    return scan_manifests(folder)[1]


def verify(
    folder: Path, backup_id: str | None = None, *, server: Target | None = None
) -> list[Verdict]:
    """Check one backup (or every backup, when `backup_id` is None; a damaged manifest is
    a failed verdict of its own). A PostgreSQL backup is restored into a scratch database
    on `server` (a PostgreSQL target); a server that cannot be used is refused before any
    backup is read."""
    damaged: list[DamagedManifest] = []
    if backup_id:
        manifests = [find_manifest(folder, backup_id)]
    else:
        manifests, damaged = scan_manifests(folder)
    for engine in sorted({manifest.engine for manifest in manifests}):
        restore_method(engine).check_scratch_server(server)
    verdicts = [
        Verdict(manifest.id, verify_one(folder, manifest, server), manifest)
        for manifest in manifests
    ]
    return verdicts + [Verdict(broken.backup_id, [str(broken)]) for broken in damaged]


def verify_one(folder: Path, manifest: Manifest, server: Target | None = None) -> list[str]:
    stored = checksum_problems(folder, manifest)
    if stored:
        return stored
    try:
        method = restore_method(manifest.engine)
        with method.scratch(stored_copy(folder, manifest), server=server) as copy:
            return copy.problems() or opened_problems(copy.target, manifest)
    except (BackupError, tarfile.TarError) as exc:
        return [str(exc)]


def opened_problems(copy: Target, manifest: Manifest) -> list[str]:
    """What tradedb finds wrong with a scratch copy: a schema revision other than the
    manifest's, or a broken ledger invariant. A copy at an older schema is upgraded
    first (it is thrown away afterwards), as `tradedb init` would upgrade a restore."""
    try:
        status = read_schema_status(copy)
        if status.current != manifest.schema:
            return [
                f"the database inside is at schema {status.current}, its manifest says "
                f"{manifest.schema}"
            ]
        if not status.up_to_date:
            initialize(copy)
        with Store.open(copy, readonly=True) as store:
            return [f"audit: {problem}" for problem in audit(store)]
    except TradeDBError as exc:
        return [f"tradedb cannot open the database inside: {exc}"]


def checksum_problems(folder: Path, manifest: Manifest) -> list[str]:
    path = folder / manifest.file
    if not path.is_file():
        return [f"{manifest.file} is missing"]
    sha256, size = file_sha256(path)
    if size != manifest.size_bytes:
        return [f"{manifest.file} has {size} bytes, its manifest says {manifest.size_bytes}"]
    if sha256 != manifest.sha256:
        return [f"{manifest.file}: SHA-256 does not match its manifest (the file is damaged)"]
    return []


def restore(
    folder: Path,
    backup_id: str | None,
    to: str | Path | PostgresTarget,
    *,
    to_db: str | Target | None = None,
    force: bool = False,
) -> tuple[Manifest, Target | FullRestore]:
    """Restore a snapshot to `to` (a SQLite file, or a new PostgreSQL database), or a full
    backup into the folder `to` (its database to `to_db`, or a file in that folder).
    Nothing is written unless the destination is free (or `force`), and the backup's
    checksum, the database inside and the engine's checks all agree with the manifest."""
    manifest = find_manifest(folder, backup_id)
    method = restore_method(manifest.engine)
    if manifest.kind == "full":
        return manifest, _restore_full(folder, manifest, to, to_db, force=force)
    if to_db is not None:
        raise BackupError(
            f"backup {manifest.id} is a snapshot: `to_db=...` is for full backups; give the "
            "database as `to=PATH`"
        )
    destination = parse_target(to)
    method.check_destination(manifest.id, destination, force=force)
    _check_place(destination, force=force)
    _refuse_damaged(folder, manifest)
    install_copy(method, stored_copy(folder, manifest), destination, force=force)
    return manifest, destination


def restore_checks(manifest: Manifest) -> str:
    """What a restore of this backup checked before it wrote anything, for people."""
    return restore_method(manifest.engine).checks


def _restore_full(
    folder: Path,
    manifest: Manifest,
    to: str | Path | PostgresTarget,
    to_db: str | Target | None,
    *,
    force: bool,
) -> FullRestore:
    place = parse_target(to)
    if not isinstance(place, Path) or (place.exists() and not place.is_dir()):
        raise BackupError(
            f"`to={place}`: a full backup restores into a folder, and this is not one"
        )
    method = restore_method(manifest.engine)
    database = database_destination(manifest, method, place, to_db)
    inside = isinstance(database, Path) and database.parent == place
    if not inside:
        method.check_destination(manifest.id, database, force=force)
    _check_place(database, force=force)
    if not place.parent.is_dir():
        raise BackupError(
            f"folder {place.parent} does not exist; create it or choose another `to=FOLDER`"
        )
    _refuse_damaged(folder, manifest)
    owner_only.make_folder(place)
    if inside:
        method.check_destination(manifest.id, database, force=force)
    return restore_full(folder / manifest.file, manifest, method, place, database, force=force)


def _check_place(database: Target, *, force: bool) -> None:
    """A restored SQLite file is a new database: the network-share rule applies to it."""
    if isinstance(database, Path):
        check_database_place(
            database, new=True, allow_network_share=force, override="--force (force=True)"
        )


def _refuse_damaged(folder: Path, manifest: Manifest) -> None:
    problems = checksum_problems(folder, manifest)
    if problems:
        raise BackupError(f"backup {manifest.id}: {problems[0]}; nothing was restored")


def stored_copy(folder: Path, manifest: Manifest) -> StoredCopy:
    """The database data of a backup: the file itself for a snapshot, the member inside
    the tar for a full backup."""
    path = folder / manifest.file
    member = restore_method(manifest.engine).full_member
    as_is = (manifest.sha256, manifest.size_bytes) == (
        manifest.database_sha256,
        manifest.database_bytes,
    )
    if manifest.kind == "snapshot":
        return StoredCopy(
            open=lambda: path.open("rb"),
            sha256=manifest.database_sha256,
            size_bytes=manifest.database_bytes,
            backup_id=manifest.id,
            workspace=folder,
            # The stored file is the database data itself (a pg_dump archive).
            path=path if as_is else None,
        )
    return StoredCopy(
        open=lambda: database_member(path, member),
        sha256=manifest.database_sha256,
        size_bytes=manifest.database_bytes,
        backup_id=manifest.id,
        workspace=folder,
    )
