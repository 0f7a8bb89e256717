"""Files across processes: a 25 MiB upload keeps the server's memory flat, and a file
uploaded through one node downloads through another on one PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from ..files_client import http, upload_ok
from ..support import Api, server_process

MIB = 1024 * 1024
UPLOAD_BYTES = 25 * MIB
#: Peak RSS growth allowed while the server takes a 25 MiB upload (measured ~2-6 MiB:
#: pieces in flight, the thread pool's buffers); the whole file would be 25 MiB and more.
RSS_GROWTH_MAX_KIB = 12 * 1024


def pieces(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    block = bytes(range(256)) * (size // 256)
    for _ in range(total // size):
        yield block


async def test_files_25_mib_upload_keeps_server_memory_flat(tmp_path: Path) -> None:
    async with server_process(tmp_path / "data") as node:
        ann = await Api(node.http).signup("ann")
        await upload_ok(ann, b"warm-up: imports, thread pool, first blob", "w.bin")
        before = node.status_kib("VmRSS")
        node.reset_peak()
        answer = await http(
            node.http,
            "POST",
            "/api/rooms/general/files?filename=big.bin",
            token=ann.token,
            data=pieces(UPLOAD_BYTES),
            headers={"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"},
        )
        growth = node.status_kib("VmHWM") - before
        assert answer.status == 201, answer.body
        found = answer.json()
        assert found["size"] == UPLOAD_BYTES
        digest = hashlib.sha256()
        for piece in pieces(UPLOAD_BYTES):
            digest.update(piece)
        assert found["sha256"] == digest.hexdigest()
    print(f"peak RSS growth during a 25 MiB upload: {growth} KiB")
    assert growth < RSS_GROWTH_MAX_KIB


async def test_files_uploaded_on_node_a_download_on_node_b(tmp_path: Path, pg_url: str) -> None:
    async with (
        server_process(tmp_path / "a", database_url=pg_url) as a,
        server_process(tmp_path / "b", database_url=pg_url) as b,
    ):
        ann_a = await Api(a.http).signup("ann")
        data = bytes(range(256)) * 3000  # several chunk rows
        found = await upload_ok(ann_a, data, "shared.bin")
        await ann_a.post(
            "/api/rooms/general/messages",
            {"text": "", "client_id": "n1", "attachments": [found["id"]]},
        )
        bob_b = await Api(b.http).signup("bob")
        got = await http(b.http, "GET", f"/api/files/{found['id']}", token=bob_b.token)
        assert got.status == 200 and got.body == data
        part = await http(
            b.http,
            "GET",
            f"/api/files/{found['id']}",
            token=bob_b.token,
            headers={"Range": "bytes=300000-300009"},
        )
        assert part.status == 206 and part.body == data[300000:300010]
    assert not (tmp_path / "a" / "blobs").exists()  # nothing kept on the node itself
