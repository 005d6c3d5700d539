"""Review 12 (REVF-9): a served simulated pen opened with options (`pensim://?clock=virtual`,
`pensim://?seed=3`: no name in the URL) is still the simulated pen in this process, so the
service reads its gauge and calibrates it `--auto`. Before, the service looked the simulator up
by the URL's name and refused: "the gauge can be read by the service only for a simulated pen
in this process"."""

from __future__ import annotations

import pytest

from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions

from .conftest import PEN_LEASE_MS, connect, run

SHORT = {"depth_points": 3, "spin_seconds": 0.1}


@pytest.fixture(params=["pensim://?clock=virtual&seed=3", "pensim://?seed=3"])
def served(request, data_dir, monkeypatch):
    # `pensim://?seed=3` on virtual time too (SMP_SIM_CLOCK, docs/simulator.md): the URL is
    # the case (options, no name); a spin on a wall-clock pen that a loaded machine starves
    # counts too few punctures and the calibration rightly refuses
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    options = ServiceOptions(port=request.param, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS)
    with ServiceHandle(options) as handle:
        assert handle.pen.simulated
        yield handle


def test_a_pen_served_from_a_pensim_url_with_options_is_calibrated_auto(served):
    async def main() -> tuple[dict, dict]:
        tech = await connect(served, Role.TECHNICIAN)
        await tech.drive(lease_ms=2000)
        reading = await tech.call("calibration.read_gauge")
        answer = await tech.call("calibration.auto", technician="ana", **SHORT)
        await tech.close()
        return reading, answer

    reading, answer = run(main())
    assert reading["gauge_mm"] >= 0.0
    assert answer["passed"] is True, answer["report"]
    cal = served.pen.calibration
    assert cal is not None and cal.calibration_id == answer["calibration_id"] and cal.simulated
