"""Review REVLAT (session 13): the state policy read by the machine's state name
(`_SETPOINT_STATES`, `SAFE`, `LEASED`) answers as HEAD's `self.state in ...` in every state of the
machine, with and without the E-stop and lease holds; and set_setpoints over the wire in every
state a caller can reach, refused with HEAD's words (`_require`) and nothing sent."""

from __future__ import annotations

import pytest

from smpdevice.control import PenController
from smpdevice.control.pen import Setpoints
from smpdevice.control.states import LEASED, POLICY, SAFE, State, StateError
from smpdevice.errors import SmpError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time

SP = {"depth_mm": 0.5, "speed_hz": 100.0, "duty_pct": 50.0, "period_ms": 100.0}


def _refusal(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except SmpError as exc:
        return (type(exc), str(exc))
    return None


def test_every_state_and_hold_answers_as_heads_set_membership():
    with virtual_sim(seed=7) as sim, PenController.connect(
            sim.url, clock=sim.clock, calibration=true_calibration(sim)) as pen:
        pen.set_zone("crown")
        sp = Setpoints(**SP)
        with sim.time.held():  # nothing moves while the machine is set by hand
            home = pen._fsm.state
            try:
                for state in State:
                    pen._machine.set_state(state.value, pen._fsm)
                    for estop_hold in (False, True):
                        for lease_hold in (False, True):
                            pen._estop_hold = estop_hold
                            (pen._lease_hold.set if lease_hold else pen._lease_hold.clear)()
                            head_refused = estop_hold or pen.state in SAFE
                            got = pen.motion_refused()
                            assert (got is not None) == head_refused, (state, estop_hold)
                            if got is not None:
                                assert str(got) == f"stopped: {pen.last_fault}"
                            assert pen.lease_needed() == (
                                pen.state in LEASED and not lease_hold and not estop_hold), (
                                state, estop_hold, lease_hold)
                    pen._estop_hold = False
                    pen._lease_hold.clear()
                    head = _refusal(pen._require, "set_setpoints")
                    assert (head is None) == (state in POLICY["set_setpoints"][0])
                    with pen._eng._lock:  # as the engine runs it
                        got = _refusal(pen._do_set_setpoints, sp)
                    assert got == head, state
            finally:
                pen._estop_hold = False
                pen._lease_hold.clear()
                pen._machine.set_state(home, pen._fsm)


def _sent(sim) -> tuple[bool, int]:
    fw = sim.firmware
    return fw.has_setpoints, fw.depth_cmd_um


@pytest.mark.parametrize("where", ["idle", "armed", "running", "calibrating", "fault",
                                   "estop", "disconnected"])
def test_setpoints_over_the_wire_in_every_reachable_state(where):
    with virtual_sim(seed=8) as sim, PenController.connect(
            sim.url, clock=sim.clock, calibration=true_calibration(sim)) as pen:
        pen.set_zone("crown")
        pen.set_setpoints(**SP)
        if where in ("armed", "running"):
            pen.arm()
        if where == "running":
            pen.start_needle()
        if where == "calibrating":
            pen.begin_calibration()
        if where == "fault":
            sim.inject("brownout")
            pen.wait_for_state(State.FAULT, timeout_s=2.0)
        if where == "estop":
            pen.estop()
        if where == "disconnected":
            pen.close()
        assert pen.state.value == where
        before = _sent(sim)
        allowed = pen.state in POLICY["set_setpoints"][0]
        head = None if allowed or where == "disconnected" else _refusal(
            pen._require, "set_setpoints")
        got = _refusal(pen.set_setpoints, **{**SP, "depth_mm": 0.55})
        if allowed:
            assert got is None
            assert _sent(sim) == (True, round(pen._actuator_cmd_mm * 1000))
        elif where == "disconnected":
            assert got is not None and got[0] is StateError
            assert got[1].startswith("not connected to a pen")
        else:
            assert got == head
            assert _sent(sim) == before
        if where == "running":
            pen.stop_needle()
