"""Test helpers for files: raw HTTP uploads and downloads (urllib in a thread), images."""

from __future__ import annotations

import io
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import trio
from PIL import Image

from .support import STEP_S, Api


@dataclass
class Answer:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


async def http(
    base: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    data: bytes | Iterable[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request; every status comes back as an Answer (no exception for 4xx)."""
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, method=method, headers=all_headers)

    def run() -> Answer:
        try:
            with urllib.request.urlopen(req, timeout=STEP_S * 4) as resp:
                return Answer(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.headers, exc.read())

    with trio.fail_after(STEP_S * 4):
        return await trio.to_thread.run_sync(run)


async def upload(
    api: Api,
    data: bytes,
    name: str = "file.bin",
    *,
    room: str = "general",
    content_type: str = "application/octet-stream",
) -> Answer:
    quoted = urllib.parse.quote(name)
    return await http(
        api.base,
        "POST",
        f"/api/rooms/{room}/files?filename={quoted}",
        token=api.token,
        data=data,
        headers={"Content-Type": content_type},
    )


async def upload_ok(api: Api, data: bytes, name: str = "file.bin", **kw: Any) -> dict[str, Any]:
    answer = await upload(api, data, name, **kw)
    assert answer.status == 201, answer.body
    found: dict[str, Any] = answer.json()
    return found


def png(width: int = 40, height: int = 20, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps(width: int = 60, height: int = 30) -> bytes:
    """A JPEG whose EXIF holds GPS coordinates and orientation 6 (rotate 90° to show)."""
    image = Image.new("RGB", (width, height), (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "NoChatCam"  # Make
    gps = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 18.0)}
    exif[0x8825] = gps  # GPSInfo IFD
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
