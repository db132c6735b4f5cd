"""Linking by pairing code from the status page (service/http/static/status-pairing.js) in a real headless
Chromium against a sandbox stack: a number typed beside Connect makes the account wait in state pairing_code,
the page shows the code, the emulator's phone types the code read from the page, and the page shows
"connected" through its event stream, without a reload. Chromium as in test_status_page.py (skipped, saying
why, without it)."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers.sandbox import PHONE
from tests.helpers.stack import Stack

pytestmark = pytest.mark.system

CODE = re.compile(r"^[1-9A-HJ-NP-TV-Z]{4}-[1-9A-HJ-NP-TV-Z]{4}$")
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync")

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the test extras are not installed
    webdriver = None


@pytest.fixture(scope="module")
def browser():
    if webdriver is None or not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("selenium, chromium or chromedriver missing (`make test` installs them)")
    profile = tempfile.mkdtemp(prefix="wa-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = None
    try:
        with Stack({}, sandbox=True) as stack:
            driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
            driver.get(stack.base + "/")
            yield driver, stack
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_the_page_links_by_pairing_code(browser):
    driver, stack = browser

    def text(css: str) -> str:
        return driver.execute_script("const n = document.querySelector(arguments[0]); "
                                     "return n ? n.innerText.trim() : ''", css)

    def visible(css: str) -> bool:
        return driver.execute_script("const n = document.querySelector(arguments[0]); "
                                     "return !!n && n.getClientRects().length > 0", css)

    def wait(predicate, timeout: float) -> None:
        WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: predicate())

    driver.find_element(By.CSS_SELECTOR, "#key").send_keys(stack.api_key)
    driver.find_element(By.CSS_SELECTOR, "#login-button").click()
    wait(lambda: visible("#connect") and visible("#connect-phone"), 15)
    driver.find_element(By.CSS_SELECTOR, "#connect-phone").send_keys(PHONE)
    driver.find_element(By.CSS_SELECTOR, "#connect").click()
    wait(lambda: visible("#code-box") and CODE.match(text("#pairing-code")), 20)
    assert not visible("#qr-box")
    code = text("#pairing-code")
    assert stack.status()["pairing_code"] == code
    res = stack.emu("POST", "/phone/pair-code", {"phone_number": PHONE, "code": code})
    assert res.status == 200, res.raw
    wait(lambda: text("#account-state") == "connected" and text("#d-phone") == PHONE, 30)
    assert not visible("#code-box") and not visible("#connect-phone")
