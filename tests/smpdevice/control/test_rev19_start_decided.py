"""Review 19 (safety): a needle start decided before a latch, a lost link or a change of zone
never goes out, however the latch was cleared since.

docs/safety.md, "The layers": "nothing resumes by itself, not after a clear"; "Too deep": a
needle never runs outside the zone its pass was set up for. `start_needle(unless_stopped_since=,
zone=)` is what a session gives its start; these hold it for any caller. Virtual time, real
simulator."""

from __future__ import annotations

import pytest

from smpdevice.control import PenController, State
from smpdevice.control.states import StartOvertaken, StateError
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


def _armed_in_crown(pen) -> None:
    pen.set_zone("crown")
    pen.set_setpoints(**CROWN)
    pen.arm()


def test_a_start_decided_before_an_estop_cleared_since_is_refused():
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        decided, upsets = pen.stops_asked, pen.interruptions
        pen.estop()
        pen.clear_faults()
        _armed_in_crown(pen)
        assert pen.interruptions == upsets + 1
        assert pen.last_interruption[0] is State.ESTOP
        with pytest.raises(StartOvertaken, match="E-stop"):
            pen.start_needle(unless_stopped_since=decided)
        assert pen.state is State.ARMED  # never ran
        pen.start_needle(unless_stopped_since=pen.stops_asked)  # decided anew: it runs
        assert pen.state is State.RUNNING
        pen.stop_needle()


def test_a_start_decided_before_a_lost_link_reconnected_since_is_refused():
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        decided = pen.stops_asked
        sim.disconnect()
        pen.wait_for_state(State.DISCONNECTED, timeout_s=5)
        sim.reconnect()
        pen.reconnect()
        assert pen.last_interruption[0] is State.DISCONNECTED
        _armed_in_crown(pen)
        with pytest.raises(StartOvertaken):
            pen.start_needle(unless_stopped_since=decided)
        assert pen.state is State.ARMED


def test_a_start_for_another_zone_than_the_one_in_force_is_refused():
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        _armed_in_crown(pen)
        with pytest.raises(StateError, match="'hairline'.*'crown'"):
            pen.start_needle(zone="hairline")
        assert pen.state is State.ARMED
        pen.start_needle(zone="crown")
        assert pen.state is State.RUNNING
        pen.stop_needle()
