"""Review 16b: a pass the controller or the dead-man stopped (this page's heartbeats stopped,
its lease ran out: a frozen tab) read "stopped by the technician" while nobody pressed Stop.
The words of a stopped pass blame nobody ("stopped"), and the pass's detail beside them says
what stopped it."""

from __future__ import annotations

import time
from importlib import resources

from firmware_protocol.codes import FirmwareState
from smpdevice.service.auth import Role
from smpdevice.sessions.screening import QUESTIONS

from .conftest import pytestmark, take_control  # noqa: F401

# Its first pass long enough that only the dead-man ends it: at the demo's 3 s, beside two
# busy loops, the pass completed before the frozen tab's 1.5 s lease ran out (CI)
PROFILE = (resources.files("smpdevice") / "data" / "session1_base_density.yaml").read_text() \
    .replace("{zone: top, duration_s: 3}", "{zone: top, duration_s: 60}", 1)
assert "duration_s: 60" in PROFILE


def _until(pred, what, page, limit_s=15.0):
    end = time.monotonic() + limit_s
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        page.wait_for_timeout(20)


def test_a_pass_stopped_by_the_dead_man_is_not_said_stopped_by_the_technician(page, service, sim):
    page.goto(service.console_url(Role.TECHNICIAN))
    page.wait_for_selector("#role:has-text('role: technician')")
    take_control(page)
    page.click("button[data-tab=session]")
    page.fill("#profile-text", PROFILE)
    for q in QUESTIONS:
        page.check(f"#scr-{q}-no")
    page.fill("#technician", "page tech")
    page.click("#session-start")
    _until(lambda: sim.firmware.state is FirmwareState.RUNNING, "the needle", page)
    page.evaluate("() => clearInterval(app.heartbeat)")  # a frozen tab: its lease runs out
    page.wait_for_selector("#pass-0[data-outcome]")
    words = page.text_content("#pass-0") or ""
    outcome = page.get_attribute("#pass-0", "data-outcome")
    assert "by the technician" not in words, words
    assert outcome == "stopped", words
    assert words.split(": ", 1)[1].startswith("stopped — "), words  # and what stopped it
