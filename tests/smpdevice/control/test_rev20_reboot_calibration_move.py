"""Review 20: a calibration move whose settled reading is taken across a reboot. The move
settles, then the pen browns out before the report the move reads its position from: that
report comes after the boot (the actuator reset, the pen latched FAULT POWER_RESET). It was
returned as the settled position and became a gauge point (`smp calibrate` T=4.99: a verify
point at actuator 1.089 mm for 1.679 mm, listed as "re-seat the gauge", never as the reboot).
A reading the pen reboots under is refused with PenFault naming the reboot. Real simulator,
real bytes, virtual time."""

from __future__ import annotations

import threading

import pytest

from firmware_protocol.codes import Fault
from smpdevice.control import PenController
from smpdevice.control.states import PenFault, State
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time

TARGET_MM = 1.2


def test_a_move_read_across_a_reboot_is_refused_not_returned():
    with virtual_sim(seed=20) as sim, PenController.connect(
            sim.url, clock=sim.clock, calibration=true_calibration(sim)) as pen:
        pen.begin_calibration()
        outcome: list[object] = []

        def move() -> None:
            try:
                outcome.append(pen.calibration_move(TARGET_MM))
            except Exception as exc:  # the verdict is asserted below
                outcome.append(exc)

        mover = threading.Thread(target=move)

        def settled() -> bool:
            t = pen.telemetry
            return t is not None and abs(t.actuator_mm - TARGET_MM) <= 0.005

        # the move settled and the host saw it: the brownout comes before the next report
        with sim.time.held_from(settled, timeout_s=5, what="settled", start=mover.start):
            sim.inject("brownout")
        mover.join(timeout=30)
        assert not mover.is_alive()
        assert len(outcome) == 1
        assert isinstance(outcome[0], PenFault), f"a reading across the reboot: {outcome[0]!r}"
        assert "rebooted" in str(outcome[0]) or "POWER_RESET" in str(outcome[0])
        assert pen.state is State.FAULT
        fault = pen.last_fault
        assert fault is not None and Fault.POWER_RESET in fault.faults
