"""An upload's request body as a stream of file bytes: raw or multipart, counted, capped.

Nothing here holds more than one chunk: the body is read as Hypercorn hands it over
(Quart's `request.body` iterated), split into pieces of at most PIECE_BYTES, and passed
on; `limited` raises TooLarge the moment the count passes the limit, so the rest of the
body is never read. A multipart body is decoded with werkzeug's sans-IO decoder and its
first file part is the upload; other fields are skipped (bounded by the decoder).
"""

from __future__ import annotations

import unicodedata
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator

from werkzeug.sansio.multipart import Data, Epilogue, File, MultipartDecoder, NeedData

from .errors import NoChatError, ProtocolError, ValidationError

#: Largest piece handed on at once (what the body buffered is cut into these).
PIECE_BYTES = 64 * 1024
#: A multipart body may exceed its file by this much (boundaries, part headers, fields).
MULTIPART_OVERHEAD_BYTES = 64 * 1024
#: Parts and non-file field bytes a multipart upload may carry.
MULTIPART_MAX_PARTS = 8
MULTIPART_MAX_BUFFER = 1024 * 1024
#: Longest stored file name (characters); longer names are cut.
MAX_NAME_CHARS = 200


class TooLarge(NoChatError):
    """The upload is bigger than allowed (the file limit, or what the quota leaves)."""

    code = "too_large"
    http_status = 413


class QuotaExceeded(TooLarge):
    """The upload would take the user past their upload quota."""

    code = "quota_exceeded"


async def limited(
    chunks: AsyncIterable[bytes], limit: int, error: TooLarge
) -> AsyncGenerator[bytes, None]:
    """`chunks` cut into pieces of at most PIECE_BYTES; `error` once more than `limit`."""
    seen = 0
    async for chunk in chunks:
        for start in range(0, len(chunk), PIECE_BYTES):
            piece = chunk[start : start + PIECE_BYTES]
            seen += len(piece)
            if seen > limit:
                raise error
            yield piece


async def multipart_file(
    body: AsyncIterator[bytes], boundary: str
) -> tuple[str, AsyncGenerator[bytes, None]]:
    """The first file part's file name and its bytes (read as they are iterated)."""
    decoder = MultipartDecoder(
        boundary.encode("latin-1"),
        max_form_memory_size=MULTIPART_MAX_BUFFER,
        max_parts=MULTIPART_MAX_PARTS,
    )

    async def feed() -> None:
        chunk = await anext(body, None)
        if chunk is None and decoder.complete:
            raise ProtocolError("the multipart body ended early", code="invalid")
        decoder.receive_data(chunk)

    while True:
        try:
            event = decoder.next_event()
        except ValueError:
            raise ProtocolError("malformed multipart body", code="invalid") from None
        if isinstance(event, NeedData):
            await feed()
        elif isinstance(event, File):
            name = event.filename
            break
        elif isinstance(event, Epilogue):
            raise ValidationError("the multipart body has no file part", code="no_file")

    async def data() -> AsyncGenerator[bytes, None]:
        while True:
            try:
                event = decoder.next_event()
            except ValueError:
                raise ProtocolError("malformed multipart body", code="invalid") from None
            if isinstance(event, Data):
                if event.data:
                    yield event.data
                if not event.more_data:
                    return
            elif isinstance(event, NeedData):
                await feed()
            else:
                return

    return name, data()


def clean_name(raw: str | None) -> str:
    """A display name from what the client sent: the last path part, no control or
    format characters, at most MAX_NAME_CHARS. Only ever shown, never a path."""
    text = urllib.parse.unquote(raw or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    text = text.strip(" .")[:MAX_NAME_CHARS]
    return text or "file"
