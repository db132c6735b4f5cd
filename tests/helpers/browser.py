"""A real headless Chromium on a page of a stack, for the page tests (Debian's ``chromium`` through
``chromium-driver`` and Selenium; ``make browser`` installs them): the driver with its network log, reads in
one script call (the page re-renders while a test looks), and screenshots under test-artifacts/<name>/. Every page
test uses it."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.sandbox import pair
from tests.helpers.stack import REPO, Stack

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")
# This machine has no internet: without these Chromium's own background connections fail noisily.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--window-size=1280,1600")

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the test extras are not installed
    webdriver = None


def why_no_browser() -> str | None:
    if webdriver is None:
        return "selenium is not installed (pip install -e '.[test]')"
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        return (f"{' and '.join(missing)} missing: `make browser` installs them (apt-get install chromium "
                "chromium-driver); they could not be installed here")
    return None


class Page:
    """The browser on a page, with the network log it keeps and the screenshots it takes."""

    def __init__(self, driver: Any, artifacts: Path):
        self.driver, self.artifacts, self.requests, self.shots = driver, artifacts, [], 0

    def wait(self, predicate: Any, timeout: float, what: str) -> Any:
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda d: predicate())
        except Exception as exc:
            self.shot("failed")
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from exc

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def text(self, css: str) -> str:
        return self.js("const n = document.querySelector(arguments[0]); return n ? n.innerText.trim() : ''", css)

    def visible(self, css: str) -> bool:
        return self.js("const n = document.querySelector(arguments[0]); return !!n && n.getClientRects().length > 0",
                       css)

    def count(self, css: str) -> int:
        count: int = self.js("return document.querySelectorAll(arguments[0]).length", css)
        return count

    def fill(self, css: str, value: str) -> None:
        field = self.driver.find_element(By.CSS_SELECTOR, css)
        field.clear()
        field.send_keys(value)

    def click(self, css: str) -> None:
        for _ in range(5):  # a real click; again if a re-render replaced the element meanwhile
            try:
                self.driver.find_element(By.CSS_SELECTOR, css).click()
                return
            except StaleElementReferenceException:
                continue
        raise AssertionError(f"{css} kept being replaced")

    def shot(self, name: str) -> Path:
        self.shots += 1
        path = self.artifacts / f"{self.shots:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def network(self) -> list[dict]:
        """Every request the page sent so far (Chromium's performance log, drained and kept)."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"])
        return self.requests


@contextmanager
def open_page(url: str, name: str) -> Iterator[Page]:
    """Chromium on ``url``; screenshots in test-artifacts/<name>/ (emptied first)."""
    artifacts = REPO / "test-artifacts" / name
    artifacts.mkdir(parents=True, exist_ok=True)
    for old in artifacts.glob("*.png"):
        old.unlink()
    profile = tempfile.mkdtemp(prefix="wa-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(Path(profile) / "chromedriver.log"))
    driver = None
    try:
        driver = webdriver.Chrome(service=service, options=options)
        driver.get(url)
        yield Page(driver, artifacts)
    finally:
        if driver is not None:
            driver.quit()  # ends Chromium and chromedriver
        shutil.rmtree(profile, ignore_errors=True)


def status_page_fixtures(name: str) -> tuple[Any, Any]:
    """The module fixtures ``stack`` and ``page`` of a status page test: a paired sandbox stack (skipped without a
    browser) and Chromium on its page, logged in with the API key, its event stream live and its account
    connected; screenshots in test-artifacts/<name>/. Made anew for each module (``stack, page =
    status_page_fixtures(...)``) so that each module has its own stack and browser."""

    @pytest.fixture(scope="module")
    def stack() -> Iterator[Stack]:
        if (why := why_no_browser()) is not None:
            pytest.skip(why)
        with Stack({}, sandbox=True) as running:
            pair(running)
            yield running

    @pytest.fixture(scope="module")
    def page(stack: Stack) -> Iterator[Page]:
        with open_page(stack.base + "/", name) as page:
            page.fill("#key", stack.api_key)
            page.click("#login-button")
            page.wait(lambda: page.text("#stream-state") == "live" and page.text("#account-state") == "connected",
                      20, "the page open and live")
            yield page

    return stack, page
