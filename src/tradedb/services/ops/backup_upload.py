"""Cloud copies: backups copied to any fsspec URL (s3:// through s3fs, or a local path),
optionally encrypted on this machine first, and fetched back.

The remote folder follows the local one's rule: the data file goes first and the
manifest last, so a copy cut short has no manifest and is not a backup. A backup whose
manifest is already at the URL with the same checksum is skipped, so the weekly copy can
simply run again. The remote manifest is the local one plus `remote_file` and
`encrypted`; `sha256` stays that of the unencrypted file, so a fetched and decrypted copy
is verified exactly as a local backup is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tradedb import owner_only
from tradedb.services.location import config_section
from tradedb.services.ops.backup_encryption import (
    ENCRYPTED_SUFFIX,
    PASSPHRASE_ENV,
    decrypt_stream,
    encrypt_stream,
)
from tradedb.services.ops.backup_manifest import (
    MANIFEST_SUFFIX,
    TEMP_PREFIX,
    BackupError,
    Manifest,
    find_manifest,
    missing_extra,
    owner_only_file,
    read_manifests,
    write_manifest,
)
from tradedb.services.ops.backup_rotation import Policy, keep_reasons


@dataclass(frozen=True)
class Transfer:
    backup_id: str
    remote_file: str
    size_bytes: int
    encrypted: bool
    skipped: bool


def storage_options(url: str, endpoint_url: str | None) -> dict[str, Any]:
    """s3fs options: an endpoint from the option or `[backup] endpoint_url` (for S3-compatible
    services such as MinIO); credentials come from the usual AWS variables or files."""
    endpoint = endpoint_url or config_section("backup").get("endpoint_url")
    if url.startswith("s3://") and isinstance(endpoint, str) and endpoint:
        return {"client_kwargs": {"endpoint_url": endpoint}}
    return {}


def passphrase_from(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    value = env.get(PASSPHRASE_ENV)
    if not value:
        raise BackupError(
            f"encryption (`encrypt=True`) needs the passphrase in the {PASSPHRASE_ENV} variable"
        )
    return value


def passphrase_if_set(env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    return env.get(PASSPHRASE_ENV) or None


def upload(
    folder: Path,
    url: str,
    *,
    backup_ids: list[str] | None = None,
    passphrase: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[Transfer]:
    """Copy backups (the newest snapshot when `backup_ids` is None) to `url`."""
    if backup_ids is None:
        manifests = [find_manifest(folder, None, kind="snapshot")]
    elif backup_ids == ["all"]:
        manifests = read_manifests(folder)
    else:
        manifests = [find_manifest(folder, backup_id) for backup_id in backup_ids]
    fs, root = _filesystem(url, options)
    try:
        if _is_local(fs):
            owner_only.make_folders(Path(root))
        else:
            fs.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"{url}: cannot create the folder: {exc}") from None
    return [_upload_one(fs, root, url, folder, m, passphrase=passphrase) for m in manifests]


def _upload_one(
    fs: Any, root: str, url: str, folder: Path, manifest: Manifest, *, passphrase: str | None
) -> Transfer:
    encrypted = passphrase is not None
    remote_file = manifest.file + (ENCRYPTED_SUFFIX if encrypted else "")
    remote_manifest = f"{root}/{manifest.id}{MANIFEST_SUFFIX}"
    existing = _read_remote_manifest(fs, remote_manifest)
    if existing and existing.get("sha256") == manifest.sha256:
        size = int(fs.size(f"{root}/{existing['remote_file']}"))
        return Transfer(manifest.id, str(existing["remote_file"]), size, encrypted, True)
    try:
        with (folder / manifest.file).open("rb") as reader:
            with _writer(fs, f"{root}/{remote_file}") as writer:
                if passphrase is None:
                    while chunk := reader.read(1 << 20):
                        writer.write(chunk)
                else:
                    encrypt_stream(reader, writer, passphrase)
            size = int(fs.size(f"{root}/{remote_file}"))
            described = {**manifest.to_json(), "remote_file": remote_file, "encrypted": encrypted}
            with _writer(fs, remote_manifest) as writer:
                writer.write((json.dumps(described, indent=2) + "\n").encode())
    except (OSError, ValueError) as exc:
        raise BackupError(f"upload of {manifest.id} to {url} failed: {exc}") from None
    return Transfer(manifest.id, remote_file, size, encrypted, False)


def rotate(url: str, policy: Policy, *, options: Mapping[str, Any] | None = None) -> list[str]:
    """Delete the copies at `url` that the rotation `policy` does not keep, as `backup
    prune` does in the local folder (per kind and database, the newest always kept);
    returns their ids. The manifest goes first, so that a rotation cut short leaves at
    worst a data file that is no longer a backup. A manifest that cannot be read is left
    alone, with its file."""
    fs, root = _filesystem(url, options)
    copies: dict[str, tuple[str, str]] = {}
    manifests = []
    try:
        for path in sorted(fs.glob(f"{root}/*{MANIFEST_SUFFIX}")):
            described = _read_remote_manifest(fs, path)
            name = str(path).rsplit("/", 1)[-1]
            if described is None or name.startswith(TEMP_PREFIX):
                continue
            remote_file = str(described.pop("remote_file"))
            described.pop("encrypted", None)
            try:
                manifest = Manifest.from_json(described)
            except ValueError:
                continue
            if name != f"{manifest.id}{MANIFEST_SUFFIX}" or "/" in remote_file:
                continue
            manifests.append(manifest)
            copies[manifest.id] = (str(path), f"{root}/{remote_file}")
        kept = keep_reasons(manifests, policy)
        deleted = []
        for manifest in manifests:
            if manifest.id in kept:
                continue
            for path in copies[manifest.id]:
                if fs.exists(path):
                    fs.rm(path)
            deleted.append(manifest.id)
    except OSError as exc:
        raise BackupError(f"rotation of the copies at {url} failed: {exc}") from None
    return deleted


def fetch(
    url: str,
    backup_id: str,
    folder: Path,
    *,
    passphrase: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Manifest:
    """Copy a backup from `url` into the local folder (decrypting it if it was encrypted),
    so that `verify` and `restore` work on it as on any local backup."""
    fs, root = _filesystem(url, options)
    described = _read_remote_manifest(fs, f"{root}/{backup_id}{MANIFEST_SUFFIX}")
    if described is None:
        raise BackupError(f"no backup {backup_id} at {url}")
    remote_file = str(described.pop("remote_file"))
    encrypted = bool(described.pop("encrypted"))
    try:
        manifest = Manifest.from_json(described)
    except (TypeError, ValueError) as exc:
        raise BackupError(f"{url}: the manifest of {backup_id} is not valid: {exc}") from None
    if encrypted and passphrase is None:
        raise BackupError(f"{backup_id} is encrypted: set {PASSPHRASE_ENV} to fetch it")
    temp = folder / f"{TEMP_PREFIX}{manifest.file}.fetch"
    temp.unlink(missing_ok=True)
    try:
        with fs.open(f"{root}/{remote_file}", "rb") as reader, owner_only_file(temp) as writer:
            if encrypted:
                assert passphrase is not None
                decrypt_stream(reader, writer, passphrase)
            else:
                while chunk := reader.read(1 << 20):
                    writer.write(chunk)
        os.replace(temp, folder / manifest.file)
    except OSError as exc:
        raise BackupError(f"fetch of {backup_id} from {url} failed: {exc}") from None
    finally:
        temp.unlink(missing_ok=True)
    write_manifest(folder, manifest)
    return manifest


def _filesystem(url: str, options: Mapping[str, Any] | None) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise missing_extra("fsspec") from None
    try:
        fs, root = fsspec.core.url_to_fs(url, **dict(options or {}))
    except (ImportError, ValueError) as exc:
        raise BackupError(f"{url}: {exc}") from None
    return fs, str(root).rstrip("/")


def _is_local(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _writer(fs: Any, path: str) -> AbstractContextManager[IO[bytes]]:
    """A remote file open for writing; in a local folder it is owner-only from its first
    byte, as the backup it copies is (object stores have no file modes)."""
    if _is_local(fs):
        return owner_only.new_file(Path(path), replace=True)
    writer: AbstractContextManager[IO[bytes]] = fs.open(path, "wb")
    return writer


def _read_remote_manifest(fs: Any, path: str) -> dict[str, Any] | None:
    try:
        with fs.open(path, "r") as reader:
            data = json.loads(reader.read())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) and "remote_file" in data else None
