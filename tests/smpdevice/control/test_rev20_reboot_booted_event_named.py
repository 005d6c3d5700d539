"""Review 20: the same brownout was named two ways: met first by a request's NACK BOOTING it
was "the pen rebooted (...)"; met first by the pen's EVENT BOOTED (a pen idle, or armed
between renewals) it was "the pen latched a fault (POWER_RESET)", a fault to look for a jam
behind. Either way now the controller latches `fault` naming the reboot. Real simulator, real
bytes, virtual time."""

from __future__ import annotations

import pytest

from firmware_protocol.codes import Fault
from smpdevice.control import PenController
from smpdevice.control.states import State
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time

SP = {"depth_mm": 0.5, "speed_hz": 100.0, "duty_pct": 50.0, "period_ms": 100.0}


@pytest.mark.parametrize("where", ["idle", "armed"])
def test_a_reboot_told_by_its_booted_event_is_named_a_reboot(where):
    with virtual_sim(seed=20) as sim, PenController.connect(
            sim.url, clock=sim.clock, calibration=true_calibration(sim), lease_ms=2000) as pen:
        pen.set_zone("crown")
        pen.set_setpoints(**SP)
        if where == "armed":
            pen.arm()
            sim.time.sleep(0.05)  # just renewed: the next renewal is long after the boot
        states: list[State] = []
        pen.add_state_listener(lambda old, new, why: states.append(new))
        sim.inject("brownout")
        sim.time.wait_until(lambda: pen.state is State.FAULT, what="the reboot latched")
        assert states == [State.FAULT]
        fault = pen.last_fault
        assert fault is not None and Fault.POWER_RESET in fault.faults
        assert "rebooted" in str(fault) and "BOOTED" in str(fault), str(fault)
