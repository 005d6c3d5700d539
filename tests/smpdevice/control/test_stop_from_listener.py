"""`stop_needle()` from a state listener (the controller's loop thread) stops the needle.

It used to raise StateError there and leave the lease held: the pen stopped only when its
lease lapsed, with LEASE_EXPIRED latched. Now it sends NEEDLE_STOP without waiting for the
ACK (the loop thread is the one that handles it) and returns; the state follows the pen's ACK
as for any stop. Other blocking methods still raise there. On the simulator's virtual clock."""

from __future__ import annotations

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.control import PenController, State
from smpdevice.control.states import StateError
from tests.smpdevice.conftest import run_needle, true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time
SETPOINTS = dict(depth_mm=0.45, speed_hz=90, duty_pct=40, period_ms=120)


def _answering_listener(call, answers: list[object], seen: list[State],
                        when: State = State.RUNNING):
    """A state listener that calls `call()` once, on entering `when`, in the loop thread, and
    records how it ended: "returned" or the exception."""
    def on_state(old, new, reason):
        seen.append(new)
        if new is when and not answers:
            try:
                call()
                answers.append("returned")
            except Exception as exc:  # the test shows what it was
                answers.append(exc)
    return on_state


def _stopping_listener(pen: PenController, answers: list[object], seen: list[State]):
    return _answering_listener(pen.stop_needle, answers, seen)


def test_stop_needle_from_a_state_listener_stops_the_needle_without_a_fault():
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        answers: list[object] = []
        seen: list[State] = []
        pen.add_state_listener(_stopping_listener(pen, answers, seen))
        run_needle(pen, **SETPOINTS)
        assert answers == ["returned"]
        pen.wait_for_state(State.ARMED, timeout_s=1.0)
        assert seen[-2:] == [State.RUNNING, State.ARMED]  # the listeners hear of the stop
        sim.time.wait_until(lambda: sim.firmware.state is FirmwareState.ARMED, 1.0,
                            "the pen confirming the stop")
        # three leases later: still armed, the lease renewed again, nothing latched
        sim.time.sleep(3 * pen.lease_ms / 1000)
        assert pen.state is State.ARMED
        assert sim.firmware.state is FirmwareState.ARMED
        assert not sim.firmware.faults
        assert pen.last_fault is None
        # the controller still answers later requests, the listener's stop is not repeated
        pen.start_needle()
        assert pen.state is State.RUNNING
        pen.stop_needle()
        pen.disarm()
        assert pen.state is State.IDLE
        assert sim.firmware.state is FirmwareState.IDLE
        assert not sim.firmware.faults


def test_an_unanswered_stop_from_a_listener_is_a_fault_and_the_pen_stops_by_itself():
    """The frame is lost (every NEEDLE_STOP dropped): as from any thread, the controller goes
    to `fault` once the stop's tries are spent, and renews nothing, so the pen stops."""
    with (virtual_sim(seed=3, link_faults="drop_type=NEEDLE_STOP") as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        answers: list[object] = []
        pen.add_state_listener(_stopping_listener(pen, answers, []))
        run_needle(pen, **SETPOINTS)
        assert answers == ["returned"]
        pen.wait_for_state(State.FAULT, timeout_s=3.0)
        assert "did not confirm the needle stop" in str(pen.last_fault)
        sim.time.wait_until(lambda: sim.firmware.state is not FirmwareState.RUNNING, 2.0,
                            "the pen stopping by itself")


def test_stop_needle_from_a_listener_in_fault_is_refused_as_anywhere():
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        answers: list[object] = []
        pen.add_state_listener(_answering_listener(pen.stop_needle, answers, [], State.ESTOP))
        run_needle(pen, **SETPOINTS)
        pen.estop()
        pen.wait_for_state(State.ESTOP)
        sim.time.wait_until(lambda: bool(answers), 1.0, "the listener's answer")
        assert isinstance(answers[0], StateError)
        assert "cannot stop the needle while estop" in str(answers[0])


@pytest.mark.parametrize("method", ["disarm", "retract", "arm"])
def test_other_blocking_methods_from_a_listener_still_raise(method):
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        answers: list[object] = []
        pen.add_state_listener(_answering_listener(getattr(pen, method), answers, []))
        run_needle(pen, **SETPOINTS)
        assert isinstance(answers[0], StateError)
        assert "cannot be called from a listener" in str(answers[0])
        pen.stop_needle()  # from this thread, as before
        assert pen.state is State.ARMED


@pytest.mark.realtime
def test_stop_needle_from_a_state_listener_over_a_pty(pen_sim_pty):
    """The real pyserial path: the loop thread writes NEEDLE_STOP, the reader thread reads the
    ACK. No timing is asserted: only that the stop lands without a latch."""
    s, path = pen_sim_pty
    with PenController.connect(path, calibration=true_calibration(s)) as pen:
        answers: list[object] = []
        pen.add_state_listener(_stopping_listener(pen, answers, []))
        run_needle(pen, **SETPOINTS)
        pen.wait_for_state(State.ARMED, timeout_s=5.0)
        assert answers == ["returned"]
        pen.pause(3 * pen.lease_ms / 1000)
        assert pen.state is State.ARMED
        assert s.firmware.state is FirmwareState.ARMED
        assert not s.firmware.faults
        pen.disarm()
        assert pen.state is State.IDLE
