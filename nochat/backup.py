"""`nochat backup PATH` and `nochat restore PATH`: the embedded store, copied safely.

A backup is a directory: `nochat.sqlite3` (a consistent snapshot made with SQLite's
online backup API), `secret.key` (when the data directory keeps one: without it every
session ends), the uploaded files when there are any (`files.sqlite3`, their records,
snapshotted the same way first, then the content-addressed `blobs/` they name, without
`blobs/tmp/`, uploads still arriving), and `nochat-backup.json` (what was copied, and when).

Backing up never takes the data directory's lock (nochat/datadir.py): it runs beside
the server that holds it. The copy is one read transaction on its own connection, so
in WAL mode the server's writer goes on committing while it runs, and the snapshot
holds every transaction committed before it began (every message acked by then) and
none after. The source is opened read-only: a backup never creates or changes a
database. Restore writes only into an empty (or missing) data directory, under that
directory's lock, so no server can start on it half-restored, and gives the restored
database a new epoch: its heads are older than what clients have seen.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import sqlite3
import time
from pathlib import Path

from .auth import SECRET_FILE
from .datadir import LOCK_FILE, DataDirLock
from .errors import BackupError

log = logging.getLogger(__name__)

DATABASE = "nochat.sqlite3"
FILES = "files"
#: The local BlobStore (nochat/blobs/local.py): records, and content by sha-256.
FILE_INDEX = "files.sqlite3"
BLOBS = "blobs"
#: Uploads still arriving: never acked, never named by a record.
BLOBS_TMP = "tmp"
MANIFEST = "nochat-backup.json"
#: Pages per step of the online backup: all in one step, that is one read transaction
#: (one snapshot that writers in WAL mode never wait for). In smaller steps each write of
#: the server's would restart the copy, and a busy server would starve it.
PAGES_PER_STEP = -1


def backup(data_dir: Path, dest: Path) -> dict[str, object]:
    """Copy the store in `data_dir` to the new directory `dest`; returns the manifest.

    Blocking (run it in a thread from async code). Raises BackupError when there is
    nothing to back up, `dest` is not new and empty, or the copy fails.
    """
    source = data_dir / DATABASE
    if not source.is_file():
        raise BackupError(f"no database to back up: {source} does not exist")
    _make_empty_dir(dest, "backup destination")
    partial = dest / (DATABASE + ".partial")
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst, pages=PAGES_PER_STEP)
                _check(dst, partial)
                # The room log: messages (and later edits, deletes, reactions).
                events = dst.execute("SELECT count(*) FROM events").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot back up {source}: {exc}") from None
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    partial.rename(dest / DATABASE)
    copied = [DATABASE]
    if (data_dir / SECRET_FILE).is_file():
        _copy_private(data_dir / SECRET_FILE, dest / SECRET_FILE)
        copied.append(SECRET_FILE)
    if (data_dir / FILES).is_dir():
        shutil.copytree(data_dir / FILES, dest / FILES)
        copied.append(FILES + "/")
    if (data_dir / FILE_INDEX).is_file():
        # Records first, then content: a blob is on disk before its record commits, so
        # every record in this snapshot names a blob the copy below finds.
        _snapshot(data_dir / FILE_INDEX, dest / FILE_INDEX)
        copied.append(FILE_INDEX)
        if (data_dir / BLOBS).is_dir():
            shutil.copytree(
                data_dir / BLOBS,
                dest / BLOBS,
                ignore=lambda folder, _: [BLOBS_TMP] if Path(folder) == data_dir / BLOBS else [],
            )
            copied.append(BLOBS + "/")
    manifest: dict[str, object] = {
        "format": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "events": events,
        "copied": copied,
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log.info("backup of %s written to %s (%d events)", data_dir, dest, events)
    return manifest


def restore(src: Path, data_dir: Path) -> dict[str, object]:
    """Restore the backup directory `src` into `data_dir`, which must be empty or missing.

    Blocking. Raises BackupError for a directory that is not a backup, a damaged copy,
    or a data directory that holds anything.
    """
    manifest_path = src / MANIFEST
    if not manifest_path.is_file() or not (src / DATABASE).is_file():
        raise BackupError(f"{src} is not a NoChat backup (no {MANIFEST} and {DATABASE})")
    manifest: dict[str, object] = json.loads(manifest_path.read_text(encoding="utf-8"))
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with DataDirLock(data_dir):
        present = sorted(p.name for p in data_dir.iterdir() if p.name != LOCK_FILE)
        if present:
            shown = ", ".join(present[:5])
            raise BackupError(
                f"refusing to restore into {data_dir}: it is not empty ({shown}); "
                "restore into a new directory"
            )
        partial = data_dir / (DATABASE + ".partial")
        try:
            source = sqlite3.connect(f"{(src / DATABASE).resolve().as_uri()}?mode=ro", uri=True)
            try:
                target = sqlite3.connect(partial)
                try:
                    source.backup(target)
                    _check(target, partial)
                    with target:
                        # A new epoch: clients that saw seqs past the backup's heads drop
                        # their caches (`reset`) instead of skipping the seqs reused now.
                        target.execute(
                            "UPDATE meta SET value = ? WHERE key = 'epoch'",
                            (secrets.token_hex(8),),
                        )
                finally:
                    target.close()
            finally:
                source.close()
        except sqlite3.Error as exc:
            partial.unlink(missing_ok=True)
            raise BackupError(f"cannot restore {src / DATABASE}: {exc}") from None
        except BackupError:
            partial.unlink(missing_ok=True)
            raise
        partial.rename(data_dir / DATABASE)
        if (src / SECRET_FILE).is_file():
            _copy_private(src / SECRET_FILE, data_dir / SECRET_FILE)
        if (src / FILES).is_dir():
            shutil.copytree(src / FILES, data_dir / FILES)
        if (src / FILE_INDEX).is_file():
            _snapshot(src / FILE_INDEX, data_dir / FILE_INDEX)
        if (src / BLOBS).is_dir():
            shutil.copytree(src / BLOBS, data_dir / BLOBS)
    log.info("restored %s into %s", src, data_dir)
    return manifest


def _snapshot(source: Path, dest: Path) -> None:
    """A consistent copy of the SQLite database `source` (read-only, one read transaction)."""
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(dest)
            try:
                src.backup(dst, pages=PAGES_PER_STEP)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy {source}: {exc}") from None


def _make_empty_dir(path: Path, what: str) -> None:
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not path.is_dir() or any(path.iterdir()):
            raise BackupError(f"{what} {path} already exists and is not empty") from None


def _check(conn: sqlite3.Connection, path: Path) -> None:
    rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall()]
    if rows != ["ok"]:
        raise BackupError(f"the copy {path} fails its integrity check: {' / '.join(rows[:3])}")


def _copy_private(src: Path, dest: Path) -> None:
    """Copy a secret readable only by its owner (from the first byte on)."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(src.read_bytes())
