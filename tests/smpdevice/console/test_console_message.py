"""A refusal the technician must read stays on the page until the technician acts again: the
pass log, refreshed in the background when the page connects (its answer can come after the
first click on a loaded machine), used to wipe it on success."""

from __future__ import annotations

from smpdevice.service.auth import Role

from .conftest import pytestmark  # noqa: F401  (skip without chromium)
from .test_console import _open


def test_a_background_log_refresh_leaves_a_refusal_on_the_page(page, service):
    _open(page, service, Role.TECHNICIAN)
    page.keyboard.press("Escape")
    page.wait_for_selector("#fault-banner:not([hidden])")
    page.wait_for_selector("body[data-estop-ms]", state="attached")  # the E-stop's own answer
    page.click("#clear-btn")  # no reason: refused, says why
    page.wait_for_selector("#message:has-text('reason')")
    # The refresh the page makes at connect and after a session, answered now.
    assert page.evaluate("refreshLog().then(() => document.getElementById('log-page')"
                         ".textContent)") == "no sessions yet"
    assert page.is_visible("#message:has-text('reason')")
