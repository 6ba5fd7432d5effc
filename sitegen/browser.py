"""Headless Chromium for the site's tests and screenshots: Debian's `chromium` driven by
Playwright (which cannot download its own browsers here, and need not)."""

import os
import shutil
from contextlib import contextmanager

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


class NoBrowser(Exception):
    """Why a browser cannot be had, naming what to install."""


def chromium_path():
    path = os.environ.get("SITE_CHROMIUM") or next(filter(None, map(shutil.which, CANDIDATES)), None)
    if not path:
        raise NoBrowser("headless Chromium not found: install Debian's `chromium` package "
                        "(apt-get install chromium), or point SITE_CHROMIUM at a Chromium binary")
    return path


@contextmanager
def chromium():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise NoBrowser("Playwright not installed: pip install -r requirements-site.txt") from None
    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield browser
        finally:
            browser.close()
