"""Review 16b: a console link opened in a tab that shows the console changes only the fragment.
The page never lets go of what it has for a link: a wrong token (a typo, another installation's
link) keeps the working connection, a valid one is swapped in only once its hello is answered,
so Esc E-stops at every instant ("Esc always E-stops", docs/console.md); the same link again
changes nothing (a running session plays on); a page that drives the pen keeps it and says how
to open the link."""

from __future__ import annotations

import time
from importlib import resources

from firmware_protocol.codes import FirmwareState
from smpdevice.service.auth import Role
from smpdevice.service.client import SyncServiceClient
from smpdevice.sessions.screening import QUESTIONS

from .conftest import pytestmark, take_control  # noqa: F401

PROFILE = (resources.files("smpdevice") / "data" / "session1_base_density.yaml").read_text()
CLEAR = {name: False for name in QUESTIONS}
BUSY_WORDS = "a console link was opened while this page drives the pen"


def _until(pred, what, page, limit_s=15.0):
    end = time.monotonic() + limit_s
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        page.wait_for_timeout(20)


def _open(page, service, role=Role.TECHNICIAN):
    page.goto(service.console_url(role))
    page.wait_for_selector(f"#role:has-text('role: {role.name.lower()}')")


def _terminal_session(op, sim, page):
    op.drive(lease_ms=1500)
    op.call("session.run", profile=PROFILE, format="yaml", screening=CLEAR,
            technician="terminal tech", quick_pass_s=5.0)
    _until(lambda: sim.firmware.state is FirmwareState.RUNNING, "the needle", page)


def _after_esc(page, sim) -> tuple[FirmwareState, str]:
    """The pen's state once the E-stop is answered (or the page said why not), and the word."""
    _until(lambda: sim.firmware.state is FirmwareState.ESTOP
           or "E-stop" in (page.text_content("#message") or ""), "the E-stop's answer", page)
    return sim.firmware.state, page.text_content("#message") or ""


def test_esc_still_estops_after_a_link_with_a_wrong_token(page, service, sim):
    _open(page, service)
    with SyncServiceClient.connect(service.url, token=service.token(Role.OPERATOR)) as op:
        _terminal_session(op, sim, page)
        for bad in ("x" * 32, "tok%en with spaces and & # +", "y"):  # long, odd, short
            page.evaluate("(t) => { location.hash = '#token=' + encodeURIComponent(t); }", bad)
            page.wait_for_selector("#message:has-text('cannot connect under the link')",
                                   timeout=5_000)
            assert "token=" not in page.url
            assert page.text_content("#role") == "role: technician"
            assert page.evaluate("() => sessionStorage.getItem('smp-token')") == \
                service.token(Role.TECHNICIAN)
            page.evaluate("() => { document.getElementById('message').hidden = true; }")
        page.keyboard.press("Escape")
        state, said = _after_esc(page, sim)
        assert state is FirmwareState.ESTOP, said


def test_esc_pressed_as_a_valid_viewer_link_opens_still_estops(page, service, sim):
    """The Esc in the gap between the link and the new connection's hello."""
    _open(page, service)
    with SyncServiceClient.connect(service.url, token=service.token(Role.OPERATOR)) as op:
        _terminal_session(op, sim, page)
        page.evaluate("""(url) => { window.addEventListener('hashchange', () => {
            window.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
          }, { once: true }); location.href = url; }""", service.console_url(Role.VIEWER))
        state, said = _after_esc(page, sim)
        assert state is FirmwareState.ESTOP, said
    page.wait_for_selector("#role:has-text('role: viewer')", timeout=10_000)  # then swapped


def _start_session(page):
    take_control(page)
    page.click("button[data-tab=session]")
    page.fill("#profile-text", PROFILE)
    for q in QUESTIONS:
        page.check(f"#scr-{q}-no")
    page.fill("#technician", "page tech")
    page.click("#session-start")  # full-length passes: the needle runs for seconds


def _after_progress(page, sim, before) -> tuple[FirmwareState, str]:
    """The pen's state once pass 0 moved on from `before` (or the needle stopped), and why."""
    _until(lambda: sim.firmware.state is not FirmwareState.RUNNING
           or page.text_content("#pass-0") != before, "progress or a stop", page)
    return sim.firmware.state, (f"pass 0 {page.text_content('#pass-0')!r}, "
                                f"message {page.text_content('#message')!r}")


def test_the_same_console_link_again_does_not_stop_a_running_session(page, service, sim):
    _open(page, service)
    _start_session(page)
    _until(lambda: sim.firmware.state is FirmwareState.RUNNING, "the needle", page)
    page.wait_for_selector("#pass-0:has-text('%')")
    before = page.text_content("#pass-0")
    page.evaluate("(u) => { location.href = u; }", service.console_url(Role.TECHNICIAN))
    _until(lambda: "token=" not in page.url, "the hashchange handler", page)
    state, why = _after_progress(page, sim, before)
    assert state is FirmwareState.RUNNING, f"the needle stopped: {why}"


def test_another_link_never_takes_the_pen_from_a_driving_page(page, service, sim):
    _open(page, service)
    _start_session(page)
    _until(lambda: sim.firmware.state is FirmwareState.RUNNING, "the needle", page)
    page.wait_for_selector("#pass-0:has-text('%')")
    before = page.text_content("#pass-0")
    for role in (Role.VIEWER, Role.OPERATOR):
        page.evaluate("(u) => { location.href = u; }", service.console_url(role))
        page.wait_for_selector(f"#message:has-text('{BUSY_WORDS}')", timeout=5_000)
        assert "token=" not in page.url
    assert page.text_content("#role") == "role: technician"
    assert page.evaluate("() => sessionStorage.getItem('smp-token')") == \
        service.token(Role.TECHNICIAN)
    state, why = _after_progress(page, sim, before)
    assert state is FirmwareState.RUNNING, f"the needle stopped: {why}"
    # driving without a session: the same
    page.click("#session-stop")
    _until(lambda: sim.firmware.state is not FirmwareState.RUNNING, "the stop", page)
    page.wait_for_selector("#session-outcome")
    page.evaluate("() => { document.getElementById('message').hidden = true; }")
    page.evaluate("(u) => { location.href = u; }", service.console_url(Role.VIEWER))
    page.wait_for_selector(f"#message:has-text('{BUSY_WORDS}')", timeout=5_000)
    assert page.text_content("#driver") == "you drive the pen"
