"""`tradedb backup ...` and `tradedb restore`: snapshots, rotation, cloud copies, full backups."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from tradedb.api.backups import Backups
from tradedb.cli.common import DbOption, JsonOption, err, moment, out, print_json, user_errors
from tradedb.cli.helpstyle import App
from tradedb.services.ops.backup_full import FullRestore
from tradedb.services.ops.backup_manifest import Manifest

BackupDirOption = Annotated[
    str | None,
    typer.Option(
        "--backup-dir",
        help="Backup folder (else $TRADEDB_BACKUP_DIR, [backup] dir in the config file, "
        "the default).",
        show_default=False,
    ),
]
# The backups of a database are in its backup folder: --db picks the database, as for
# every command, and so the folder (unless --backup-dir or the config names one).
BackupsOfOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH|URL",
        help="The database whose backups these are (else $TRADEDB_DB, the config file, "
        "the default); its backup folder is used unless --backup-dir names one.",
        show_default=False,
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="S3-compatible endpoint (else [backup] endpoint_url); AWS S3 needs none.",
        show_default=False,
    ),
]

backup_app = App(help="Snapshots, rotation, cloud copies and full backups.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(backup_app, name="backup")
    app.command("restore")(restore)


@contextmanager
def _steps(quiet: bool) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr naming the running step (off for --json and when piped)."""
    if quiet or not err.is_terminal:
        yield lambda _step: None
        return
    with err.status("starting") as status:
        # A step names paths and URLs: text, never markup.
        yield lambda step: status.update(Text(step))


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _manifest_json(manifest: Manifest, folder: Path) -> dict[str, Any]:
    return {**manifest.to_json(), "path": str(folder / manifest.file)}


@backup_app.command("snapshot")
@user_errors
def snapshot(
    db: DbOption = None, backup_dir: BackupDirOption = None, as_json: JsonOption = False
) -> None:
    """Take a consistent online snapshot (SQLite: VACUUM INTO and zstd; PostgreSQL: pg_dump's
    custom format), with its SHA-256 manifest."""
    backups = Backups(backup_dir, database=db)
    with _steps(as_json) as progress:
        manifest = backups.snapshot(progress=progress)
    folder = backups.folder
    if as_json:
        print_json(_manifest_json(manifest, folder))
        return
    out.print(
        f"{manifest.id}: {folder / manifest.file} ({_size(manifest.size_bytes)}, database "
        f"{_size(manifest.database_bytes)})",
        highlight=False,
        markup=False,
    )


@backup_app.command("full")
@user_errors
def full(
    db: DbOption = None,
    backup_dir: BackupDirOption = None,
    archive_dir: Annotated[
        str | None,
        typer.Option(
            "--archive-dir",
            help="Retention's Parquet archives (else [retention] archive_dir; none if unset).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write one archive of the snapshot, the Parquet archives, the config and the manifests."""
    backups = Backups(backup_dir, database=db)
    with _steps(as_json) as progress:
        taken = backups.full(archive_dir=archive_dir, progress=progress)
    manifest, folder = taken.manifest, backups.folder
    if as_json:
        print_json(_manifest_json(manifest, folder))
        return
    out.print(
        f"{manifest.id}: {folder / manifest.file} ({_size(manifest.size_bytes)}; archives: "
        f"{taken.archives or 'none configured'})",
        highlight=False,
        markup=False,
    )


@backup_app.command("list")
@user_errors
def list_(
    db: BackupsOfOption = None, backup_dir: BackupDirOption = None, as_json: JsonOption = False
) -> None:
    """List the backups (those with a valid manifest), oldest first. A damaged manifest
    is reported on stderr, with exit status 1."""
    backups = Backups(backup_dir, database=db)
    folder = backups.folder
    manifests = backups.manifests()
    damaged = backups.damaged_manifests()
    for broken in damaged:
        err.print(f"{folder}: {broken}", highlight=False, markup=False, soft_wrap=True)
    if as_json:
        print_json([_manifest_json(m, folder) for m in manifests])
        if damaged:
            raise typer.Exit(1)
        return
    table = Table(
        "id",
        "kind",
        "engine",
        "taken (UTC)",
        "size",
        "database",
        "schema",
        title=str(folder),
    )
    for m in manifests:
        table.add_row(
            m.id,
            m.kind,
            m.engine,
            moment(m.created_at_ms)[:19],
            _size(m.size_bytes),
            _size(m.database_bytes),
            m.schema or "",
        )
    out.print(table)
    if not manifests and not damaged:
        out.print("no backups yet: `tradedb backup snapshot` takes one", highlight=False)
    if damaged:
        raise typer.Exit(1)


@backup_app.command("verify")
@user_errors
def verify(
    backup_id: Annotated[
        str | None, typer.Argument(help="Backup id (default: every backup).", show_default=False)
    ] = None,
    backup_dir: BackupDirOption = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="PostgreSQL backups: the server to restore them on in a scratch database "
            "(else $TRADEDB_DB, the config file).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check checksums, read each backup back into a scratch copy (SQLite: integrity_check;
    PostgreSQL: pg_restore into a scratch database) and run the ledger audit on it.
    Exit 1 if any backup fails."""
    backups = Backups(backup_dir, database=db)
    folder = backups.existing_folder()
    with _steps(as_json) as progress:
        progress("verifying")
        verdicts = backups.verify(backup_id, server=db)
    if as_json:
        print_json([{"id": v.backup_id, "ok": v.ok, "problems": v.problems} for v in verdicts])
    else:
        for verdict in verdicts:
            status = (
                Text("ok", "green")
                if verdict.ok
                else Text.assemble(("FAILED", "red"), f": {verdict.problems[0]}")
            )
            out.print(Text.assemble(f"{verdict.backup_id}: ", status), highlight=False)
        if not verdicts:
            out.print(f"no backups in {folder}", highlight=False, markup=False)
    if not all(v.ok for v in verdicts):
        raise typer.Exit(1)


@backup_app.command("prune")
@user_errors
def prune(
    db: BackupsOfOption = None,
    backup_dir: BackupDirOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be deleted; delete nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Delete backups the rotation does not keep ([backup] keep_daily/weekly/monthly,
    default 7/4/12). The newest backup of each kind and database is always kept."""
    backups = Backups(backup_dir, database=db)
    plan = backups.prune_plan()
    deleted = [] if dry_run else backups.prune(plan)
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "keep": [{"id": m.id, "why": why} for m, why in plan.keep],
                "delete": [m.id for m in plan.delete],
                "stale_temp_files": [str(p) for p in plan.stale_temp_files],
                "deleted_files": [str(p) for p in deleted],
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    for manifest in plan.delete:
        out.print(f"{verb} {manifest.id} ({manifest.file})", highlight=False, markup=False)
    for path in plan.stale_temp_files:
        out.print(
            f"{verb} {path.name} (left by an interrupted backup)", highlight=False, markup=False
        )
    out.print(
        f"kept {len(plan.keep)}, {verb} {len(plan.delete)} backup(s)",
        highlight=False,
        markup=False,
    )


@backup_app.command("upload")
@user_errors
def upload(
    to: Annotated[
        str, typer.Option("--to", help="fsspec URL: s3://bucket/prefix or a local folder.")
    ],
    backup_ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Backup ids, or 'all' (default: the newest snapshot).", show_default=False
        ),
    ] = None,
    encrypt: Annotated[
        bool,
        typer.Option(
            "--encrypt", help="Encrypt here first (passphrase in $TRADEDB_BACKUP_PASSPHRASE)."
        ),
    ] = False,
    endpoint_url: EndpointOption = None,
    db: BackupsOfOption = None,
    backup_dir: BackupDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy backups to a cloud bucket or another folder (skips copies already there)."""
    backups = Backups(backup_dir, database=db)
    with _steps(as_json) as progress:
        progress(f"uploading to {to}")
        transfers = backups.upload(to, backup_ids, encrypt=encrypt, endpoint_url=endpoint_url)
    if as_json:
        print_json([vars(t) for t in transfers])
        return
    for t in transfers:
        what = "already there" if t.skipped else f"uploaded ({_size(t.size_bytes)})"
        lock = ", encrypted" if t.encrypted and not t.skipped else ""
        out.print(
            f"{t.backup_id}: {to.rstrip('/')}/{t.remote_file} {what}{lock}",
            highlight=False,
            markup=False,
        )


@backup_app.command("fetch")
@user_errors
def fetch(
    backup_id: Annotated[str, typer.Argument(help="Backup id at the URL.")],
    from_: Annotated[str, typer.Option("--from", help="fsspec URL the backup was uploaded to.")],
    endpoint_url: EndpointOption = None,
    db: BackupsOfOption = None,
    backup_dir: BackupDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy an uploaded backup back into the backup folder (decrypting it), ready to restore."""
    backups = Backups(backup_dir, database=db)
    manifest = backups.fetch(from_, backup_id, endpoint_url=endpoint_url)
    folder = backups.folder
    if as_json:
        print_json(_manifest_json(manifest, folder))
        return
    out.print(f"{manifest.id}: fetched to {folder / manifest.file}", highlight=False, markup=False)


@user_errors
def restore(
    backup_id: Annotated[str, typer.Argument(help="Backup id (see `tradedb backup list`).")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="A snapshot: the database file, or a new PostgreSQL database "
            "(postgresql://user@host/newname). A full backup: a folder.",
        ),
    ],
    to_db: Annotated[
        str | None,
        typer.Option(
            "--to-db",
            help="A full backup: where its database goes (required for PostgreSQL; "
            "default: tradedb.sqlite in the --to folder).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace an existing database (stop its users first), or restore onto a "
            "network share.",
        ),
    ] = False,
    db: BackupsOfOption = None,
    backup_dir: BackupDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Restore a backup. Verifies it first; never overwrites without --force."""
    backups = Backups(backup_dir, database=db)
    with _steps(as_json) as progress:
        progress(f"verifying and restoring {backup_id}")
        manifest, restored = backups.restore(backup_id, to, to_db=to_db, force=force)
    if isinstance(restored, FullRestore):
        places = {
            "database": restored.database,
            "archives": restored.archives,
            "config": restored.config,
            "manifests": restored.manifests,
        }
    else:
        places = {"database": restored}
    if as_json:
        print_json({"id": manifest.id, **{k: v and str(v) for k, v in places.items()}})
        return
    for name, path in places.items():
        if path is not None:
            out.print(f"{name}: {path}", highlight=False, markup=False)
    checks = backups.restore_checks(manifest)
    out.print(f"restored {manifest.id} (verified: {checks} ok)", highlight=False, markup=False)
