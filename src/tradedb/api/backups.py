"""Backups in one folder: snapshots and full backups of a database, their list, checks,
rotation, cloud copies and restores, with SHA-256 manifests (docs/operations.md).

A database is backed up by where it is, never opened for its records, so one at an older
schema is backed up as well (before `tradedb init` upgrades it). The folder is
`--backup-dir`, else $TRADEDB_BACKUP_DIR, else `[backup] dir` in the config file, else
`backups/` beside the database (for the default database on Windows with a D: drive, the
spec's D:\\backups\\crypto-bot\\).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tradedb.api.admin import Locator, locate
from tradedb.services.location import (
    BackupLocation,
    DatabaseLocation,
    config_file,
    ensure_backup_dir,
    resolve_backup_dir,
)
from tradedb.services.ops import (
    backup_catalog,
    backup_full,
    backup_rotation,
    backup_snapshot,
    backup_upload,
)
from tradedb.services.ops.backup_full import FullRestore
from tradedb.services.ops.backup_manifest import BackupError, DamagedManifest, Manifest
from tradedb.store.engines import Target

Progress = Callable[[str], None]


@dataclass(frozen=True)
class FullBackup:
    """A full backup taken, and the Parquet archives it holds (None: none configured)."""

    manifest: Manifest
    archives: Path | None


class Backups:
    """The backups of one folder; the folder is resolved when it is first needed. Without
    `folder` (and without $TRADEDB_BACKUP_DIR or `[backup] dir`) it is `backups/` beside
    `database` (a path or URL; None: $TRADEDB_DB, the config file, the default)."""

    def __init__(
        self,
        folder: str | os.PathLike[str] | None = None,
        *,
        database: Locator | DatabaseLocation | None = None,
    ) -> None:
        self._option = None if folder is None else os.fspath(folder)
        self._database = database

    @property
    def location(self) -> BackupLocation:
        """The folder and where it was named (--backup-dir, the environment, ...)."""
        return self._location(self._database)

    def _location(self, database: Locator | DatabaseLocation | None) -> BackupLocation:
        if self._option:
            return resolve_backup_dir(self._option)
        return resolve_backup_dir(None, database=locate(database).target)

    @property
    def folder(self) -> Path:
        return self.location.path

    def existing_folder(self) -> Path:
        """The folder, which must exist already (reading backups never creates one)."""
        location = self.location
        if not location.path.is_dir():
            raise BackupError(
                f"backup folder {location.path} (from {location.source}) does not exist yet"
            )
        return location.path

    # --- taking backups ------------------------------------------------------------------

    def snapshot(
        self,
        database: Locator | DatabaseLocation | None = None,
        *,
        progress: Progress | None = None,
    ) -> Manifest:
        """A consistent online snapshot (SQLite: VACUUM INTO and zstd; PostgreSQL:
        pg_dump's custom format). The folder is created (owner-only) once the database is
        known to be usable."""
        database = self._database if database is None else database
        target = locate(database).target
        return backup_snapshot.take_snapshot(target, self._location(database), progress=progress)

    def full(
        self,
        database: Locator | DatabaseLocation | None = None,
        *,
        archive_dir: str | None = None,
        progress: Progress | None = None,
    ) -> FullBackup:
        """One archive of the snapshot, retention's Parquet archives (`archive_dir`, else
        `[retention] archive_dir`, else the folder beside the database if it exists), the
        config file and the manifests."""
        database = self._database if database is None else database
        target = locate(database).target
        location = self._location(database)
        archives = backup_full.archive_dir(archive_dir, target)
        manifest = backup_full.take_full(
            target, location, archives=archives, config=config_file(), progress=progress
        )
        return FullBackup(manifest, archives)

    # --- what the folder holds -----------------------------------------------------------

    def manifests(self) -> list[Manifest]:
        """The backups in the folder (those with a valid manifest), oldest first."""
        return backup_catalog.list_backups(self.folder)

    def damaged_manifests(self) -> list[DamagedManifest]:
        """Manifests in the folder that cannot be read: backups damaged since they were
        taken (rotation never deletes them; `verify` fails them)."""
        return backup_catalog.damaged_manifests(self.folder)

    def verify(
        self,
        backup_id: str | None = None,
        *,
        server: Locator | DatabaseLocation | None = None,
    ) -> list[backup_catalog.Verdict]:
        """Check one backup (every one without `backup_id`): checksums, then a scratch copy
        read back (SQLite: integrity_check; PostgreSQL: pg_restore into a scratch database
        on `server`) and the ledger audit on it."""
        folder = self.existing_folder()
        scratch_server = locate(server).target
        return backup_catalog.verify(folder, backup_id, server=scratch_server)

    def prune_plan(self, policy: backup_rotation.Policy | None = None) -> backup_rotation.PrunePlan:
        """What the rotation keeps (and why) and what it deletes, deleting nothing; the
        policy is the config's [backup] keep_daily/weekly/monthly unless given."""
        folder = self.existing_folder()
        return backup_rotation.plan_prune(folder, policy or backup_rotation.Policy.from_config())

    def prune(self, plan: backup_rotation.PrunePlan) -> list[Path]:
        """Delete what `plan` deletes; the files deleted."""
        return backup_rotation.prune(self.existing_folder(), plan)

    # --- copies elsewhere ----------------------------------------------------------------

    def upload(
        self,
        to: str,
        backup_ids: Sequence[str] | None = None,
        *,
        encrypt: bool = False,
        endpoint_url: str | None = None,
    ) -> list[backup_upload.Transfer]:
        """Copy backups (the newest snapshot by default, or 'all') to an fsspec URL,
        skipping those already there; `encrypt` with $TRADEDB_BACKUP_PASSPHRASE first."""
        folder = self.existing_folder()
        passphrase = backup_upload.passphrase_from() if encrypt else None
        return backup_upload.upload(
            folder,
            to,
            backup_ids=list(backup_ids) if backup_ids else None,
            passphrase=passphrase,
            options=backup_upload.storage_options(to, endpoint_url),
        )

    def fetch(self, url: str, backup_id: str, *, endpoint_url: str | None = None) -> Manifest:
        """Copy an uploaded backup back into the folder (creating it), decrypting it with
        $TRADEDB_BACKUP_PASSPHRASE if it was encrypted."""
        folder = ensure_backup_dir(self.location)
        passphrase = backup_upload.passphrase_if_set()
        return backup_upload.fetch(
            url,
            backup_id,
            folder,
            passphrase=passphrase,
            options=backup_upload.storage_options(url, endpoint_url),
        )

    def restore(
        self,
        backup_id: str,
        to: str,
        *,
        to_db: str | None = None,
        force: bool = False,
    ) -> tuple[Manifest, Target | FullRestore]:
        """Restore a snapshot to a database `to`, or a full backup into the folder `to`
        (its database to `to_db`). Verified first; nothing is replaced without `force`."""
        folder = self.existing_folder()
        return backup_catalog.restore(folder, backup_id, to, to_db=to_db, force=force)

    @staticmethod
    def restore_checks(manifest: Manifest) -> str:
        """What a restore of this backup checked before it wrote anything, for people."""
        return backup_catalog.restore_checks(manifest)
