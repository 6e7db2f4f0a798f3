"""Headless Chromium for the tests that look at a page the way a person does: Debian's chromium and
chromium-driver packages (`make browser`), driven by Selenium, never a browser a tool downloads.

Without them the test is skipped here; CI sets GANKIT_BROWSER_TESTS=required (.ci/run installs Chromium), where a
missing browser fails it instead."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

REQUIRED = os.environ.get("GANKIT_BROWSER_TESTS") == "required"


def _need(what: str, found) -> None:
    if not found:
        if REQUIRED:
            pytest.fail(f"{what} is missing and GANKIT_BROWSER_TESTS=required (make browser installs it)")
        pytest.skip(f"{what} is missing: `make browser` installs Chromium and its driver (Debian packages)")


@contextlib.contextmanager
def chromium(tmp_path: Path, width: int = 1280, height: int = 1800):
    """A Selenium driver of headless Chromium with a fresh profile in ``tmp_path``, its console log kept."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = Service = None
    _need("selenium (the test extra)", webdriver)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    _need("chromium", binary)
    _need("chromedriver", driver_path)
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not try to download a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={width},{height}", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
