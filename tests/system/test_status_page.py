"""The status page at ``/`` (service/http/static/status.*) in a real headless Chromium against a sandbox stack.

Debian's ``chromium`` driven by Selenium through Debian's ``chromium-driver`` (``make test`` installs both
when missing; without them these tests skip and say so). One sandbox stack and one browser serve the module:
the page asks for the key (a wrong one is refused), shows the default account, Connect shows the live QR
image, which the test decodes from the page (drawn onto a canvas, read with zxing-cpp); the page follows the
code as it rotates (every 9 s here; the worker sends no event for that), and the test scans the current one
through the emulator's phone; the page then shows "connected" and the phone number through its event stream,
without a reload. A message sent from the page's form arrives at the emulator's contact; a contact's message (with
markup in it, which must stay text) appears in the inbound list; a dead letter (a webhook that answers 400)
shows with a redrive button that delivers it. The stream resumes with Last-Event-ID after the gateway is
killed and restarted, and every request the page made (read from Chromium's network log) carried the key in its
X-API-Key header and never in a URL.

Screenshots are kept in test-artifacts/status-page/ under the repository (gitignored), one PNG per step.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time

import pytest
import zxingcpp

from service.http.app import create_app
from service.settings import Settings
from tests.helpers.browser import Page, open_page, why_no_browser
from tests.helpers.sandbox import CONTACT, PHONE
from tests.helpers.stack import Stack, wait_for
from tests.helpers.webhook_receiver import Receiver

pytestmark = pytest.mark.system

# The receiver's own secret: the account webhook signs with another, which this test does not check.
HOOK_SECRET = "whsec_" + base64.b64encode(b"status-page-test-secret-32bytes!").decode()
XSS = '<img src=x onerror="window.__xss=1">hello <b>there</b>'

# --- the page itself, in-process ------------------------------------------------------------------------

async def test_the_page_is_open_self_contained_and_locked_down(aiohttp_client, tmp_path):
    settings = Settings.from_env({"WA_DATA_DIR": str(tmp_path / "data"), "WA_RUN_DIR": str(tmp_path / "run"),
                                  "WA_API_KEY": "k"})
    client = await aiohttp_client(create_app(settings))
    res = await client.get("/")
    assert res.status == 200 and res.content_type == "text/html"
    html = await res.text()
    assert "http://" not in html and "https://" not in html  # nothing loaded from elsewhere
    for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in html, sink  # text from the API is never parsed as HTML or code
    assert "X-API-Key" in html and "sessionStorage" in html and "new EventSource" not in html
    csp = res.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "'unsafe-inline'" not in csp and "script-src 'sha256-" in csp and "style-src 'sha256-" in csp
    assert res.headers["Cache-Control"] == "no-store"
    assert (await client.get("/", headers={"X-API-Key": "wrong"})).status == 401  # a wrong key is still refused
    assert (await client.get("/", headers={"X-API-Key": "k"})).status == 200


# --- in a real browser ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack():
    if (why := why_no_browser()) is not None:
        pytest.skip(why)
    # QR codes that rotate every 9 s instead of 60 s then 20 s: the page must follow them without an event.
    with Stack({"WA_QR_TIMEOUT_MS": "9000"}, sandbox=True) as running:
        yield running


def open_app(page: Page, key: str) -> None:
    """Past the key prompt to the app (once per tab: the key is kept in it)."""
    if page.visible("#app"):
        return
    page.fill("#key", key)
    page.click("#login-button")
    page.wait(lambda: page.visible("#app") and page.text("#account-name") == "default", 10, "the page open")


@pytest.fixture(scope="module")
def page(stack):
    with open_page(stack.base + "/", "status-page") as opened:
        yield opened
        print(f"\nstatus page screenshots: {opened.artifacts}")


def test_a_wrong_key_is_refused(page):
    page.fill("#key", "not-the-key")
    page.click("#login-button")
    page.wait(lambda: "refused" in page.text("#login-state"), 10, "the refusal")
    assert "valid API key is required" in page.text("#login-state")
    assert not page.visible("#app")
    assert page.driver.execute_script("return sessionStorage.getItem('wa-gateway-key')") is None
    page.shot("wrong-key")


# Draws the QR image the page shows onto a canvas and returns its pixels (one byte per pixel, red channel).
SHOWN_QR = """
const img = document.getElementById('qr');
if (!img.complete || !img.naturalWidth || img.offsetParent === null) return null;
const c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d');
g.fillStyle = '#fff'; g.fillRect(0, 0, c.width, c.height); g.drawImage(img, 0, 0);
const rgba = g.getImageData(0, 0, c.width, c.height).data;
let out = '';
for (let i = 0; i < rgba.length; i += 4) out += String.fromCharCode(rgba[i]);
return [c.width, c.height, btoa(out)];
"""


def shown_qr(page: Page) -> str | None:
    """The text of the QR code the page shows now (None while it shows none)."""
    drawn = page.driver.execute_script(SHOWN_QR)
    if not drawn:
        return None
    width, height, pixels = drawn
    image = memoryview(base64.b64decode(pixels)).cast("B", (height, width))
    found = [b.text for b in zxingcpp.read_barcodes(image, try_invert=False)]
    return found[0] if found else None


def open_the_page(page: Page, stack) -> str:
    """The page opened with the key: the default account listed, the stream live, the health table shown; returns
    the selector of the account's row."""
    open_app(page, stack.api_key)
    page.driver.execute_script("window.__sameDocument = true")  # gone if the page reloads
    row = "#accounts tr[data-account='default']"
    page.wait(lambda: page.text(row + " .state") == "stopped", 10, "default listed as stopped")
    page.wait(lambda: page.visible("#connect"), 10, "the Connect button")
    page.wait(lambda: page.text("#stream-state") == "live", 10, "the live stream")
    page.wait(lambda: page.text("#health [data-program='store']"), 10, "the health table")
    assert "writable" in page.text("#health [data-program='store']")
    assert "RUNNING" in page.text("#health [data-program='worker']")
    page.shot("opened")
    return row


def link_from_the_page(page: Page, stack, row: str) -> None:
    # Connect: the page shows the QR code, the test reads it off the page and the phone scans it.
    page.click("#connect")
    first = page.wait(lambda: shown_qr(page), 20, "a readable QR image on the page")
    assert first.startswith("https://wa.me/settings/linked_devices#")
    assert page.text("#account-state") == "qr"
    page.shot("qr")
    # The worker sends no event when the code rotates (the state stays qr): the page still shows the new one.
    payload = page.wait(lambda: (shown := shown_qr(page)) != first and shown, 20, "the next QR code on the page")
    assert payload == stack.get("/qr?format=raw").raw.decode()
    assert "linked_devices" not in page.text("#events")  # the QR payload is never in the event log
    res = stack.emu("POST", "/phone/scan", {"phone_number": PHONE, "qr": payload})
    assert res.status == 200, res.raw
    page.wait(lambda: page.text("#account-state") == "connected", 30, "connected on the page")
    page.wait(lambda: page.text("#d-phone") == PHONE and page.text(row + " .phone") == PHONE, 10,
              "the phone number on the page")
    assert not page.visible("#qr-box") and not page.visible("#connect")
    events = page.driver.execute_script("return [...document.querySelectorAll("
                                        "\"#events li[data-type='session.status']\")].map((li) => li.innerText)")
    assert any(e.endswith("connected " + PHONE) for e in events), events
    assert "linked_devices" not in page.text("#events")  # the QR payload is never in the event log
    page.shot("connected")


def send_from_the_page(page: Page, stack) -> None:
    # Send from the page's form; the message arrives at the contact.
    text = "From the status page, " + str(time.time())
    page.fill("#send-to", CONTACT)
    page.fill("#send-text", text)
    page.click("#send-button")
    page.wait(lambda: page.text("#send-result").startswith("Accepted"), 20, "the send result")
    wait_for(lambda: any(m["text"] == text for m in stack.emu("GET", f"/contacts/{CONTACT}/messages").json()),
             15, "the page's message at the contact")
    page.wait(lambda: text in page.text("#out"), 10, "the sent message in the outbound list")
    page.wait(lambda: page.text("#out tr .badge") in ("delivered", "read"), 15, "its delivered status")
    # An error is shown as the gateway's message.
    page.fill("#send-to", "12345")
    page.fill("#send-text", "x")
    page.click("#send-button")
    page.wait(lambda: page.text("#send-result").startswith("Not sent:"), 10, "the send error")
    assert "phone" in page.text("#send-result").lower()


def receive_on_the_page(page: Page, stack) -> None:
    # A contact writes (with markup, which must stay text): it appears in the inbound list by the stream.
    res = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": XSS})
    assert res.status == 200, res.raw
    page.wait(lambda: XSS in page.text("#in"), 15, "the contact's message in the inbound list")
    assert page.count("#in img, #in b") == 0
    assert page.driver.execute_script("return window.__xss") is None
    page.shot("messages")


def redrive_from_the_page(page: Page, stack, receiver: Receiver) -> None:
    # Its webhook delivery was refused: a dead letter with a redrive button, which delivers it now.
    def dead_letter():
        found = page.driver.execute_script("const r = document.querySelector('#dead tr[data-id]'); "
                                           "return r && r.dataset.id")
        if not found:
            page.click("#dead-refresh")
        return found

    delivery = page.wait(dead_letter, 20, "the dead letter on the page")
    assert "message.received" in page.text("#dead") and "400" in page.text("#dead")
    page.shot("dead-letter")
    receiver.script = lambda record: 200
    page.click(f"#dead tr[data-id='{delivery}'] button.redrive")
    page.wait(lambda: page.text("#dead-result").startswith("Redriven"), 10, "the redrive result")
    wait_for(lambda: stack.get(f"/webhooks/deliveries/{delivery}").json()["status"] == "delivered", 15,
             "the redriven delivery delivered")
    page.wait(lambda: page.count(f"#dead tr[data-id='{delivery}']") == 0, 10, "the dead letter gone from the page")
    assert [r for r in receiver.delivered() if json.loads(r.body)["data"]["text"] == XSS]


def test_link_send_receive_and_redrive_from_the_page(page, stack):
    started = time.monotonic()
    receiver = Receiver(HOOK_SECRET, script=lambda record: 400).start()  # every delivery dead-letters
    try:
        row = open_the_page(page, stack)
        link_from_the_page(page, stack, row)

        # A dead letter to come: the account's webhook answers 400 to everything.
        res = stack.post("/accounts/default/webhooks", {"url": receiver.url, "events": ["message.received"]})
        assert res.status == 201, res.raw

        send_from_the_page(page, stack)
        receive_on_the_page(page, stack)
        redrive_from_the_page(page, stack, receiver)
        assert page.driver.execute_script("return window.__sameDocument") is True  # all without a reload
        page.shot("redriven")
    finally:
        receiver.stop()
        print(f"\nthe page flow took {time.monotonic() - started:.1f}s")


def test_the_stream_resumes_after_the_gateway_restarts(page, stack):
    open_app(page, stack.api_key)
    page.wait(lambda: page.text("#stream-state") == "live", 10, "the live stream")
    last = str(stack.events()[-1]["seq"])
    page.wait(lambda: page.driver.execute_script("return document.querySelector('#events li')?.dataset.seq") == last,
              10, "the page to have read the last event")
    mark = len(page.network())
    gateway = stack.process_info("gateway")["pid"]
    os.kill(gateway, signal.SIGKILL)  # the connection drops at once; supervisord starts a new gateway at once
    page.wait(lambda: page.text("#stream-state") != "live", 10, "the stream to drop")
    wait_for(lambda: stack.process_info("gateway")["pid"] not in (0, gateway), 15, "a new gateway")
    page.wait(lambda: page.text("#stream-state") == "live", 20, "the stream back")
    streams = [r for r in page.network()[mark:] if r["url"].endswith("/events/stream")]
    assert streams and all(r["headers"].get("Last-Event-ID") == last for r in streams), streams
    # and it is live again: a new message shows
    res = stack.emu("POST", f"/contacts/{CONTACT}/messages", {"to": PHONE, "text": "after the restart"})
    assert res.status == 200, res.raw
    page.wait(lambda: "after the restart" in page.text("#in"), 15, "a message after the restart")


def test_every_call_sent_the_key_in_its_header_never_in_a_url(page, stack):
    key = stack.api_key
    # Not the page's own calls: opening the page itself, and the browser's own look for a /favicon.ico.
    calls = [r for r in page.network() if r["url"].startswith(stack.base)
             and r["url"] not in (stack.base + "/", stack.base + "/favicon.ico")]
    assert len(calls) > 10
    assert all(key not in r["url"] for r in page.requests)
    assert [(r["method"], r["url"]) for r in calls if "X-API-Key" not in r["headers"]] == []
    other = [(r["method"], r["url"]) for r in calls if r["headers"]["X-API-Key"] != key]
    assert other == [("GET", stack.base + "/accounts")]  # test_a_wrong_key_is_refused's attempt


def test_the_page_fits_a_phone_screen(page, stack):
    open_app(page, stack.api_key)
    page.driver.set_window_size(360, 1800)
    try:
        width = page.driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], width  # no sideways scrolling: wide tables scroll inside their cards
        page.shot("phone-360px")
    finally:
        page.driver.set_window_size(1280, 1600)


def test_an_unreachable_whatsapp_shows_its_cause_on_the_page(page, stack):
    open_app(page, stack.api_key)
    assert stack.ctl("stop", "emulator").returncode == 0  # the server goes away under a linked account
    try:
        page.wait(lambda: page.text("#account-state") == "whatsapp_unreachable", 30, "the state on the page")
        page.wait(lambda: "refused" in page.text("#d-unreachable") and "ECONNREFUSED" in page.text("#d-unreachable")
                  and "cannot be reached: refused" in page.text("#health"), 20, "the cause in details and health")
    finally:
        assert stack.ctl("start", "emulator").returncode == 0
    page.wait(lambda: page.text("#account-state") == "connected" and not page.visible("#d-unreachable"), 30,
              "connected again, the cause gone")


def test_the_key_is_asked_once_per_tab_and_can_be_forgotten(page, stack):
    open_app(page, stack.api_key)
    page.driver.refresh()  # the key stays in this tab's sessionStorage: no question after a reload
    page.wait(lambda: page.visible("#app") and page.text("#account-state") and page.count("#accounts tr"), 10,
              "the page reopened")
    assert not page.visible("#login")
    page.click("#logout")
    page.wait(lambda: page.visible("#login") and not page.visible("#app"), 5, "the key forgotten")
    assert page.driver.execute_script("return sessionStorage.getItem('wa-gateway-key')") is None
    assert page.count("#accounts tr, #in tr, #out tr, #events li") == 0  # nothing of it stays on the page
