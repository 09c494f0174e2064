"""The browser of the UI tests: Debian's chromium driven by Playwright (never downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """One headless chromium for the whole run (each test opens its own context); skipped when absent."""
    from playwright.sync_api import sync_playwright  # the server-test extra: only browser tests need it

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium; scripts/setup.sh --test does it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
