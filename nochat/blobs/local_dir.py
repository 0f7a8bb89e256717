"""The local blob store's bytes: content-addressed files under `<data dir>/blobs`.

A blob is written to a temporary file in `blobs/tmp`, hashed on the way, fsynced, renamed
to `blobs/<first two hex digits>/<sha256>`, stamped (its mtime: when it was last put)
and the directory fsynced, all before `put` returns (and so before an upload is acked):
a crash leaves either the whole blob or a stray temporary file (cleared at start), never
half a blob under its name. Names come only from hashes, never from what a client sent.
The rename and stamp and `remove_unless_put_since` take one lock, so a blob is never
unlinked between an upload's rename and its stamp (candidates.py has the whole rule).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from ..errors import StorageError
from . import CHUNK_BYTES, Blob


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobDirectory:
    def __init__(self, root: Path) -> None:
        self.root = root
        #: Held by a put's rename and stamp, and by a collection's check and unlink.
        self._lock = threading.Lock()

    def open(self) -> None:
        """Make the directories and clear what a crash mid-upload left (blocking)."""
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        for stray in tmp.iterdir():  # never acked, never named
            stray.unlink(missing_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise StorageError("not a blob name")
        return self.root / sha256[:2] / sha256

    async def put(
        self, chunks: AsyncIterable[bytes], before_naming: Callable[[Blob], Awaitable[None]]
    ) -> Blob:
        """Write the blob; `before_naming` runs once its hash is known, before the rename."""
        fd, tmp_name = await trio.to_thread.run_sync(self._temp_file)
        digest = hashlib.sha256()
        size = 0
        done = False
        try:
            async for chunk in chunks:
                size += len(chunk)
                await trio.to_thread.run_sync(_write_all, fd, chunk, digest)
            sha = digest.hexdigest()
            await trio.to_thread.run_sync(_sync_close, fd)
            fd = -1
            blob = Blob(sha, size)
            await before_naming(blob)
            await trio.to_thread.run_sync(self._publish, tmp_name, sha)
            done = True
            return blob
        finally:
            if not done:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(_discard, fd, tmp_name)

    def _temp_file(self) -> tuple[int, str]:
        name = str(self.root / "tmp" / os.urandom(12).hex())
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), name

    def _publish(self, tmp_name: str, sha: str) -> None:
        final = self.path(sha)
        with self._lock:
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp_name, final)  # the same bytes when it was there already
            now = time.time_ns()  # not the kernel's coarser file clock: candidates.wall_ms
            os.utime(final, ns=(now, now))  # put now, whatever the temporary file's times
            _fsync_dir(final.parent)

    def remove_unless_put_since(self, sha256: str, before_ms: int) -> int | None:
        """Unlink the blob unless it was put at or after `before_ms` (blocking; the caller
        knows no record names it). None when no blob is left, else when it was put."""
        path = self.path(sha256)
        with self._lock:
            try:
                put_ms = path.stat().st_mtime_ns // 1_000_000
            except FileNotFoundError:
                return None
            if put_ms >= before_ms:
                return put_ms
            path.unlink(missing_ok=True)
        return None

    async def read(
        self, sha256: str, start: int = 0, end: int | None = None
    ) -> AsyncGenerator[bytes, None]:
        path = self.path(sha256)
        try:
            handle = await trio.open_file(path, "rb")
        except FileNotFoundError:
            raise StorageError("blob missing") from None
        async with handle:
            await handle.seek(start)
            left = None if end is None else end - start
            while left is None or left > 0:
                want = CHUNK_BYTES if left is None else min(CHUNK_BYTES, left)
                data = await handle.read(want)
                if not data:
                    return
                if left is not None:
                    left -= len(data)
                yield data


def _write_all(fd: int, data: bytes, digest: Any) -> None:
    digest.update(data)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(fd: int, tmp_name: str) -> None:
    if fd >= 0:
        os.close(fd)
    Path(tmp_name).unlink(missing_ok=True)
