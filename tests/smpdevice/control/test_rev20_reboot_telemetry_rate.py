"""Review 20: a pen that rebooted comes up with its telemetry at its boot default (docs/
simulator.md: `telemetry` is the pen's default rate; 0 = off at boot), not the rate the
handshake asked. The host never asked it again: after a brownout and a clear, the next pass
ran blind and ended 1 s in as "the pen's telemetry stopped ... check the cable", and the pen
stayed unusable until a reconnect. The clear of a pen that rebooted asks the rate again.
Real simulator, real bytes, virtual time."""

from __future__ import annotations

import pytest

from simulators.pen_model import PenModel
from smpdevice.control import PenController
from smpdevice.control.states import State
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time

SP = {"depth_mm": 0.5, "speed_hz": 100.0, "duty_pct": 50.0, "period_ms": 100.0}


@pytest.mark.parametrize("boot_hz", [0, 20])
def test_a_pen_rebooted_and_cleared_reports_at_the_asked_rate_again(boot_hz):
    with virtual_sim(seed=20, model=PenModel(telemetry_default_hz=boot_hz)) as sim, \
            PenController.connect(sim.url, clock=sim.clock, telemetry_hz=100,
                                  calibration=true_calibration(sim)) as pen:
        pen.set_zone("crown")
        pen.set_setpoints(**SP)
        pen.arm()
        pen.start_needle()
        sim.time.sleep(0.2)
        sim.inject("brownout")
        sim.time.wait_until(lambda: pen.state is State.FAULT, what="the reboot latched")
        sim.time.sleep(0.2)  # booted: the pen reports at its boot default now
        pen.clear_faults()
        assert sim.firmware.telemetry_hz == 100  # asked again, as at the handshake
        pen.set_setpoints(**SP)
        pen.arm()
        pen.start_needle()
        sim.time.sleep(1.5)  # past the silence limit: a blind pass would have latched
        assert pen.state is State.RUNNING, pen.last_fault
        pen.stop_needle()
        assert pen.state is State.ARMED
