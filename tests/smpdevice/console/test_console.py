"""The technician's console in Chromium against a real service and simulated pen."""

from __future__ import annotations

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.control import State
from smpdevice.service.auth import Role
from smpdevice.service.client import SyncServiceClient
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.service.conftest import PEN_LEASE_MS

from .conftest import pytestmark  # noqa: F401  (skip without chromium)

WAIT_MS = 30_000


def _open(page, service, role: Role = Role.TECHNICIAN) -> None:
    page.goto(service.console_url(role))
    page.wait_for_selector("#role:has-text('role:')")


def _run_needle(op: SyncServiceClient) -> None:
    """The operator drives the pen and runs the needle in the crown."""
    op.drive(lease_ms=1500)
    op.call("pen.set_zone", zone="crown")
    op.call("pen.set_setpoints", **CROWN)
    op.call("pen.arm")
    op.call("pen.start")


def _load_demo_profile(page) -> None:
    """The session tab with the built-in demo profile loaded into its text box."""
    page.click("button[data-tab=session]")
    page.click("#demo-profile-btn")
    for _ in range(WAIT_MS // 50):  # the page fetches it (the CSP forbids eval'd waits)
        if len(page.input_value("#profile-text")) > 100:
            break
        page.wait_for_timeout(50)


def _wait_sim(sim, state: FirmwareState, page) -> None:
    for _ in range(WAIT_MS // 50):
        if sim.firmware.state is state:
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"the simulated pen never reached {state.name}")


def test_clicking_estop_stops_the_simulated_needle(page, service, sim, shots):
    with SyncServiceClient.connect(service.url, token=service.token(Role.OPERATOR)) as op:
        _run_needle(op)
        _open(page, service, Role.VIEWER)  # any role may E-stop
        page.wait_for_selector("#state[data-state=running]")
        page.wait_for_selector("body[data-needle=running]")
        # a trace worth a screenshot: half a second of the running needle (25 Hz telemetry)
        page.wait_for_function("() => app.trace.filter((p) => p.running).length >= 12")
        shots(page, "console-live-running")
        page.click("#estop")
        page.wait_for_selector("#state[data-state=estop]")
        _wait_sim(sim, FirmwareState.ESTOP, page)
        page.wait_for_selector("#fault-banner:not([hidden])")
        assert "A technician must clear it" in page.inner_text("#fault-banner")
        shots(page, "console-estop")
    assert service.pen.state is State.ESTOP


def test_escape_key_is_estop(page, service, sim):
    _open(page, service, Role.VIEWER)
    page.keyboard.press("Escape")
    page.wait_for_selector("#state[data-state=estop]")
    _wait_sim(sim, FirmwareState.ESTOP, page)
    assert sim.firmware.state is FirmwareState.ESTOP


def test_clear_a_fault_with_a_reason(page, service, sim, shots):
    _open(page, service)
    page.keyboard.press("Space")
    page.wait_for_selector("#fault-banner:not([hidden])")
    # the pen's confirmation first: a clear before it is refused (it said so once in CI)
    page.wait_for_selector("body[data-estop-ms]", state="attached")
    page.click("#clear-btn")  # no reason: refused, says why
    page.wait_for_selector("#message:has-text('reason')")
    page.fill("#clear-reason", "checked the cartridge; cause removed")
    shots(page, "console-fault-banner")
    page.click("#clear-btn")
    page.wait_for_selector("#state[data-state=idle]")
    assert page.is_hidden("#fault-banner")
    _wait_sim(sim, FirmwareState.IDLE, page)


def test_run_the_demo_session_from_the_page(page, service, shots):
    _open(page, service)
    _load_demo_profile(page)
    assert "session_kind" in page.input_value("#profile-text")
    page.click("#check-btn")
    page.wait_for_selector("#check-result .ok")
    page.click("#session-start")  # screening unanswered: refused, nothing runs
    page.wait_for_selector("#message:has-text('screening')")
    for q in ("open_sores", "eczema", "dermatitis", "psoriasis_flare", "infection", "sunburn",
              "keloid_tendency"):
        page.check(f"#scr-{q}-no")
    page.fill("#technician", "console test")
    page.check("#quick")
    page.click("#session-start")
    page.wait_for_selector("#session-outcome", timeout=90_000)
    assert "complete" in page.inner_text("#session-outcome")
    assert page.locator("#passes li.completed").count() == 4
    shots(page, "console-session", full_page=True)


def test_an_incomplete_session_is_shown_as_such_and_a_report_renders(page, service, shots):
    from importlib import resources

    profile = (resources.files("smpdevice") / "data" / "session1_base_density.yaml").read_text()
    answers = dict.fromkeys(("open_sores", "eczema", "dermatitis", "psoriasis_flare",
                             "infection", "sunburn", "keloid_tendency"), False)
    _open(page, service)
    with SyncServiceClient.connect(service.url, token=service.token(Role.OPERATOR)) as op:
        op.drive(lease_ms=1500)
        started = op.call("session.run", profile=profile, screening=answers, technician="t",
                          quick_pass_s=5.0)
        op.next_notification("session.progress")
        page.click("#estop")  # the session ends on the E-stop: incomplete
        op.next_notification("session.result", timeout_s=60)
    sid = started["session_id"]
    page.click("button[data-tab=log]")
    page.click("#refresh-log")
    row = page.locator(f"tr[data-session='{sid}']")
    row.wait_for()
    assert "estop" in row.inner_text()
    row.click()
    page.wait_for_selector(f"body[data-report='{sid}']")
    assert "outcome: estop" in page.inner_text("#report")
    assert page.locator("#report-plot").count() == 1
    shots(page, "console-report", full_page=True)
    page.emulate_media(media="print")
    shots(page, "console-report-print", full_page=True)
    assert page.is_hidden("#estop")  # the printed report carries no controls


@pytest.fixture
def foot_service(sim, data_dir):
    """The service with the footswitch required: the pen stops the needle when it goes up.
    Leases are not the point here: the page's (its heartbeats starved 1.5 s on a loaded
    machine) never lapses, and the pen's is the service tests' (PEN_LEASE_MS, not 300 ms)."""
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim),
                             footswitch="required", lease_clock=lambda: 0.0)
    with ServiceHandle(options) as handle:
        yield handle


def test_the_footswitch_shows_and_a_pass_it_ends_reads_as_such(page, foot_service, sim,
                                                                 shots):
    service = foot_service
    _open(page, service)
    page.wait_for_selector("#footswitch[data-footswitch=pressed]")  # the sim's foot is down
    assert "pressed (required)" in page.inner_text("#footswitch")
    sim.release_pedal()
    page.wait_for_selector("#footswitch[data-footswitch=released]")
    assert "released (required)" in page.inner_text("#footswitch")
    sim.press_pedal()
    page.wait_for_selector("#footswitch[data-footswitch=pressed]")
    _load_demo_profile(page)  # a session from the page: its runner lists it
    for q in ("open_sores", "eczema", "dermatitis", "psoriasis_flare", "infection", "sunburn",
              "keloid_tendency"):
        page.check(f"#scr-{q}-no")
    page.fill("#technician", "console test")
    page.click("#session-start")
    page.wait_for_selector("#passes li.running")
    sim.release_pedal()  # the technician lifts the foot: the pen stops the needle
    page.wait_for_selector("#footswitch[data-footswitch=released]")
    page.wait_for_selector("#session-outcome", timeout=90_000)
    outcome = page.inner_text("#session-outcome")
    assert "INCOMPLETE" in outcome
    ended = page.locator("#passes li[data-outcome=footswitch_released]")
    assert ended.count() == 1
    assert "footswitch released: the pen stopped the needle" in ended.inner_text()
    assert ended.get_attribute("class") == "stopped"
    shots(page, "console-footswitch-session", full_page=True)
    sid = outcome.split("session ", 1)[1].split(":", 1)[0]
    page.click("button[data-tab=log]")
    page.click("#refresh-log")
    page.locator(f"tr[data-session='{sid}']").click()
    page.wait_for_selector(f"body[data-report='{sid}']")
    row = page.locator("#report tr[data-outcome=footswitch_released]")
    assert row.count() == 1
    assert "footswitch released: the pen stopped the needle" in row.inner_text()
    shots(page, "console-footswitch-report", full_page=True)
