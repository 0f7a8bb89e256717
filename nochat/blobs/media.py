"""What a file is, from its bytes: the sniffed content type, and images' size and thumbnail.

The client's Content-Type is never believed: the first bytes decide (magic numbers of
the types NoChat shows or plays inline). Anything else is `application/octet-stream` and
downloads as an attachment. Pillow decodes images (decoding and EXIF handling are not
code to write by hand), with a pixel limit against decompression bombs; the thumbnail is
re-encoded from pixels, so no EXIF (GPS included) or other metadata survives into it.
"""

from __future__ import annotations

import io
from typing import IO, Final

import msgspec
from PIL import Image, ImageOps

OCTET_STREAM: Final = "application/octet-stream"
#: Types served inline (images, audio, video, PDF); everything else is an attachment.
INLINE_TYPES: Final = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "audio/mpeg",
        "audio/ogg",
        "video/mp4",
        "video/webm",
    }
)
IMAGE_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
#: Bytes `sniff` needs to see.
SNIFF_BYTES: Final = 16
#: Largest image (in pixels) decoded for a thumbnail: 50 megapixels is beyond any camera
#: photo people share, and bounds a decompression bomb's memory (~200 MB as RGBA).
MAX_IMAGE_PIXELS: Final = 50_000_000
#: A thumbnail fits in this many pixels on each side.
THUMBNAIL_PX: Final = 320

# Pillow's own bomb check (it refuses twice this) covers every frame it decodes, too.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def sniff(head: bytes) -> str:
    """The content type the first bytes show, or OCTET_STREAM."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    return OCTET_STREAM


class Thumbnail(msgspec.Struct, frozen=True):
    #: The image's size as shown (EXIF orientation applied).
    width: int
    height: int
    #: The thumbnail, PNG (with transparency) or JPEG, no metadata.
    data: bytes
    content_type: str


class ImageError(Exception):
    """Not an image Pillow can decode within the limits."""


def make_thumbnail(source: IO[bytes]) -> Thumbnail:
    """Decode the image in `source` (blocking: run it in a worker thread)."""
    try:
        with Image.open(source) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ImageError("image too large to decode")
            width, height = _shown_size(image)
            image.draft("RGB", (THUMBNAIL_PX * 2, THUMBNAIL_PX * 2))  # JPEG: decode smaller
            upright = ImageOps.exif_transpose(image)
            upright.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            has_alpha = upright.mode in ("RGBA", "LA", "P")
            out = io.BytesIO()
            if has_alpha:
                upright.convert("RGBA").save(out, "PNG", optimize=True)
                kind = "image/png"
            else:
                upright.convert("RGB").save(out, "JPEG", quality=85)
                kind = "image/jpeg"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(str(exc)) from None
    return Thumbnail(width, height, out.getvalue(), kind)


def _shown_size(image: Image.Image) -> tuple[int, int]:
    """The size once EXIF orientation is applied (5-8 swap width and height)."""
    size = image.size
    orientation = image.getexif().get(0x0112, 1)
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size
