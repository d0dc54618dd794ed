"""Rotation: which backups `tradedb backup prune` keeps, and deleting the rest.

Grandfather-father-son, per database and kind (snapshots and full backups rotate
separately, and so do the backups of two databases sharing a folder, say a SQLite file
and the PostgreSQL database it moved to, as the manifests' engine and source tell them
apart): keep the newest backup of each of the `daily` most recent days that have one, of
each of the `weekly` most recent ISO weeks, and of each of the `monthly` most recent
months (UTC). The newest backup of each kind and database is always kept, whatever the
policy says, so that prune can never leave a database without a backup. Leftovers of
interrupted backups (temp files older than a day, never a backup since they have no
manifest) are deleted too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tradedb.errors import ValidationError
from tradedb.services.location import config_section
from tradedb.services.ops.backup_manifest import (
    TEMP_PREFIX,
    Manifest,
    fsync_folder,
    manifest_path,
    read_manifests,
)

# A temp file this old belongs to no backup still running.
STALE_TEMP_S = 24 * 3600


@dataclass(frozen=True)
class Policy:
    daily: int = 7
    weekly: int = 4
    monthly: int = 12

    @classmethod
    def from_config(cls, env: Mapping[str, str] | None = None) -> Policy:
        """`[backup] keep_daily / keep_weekly / keep_monthly`, each a count >= 0."""
        return _policy(config_section("backup", env), "backup", "keep_", cls())

    @classmethod
    def for_cloud(cls, env: Mapping[str, str] | None = None) -> Policy:
        """The rotation of maintain's cloud copies: `[maintain] cloud_keep_daily /
        cloud_keep_weekly / cloud_keep_monthly`, each defaulting to the local count."""
        local = cls.from_config(env)
        return _policy(config_section("maintain", env), "maintain", "cloud_keep_", local)


def _policy(section: Mapping[str, object], table: str, prefix: str, defaults: Policy) -> Policy:
    counts = {}
    for name in ("daily", "weekly", "monthly"):
        key = f"{prefix}{name}"
        value = section.get(key, getattr(defaults, name))
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValidationError(f"[{table}] {key}", value, "must be a whole number >= 0")
        counts[name] = value
    return Policy(**counts)


@dataclass(frozen=True)
class PrunePlan:
    keep: list[tuple[Manifest, list[str]]]
    delete: list[Manifest]
    stale_temp_files: list[Path]


def plan_prune(folder: Path, policy: Policy, *, now_s: float | None = None) -> PrunePlan:
    """What prune would keep (with the reasons) and delete; nothing is touched."""
    manifests = read_manifests(folder)
    reasons = keep_reasons(manifests, policy)
    keep = [(m, reasons[m.id]) for m in manifests if m.id in reasons]
    delete = [m for m in manifests if m.id not in reasons]
    now_s = time.time() if now_s is None else now_s
    stale = sorted(
        path
        for path in folder.glob(f"{TEMP_PREFIX}*")
        if path.is_file() and now_s - path.stat().st_mtime > STALE_TEMP_S
    )
    return PrunePlan(keep, delete, stale)


def keep_reasons(manifests: Iterable[Manifest], policy: Policy) -> dict[str, list[str]]:
    """backup id -> why it is kept ("newest", "daily", "weekly", "monthly")."""
    reasons: dict[str, list[str]] = {}
    by_kind: dict[tuple[str, str, str], list[Manifest]] = {}
    for manifest in manifests:
        by_kind.setdefault((manifest.kind, manifest.engine, manifest.source), []).append(manifest)
    rules: list[tuple[str, int, Callable[[datetime], object]]] = [
        ("daily", policy.daily, lambda t: t.date()),
        ("weekly", policy.weekly, lambda t: t.isocalendar()[:2]),
        ("monthly", policy.monthly, lambda t: (t.year, t.month)),
    ]
    for group in by_kind.values():
        newest_first = sorted(group, key=lambda m: (m.created_at_ms, m.id), reverse=True)
        reasons.setdefault(newest_first[0].id, []).append("newest")
        for name, count, period in rules:
            seen: set[object] = set()
            for manifest in newest_first:
                if len(seen) >= count:
                    break
                bucket = period(manifest.created_at)
                if bucket not in seen:
                    seen.add(bucket)
                    reasons.setdefault(manifest.id, []).append(name)
    return reasons


def prune(folder: Path, plan: PrunePlan) -> list[Path]:
    """Delete what the plan says; returns the files deleted. The manifest goes first, so
    that a prune cut short leaves at worst a data file that is no longer a backup."""
    deleted = []
    for manifest in plan.delete:
        for path in (manifest_path(folder, manifest.id), folder / manifest.file):
            if path.exists():
                path.unlink()
                deleted.append(path)
    for path in plan.stale_temp_files:
        path.unlink(missing_ok=True)
        deleted.append(path)
    fsync_folder(folder)
    return deleted
