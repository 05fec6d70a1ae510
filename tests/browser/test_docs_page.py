"""The docs page in a real browser: headless Chromium drives Swagger UI against gunicorn.

Needs Debian's ``chromium`` and ``chromium-driver``. Without them the test is skipped, unless
``PARLEY_REQUIRE_BROWSER=1`` (set by CI) makes their absence a failure.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask

from tests.e2e.conftest import ROOT, start_gunicorn

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
#: Where the screenshot is kept for people (and CI artifacts) to look at.
SCREENSHOT = ROOT / "build" / "screenshots" / "api-docs.png"
PASSWORD = "docs-page-password-1"

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("PARLEY_REQUIRE_BROWSER") == "1":
        pytest.fail("chromium and chromedriver are required (PARLEY_REQUIRE_BROWSER=1)")
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Chromium with its network log on, and no traffic of its own."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--window-size=1280,2000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def requested_urls(driver: WebDriver) -> list[str]:
    """Every URL the page asked the network for so far (from the DevTools performance log)."""
    urls = []
    for entry in driver.get_log("performance"):  # type: ignore[no-untyped-call]
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_swagger_ui_renders_authorizes_and_tries_an_operation(
    app: Flask, database_url: str, _schema: None, tmp_path: Path, browser: WebDriver
) -> None:
    server, base = start_gunicorn(database_url, tmp_path / "server.log", workers=2)
    try:
        registered = requests.post(
            f"{base}/api/v1/auth/register",
            json={"email": "docs@example.com", "username": "docsreader", "password": PASSWORD},
            timeout=10,
        )
        assert registered.status_code == 201
        spec = requests.get(f"{base}/api/v1/openapi.json", timeout=10).json()
        operations = sum(
            1
            for item in spec["paths"].values()
            for method in item
            if method in {"get", "post", "put", "patch", "delete"}
        )

        wait = WebDriverWait(browser, 20)
        browser.get(f"{base}/api/docs")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) == operations)
        assert "Parley" in browser.find_element(By.CSS_SELECTOR, ".info .title").text

        # Authorize with the OAuth2 password flow.
        browser.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
        wait.until(ec.visibility_of_element_located((By.ID, "oauth_username")))
        browser.find_element(By.ID, "oauth_username").send_keys("docsreader")
        browser.find_element(By.ID, "oauth_password").send_keys(PASSWORD)
        oauth = browser.find_element(
            By.XPATH, "//input[@id='oauth_username']/ancestor::div[@class='auth-container']"
        )
        oauth.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .authorize").click()
        wait.until(
            lambda d: any(
                b.text == "Logout"
                for b in oauth.find_elements(By.CSS_SELECTOR, ".auth-btn-wrapper .btn")
            )
        )
        oauth.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .btn-done").click()

        # Try it out: GET /users/me.
        summary = browser.find_element(
            By.CSS_SELECTOR, ".opblock-get .opblock-summary-path[data-path='/api/v1/users/me']"
        )
        block = summary.find_element(By.XPATH, "./ancestor::div[contains(@class, 'opblock ')]")
        summary.click()
        wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"))
        block.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
        wait.until(lambda d: block.find_elements(By.CSS_SELECTOR, ".execute"))
        block.find_element(By.CSS_SELECTOR, ".execute").click()
        status = wait.until(
            lambda d: block.find_element(
                By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
            )
        )
        assert status.text.strip() == "200"
        body = block.find_element(By.CSS_SELECTOR, ".live-responses-table .microlight").text
        assert json.loads(body)["username"] == "docsreader"

        browser.execute_script("window.scrollTo(0, 0)")
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))

        urls = requested_urls(browser)
        assert any(u.endswith("/api/v1/openapi.json") for u in urls)
        assert any(u.endswith("/api/v1/auth/token") for u in urls)
        assert any(u.endswith("/api/v1/users/me") for u in urls)
        # Only network URLs can leave the machine (chrome:// and data: are the browser's own).
        network = [u for u in urls if urlsplit(u).scheme in {"http", "https", "ws", "wss"}]
        outside = [u for u in network if urlsplit(u).hostname != "127.0.0.1"]
        assert outside == [], f"requests left loopback: {outside}"
    except Exception:
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOT.with_name("api-docs-failure.png")))
        (SCREENSHOT.with_name("api-docs-failure.html")).write_text(browser.page_source)
        print(browser.get_log("browser"))  # type: ignore[no-untyped-call]
        raise
    finally:
        server.terminate()
        server.wait(timeout=15)
