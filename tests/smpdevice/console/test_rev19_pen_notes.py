"""Rev 19: the console says what the service will not do with its pen, and why. A pen the
station's `footswitch = "required"` cannot run (no pedal: served for reading, clearing and the
E-stop only) and a pen whose stored calibration was not used (`calibration_problem`, as `smp
info --service` prints it) were shown nowhere: the run and start controls looked usable and
refused only once clicked. Now both are said on the page, at each refused control (its
tooltip and a line below), and the service's own refusal still comes on a click (it decides).
A real browser on a real service and simulated pen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from simulators import PenSimulator
from simulators.pen_model import PenModel
from smpdevice.calibration.store import CALIBRATIONS_NAME, CalibrationStore
from smpdevice.control.calibration import Calibration
from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration

from .conftest import pytestmark, take_control  # noqa: F401

RUN = ("#arm-btn", "#start-btn", "#session-start")
CAL = ("#cal-auto", "#cal-begin")


def _refused(page, selector: str) -> str:
    return page.get_attribute(selector, "data-refused") or ""


def _click_refused(page, selector: str) -> str:
    """The service's own refusal, in the message line."""
    page.evaluate("() => { document.getElementById('message').hidden = true; }")
    page.click(selector)
    page.wait_for_selector("#message:not([hidden])")
    return page.text_content("#message") or ""


def test_a_pen_the_footswitch_mode_cannot_run_is_said_at_its_controls(page, tmp_path):
    data_dir = tmp_path / "data"
    with PenSimulator(model=PenModel(seed=5, footswitch_fitted=False)) as sim, \
            ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                                         lease_ms=1000, calibration=true_calibration(sim),
                                         footswitch="required")) as service:
        page.goto(service.console_url(Role.TECHNICIAN))
        page.wait_for_selector("#pedal-refused:not([hidden])")
        said = page.text_content("#pedal-refused") or ""
        assert "no footswitch" in said and "E-stop" in said, said
        assert page.is_hidden("#cal-problem")  # calibrated: nothing said about it
        for selector in RUN + CAL:
            assert "no footswitch" in _refused(page, selector), selector
            assert "no footswitch" in (page.get_attribute(selector, "title") or ""), selector
        for line in ("#run-refused", "#session-refused", "#cal-refused"):
            assert "never run here" in (page.text_content(line) or ""), line
        take_control(page)
        assert "no footswitch" in _click_refused(page, "#arm-btn")
        assert sim.firmware.state.name == "IDLE"


def test_why_a_stored_calibration_was_not_used_is_said_and_clears_once_calibrated(page,
                                                                                    tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    with PenSimulator(seed=5) as sim:
        at = datetime.now(UTC) - timedelta(days=31)
        old = Calibration.model_validate({**true_calibration(sim).model_dump(),
                                          "simulated": True, "created_at": at,
                                          "expires_at": at + timedelta(days=30)})
        CalibrationStore(data_dir / CALIBRATIONS_NAME).save(old)
        with ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0",
                                          data_dir=data_dir, lease_ms=1000)) as service:
            page.goto(service.console_url(Role.TECHNICIAN))
            page.wait_for_selector("#cal-problem:not([hidden])")
            said = page.text_content("#cal-problem") or ""
            assert old.calibration_id in said and "expired" in said, said
            assert page.is_hidden("#pedal-refused")
            for selector in RUN:
                assert "not calibrated" in _refused(page, selector), selector
            for line in ("#run-refused", "#session-refused"):
                assert "not calibrated" in (page.text_content(line) or ""), line
            for selector in CAL:  # calibrating is what it needs: never refused for it
                assert _refused(page, selector) == "", selector
            assert page.is_hidden("#cal-refused")
            take_control(page)
            assert "calibrat" in _click_refused(page, "#arm-btn").lower()
            # a calibration installed meanwhile (as another client's save does): the page
            # reads the pen again at its next change of state (here the E-stop's)
            service.pen.set_calibration(true_calibration(sim))
            page.keyboard.press("Escape")
            page.wait_for_selector("#state[data-state=estop]")
            page.wait_for_selector("#pen-notes", state="hidden")
            for selector in RUN:
                assert _refused(page, selector) == "", selector
