"""Headless Chromium for the browser checks (`make browser-test`).

Playwright drives the system's Chromium (Debian's `chromium` package, which .ci/run
installs): the machines reach package registries only, so `playwright install` cannot
download a browser build. CHROMIUM_PATH points elsewhere if needed.
"""

import os
from contextlib import contextmanager

import pytest

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture
def chromium():
    """A function that opens the browser: call it after the test's database work. While
    Playwright's sync API runs, an event loop runs in this thread and Django refuses ORM
    calls from it (SynchronousOnlyOperation), so reads happen before and after."""

    @contextmanager
    def open_browser():
        from playwright.sync_api import sync_playwright

        assert os.access(CHROMIUM_PATH, os.X_OK), (
            f"No Chromium at {CHROMIUM_PATH}: apt-get install chromium (or set CHROMIUM_PATH)"
        )
        with sync_playwright() as playwright:
            # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
            browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=["--no-sandbox"])
            try:
                yield browser
            finally:
                browser.close()

    return open_browser


@pytest.fixture
def analyst_login(db) -> tuple[str, str]:
    """Ann, an analyst, who logs in through the admin's login form."""
    from django.contrib.auth.models import Group, User

    password = "pw-ann-browser-123"
    user = User.objects.create_user("ann-browser", password=password, is_staff=True)
    user.groups.add(Group.objects.get(name="Analysts"))
    return user.username, password
