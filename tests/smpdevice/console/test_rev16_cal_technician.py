"""Review 16: calibration.auto records `technician` (required, not blank: docs/service.md). The
console once sent "technician" for an empty field: a calibration started under a name nobody
typed. It sends the field as it is, and the service refuses a blank one."""

from __future__ import annotations

from smpdevice.service.auth import Role

from .conftest import pytestmark, take_control  # noqa: F401


def test_an_empty_or_blank_technician_is_refused(page, service):
    page.goto(service.console_url(Role.TECHNICIAN))
    page.wait_for_selector("#role:has-text('role:')")
    page.click("button[data-tab=calibration]")
    take_control(page, "#cal-drive")
    for typed in ("", "   "):
        page.fill("#cal-tech", typed)
        page.evaluate("() => { document.getElementById('message').hidden = true; }")
        page.click("#cal-auto")
        # refused at once (the message), or the wizard runs (the pen calibrating)
        page.wait_for_function(
            "() => !document.getElementById('message').hidden || "
            "document.getElementById('state').dataset.state === 'calibrating'")
        state = page.get_attribute("#state", "data-state")
        if state == "calibrating":
            page.keyboard.press("Escape")  # end the run at once: nothing is saved after it
        assert state != "calibrating", f"a calibration started for technician {typed!r}"
        assert "technician" in (page.text_content("#message") or "")
