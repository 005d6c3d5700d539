"""The web console in a real browser: Debian's chromium driven by Playwright (PyPI).

Playwright cannot download its own browsers here, so it launches /usr/bin/chromium; the tests
skip, saying so, only when that browser is not installed (`apt-get install -y chromium`).
Screenshots go to each test's tmp_path and to <pytest basetemp>/console-screenshots/.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

# The test files take this mark (`from .conftest import pytestmark`).
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is absent: apt-get install -y chromium")

from simulators import PenSimulator  # noqa: E402
from tests.smpdevice.service.conftest import data_dir, service  # noqa: E402, F401


@pytest.fixture
def sim() -> Iterator[PenSimulator]:
    """The console's pen on the wall clock, as the browser that watches it (these tests run
    in the realtime pass). On the service tests' host-driven clock a page waited 30 s for its
    pass's progress in a busy run, and once on a quiet machine (session 21)."""
    with PenSimulator(seed=5) as s:
        yield s


# One Chromium for the whole package, not one per module: launching Playwright's driver and the
# browser cost about 1.5 s each time. Package scope, not session: Playwright's sync API keeps its
# event loop running in this thread, and asyncio.run() refuses to start beside it, so the
# browser (and that loop) must be gone before a test outside this package runs. pytest tears a
# package's fixtures down as soon as the next test is outside it (a new browser if it comes back).
@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # generous: at load 18 a launch took up to half a minute, Playwright's default
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=120_000)
        yield b
        b.close()


class _Tab:
    """One browser tab the package's tests take turns in: a new context and page cost about
    0.5 s each (a renderer process). Each test's service listens on a port of its own, so
    nothing of one test's origin (its sessionStorage token) is another's; a test's page, its
    media emulation and its timers end with the navigation to about:blank after it."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.context: Any = None
        self.page: Any = None

    def take(self) -> Any:
        if self.page is None:
            self.context = self.browser.new_context(viewport={"width": 1280, "height": 900})
            self.page = self.context.new_page()
            self.page.set_default_timeout(30_000)  # generous: 2 loaded cores
        return self.page

    def give_back(self) -> None:
        try:
            self.page.goto("about:blank", timeout=10_000)
            self.page.emulate_media(media="null")
        except Exception:  # a page the test left unusable: the next test gets a new one
            self.close()

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
        self.context = self.page = None


@pytest.fixture(scope="package")
def _tab(browser) -> Iterator[_Tab]:
    tab = _Tab(browser)
    yield tab
    tab.close()


@pytest.fixture
def page(_tab) -> Iterator[Any]:
    yield _tab.take()
    _tab.give_back()


def take_control(page: Any, button: str = "#drive-btn") -> None:
    """Click "Take control" (or the calibration tab's `#cal-drive`) once the page has set
    itself up (its driver line is filled from `pen.state`), and wait until it drives.

    A page whose heartbeat does not reach the service for 1.5 s loses the pen: the dead-man,
    as it must. On two busy cores a fresh page once stalled that long right after its drive
    (CI, twice: "no heartbeat from ws-1 for 1500 ms"): the pen is taken once more, as a
    technician would. Any other outcome, or a second loss, fails and says what the page said."""
    page.wait_for_function("() => document.getElementById('driver').textContent !== ''")
    for attempt in (1, 2):
        page.click(button)
        try:
            page.wait_for_function(
                "() => /you drive the pen|no heartbeat/.test("
                "document.getElementById('driver').textContent)")
        except Exception as exc:
            raise _not_driving(page) from exc
        driver = page.text_content("#driver") or ""
        if driver == "you drive the pen":
            return
        if attempt == 2:
            raise _not_driving(page)


def _not_driving(page: Any) -> AssertionError:
    return AssertionError(
        f"the page does not drive the pen: driver line {page.text_content('#driver')!r}, "
        f"message {page.text_content('#message')!r} (shown: {page.is_visible('#message')})")


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
