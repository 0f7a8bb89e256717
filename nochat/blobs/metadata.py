"""Image metadata removed before a file is stored: what GET /api/files/{id} serves carries
no EXIF (GPS position, camera serial, time), XMP, IPTC or comments, only its orientation.

Stripped on upload, not on serve, so the stored bytes are the served bytes: `size`,
`sha256`, the ETag and byte ranges all describe one file. Orientation stays correct by
keeping the EXIF Orientation tag alone (the pixels are not turned, so nothing is
re-encoded for it; browsers apply it, as they did to the original):
- JPEG, where phone photos keep their GPS: lossless. The marker segments before the
  image data are copied except APP1 (EXIF, XMP), APP3-APP13 and APP15 (IPTC, vendors'
  blocks) and COM; APP0 (JFIF), APP2 (ICC colour profile) and APP14 (Adobe colour
  transform) stay; a minimal EXIF holding only the orientation is written after SOI
  (and APP0). The entropy-coded data is copied byte for byte.
- PNG and WebP with EXIF, XMP or text chunks: Pillow writes them again from their pixels
  (PNG and lossless WebP exactly; lossy WebP at quality WEBP_QUALITY), every frame of an
  animation, the ICC profile kept.
- GIF has no EXIF (its comment extensions are left as they are).
A file that is not what its magic number said is stored as it came (it is served as
what it was sniffed to be, with the file headers, and gets no thumbnail).
"""

from __future__ import annotations

import shutil
from typing import IO, Any, Final

from PIL import Image

#: EXIF tag of the orientation (1: as stored; 2-8: mirrored and/or turned).
ORIENTATION_TAG: Final = 0x0112
#: Quality of a lossy WebP written again (the original's is not recorded in the file).
WEBP_QUALITY: Final = 90
#: Pillow's `info` keys of metadata never served.
_INFO_METADATA: Final = frozenset({"exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop"})

_SOS, _EOI, _COM = 0xDA, 0xD9, 0xFE
_APP0, _APP2, _APP14 = 0xE0, 0xE2, 0xEE
#: Markers without a length (TEM, RST0-RST7).
_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD8)})


class MetadataError(Exception):
    """The bytes are not the image their first bytes promised."""


def strip_metadata(source: IO[bytes], out: IO[bytes], content_type: str) -> None:
    """Write the image in `source` to `out` without its metadata (blocking: run it in a
    worker thread). Both are binary files positioned at their start."""
    try:
        orientation = _orientation(source)
        source.seek(0)
        if content_type == "image/jpeg":
            _jpeg(source, out, orientation)
            return
        if content_type in ("image/png", "image/webp") and _rewrite(source, out, orientation):
            return
    except (MetadataError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        pass
    source.seek(0)
    out.seek(0)
    out.truncate()
    shutil.copyfileobj(source, out)


def _orientation(source: IO[bytes]) -> int:
    with Image.open(source) as image:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orientation_exif(orientation: int) -> bytes:
    """An EXIF block holding the orientation alone ("Exif\\0\\0" and a TIFF header)."""
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return exif.tobytes()


def _read(source: IO[bytes], n: int) -> bytes:
    data = source.read(n)
    if len(data) != n:
        raise MetadataError("the JPEG ends inside a marker segment")
    return data


def _jpeg(source: IO[bytes], out: IO[bytes], orientation: int) -> None:
    if _read(source, 2) != b"\xff\xd8":
        raise MetadataError("no JPEG start of image")
    out.write(b"\xff\xd8")
    exif = b"" if orientation == 1 else _orientation_exif(orientation)
    first = True
    while True:
        if _read(source, 1) != b"\xff":
            raise MetadataError("a JPEG marker was expected")
        kind = _read(source, 1)[0]
        while kind == 0xFF:  # fill bytes before a marker
            kind = _read(source, 1)[0]
        if exif and not (first and kind == _APP0):
            out.write(b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif)
            exif = b""
        first = False
        if kind in _STANDALONE:
            out.write(bytes((0xFF, kind)))
            continue
        if kind in (_SOS, _EOI):  # the image data: the rest goes as it is
            out.write(bytes((0xFF, kind)))
            shutil.copyfileobj(source, out)
            return
        length = _read(source, 2)
        body = _read(source, int.from_bytes(length, "big") - 2)
        if _kept(kind, body):
            out.write(bytes((0xFF, kind)) + length + body)


def _kept(kind: int, body: bytes) -> bool:
    """Whether a JPEG marker segment is copied: everything but metadata."""
    if kind == _COM:
        return False
    if not 0xE0 <= kind <= 0xEF:
        return True  # tables, frame headers: the image itself
    if kind == _APP2:
        return body.startswith(b"ICC_PROFILE\x00")
    return kind in (_APP0, _APP14)


def _rewrite(source: IO[bytes], out: IO[bytes], orientation: int) -> bool:
    """PNG or WebP written again without metadata; False when it had none."""
    lossless = _webp_lossless(source)
    with Image.open(source) as image:
        text = getattr(image, "text", None) or {}
        if not (_INFO_METADATA & set(image.info) or text):
            return False
        options: dict[str, Any] = {"save_all": getattr(image, "n_frames", 1) > 1}
        if orientation != 1:
            options["exif"] = _orientation_exif(orientation)
        if image.info.get("icc_profile"):
            options["icc_profile"] = image.info["icc_profile"]
        if image.format == "WEBP":
            options["lossless"] = lossless
            options["quality"] = 100 if lossless else WEBP_QUALITY
        image.save(out, image.format, **options)
    return True


def _webp_lossless(source: IO[bytes]) -> bool:
    """A lossless WebP's first image chunk is VP8L (lossy: VP8)."""
    source.seek(12)
    head = source.read(4096)
    source.seek(0)
    lossy, lossless = head.find(b"VP8 "), head.find(b"VP8L")
    return lossless >= 0 and (lossy < 0 or lossless < lossy)
