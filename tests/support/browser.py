"""A real browser for the console's tests: the distribution's Chromium (``apt-get install
chromium``; ``scripts/test`` installs it), driven by Playwright. Never a downloaded build: the
executable is given, and ``playwright install`` is never run. A missing Chromium fails the
tests; it never skips them."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = os.environ.get("GENQUEUE_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    # Without these Chromium reaches for Google's services and hangs on a closed network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("GENQUEUE_TEST_ARTIFACTS", REPO / "artifacts")) / "console"
"""Where the browser tests leave their screenshots (``artifacts/`` is ignored by git)."""


def chromium_executable() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the console's browser tests need it "
            "(scripts/test installs Debian's package: apt-get install chromium)",
            pytrace=False,
        )
    return CHROMIUM


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium with a fresh profile (Playwright makes a new user-data-dir for each
    launch and removes it on close); ends with the block, with every process it started."""
    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=FLAGS, timeout=60_000
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"
