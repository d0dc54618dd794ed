"""Where replicas live, and the generations tradedb keeps in them.

A replica location (a folder, or a key prefix in an S3 bucket) holds one sub-location per
generation, named by the UTC time the generation started (20261124T181530123Z, so that
names sort by time). Each generation is a complete Litestream replica of its own, begun
from a fresh snapshot of the live database: `tradedb replicate` starts one each time it
starts and each time a tradedb writer died inside a write transaction (see
docs/operations.md for why such a crash can poison a running replica).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tradedb.errors import TradeDBError, ValidationError
from tradedb.services.location import APP

_GENERATION_NAME = re.compile(r"^\d{8}T\d{9}Z$")


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

    def generation(self, name: str) -> Replica:
        """The replica of one generation, inside this location."""
        if self.kind == "file":
            return replace(self, location=str(Path(self.location) / name))
        return replace(self, location=f"{self.location}/{name}")

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


@dataclass(frozen=True)
class Generation:
    name: str
    started_ms: int
    size_bytes: int | None  # known for folders; not fetched for S3


def generation_name(moment_ms: int) -> str:
    moment = datetime.fromtimestamp(moment_ms // 1000, tz=UTC)
    return moment.strftime("%Y%m%dT%H%M%S") + f"{moment_ms % 1000:03d}Z"


def generation_started_ms(name: str) -> int:
    moment = datetime.strptime(name[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1000 + int(name[15:18])


def list_generations(replica: Replica, env: Mapping[str, str] | None = None) -> list[Generation]:
    """The generations in a replica location, oldest first; none if it does not exist."""
    if replica.kind == "file":
        folder = Path(replica.location)
        if not folder.is_dir():
            return []
        return [
            Generation(entry.name, generation_started_ms(entry.name), _folder_size(entry))
            for entry in sorted(folder.iterdir())
            if entry.is_dir() and _GENERATION_NAME.match(entry.name)
        ]
    names = sorted(name for name in _s3_children(replica, env) if _GENERATION_NAME.match(name))
    return [Generation(name, generation_started_ms(name), None) for name in names]


def holds_replica(replica: Replica, env: Mapping[str, str] | None = None) -> bool:
    """Whether Litestream has written anything at this location yet."""
    if replica.kind == "file":
        folder = Path(replica.location)
        return folder.is_dir() and any(path.is_file() for path in folder.rglob("*"))
    return bool(_s3_children(replica, env))


def delete_generation(replica: Replica, name: str, env: Mapping[str, str] | None = None) -> None:
    if not _GENERATION_NAME.match(name):  # never delete anything but a generation
        raise ValidationError("generation", name, "is not a generation name")
    target = replica.generation(name)
    if replica.kind == "file":
        shutil.rmtree(target.location, ignore_errors=True)
        return
    filesystem = _s3_filesystem(replica, env)
    path = f"{replica.bucket}/{target.location}"
    if filesystem.exists(path):
        filesystem.rm(path, recursive=True)


def prune_generations(
    replica: Replica, keep: int, env: Mapping[str, str] | None = None
) -> list[str]:
    """Delete all but the newest `keep` generations; return the names deleted."""
    doomed = [generation.name for generation in list_generations(replica, env)[:-keep]]
    for name in doomed:
        delete_generation(replica, name, env)
    return doomed


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _s3_children(replica: Replica, env: Mapping[str, str] | None) -> list[str]:
    filesystem = _s3_filesystem(replica, env)
    try:
        entries = filesystem.ls(f"{replica.bucket}/{replica.location}", detail=False)
    except FileNotFoundError:
        return []
    return [str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries]


def _s3_filesystem(replica: Replica, env: Mapping[str, str] | None) -> Any:
    """An s3fs filesystem with Litestream's view of the replica: the same endpoint, region
    and AWS_* credentials from `env`. A fresh one each time: s3fs caches listings."""
    try:
        import s3fs
    except ImportError:
        raise ReplicationError(
            "listing an S3 replica needs s3fs; install it with `pip install 'tradedb[ops]'`"
        ) from None
    env = os.environ if env is None else env
    client: dict[str, Any] = {}
    if replica.endpoint:
        client["endpoint_url"] = replica.endpoint
    region = replica.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        client["region_name"] = region
    # A bundle that is not there would fail every request; Litestream is spared it too.
    bundle = env.get("AWS_CA_BUNDLE")
    if bundle and Path(bundle).is_file():
        client["verify"] = bundle
    options: dict[str, Any] = {"skip_instance_cache": True, "client_kwargs": client}
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        options.update(key=env["AWS_ACCESS_KEY_ID"], secret=env["AWS_SECRET_ACCESS_KEY"])
        if env.get("AWS_SESSION_TOKEN"):
            options["token"] = env["AWS_SESSION_TOKEN"]
    return s3fs.S3FileSystem(**options)
