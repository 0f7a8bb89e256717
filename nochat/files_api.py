"""The file routes: upload into a room, download (ranges, ETags), thumbnails.

Every file answer carries FILE_HEADERS: `nosniff` so a browser never second-guesses the
sniffed type, and a `sandbox` CSP so even a document that slipped through runs no script
and loads nothing, on NoChat's origin or any other. Types outside media.INLINE_TYPES go
out as `application/octet-stream` with `Content-Disposition: attachment`.
"""

from __future__ import annotations

import urllib.parse
from contextlib import aclosing
from typing import Any, Final

from quart import Blueprint, Response, request
from werkzeug.datastructures import Headers

from .blobs import FileRecord
from .blobs.media import INLINE_TYPES, OCTET_STREAM
from .errors import NotFound, ValidationError
from .http_api import authenticated, json_response, services
from .store import User
from .uploads import MULTIPART_OVERHEAD_BYTES, clean_name, limited, multipart_file

blueprint = Blueprint("files", __name__, url_prefix="/api")

FILE_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def file_json(record: FileRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "size": record.size,
        "content_type": record.content_type,
        "sha256": record.sha256,
    }
    if record.width is not None:
        body["width"], body["height"] = record.width, record.height
    return body


@blueprint.post("/rooms/<room:name>/files")
async def upload(name: str) -> Response:
    """The raw body (`filename` query parameter or X-Filename header) or the first file
    part of a multipart/form-data body, streamed into the blob store."""
    user, _ = await authenticated()
    svc = services()
    room = await svc.rooms.visible_room(user, name)
    declared = request.content_length
    filename: str | None
    if request.mimetype == "multipart/form-data":
        boundary = request.mimetype_params.get("boundary")
        if not boundary:
            raise ValidationError("multipart/form-data needs a boundary")
        least = 0 if declared is None else max(0, declared - MULTIPART_OVERHEAD_BYTES)
        async with svc.files.reserved(user, least, declared) as grant:
            whole = grant.nbytes + MULTIPART_OVERHEAD_BYTES
            async with aclosing(limited(request.body, whole, grant.error)) as raw:
                filename, data = await multipart_file(raw, boundary)
                async with aclosing(data):
                    record = await svc.files.upload(user, room, clean_name(filename), data, grant)
    else:
        filename = request.args.get("filename") or request.headers.get("X-Filename")
        async with svc.files.reserved(user, declared or 0, declared) as grant:
            record = await svc.files.upload(user, room, clean_name(filename), request.body, grant)
    return json_response(file_json(record), 201)


async def _readable(file_id: str) -> tuple[User, FileRecord]:
    """The file if the caller may read it; one NotFound for missing and forbidden alike."""
    user, _ = await authenticated()
    svc = services()
    record = await svc.files.readable(user, file_id)
    try:
        await svc.rooms.visible_room(user, record.room)
    except NotFound:
        raise NotFound("no such file") from None
    return user, record


@blueprint.get("/files/<file_id>")
async def download(file_id: str) -> Response:
    _, record = await _readable(file_id)
    return _file_response(record.sha256, record.size, record.content_type, record.name)


@blueprint.get("/files/<file_id>/thumbnail")
async def thumbnail(file_id: str) -> Response:
    _, record = await _readable(file_id)
    if record.thumb_sha256 is None:
        raise NotFound("this file has no thumbnail")
    blobs = services().files.blobs
    data = b"".join([piece async for piece in blobs.read(record.thumb_sha256)])  # small
    kind = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return _file_response(record.thumb_sha256, len(data), kind, "thumbnail-" + record.name)


def _file_response(sha256: str, size: int, content_type: str, name: str) -> Response:
    """The blob with the file headers, honouring If-None-Match and one Range (a request
    for several ranges gets the whole file, as RFC 9110 allows)."""
    etag = f'"{sha256}"'
    inline = content_type in INLINE_TYPES
    headers = Headers(FILE_HEADERS)
    headers["ETag"] = etag
    headers["Cache-Control"] = "private, no-cache"  # revalidate: access may have ended
    headers["Accept-Ranges"] = "bytes"
    headers["Content-Disposition"] = disposition("inline" if inline else "attachment", name)
    served_type = content_type if inline else OCTET_STREAM
    if etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
        return Response(b"", status=304, headers=headers)
    start, stop, status = 0, size, 200
    ranges = request.range if "Range" in request.headers else None
    if_range = request.headers.get("If-Range")
    if ranges is not None and len(ranges.ranges) == 1 and if_range in (None, etag):
        span = ranges.range_for_length(size)
        if span is None:
            headers["Content-Range"] = f"bytes */{size}"
            return Response(b"", status=416, headers=headers)
        start, stop, status = span[0], span[1], 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers["Content-Length"] = str(stop - start)
    # The blob store is bound now: the body is sent after the request context has gone.
    body = services().files.blobs.read(sha256, start, stop)
    response = Response(body, status=status, headers=headers, content_type=served_type)
    response.timeout = None  # a big file on a slow link takes its time (TCP_USER_TIMEOUT
    return response  # still ends a peer that stopped reading)


def disposition(kind: str, name: str) -> str:
    """RFC 6266: an ASCII fallback `filename` and the exact `filename*` in UTF-8."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name
    )
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"
