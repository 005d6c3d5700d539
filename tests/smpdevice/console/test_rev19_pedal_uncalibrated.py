"""Review 19 (fix-of-fix): a pen the station's `footswitch = "required"` never runs (no pedal)
and that is not calibrated: the amber box told the technician to calibrate it "(Calibration
tab)", the very controls refused for it ("no footswitch"). It now says the pen cannot be
calibrated here either, and why is in the box above. A real browser on a real service and
simulated pen."""

from __future__ import annotations

from simulators import PenSimulator
from simulators.pen_model import PenModel
from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions

from .conftest import pytestmark  # noqa: F401


def test_the_box_never_sends_a_never_run_pen_to_the_refused_calibration(page, tmp_path):
    with PenSimulator(model=PenModel(seed=5, footswitch_fitted=False)) as sim, \
            ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0",
                                         data_dir=tmp_path / "data", lease_ms=1000,
                                         footswitch="required")) as service:
        page.goto(service.console_url(Role.TECHNICIAN))
        page.wait_for_selector("#pedal-refused:not([hidden])")
        page.wait_for_selector("#cal-problem:not([hidden])")
        refused = page.get_attribute("#cal-auto", "data-refused") or ""
        told = page.text_content("#cal-problem") or ""
        assert "no footswitch" in refused, refused
        assert "not calibrated" in told, told  # still said: it is not calibrated
        assert "Calibration tab" not in told, told  # was: sent to the refused wizard
        assert "cannot be calibrated here" in told, told
