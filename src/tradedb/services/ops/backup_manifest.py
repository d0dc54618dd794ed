"""Backup manifests: the record that makes a file in the backup folder a backup.

A backup is a data file plus `<id>.manifest.json`, written last and atomically (temp file,
fsync, rename, fsync of the folder). A data file without a manifest (a backup cut short by
a crash or a full disk) is not a backup: it is never listed, verified, restored or kept by
rotation. A manifest that is there but cannot be read (bad JSON, a missing field, a
checksum that is no SHA-256) is a backup that was damaged after it was taken: it is
reported as such by list and verify, and never deleted by rotation.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import MISSING, asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tradedb.errors import BackupError
from tradedb.store.engines.backups import TEMP_PREFIX, fsync_folder, owner_only_file

# BackupError and the file helpers are shared with the engines' side of backups
# (store/engines/backups.py) and re-exported for the backup services.
__all__ = [
    "FORMAT",
    "ID_PATTERN",
    "MANIFEST_SUFFIX",
    "TEMP_PREFIX",
    "BackupError",
    "DamagedManifest",
    "Kind",
    "Manifest",
    "find_manifest",
    "fsync_folder",
    "manifest_path",
    "missing_extra",
    "new_backup_id",
    "owner_only_file",
    "read_manifests",
    "scan_manifests",
    "write_manifest",
]

FORMAT = "tradedb-backup/1"
MANIFEST_SUFFIX = ".manifest.json"
ID_PATTERN = re.compile(r"^(snapshot|full)-\d{8}T\d{6}Z(-\d+)?$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")

Kind = Literal["snapshot", "full"]


@dataclass(frozen=True)
class Manifest:
    """What a backup holds and how to check it. `sha256` and `size_bytes` are those of
    `file` as stored; `database_sha256` and `database_bytes` those of the database data
    inside it: the SQLite file after decompression, or pg_dump's file as it is.

    `engine` is the engine the database ran on ('sqlite' for manifests written before
    PostgreSQL was supported), `engine_version` its version (the SQLite library's, the
    server's), `tool` what made the copy ('VACUUM INTO', 'pg_dump 15.5'). `source` names
    the database, a PostgreSQL URL with its password masked."""

    id: str
    kind: Kind
    created_at_ms: int
    file: str
    size_bytes: int
    sha256: str
    compression: str
    database_bytes: int
    database_sha256: str
    schema: str | None
    source: str
    format: str = FORMAT
    engine: str = "sqlite"
    engine_version: str | None = None
    tool: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} manifest")
        fields = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        try:
            manifest = cls(**fields)
        except TypeError:
            missing = [
                name
                for name, field in cls.__dataclass_fields__.items()
                if name not in data and field.default is MISSING
            ]
            raise ValueError(f"missing {', '.join(missing)}") from None
        if manifest.kind not in ("snapshot", "full") or not ID_PATTERN.match(str(manifest.id)):
            raise ValueError(f"unknown kind or id: {manifest.kind} {manifest.id}")
        if not isinstance(manifest.file, str) or Path(manifest.file).name != manifest.file:
            raise ValueError(f"file {manifest.file!r} is not a plain name in the folder")
        for name in ("sha256", "database_sha256"):
            value = getattr(manifest, name)
            if not isinstance(value, str) or not SHA256_PATTERN.match(value):
                raise ValueError(f"{name} {value!r} is not a SHA-256 in hex")
        for name in ("size_bytes", "database_bytes", "created_at_ms"):
            value = getattr(manifest, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} {value!r} is not a whole number >= 0")
        return manifest

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.created_at_ms / 1000, UTC)


def missing_extra(package: str) -> BackupError:
    """The error for an optional package that is not installed (they come with `ops`)."""
    return BackupError(f"backups need the {package} package: pip install 'tradedb[ops]'")


def manifest_path(folder: Path, backup_id: str) -> Path:
    return folder / f"{backup_id}{MANIFEST_SUFFIX}"


def new_backup_id(folder: Path, kind: Kind, now: datetime) -> str:
    """`<kind>-YYYYMMDDTHHMMSSZ`, with `-2`, `-3`... when that second is already taken."""
    stem = f"{kind}-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    candidate, number = stem, 1
    while any(folder.glob(f"{candidate}.*")) or any(folder.glob(f"{TEMP_PREFIX}{candidate}.*")):
        number += 1
        candidate = f"{stem}-{number}"
    return candidate


@dataclass(frozen=True)
class DamagedManifest:
    """A manifest in the folder that cannot be read as one, and why."""

    path: Path
    problem: str

    @property
    def backup_id(self) -> str:
        return self.path.name.removesuffix(MANIFEST_SUFFIX)

    def __str__(self) -> str:
        return f"manifest {self.path.name} is damaged: {self.problem}"


def scan_manifests(folder: Path) -> tuple[list[Manifest], list[DamagedManifest]]:
    """The valid manifests in the folder, oldest first, and the damaged ones by name. A
    manifest still being written (a temp name) is neither."""
    if not folder.is_dir():
        return [], []
    found, damaged = [], []
    for path in sorted(folder.glob(f"*{MANIFEST_SUFFIX}")):
        if path.name.startswith(TEMP_PREFIX):
            continue
        try:
            manifest = Manifest.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            damaged.append(DamagedManifest(path, _first_line(exc)))
            continue
        if path.name != f"{manifest.id}{MANIFEST_SUFFIX}":
            damaged.append(DamagedManifest(path, f"it describes backup {manifest.id}"))
            continue
        found.append(manifest)
    return sorted(found, key=lambda m: (m.created_at_ms, m.id)), damaged


def read_manifests(folder: Path) -> list[Manifest]:
    """Every valid manifest in the folder, oldest first (see `scan_manifests`)."""
    return scan_manifests(folder)[0]


def find_manifest(folder: Path, backup_id: str | None, kind: Kind | None = None) -> Manifest:
    """The backup named `backup_id`, or the newest (of `kind`, if given) when it is None."""
    valid, damaged = scan_manifests(folder)
    manifests = [m for m in valid if kind is None or m.kind == kind]
    if backup_id is None:
        if not manifests:
            raise BackupError(f"no backup in {folder}; take one with `tradedb backup snapshot`")
        return manifests[-1]
    for manifest in manifests:
        if manifest.id == backup_id:
            return manifest
    for broken in damaged:
        if broken.backup_id == backup_id:
            raise BackupError(f"backup {backup_id} in {folder}: {broken}")
    raise BackupError(f"no backup {backup_id} in {folder} (see `tradedb backup list`)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Write the manifest atomically: after a crash it is either whole or absent."""
    target = manifest_path(folder, manifest.id)
    temp = folder / f"{TEMP_PREFIX}{manifest.id}{MANIFEST_SUFFIX}"
    text = json.dumps(manifest.to_json(), indent=2) + "\n"
    try:
        with owner_only_file(temp) as handle:
            handle.write(text.encode())
        os.replace(temp, target)
        fsync_folder(folder)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target
