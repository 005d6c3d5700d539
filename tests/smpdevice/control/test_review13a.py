"""Review 13a (the calibration stop epoch): a refused end_calibration or spin stop asks no
stop and holds no lease (R13A-03, S1); a move refused at its resend says it was sent and
forgets the position (R13A-02); an unanswered table write may have been stored (R13A-01).
Virtual time; ordered by `delay_type=` and `queued_turns`, never by sleeps."""

from __future__ import annotations

import sys

import pytest

from firmware_protocol.codes import MsgType
from smpdevice.control import PenController, State
from smpdevice.control.calibrating import SpinStopped
from smpdevice.control.states import StateError
from smpdevice.link.wire import LinkTimeout
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.control.queued_turns import Queued, held_still, queue, until
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


def _waiting_for_depth(queued: Queued) -> bool:
    frame = sys._current_frames().get(queued._thread.ident)
    while frame is not None:
        if frame.f_code.co_name == "_wait_depth_settled":
            return True
        frame = frame.f_back
    return False


def test_a_refused_end_calibration_stops_nothing_and_the_waiting_start_goes():
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                clock=sim.clock) as pen):
        pen.set_zone("crown")
        pen.set_setpoints(**CROWN)
        pen.arm()
        with held_still(sim):
            pen.set_setpoints(**{**CROWN, "depth_mm": 0.7})  # the actuator must travel
            start = Queued(lambda: pen.start_needle(settle_timeout_s=5.0))
            until(lambda: _waiting_for_depth(start), "the start waiting for the depth")
            epoch = pen._stop_epoch
            with pytest.raises(StateError):
                pen.end_calibration(None)  # armed: refused, nothing sent
            assert pen._stop_epoch == epoch
        assert start.result() is None
        assert pen.state is State.RUNNING
        pen.stop_needle()


def test_a_spin_stop_asked_late_while_armed_leaves_no_hold():
    """S1: a spin thread saw CALIBRATING, then end_calibration and arm() completed before its
    `_end_spin` ran. Called here in that order (the race's outcome, without scheduling): it
    is refused, asks no stop and leaves renewal alone, so the pen stays armed."""
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                clock=sim.clock) as pen):
        pen.begin_calibration()
        pen.end_calibration(None)
        pen.set_zone("crown")
        pen.set_setpoints(**CROWN)
        pen.arm()
        epoch = pen._stop_epoch
        with pytest.raises(StateError):
            pen._end_spin(CROWN["speed_hz"])
        assert pen._stop_epoch == epoch and not pen._lease_hold.is_set()
        sim.time.sleep(2.0)  # ten lease periods: renewals go on
        assert pen.state is State.ARMED and sim.firmware.state.name == "ARMED"


def test_a_move_refused_at_its_resend_says_it_was_sent_and_forgets_the_position():
    with (virtual_sim(seed=3, link_faults="delay_type=SET_SETPOINTS:0.3") as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                clock=sim.clock) as pen):
        pen.begin_calibration()
        with held_still(sim):
            mover = queue(pen, lambda: pen.calibration_move(1.5))  # its frame on the wire
            ender = queue(pen, lambda: pen.end_calibration(None))  # the stop behind it
        moved = mover.result()
        assert ender.result() is None
        assert isinstance(moved, StateError), moved
        said = str(moved)
        assert "nothing was sent" not in said and "may or may not" in said, said
        assert pen._cal_actuator_mm is None
        sim.time.sleep(1.0)  # the late SET_SETPOINTS lands on the idle pen
        assert pen.state is State.IDLE and pen.setpoints is None
        assert sim.firmware.depth_cmd_um == 1500  # the late frame did land (reordered link)
        # the host believes no position and cannot arm before it sends setpoints of its own
        with pytest.raises(StateError):
            pen.arm()


def test_a_spin_refused_at_its_resend_was_sent_and_is_stopped():
    """Its SET_SETPOINTS on the wire unanswered when end_calibration's stop queues behind it:
    refused at the resend, it went out (`part_sent`), and the spin's own stop is asked."""
    with (virtual_sim(seed=3, link_faults="delay_type=SET_SETPOINTS:0.3") as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                clock=sim.clock) as pen):
        pen.begin_calibration()
        with held_still(sim):
            spinner = queue(pen, lambda: pen.calibration_spin(150.0, 0.4))
            ender = queue(pen, lambda: pen.end_calibration(None))
        spun = spinner.result()
        assert ender.result() is None
        assert isinstance(spun, SpinStopped) and spun.part_sent, spun
        assert "first frames were sent" in str(spun), spun
        sim.time.sleep(1.0)  # the late SET_SETPOINTS lands: the pen is never armed
        assert pen.state is State.IDLE and sim.firmware.state.name == "IDLE"
        assert sim.firmware.executed[MsgType.ARM] == 0


def test_an_unanswered_table_write_may_have_been_stored_and_says_so():
    with (virtual_sim(seed=3, link_faults="delay_type=CALIBRATION_WRITE:6") as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                clock=sim.clock) as pen):
        installed = pen.calibration
        pen.begin_calibration()
        cal = true_calibration(sim, technician="run")
        with pytest.raises(LinkTimeout) as raised:
            pen.end_calibration(cal)
        said = str(raised.value)
        assert "may or may not have been stored on the pen" in said, said
        assert "neither written" not in said and "keeps the old calibration" in said, said
        sim.time.sleep(8.0)  # the delayed copies arrive: the pen stores it
        assert pen.state is State.IDLE and pen.calibration is installed
        assert sim.firmware.executed[MsgType.CALIBRATION_WRITE] >= 1
        assert pen.read_calibration_table().written_at_s == int(cal.created_at.timestamp())
