"""The web console in a real browser: Debian's chromium driven by Playwright (PyPI).

Playwright cannot download its own browsers here, so it launches /usr/bin/chromium; the tests
skip, saying so, only when that browser is not installed (`apt-get install -y chromium`).
Screenshots go to each test's tmp_path and to <pytest basetemp>/console-screenshots/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is absent: apt-get install -y chromium")

from tests.smpdevice.service.conftest import data_dir, service, sim  # noqa: E402, F401


@pytest.fixture(scope="module")  # Playwright's loop must be gone before asyncio tests run
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(30_000)  # generous: 2 loaded cores
    yield pg
    context.close()


@pytest.fixture
def shots(tmp_path, tmp_path_factory) -> object:
    stable = tmp_path_factory.getbasetemp() / "console-screenshots"
    stable.mkdir(exist_ok=True)

    def save(page, name: str, **kwargs) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), **kwargs)
        (stable / path.name).write_bytes(path.read_bytes())
        return path

    return save
