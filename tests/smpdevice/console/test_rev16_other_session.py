"""Review 16: a console tab ran its own session, then another client (`smp run --service`
from a terminal) runs one that an E-stop ends in its first pass. runner.js once wrote the
other session's pass and result over this page's list; it now keeps its own session as it
ended and says the other one's end on a line of its own (#other-session)."""

from __future__ import annotations

import time
from importlib import resources

from firmware_protocol.codes import FirmwareState
from smpdevice.service.auth import Role
from smpdevice.service.client import SyncServiceClient
from smpdevice.sessions.screening import QUESTIONS

from .conftest import pytestmark  # noqa: F401

PROFILE = (resources.files("smpdevice") / "data" / "session1_base_density.yaml").read_text()
CLEAR = {name: False for name in QUESTIONS}


def _until(pred, what, page, limit_s=30.0):
    end = time.monotonic() + limit_s
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        page.wait_for_timeout(20)


def test_another_clients_session_does_not_mix_into_this_pages_passes(page, service, sim):
    page.goto(service.console_url(Role.TECHNICIAN))
    page.wait_for_selector("#role:has-text('role:')")
    page.click("button[data-tab=session]")
    page.fill("#profile-text", PROFILE)
    for q in QUESTIONS:
        page.check(f"#scr-{q}-no")
    page.fill("#technician", "page tech")
    page.check("#quick")
    page.click("#session-start")
    page.wait_for_selector("#session-outcome:has-text('complete')", timeout=60_000)
    mine = page.get_attribute("body", "data-session")
    assert page.locator("#passes li.completed").count() == 4
    page.click("button[data-tab=live]")
    page.click("#release-btn")
    page.wait_for_selector("#driver:has-text('nobody drives')")
    with SyncServiceClient.connect(service.url, token=service.token(Role.OPERATOR)) as op:
        op.drive(lease_ms=1500)
        other = op.call("session.run", profile=PROFILE, format="yaml", screening=CLEAR,
                        technician="terminal tech", quick_pass_s=2.0)["session_id"]
        _until(lambda: sim.firmware.state is FirmwareState.RUNNING, "the other session's needle",
               page)
        op.estop()
        # the other session's result has reached this page: said on its own line
        page.wait_for_selector(f"#other-session:has-text('{other}')", state="attached",
                               timeout=30_000)
    assert "INCOMPLETE" in (page.text_content("#other-session") or "")
    outcome = page.text_content("#session-outcome") or ""
    passes = [page.get_attribute(f"#pass-{i}", "data-outcome") for i in range(4)]
    assert mine in outcome and other not in outcome, outcome
    assert passes == ["completed"] * 4, passes
    assert page.get_attribute("body", "data-session-outcome") == "completed"
