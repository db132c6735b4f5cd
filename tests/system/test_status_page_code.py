"""Linking by pairing code from the status page (service/http/static/status-pairing.js) in a real headless
Chromium against a sandbox stack: a number typed beside Connect makes the account wait in state pairing_code,
the page shows the code, the emulator's phone types the code read from the page, and the page shows
"connected" through its event stream, without a reload. Chromium through tests/helpers/browser.py (skipped,
saying why, without it)."""

from __future__ import annotations

import re

import pytest

from tests.helpers.browser import open_page, why_no_browser
from tests.helpers.sandbox import PHONE
from tests.helpers.stack import Stack

pytestmark = pytest.mark.system

CODE = re.compile(r"^[1-9A-HJ-NP-TV-Z]{4}-[1-9A-HJ-NP-TV-Z]{4}$")


@pytest.fixture(scope="module")
def browser():
    if (why := why_no_browser()) is not None:
        pytest.skip(why)
    with Stack({}, sandbox=True) as stack, open_page(stack.base + "/", "status-page-code") as page:
        yield page, stack


def test_the_page_links_by_pairing_code(browser):
    page, stack = browser
    page.fill("#key", stack.api_key)
    page.click("#login-button")
    page.wait(lambda: page.visible("#connect") and page.visible("#connect-phone"), 15, "the page open")
    page.fill("#connect-phone", PHONE)
    page.click("#connect")
    page.wait(lambda: page.visible("#code-box") and CODE.match(page.text("#pairing-code")), 20, "the code shown")
    assert not page.visible("#qr-box")
    code = page.text("#pairing-code")
    assert stack.status()["pairing_code"] == code
    res = stack.emu("POST", "/phone/pair-code", {"phone_number": PHONE, "code": code})
    assert res.status == 200, res.raw
    page.wait(lambda: page.text("#account-state") == "connected" and page.text("#d-phone") == PHONE, 30,
              "connected, shown without a reload")
    assert not page.visible("#code-box") and not page.visible("#connect-phone")
