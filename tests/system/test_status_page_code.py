"""Linking by pairing code from the status page (service/http/static/status-pairing.js) in a real headless
Chromium against a sandbox stack: a number typed beside Connect makes the account wait in state pairing_code,
the page shows the code, the emulator's phone types the code read from the page, and the page shows
"connected" through its event stream, without a reload. The browser set-up is test_status_page.py's."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers.sandbox import PHONE
from tests.helpers.stack import Stack
from tests.system.test_status_page import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS, Page, why_no_browser

pytestmark = pytest.mark.system

CODE = re.compile(r"^[1-9A-HJ-NP-TV-Z]{4}-[1-9A-HJ-NP-TV-Z]{4}$")


@pytest.fixture(scope="module")
def page():
    if (why := why_no_browser()) is not None:
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="wa-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(Path(profile) / "chromedriver.log"))
    driver = None
    try:
        with Stack({}, sandbox=True) as stack:
            driver = webdriver.Chrome(service=service, options=options)
            driver.get(stack.base + "/")
            yield Page(driver, stack)
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_the_page_links_by_pairing_code(page):
    page.open(page.stack.api_key)
    page.wait(lambda: page.visible("#connect") and page.visible("#connect-phone"), 15, "Connect and the number")
    page.fill("#connect-phone", PHONE)
    page.click("#connect")
    page.wait(lambda: page.visible("#code-box") and CODE.match(page.text("#pairing-code")), 20, "the code shown")
    assert not page.visible("#qr-box")
    code = page.text("#pairing-code")
    assert page.stack.status()["pairing_code"] == code
    res = page.stack.emu("POST", "/phone/pair-code", {"phone_number": PHONE, "code": code})
    assert res.status == 200, res.raw
    page.wait(lambda: page.text("#account-state") == "connected" and page.text("#d-phone") == PHONE, 30,
              "connected on the page")
    assert not page.visible("#code-box") and not page.visible("#connect-phone")
