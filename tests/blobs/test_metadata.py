"""Image metadata stripped before storing (nochat/blobs/metadata.py): GPS and every other
EXIF tag, XMP, comments and PNG text go; pixels, orientation and ICC profile stay."""

from __future__ import annotations

import io

from PIL import Image, ImageCms

from nochat.blobs.metadata import ORIENTATION_TAG, strip_metadata

from ..files_client import jpeg_with_gps

GPS_IFD = 0x8825


def _stripped(data: bytes, content_type: str) -> bytes:
    out = io.BytesIO()
    strip_metadata(io.BytesIO(data), out, content_type)
    return out.getvalue()


def _pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGBA").tobytes()


def test_metadata_jpeg_loses_gps_xmp_and_comment_keeps_pixels_orientation_and_icc() -> None:
    photo = Image.open(io.BytesIO(jpeg_with_gps(64, 32)))
    exif = photo.getexif()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = io.BytesIO()
    photo.save(source, "JPEG", exif=exif, icc_profile=icc, comment=b"shot at home", xmp=b"<x:lat/>")
    original = source.getvalue()
    assert b"NoChatCam" in original and b"shot at home" in original and b"<x:lat/>" in original
    clean = _stripped(original, "image/jpeg")
    for secret in (b"NoChatCam", b"shot at home", b"<x:lat/>", b"GPS"):
        assert secret not in clean
    with Image.open(io.BytesIO(clean)) as image:
        kept = image.getexif()
        assert dict(kept) == {ORIENTATION_TAG: 6}
        assert kept.get_ifd(GPS_IFD) == {}
        assert image.info.get("icc_profile") == icc
    assert _pixels(clean) == _pixels(original)  # lossless: the image data is copied
    scan = original.rindex(b"\xff\xda")  # from the start of scan: copied byte for byte
    assert clean.endswith(original[scan:])


def test_metadata_jpeg_without_metadata_is_unchanged() -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, "JPEG")
    assert _stripped(out.getvalue(), "image/jpeg") == out.getvalue()


def test_metadata_png_loses_exif_and_text_keeps_pixels() -> None:
    from PIL.PngImagePlugin import PngInfo

    image = Image.new("RGBA", (10, 6), (9, 80, 160, 120))
    exif = Image.Exif()
    exif[0x010F] = "NoChatCam"
    exif[ORIENTATION_TAG] = 3
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0)}
    info = PngInfo()
    info.add_text("Location", "my street 5")
    source = io.BytesIO()
    image.save(source, "PNG", exif=exif, pnginfo=info)
    original = source.getvalue()
    clean = _stripped(original, "image/png")
    assert b"NoChatCam" not in clean and b"my street" not in clean
    with Image.open(io.BytesIO(clean)) as found:
        assert dict(found.getexif()) == {ORIENTATION_TAG: 3}
        assert not getattr(found, "text", {})
    assert _pixels(clean) == _pixels(original)


def test_metadata_webp_loses_exif_and_xmp_keeps_every_frame() -> None:
    frames = [Image.new("RGB", (12, 8), color) for color in ((200, 0, 0), (0, 0, 200))]
    exif = Image.Exif()
    exif[0x010F] = "NoChatCam"
    exif[ORIENTATION_TAG] = 8
    source = io.BytesIO()
    frames[0].save(
        source, "WEBP", save_all=True, append_images=frames[1:], exif=exif, xmp=b"<x:lat/>"
    )
    original = source.getvalue()
    assert b"NoChatCam" in original and b"<x:lat/>" in original
    clean = _stripped(original, "image/webp")
    assert b"NoChatCam" not in clean and b"<x:lat/>" not in clean
    with Image.open(io.BytesIO(clean)) as found, Image.open(io.BytesIO(original)) as was:
        assert dict(found.getexif()) == {ORIENTATION_TAG: 8}
        assert found.n_frames == was.n_frames == 2
        for n in range(2):
            found.seek(n)
            was.seek(n)
            assert found.convert("RGB").tobytes() == was.convert("RGB").tobytes()


def test_metadata_bytes_that_are_no_image_are_kept_as_they_came() -> None:
    fake = b"\xff\xd8\xff" + b"<script>x</script>" * 10
    assert _stripped(fake, "image/jpeg") == fake
    truncated = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"
    assert _stripped(truncated, "image/png") == truncated
    assert _stripped(b"RIFF\x04\x00\x00\x00WEBP", "image/webp") == b"RIFF\x04\x00\x00\x00WEBP"
