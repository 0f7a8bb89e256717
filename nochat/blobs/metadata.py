"""Image metadata removed before a file is stored: what GET /api/files/{id} serves carries
no EXIF (GPS position, camera serial, time), XMP, IPTC, comments or text, only its
orientation.

Stripped on upload, not on serve, so the stored bytes are the served bytes: `size`,
`sha256`, the ETag and byte ranges all describe one file. Nothing is decoded or
re-encoded: each format's container is rewritten without its metadata parts, the image
data copied byte for byte (lossless, streaming, no decompression bomb to fear, every
frame of an animation kept). Orientation stays correct by keeping the EXIF Orientation
tag alone, in a minimal EXIF block of our own (browsers apply it, as to the original):
- JPEG (phone photos, where GPS usually is): the marker segments before the image data
  are copied except APP1 (EXIF, XMP), APP3-APP13 and APP15 (IPTC, vendors' blocks) and
  COM; APP0 (JFIF), APP2 (ICC colour profile) and APP14 (Adobe colour transform) stay;
  the orientation EXIF goes after SOI (and APP0).
- PNG: the chunks eXIf, tEXt, zTXt, iTXt and tIME go; the orientation eXIf goes after
  IHDR.
- WebP: the EXIF and "XMP " chunks go and VP8X's flags say so; the orientation EXIF
  goes last (where the format puts it).
- GIF has no EXIF (its comment extensions are left as they are).
A file that is not what its magic number said is stored as it came (it is served as
what it was sniffed to be, with the file headers, and gets no thumbnail).
"""

from __future__ import annotations

import shutil
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Final

from PIL import Image

#: EXIF tag of the orientation (1: as stored; 2-8: mirrored and/or turned).
ORIENTATION_TAG: Final = 0x0112
#: Bytes copied at a time.
_COPY_BYTES: Final = 256 * 1024
_EXIF_HEADER: Final = b"Exif\x00\x00"
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
#: PNG chunks of metadata (EXIF; Latin-1, compressed and international text, where XMP
#: lives too; the time of the last change).
_PNG_METADATA: Final = frozenset({b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"})
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04

_SOS, _EOI, _COM = 0xDA, 0xD9, 0xFE
_APP0, _APP2, _APP14 = 0xE0, 0xE2, 0xEE
#: Markers without a length (TEM, RST0-RST7).
_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD8)})


class MetadataError(Exception):
    """The bytes are not the image their first bytes promised."""


def strip_metadata(source: IO[bytes], out: IO[bytes], content_type: str) -> None:
    """Write the image in `source` to `out` without its metadata (blocking: run it in a
    worker thread). Both are seekable binary files positioned at their start."""
    strip = _STRIPPERS.get(content_type)
    try:
        if strip is not None:
            strip(source, out)
            return
    except (MetadataError, OSError, ValueError, SyntaxError):
        pass
    source.seek(0)
    out.seek(0)
    out.truncate()
    shutil.copyfileobj(source, out)


def _read(source: IO[bytes], n: int) -> bytes:
    data = source.read(n)
    if len(data) != n:
        raise MetadataError("the image ends inside a part of its container")
    return data


def _copy(source: IO[bytes], out: IO[bytes], n: int) -> None:
    """Copy exactly `n` bytes, a piece at a time."""
    while n > 0:
        piece = _read(source, min(n, _COPY_BYTES))
        out.write(piece)
        n -= len(piece)


def _orientation_of(tiff: bytes | None) -> int:
    """The Orientation tag of an EXIF block (TIFF data, with or without "Exif\0\0")."""
    if not tiff:
        return 1
    exif = Image.Exif()
    try:
        exif.load(tiff if tiff.startswith(_EXIF_HEADER) else _EXIF_HEADER + tiff)
        value = exif.get(ORIENTATION_TAG, 1)
    except (ValueError, OSError, SyntaxError, KeyError, IndexError, TypeError, struct.error):
        return 1  # an EXIF block Pillow cannot read: shown as stored
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orientation_tiff(orientation: int) -> bytes:
    """A TIFF block holding the orientation alone (no "Exif\0\0" header)."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return exif.tobytes()[len(_EXIF_HEADER) :]


# ---- JPEG ------------------------------------------------------------------------------


def _jpeg_segments(source: IO[bytes]) -> Iterator[tuple[int, bytes, bytes]]:
    """The marker segments after SOI as (marker, length bytes, body), up to and with SOS
    (or EOI), after which the file is the image data."""
    if _read(source, 2) != b"\xff\xd8":
        raise MetadataError("no JPEG start of image")
    while True:
        if _read(source, 1) != b"\xff":
            raise MetadataError("a JPEG marker was expected")
        kind = _read(source, 1)[0]
        while kind == 0xFF:  # fill bytes before a marker
            kind = _read(source, 1)[0]
        if kind in _STANDALONE or kind in (_SOS, _EOI):
            yield kind, b"", b""
            if kind in (_SOS, _EOI):
                return
            continue
        length = _read(source, 2)
        yield kind, length, _read(source, int.from_bytes(length, "big") - 2)


def _jpeg(source: IO[bytes], out: IO[bytes]) -> None:
    exif = None
    for kind, _, body in _jpeg_segments(source):
        if kind == 0xE1 and body.startswith(_EXIF_HEADER) and exif is None:
            exif = body
    orientation = _orientation_of(exif)
    own = b"" if orientation == 1 else _EXIF_HEADER + _orientation_tiff(orientation)
    source.seek(0)
    out.write(b"\xff\xd8")
    first = True
    for kind, length, body in _jpeg_segments(source):
        if own and not (first and kind == _APP0):
            out.write(b"\xff\xe1" + (len(own) + 2).to_bytes(2, "big") + own)
            own = b""
        first = False
        if length == b"":
            out.write(bytes((0xFF, kind)))
        elif _jpeg_kept(kind, body):
            out.write(bytes((0xFF, kind)) + length + body)
    shutil.copyfileobj(source, out)  # the image data, as it is


def _jpeg_kept(kind: int, body: bytes) -> bool:
    """Whether a JPEG marker segment is copied: everything but metadata."""
    if kind == _COM:
        return False
    if not 0xE0 <= kind <= 0xEF:
        return True  # tables, frame headers: the image itself
    if kind == _APP2:
        return body.startswith(b"ICC_PROFILE\x00")
    return kind in (_APP0, _APP14)


# ---- PNG -------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return len(data).to_bytes(4, "big") + kind + data + crc.to_bytes(4, "big")


def _png(source: IO[bytes], out: IO[bytes]) -> None:
    if _read(source, 8) != _PNG_SIGNATURE:
        raise MetadataError("no PNG signature")
    chunks: list[tuple[bytes, int, int]] = []  # (type, offset of data, length)
    exif: bytes | None = None
    while True:
        length = int.from_bytes(_read(source, 4), "big")
        kind = _read(source, 4)
        where = source.tell()
        if kind == b"eXIf":
            exif = _read(source, length)
        source.seek(where + length + 4)  # and its CRC
        chunks.append((kind, where, length))
        if kind == b"IEND":
            break
    orientation = _orientation_of(exif)
    out.write(_PNG_SIGNATURE)
    for kind, where, length in chunks:
        if kind in _PNG_METADATA:
            continue
        source.seek(where - 8)
        _copy(source, out, length + 12)
        if kind == b"IHDR" and orientation != 1:
            out.write(_png_chunk(b"eXIf", _orientation_tiff(orientation)))


# ---- WebP ------------------------------------------------------------------------------


def _webp(source: IO[bytes], out: IO[bytes]) -> None:
    header = _read(source, 12)
    if header[:4] != b"RIFF" or header[8:] != b"WEBP":
        raise MetadataError("no WebP RIFF header")
    end = 8 + int.from_bytes(header[4:8], "little")
    chunks: list[tuple[bytes, int, int]] = []  # (fourcc, offset of data, size)
    exif: bytes | None = None
    while source.tell() + 8 <= end:
        fourcc, size = _read(source, 4), int.from_bytes(_read(source, 4), "little")
        where = source.tell()
        if fourcc == b"EXIF":
            exif = _read(source, size)
        source.seek(where + size + (size & 1))
        chunks.append((fourcc, where, size))
    if not chunks or (chunks[0][0] != b"VP8X" and len(chunks) > 1):
        raise MetadataError("a WebP with several chunks must start with VP8X")
    if chunks[0][0] != b"VP8X":
        shutil.copyfileobj(_rewound(source), out)  # a simple WebP holds no metadata
        return
    orientation = _orientation_of(exif)
    own = b"" if orientation == 1 else _orientation_tiff(orientation)
    kept = [c for c in chunks if c[0] not in (b"EXIF", b"XMP ")]
    body = sum(8 + size + (size & 1) for _, _, size in kept)
    if own:
        body += 8 + len(own) + (len(own) & 1)
    out.write(b"RIFF" + (4 + body).to_bytes(4, "little") + b"WEBP")
    for fourcc, where, size in kept:
        source.seek(where)
        data = _read(source, size) if fourcc == b"VP8X" else b""
        out.write(fourcc + size.to_bytes(4, "little"))
        if fourcc == b"VP8X":  # flags: no XMP; EXIF only when ours follows
            flags = data[0] & ~(_VP8X_EXIF | _VP8X_XMP) | (_VP8X_EXIF if own else 0)
            out.write(bytes((flags,)) + data[1:])
        else:
            _copy(source, out, size)
        if size & 1:
            out.write(b"\x00")
    if own:
        out.write(b"EXIF" + len(own).to_bytes(4, "little") + own + b"\x00" * (len(own) & 1))


def _rewound(source: IO[bytes]) -> IO[bytes]:
    source.seek(0)
    return source


_STRIPPERS: Final[dict[str, Callable[[IO[bytes], IO[bytes]], None]]] = {
    "image/jpeg": _jpeg,
    "image/png": _png,
    "image/webp": _webp,
}
