"""Files in real Chromium: drop, paste and attach; thumbnails live; downloads; safety."""

from __future__ import annotations

import base64
import io
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from .conftest import NochatServer
from .ui import composer, messages, sign_up

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"


def picture(width: int = 480, height: int = 320) -> bytes:
    image = Image.new("RGB", (width, height), (40, 90, 160))
    for x in range(0, width, 40):  # a pattern, so the thumbnail shows something
        for y in range(0, height, 40):
            if (x + y) // 40 % 2:
                image.paste((250, 200, 60), (x, y, x + 40, y + 40))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def drop_files(page: Page, files: list[tuple[str, str, bytes]]) -> None:
    """Drop files onto the conversation, as a drag from the desktop does."""
    payload = [
        {"name": name, "type": kind, "data": base64.b64encode(data).decode()}
        for name, kind, data in files
    ]
    transfer = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
                dt.items.add(new File([bytes], f.name, { type: f.type }));
            }
            return dt;
        }""",
        payload,
    )
    page.dispatch_event("#room", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("#room", "drop", {"dataTransfer": transfer})


def test_files_dropped_image_and_pdf_reach_the_other_user(
    new_page: Any, server: NochatServer, screenshots: Path
) -> None:
    ann: Page = new_page()
    bob: Page = new_page()
    sign_up(ann, "ann")
    sign_up(bob, "bob")
    image = picture()
    drop_files(ann, [("harbour.png", "image/png", image), ("minutes.pdf", "application/pdf", PDF)])
    uploads = ann.locator("#uploads li.upload")
    expect(uploads).to_have_count(2)
    expect(uploads.and_(ann.locator("[data-state=done]"))).to_have_count(2)
    composer(ann).fill("photos from the harbour, and the minutes")
    composer(ann).press("Enter")
    expect(uploads).to_have_count(0)

    sent = messages(bob).last
    thumb = sent.locator(".attachments a.thumb img")
    expect(thumb).to_be_visible()
    expect(thumb).to_have_attribute("alt", "harbour.png")
    # The thumbnail really loaded (a decoded image, not a broken icon), scaled to 320 wide.
    bob.wait_for_function(
        "img => img.complete && img.naturalWidth === 320", arg=thumb.element_handle()
    )
    expect(sent.locator(".attachments a.thumb")).to_have_attribute("target", "_blank")
    card = sent.locator("a.file-card")
    expect(card.locator(".file-name")).to_have_text("minutes.pdf")
    expect(card.locator(".file-size")).to_have_text(f"{len(PDF)} B")
    with bob.expect_download() as info:
        card.click()
    download = info.value
    assert download.suggested_filename == "minutes.pdf"
    assert Path(download.path()).read_bytes() == PDF
    # The full-size image opens from the thumbnail, byte for byte what was dropped.
    href = sent.locator(".attachments a.thumb").get_attribute("href")
    assert href is not None
    full = bob.request.get(href)
    assert full.status == 200 and full.body() == image
    expect(messages(ann).last.locator(".attachments a.thumb img")).to_be_visible()
    bob.mouse.move(640, 700)  # off the message: no hover toolbar in the picture
    bob.screenshot(path=str(screenshots / "image-message.png"))


def test_files_upload_progress_cancel_and_a_failure_that_says_why(
    new_page: Any, server: NochatServer, screenshots: Path
) -> None:
    ann: Page = new_page()
    sign_up(ann, "ann")
    # A slow uplink, so the upload is seen in progress (Chromium's own throttling).
    cdp = ann.context.new_cdp_session(ann)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 256 * 1024},
    )
    big = bytes(range(256)) * (4 * 1024 * 4)  # 4 MiB
    drop_files(ann, [("site-survey.mp4", "video/mp4", big)])
    upload = ann.locator("#uploads li.upload")
    expect(upload).to_have_attribute("data-state", "uploading")
    ann.wait_for_function("() => (document.querySelector('#uploads progress') || {}).value >= 25")
    composer(ann).fill("uploading while I type")  # the composer stays usable
    expect(composer(ann)).to_have_value("uploading while I type")
    ann.screenshot(path=str(screenshots / "upload-progress.png"))
    upload.get_by_role("button", name="Cancel").click()
    expect(upload).to_have_count(0)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    # Too large: the server's 413 reason is shown, and Retry is offered.
    huge = ann.evaluate_handle(
        """() => { const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(25 * 1024 * 1024 + 1)], "huge.bin"));
            return dt; }"""
    )
    ann.dispatch_event("#room", "drop", {"dataTransfer": huge})
    expect(upload).to_have_attribute("data-state", "failed")
    expect(upload.locator(".upload-note")).to_have_text("Failed: too large")
    expect(upload.get_by_role("button", name="Retry")).to_be_visible()


def test_files_html_claiming_to_be_png_runs_no_script(new_page: Any, server: NochatServer) -> None:
    token = server.register("mallory")
    html = (
        b"<html><body><script>fetch('/xss-ran-script')</script>"
        b"<img src=x onerror=\"fetch('/xss-ran-onerror')\"></body></html>"
    )
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/xss-ran-svg")</script></svg>'
    ids = []
    for name, data in (("cat.png", html), ("logo.png", svg)):
        req = urllib.request.Request(
            f"{server.url}/api/rooms/general/files?filename={name}",
            data=data,
            method="POST",
            headers={"Content-Type": "image/png", "Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            ids.append(json.loads(resp.read())["id"])
    status, _ = server.request(
        "POST",
        "/api/rooms/general/messages",
        {"text": "look", "client_id": "x1", "attachments": ids},
        token,
    )
    assert status == 200
    victim: Page = new_page()
    sign_up(victim, "victim")
    seen: list[str] = []
    victim.context.on("request", lambda r: seen.append(r.url))
    for file_id in ids:
        with victim.expect_download() as info:  # an attachment: never rendered as a page
            victim.evaluate("(u) => { location.href = u; }", f"/api/files/{file_id}")
        assert info.value.suggested_filename in ("cat.png", "logo.png")
    # Even shown in a frame of its own window, the sandbox CSP would stop scripts; here,
    # nothing rendered at all, and nothing the files hold ever reached the server.
    assert not [url for url in seen if "xss-ran" in url]
    expect(victim.locator("#messages")).to_be_visible()


def test_files_phone_layout_paste_and_thumbnail_fit(new_page: Any, server: NochatServer) -> None:
    phone: Page = new_page(390, 760, is_mobile=True, has_touch=True)
    sign_up(phone, "pat")
    expect(phone.get_by_role("button", name="Attach files")).to_be_visible()
    image = picture(900, 600)
    # Paste an image from the clipboard into the composer.
    phone.evaluate(
        """(data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "clipboard.png", { type: "image/png" }));
            const box = document.getElementById("message");
            box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true }));
        }""",
        base64.b64encode(image).decode(),
    )
    upload = phone.locator("#uploads li.upload")
    expect(upload).to_have_attribute("data-state", "done")
    phone.get_by_role("button", name="Send").click()  # only an attachment, no text
    thumb = messages(phone).last.locator(".attachments img")
    expect(thumb).to_be_visible()
    phone.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )
    box = thumb.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    no_scroll = "() => document.documentElement.scrollWidth <= window.innerWidth"
    assert phone.evaluate(no_scroll)
