"""The status page's media (service/http/static/status-media.js) in a real headless Chromium against a sandbox
stack whose emulator contact sends real media through WhatsApp's flow (encrypted, uploaded to the emulator's
media host, downloaded and verified by the worker, stored by the gateway).

An inbound image shows as a thumbnail whose pixels are the image's (fetched with the key, shown from a blob:
URL); a document is a Download button whose saved bytes have the document's sha256 and its file name; a file
that failed to download says so; captions and file names full of markup stay text (no element, no script);
every media request carried the key in its header, never in a URL. Screenshots: test-artifacts/status-page-media/.
"""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from tests.helpers import media_samples as samples
from tests.helpers.browser import status_page_fixtures
from tests.helpers.sandbox import CONTACT, PHONE
from tests.helpers.stack import wait_for

pytestmark = pytest.mark.system

HOSTILE = '<img src=x onerror="window.__xss=1"><b>bold</b>'

# The pixel at the middle of the thumbnail, drawn onto a canvas: [r, g, b] (null while none is shown).
PIXEL = """
const img = document.querySelector(arguments[0]);
if (!img || !img.complete || !img.naturalWidth || img.hidden) return null;
const c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d');
g.drawImage(img, 0, 0);
return [...g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data.slice(0, 3)];
"""
# The page's downloads: a click on a download link records it instead of saving a file, and the blob behind
# each object URL is kept (the page's CSP lets nothing fetch a blob: URL back).
CATCH_DOWNLOADS = """
window.__downloads = [];
window.__blobs = {};
HTMLAnchorElement.prototype.click = function () { window.__downloads.push([this.download, this.href]); };
const make = URL.createObjectURL;
URL.createObjectURL = (blob) => { const url = make(blob); window.__blobs[url] = blob; return url; };
"""
# The sha256 (hex) and type of what a blob: URL holds.
BLOB_SHA256 = """
const done = arguments[arguments.length - 1];
const blob = window.__blobs[arguments[0]];
blob.arrayBuffer().then((b) => crypto.subtle.digest('SHA-256', b))
  .then((d) => done([...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, '0')).join('')),
        (e) => done('error: ' + e));
"""
BLOB_TYPE = "return window.__blobs[arguments[0]].type"


stack, page = status_page_fixtures("status-page-media")


def contact_sends(stack, **media) -> str:
    """The contact sends media to the account; the gateway's id of that inbound message."""
    data = media.pop("data")
    res = stack.emu("POST", f"/contacts/{CONTACT}/messages",
                    {"to": PHONE, "media": {**media, "base64": base64.b64encode(data).decode()}})
    assert res.status == 200, res.raw
    sha = hashlib.sha256(data).hexdigest()

    def arrived():
        found = [m for m in stack.get("/messages?direction=in&limit=50").json()["messages"]
                 if (m.get("media") or {}).get("sha256") == sha]
        return found[0]["id"] if found else None
    return wait_for(arrived, 30, f"the contact's {media['kind']} at the gateway")


def test_an_image_shows_as_its_thumbnail_and_a_document_downloads_whole(page, stack):
    image = contact_sends(stack, kind="image", data=samples.png(8, 8), mimetype="image/png", caption=HOSTILE)
    pdf = samples.pdf() + b"\n%" + b"x" * 50_000
    name = HOSTILE + ".pdf"
    document = contact_sends(stack, kind="document", data=pdf, mimetype="application/pdf", filename=name,
                             caption="the report " + HOSTILE)
    thumb = f"#in tr[data-id='{image}'] img.thumb"
    pixel = page.wait(lambda: page.js(PIXEL, thumb), 30, "the image's thumbnail")
    assert pixel == [255, 128, 0]  # samples.png's colour: the image's own bytes
    assert page.js("return document.querySelector(arguments[0]).src", thumb).startswith("blob:")
    assert page.text(f"#in tr[data-id='{image}'] .caption") == HOSTILE
    button = f"#in tr[data-id='{document}'] button.media-download"
    page.wait(lambda: page.visible(button), 10, "the document's download button")
    assert page.text(button) == "Download " + name
    assert "application/pdf" in page.text(f"#in tr[data-id='{document}'] .media-meta")
    # Markup from the contact stayed text: no element of it, no script run.
    assert page.count("#in img") == 1 and page.count("#in b") == 0
    assert page.js("return window.__xss") is None
    page.shot("thumbnail-and-document")

    page.js(CATCH_DOWNLOADS)
    page.click(button)
    page.wait(lambda: page.text(f"#in tr[data-id='{document}'] .media-state").startswith("saved"), 20,
              "the document saved")
    [[download, href]] = page.js("return window.__downloads")
    assert download == name and href.startswith("blob:")
    assert page.driver.execute_async_script(BLOB_SHA256, href) == hashlib.sha256(pdf).hexdigest()
    assert page.js(BLOB_TYPE, href) == "application/octet-stream"  # never rendered as a document of this origin
    assert page.js("return window.__xss") is None
    page.shot("document-saved")


def test_an_image_over_the_thumbnail_bound_is_offered_as_a_download_not_fetched(page, stack):
    big = samples.png(8, 8) + os.urandom(3 << 20)  # a PNG with 3 MiB after its end: over the 2 MiB preview bound
    image = contact_sends(stack, kind="image", data=big, mimetype="image/png")
    row = f"#in tr[data-id='{image}']"
    page.wait(lambda: page.visible(row + " button.media-download"), 30, "the big image's download button")
    assert page.count(row + " img") == 0
    assert [r["url"] for r in page.network() if r["url"].endswith(f"/media/{image}")] == []  # nothing fetched


def test_a_media_download_that_failed_is_shown_as_failed(page, stack):
    res = stack.emu("POST", "/faults", {"kind": "media_tamper"})  # the next upload is stored damaged
    assert res.status == 200, res.raw
    broken = contact_sends(stack, kind="image", data=samples.png(4, 4), mimetype="image/png")
    cell = f"#in tr[data-id='{broken}'] .media"
    page.wait(lambda: page.js("return document.querySelector(arguments[0])?.dataset.mediaState", cell) == "failed",
              90, "the image failed on the page")
    assert page.text(cell + " .badge") == "failed" and page.text(cell + " .media-error")
    assert page.count(cell + " img") == 0
    page.shot("failed")


def test_a_sent_image_shows_as_its_thumbnail_among_the_sent_messages(page, stack):
    res = stack.post("/send", {"phone_number": CONTACT, "caption": "sent " + HOSTILE,
                               "image": {"base64": base64.b64encode(samples.png(9, 9)).decode()}})
    assert res.status in (200, 202), res.raw
    row = f"#out tr[data-id='{res.json()['id']}']"
    assert page.wait(lambda: page.js(PIXEL, row + " img.thumb"), 30, "the sent image's thumbnail") == [255, 128, 0]
    assert page.text(row + " .caption") == "sent " + HOSTILE and page.count("#out b") == 0
    page.shot("sent-image")


def test_every_media_request_sent_the_key_in_its_header_never_in_a_url(page, stack):
    media = [r for r in page.network() if "/media/" in r["url"]]
    assert media, "the page fetched no media"
    assert all(r["headers"].get("X-API-Key") == stack.api_key for r in media)
    assert all(stack.api_key not in r["url"] for r in page.requests)
