"""Review 19: a NACK BOOTING to any request of a live session (not only to a lease renewal)
means the pen rebooted under us: the controller latches `fault` with POWER_RESET and the
reboot named, never `armed` (a stop taken as done) nor a silent `idle`. Real simulator, real
bytes, virtual time: the brownout is injected while virtual time stands still, and the request
is on its way before the 50 ms boot ends."""

from __future__ import annotations

import threading

import pytest

from firmware_protocol.codes import Fault
from smpdevice.control import PenController
from smpdevice.control.states import PenFault, State
from smpdevice.errors import SmpError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim, wall_until

pytestmark = pytest.mark.virtual_time

SP = {"depth_mm": 0.5, "speed_hz": 100.0, "duty_pct": 50.0, "period_ms": 100.0}


def _reboot_named(pen: PenController, request: str) -> None:
    assert pen.state is State.FAULT
    fault = pen.last_fault
    assert fault is not None and Fault.POWER_RESET in fault.faults, fault
    assert "rebooted" in str(fault) and request in str(fault), str(fault)


def test_a_needle_stop_refused_booting_latches_the_reboot_not_armed():
    with virtual_sim(seed=19) as sim, PenController.connect(
            sim.url, clock=sim.clock, calibration=true_calibration(sim)) as pen:
        pen.set_zone("crown")
        pen.set_setpoints(**SP)
        pen.arm()
        pen.start_needle()
        states: list[State] = []
        pen.add_state_listener(lambda old, new, why: states.append(new))
        errors: list[BaseException] = []

        def stop() -> None:
            try:
                pen.stop_needle()
            except SmpError as exc:
                errors.append(exc)

        stopper = threading.Thread(target=stop)
        with sim.time.held():  # the brownout, then the stop: renewals held before time moves
            sim.inject("brownout")
            stopper.start()
            wall_until(pen._lease_hold.is_set, "the stop held the lease")
        stopper.join(timeout=30)
        assert not stopper.is_alive()
        # the caller is told the stop was not done: the pen rebooted (as a FAULT_LATCHED NACK)
        assert len(errors) == 1 and isinstance(errors[0], PenFault), errors
        assert "rebooted" in str(errors[0]) and "NEEDLE_STOP: BOOTING" in str(errors[0])
        _reboot_named(pen, "NEEDLE_STOP")
        assert states == [State.FAULT]  # never armed: the pen rebooted, the stop was not done


@pytest.mark.parametrize("where", ["idle", "armed"])
def test_setpoints_refused_booting_latch_the_reboot(where):
    with virtual_sim(seed=19) as sim, PenController.connect(
            sim.url, clock=sim.clock, calibration=true_calibration(sim)) as pen:
        pen.set_zone("crown")
        pen.set_setpoints(**SP)
        if where == "armed":
            pen.arm()
        with sim.time.held():
            sim.inject("brownout")
        with pytest.raises(PenFault, match=r"rebooted .*SET_SETPOINTS: BOOTING"):
            pen.set_setpoints(**{**SP, "depth_mm": 0.55})
        _reboot_named(pen, "SET_SETPOINTS")
        sim.time.wait_until(lambda: pen.telemetry is not None
                            and Fault.POWER_RESET in pen.telemetry.faults, what="booted")
        assert pen.state is State.FAULT  # stays latched once the pen is up
