"""The session runner in Chromium: each session asks its own screening (none preselected), and
a session followed across a lost connection (`smp serve` restarted) never stays "playing"."""

from __future__ import annotations

import socket
from datetime import timedelta

from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration

from .conftest import pytestmark  # noqa: F401  (skip without chromium)
from .test_console import _load_demo_profile, _open

QUESTIONS = ("open_sores", "eczema", "dermatitis", "psoriasis_flare", "infection", "sunburn",
             "keloid_tendency")


def _demo_profile_and_screening(page, technician: str) -> None:
    _load_demo_profile(page)
    for q in QUESTIONS:
        page.check(f"#scr-{q}-no")
    page.fill("#technician", technician)


def test_each_session_asks_its_own_screening(page, service):
    _open(page, service, Role.OPERATOR)
    _demo_profile_and_screening(page, "first client's technician")
    page.check("#quick")
    page.click("#session-start")
    page.wait_for_selector("#passes li")  # accepted: its answers are spent
    assert page.locator("#screening input:checked").count() == 0
    page.wait_for_selector("#session-outcome", timeout=90_000)
    first = page.get_attribute("body", "data-session")
    assert page.locator("#screening input:checked").count() == 0
    page.check("#scr-open_sores-no")  # the next client: one answer is not all of them
    page.click("#session-start")
    page.wait_for_selector("#message:has-text('screening')")
    assert page.get_attribute("body", "data-session") == first  # nothing started
    assert page.is_checked("#scr-open_sores-no")  # a refused start keeps what was answered


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_session_followed_across_a_service_restart_shows_how_it_ended(page, sim, data_dir):
    port = _free_port()

    def options() -> ServiceOptions:
        return ServiceOptions(port=sim.url, listen=f"127.0.0.1:{port}", data_dir=data_dir,
                              lease_ms=1000, calibration=true_calibration(sim))

    first = ServiceHandle(options())
    first.__enter__()
    try:
        page.goto(first.console_url(Role.OPERATOR))
        page.wait_for_selector("#role:has-text('role:')")
        _demo_profile_and_screening(page, "restart test")
        page.click("#session-start")  # 3 s passes: the stop comes during one
        page.wait_for_selector("#passes li.running")
        sid = page.get_attribute("body", "data-session")
    finally:
        first.__exit__(None, None, None)  # `smp serve` stops (Ctrl-C, an update)
    page.wait_for_selector("#conn:has-text('disconnected')")
    page.wait_for_selector("body[data-needle=unknown]")  # no service: no figures
    assert page.get_attribute("#footswitch", "data-footswitch") == "unknown"
    with ServiceHandle(options()):
        page.wait_for_selector("#conn:text-is('connected')")
        page.wait_for_selector("#session-outcome")
        outcome = page.inner_text("#session-outcome")
        assert outcome.startswith(f"INCOMPLETE session {sid}: "), outcome  # from the log
        assert page.locator("#passes li.running").count() == 0
        passes = page.locator("#passes li").all_inner_texts()
        assert len(passes) == 4, passes  # the plan, each saying how it ended (or not played)
        assert "completed" not in passes[-1], passes
        page.wait_for_selector("body[data-needle=stopped]")  # figures again, from the pen


def test_a_session_whose_calibration_lapsed_says_why_it_ended(page, service, sim, monkeypatch):
    """A calibration expiring between passes ends the session `incomplete`, which cannot say
    why: the page shows the service's `cause` (the expiry and "Recalibrate"), as `smp run`
    does. The wall clock's date moves 31 days on once pass 1's needle has made a dot."""
    import smpdevice.control.calibration as calibration_module

    real_today, month_on = calibration_module.today_utc, []

    def today():
        if not month_on and sim.firmware.impressions > 0:
            month_on.append(True)
        return real_today() + timedelta(days=31 if month_on else 0)

    monkeypatch.setattr(calibration_module, "today_utc", today)
    _open(page, service, Role.OPERATOR)
    _demo_profile_and_screening(page, "lapse test")
    page.check("#quick")
    page.click("#session-start")
    page.wait_for_selector("#session-outcome", timeout=90_000)
    outcome = page.inner_text("#session-outcome")
    assert outcome.startswith("INCOMPLETE session "), outcome
    assert "expired on" in outcome and "Recalibrate" in outcome, outcome
