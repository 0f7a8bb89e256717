"""The data directory at start-up: one process owns it (a lock), and its database is sound.

Two NoChat processes on one SQLite database each keep their own seq cache and session
view, so the second one's sends fail and its clients see stale heads: the first process
to start holds an exclusive `flock` on `nochat.lock` for as long as it runs, and any other
is refused. The kernel drops the lock when the process dies, however it dies, so a stale
lock file never blocks a restart (the file itself is left in place on purpose: deleting
it would let a third process lock a fresh inode while the second still holds the old one).

`PRAGMA quick_check` at start reads every page of the database (O(size): about a second
per GiB on a laptop disk) and refuses a damaged one before a client can be served short
or garbled history. README.md ("Backup and restore") says what to do then.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from types import TracebackType

from .errors import StartupError

LOCK_FILE = "nochat.lock"
#: How much of quick_check's report goes into the refusal (it can list thousands of pages).
_REPORT_LINES = 3
RESTORE_HINT = "see 'Backup and restore' in README.md"


class DataDirLock:
    """An exclusive lock on a data directory, held from `acquire()` until `release()`.

    Also a context manager. Raises StartupError when another process holds it.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StartupError(
                f"data directory {self.data_dir} is in use by another NoChat process "
                f"(pid {holder}); stop it or choose another --data-dir"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def check_database(path: Path) -> None:
    """Raise StartupError unless `PRAGMA quick_check` finds the database sound.

    A missing database is fine (the store creates it). Blocking: run it in a thread.
    """
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(path)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        rows = [(str(exc),)]
    report = [str(row[0]) for row in rows]
    if report != ["ok"]:
        detail = " / ".join(" ".join(report).split("\n")[:_REPORT_LINES])
        raise StartupError(
            f"database {path} is damaged ({detail}); NoChat will not serve from it: {RESTORE_HINT}"
        )
