"""Review 16: console.md "A refusal ... stays in the message line until your next action
there". Another client releasing the pen once wrote "driver: ws-N released" over it; the
reason now stands beside who drives (#driver)."""

from __future__ import annotations

from smpdevice.service.auth import Role
from smpdevice.service.client import SyncServiceClient

from .conftest import pytestmark  # noqa: F401


def test_another_clients_release_leaves_a_refusal_on_the_page(page, service):
    with SyncServiceClient.connect(service.url, token=service.token(Role.OPERATOR)) as op:
        op.drive(lease_ms=1500)
        page.goto(service.console_url(Role.TECHNICIAN))
        page.wait_for_selector("#driver:has-text('driven by')")
        page.keyboard.press("Escape")
        page.wait_for_selector("#fault-banner:not([hidden])")
        page.wait_for_selector("body[data-estop-ms]", state="attached")  # the E-stop's answer
        page.click("#clear-btn")  # no reason: refused, says why
        page.wait_for_selector("#message:has-text('reason')")
        op.release()  # the terminal lets go of the pen
        page.wait_for_selector("#driver:has-text('nobody drives')")
    assert page.is_visible("#message:has-text('reason')"), page.text_content("#message")
    assert "released" in (page.text_content("#driver") or "")  # why, where it belongs
