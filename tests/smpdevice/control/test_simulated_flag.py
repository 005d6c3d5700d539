"""`PenController.simulated` and the calibration it marks (issue 11, item 8, controller side)."""

from __future__ import annotations

import pytest

from firmware_protocol.codes import Capability
from simulators import PenSimulator
from simulators.reach import TcpBridge
from smpdevice.calibration.gauges import SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController
from smpdevice.control.calibration import Calibration


def advertised(sim: PenSimulator) -> Capability:
    """What this simulator's firmware puts in IDENTIFY.capabilities."""
    return Capability(sim.firmware._identify_request(None).capabilities)


def test_a_pensim_port_is_simulated(sim):
    with PenController.connect(sim.url) as pen:
        assert pen.simulated is True


def test_over_tcp_the_flag_follows_the_pens_identify(sim):
    bridge = TcpBridge(sim)
    try:
        with PenController.connect(bridge.url) as pen:
            assert not pen.port_url.startswith("pensim://")
            assert pen.simulated is (Capability.SIMULATED in advertised(sim))
            assert pen.simulated is (Capability.SIMULATED in pen.identity.capabilities)
    finally:
        bridge.close()


# On virtual time: a whole calibration (moves, gauge readings, the pen's lease) on the wall
# clock is what a loaded machine can starve.
@pytest.mark.virtual_time
def test_a_calibration_made_on_the_simulator_says_so(sim):
    with PenController.connect(sim.url, clock=sim.clock) as pen:
        report = run_calibration(pen, SimulatorGauge(sim.url), technician="qa",
                                 settings=CalibrationSettings(run_speed=False))
        assert report.passed
        assert report.calibration.simulated is True
        assert pen.calibration.simulated is True


def test_a_calibration_is_real_unless_marked():
    cal = Calibration.linear(pen_serial="SMP-1", technician="ana", offset_mm=-0.3, gain=1.0)
    assert cal.simulated is False
    again = Calibration.model_validate_json(cal.model_copy(update={"simulated": True})
                                            .model_dump_json())
    assert again.simulated is True
