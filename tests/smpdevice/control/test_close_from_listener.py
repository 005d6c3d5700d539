"""`close()` from a state listener (the controller's loop thread) raises StateError at once and
changes nothing (review 9a R05): it used to skip its stop and disarm there and tear the link
down anyway, so the controller read `disconnected` while the pen ran on until its lease lapsed
(then FAULT LEASE_EXPIRED). Now the needle stays supervised, and a close from another thread
stops and disarms it as promised. On the simulator's virtual clock."""

from __future__ import annotations

import pytest

from firmware_protocol.codes import Fault, FirmwareState
from smpdevice.control import PenController, State
from smpdevice.control.states import StateError
from tests.smpdevice.conftest import run_needle, true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time
SETPOINTS = dict(depth_mm=0.45, speed_hz=90, duty_pct=40, period_ms=120)


@pytest.mark.parametrize("how", ["close", "with-exit"])
def test_close_from_a_state_listener_is_refused_and_the_needle_stays_supervised(how):
    with virtual_sim(seed=3) as sim:
        pen = PenController.connect(sim.url, calibration=true_calibration(sim), clock=sim.clock)
        answers: list[object] = []

        def on_state(old, new, reason):
            if new is State.RUNNING and not answers:
                try:
                    if how == "close":
                        pen.close()
                    else:
                        with pen:
                            pass
                    answers.append("closed")
                except StateError as exc:
                    answers.append(exc)

        try:
            pen.add_state_listener(on_state)
            run_needle(pen, **SETPOINTS)
            assert answers and isinstance(answers[0], StateError), answers
            assert "nothing was changed" in str(answers[0])
            sim.time.sleep(1.0)  # two leases: the controller still renews it
            assert pen.state is State.RUNNING
            assert sim.firmware.state is FirmwareState.RUNNING
            assert not sim.firmware.faults
        finally:
            pen.close()  # from this thread: stops, disarms, closes
        assert pen.state is State.DISCONNECTED
        assert sim.firmware.state is FirmwareState.IDLE
        assert not (sim.firmware.faults & Fault.LEASE_EXPIRED)


# stop_needle() from a state listener: tests/smpdevice/control/test_stop_from_listener.py
