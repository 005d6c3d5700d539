"""end_calibration(cal) whose table write (CALIBRATION_WRITE) goes unanswered (review 12a R02).

The stop (NEEDLE_STOP, RETRACT, DISARM) was confirmed: the pen is at rest. Before, the write
was a step of the stop, and its timeout latched `fault` saying "the pen did not confirm the
needle stop", untrue. Now the stop is confirmed on its own (the controller is idle) and the
write is a request of its own: unanswered, the calibration is not installed and may or may
not have been stored on the pen, and the error says so. A speed check's stop whose DISARM
goes unanswered is still a fault, and its reason names the DISARM. `drop_type=` loses
every frame of a type; virtual time."""

from __future__ import annotations

import pytest

from firmware_protocol.codes import FirmwareState, MsgType
from smpdevice.control import PenController, State
from smpdevice.control.states import PenFault
from smpdevice.link.wire import LinkError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


def _connect(sim) -> PenController:
    return PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                 clock=sim.clock)


def test_an_unanswered_table_write_leaves_idle_uninstalled_and_says_so():
    with (virtual_sim(seed=3, link_faults="drop_type=CALIBRATION_WRITE") as sim,
          _connect(sim) as pen):
        installed = pen.calibration
        pen.begin_calibration()
        cal = true_calibration(sim, technician="run")
        with pytest.raises(LinkError) as raised:
            pen.end_calibration(cal)
        assert sim.firmware.state is FirmwareState.IDLE
        assert sim.firmware.executed[MsgType.DISARM] >= 1
        assert pen.state is State.IDLE, pen.last_fault
        assert pen.last_fault is None
        assert pen.calibration is installed  # never installed unwritten
        said = str(raised.value)
        assert "may or may not have been stored on the pen" in said, said  # review 13a R01
        assert "CALIBRATION_WRITE" in said, said
        assert not pen.lease_needed()


def test_a_spin_stop_whose_disarm_is_unanswered_names_the_disarm():
    with (virtual_sim(seed=3, link_faults="drop_type=DISARM") as sim, _connect(sim) as pen):
        pen.begin_calibration()
        with pytest.raises((LinkError, PenFault)):
            pen.calibration_spin(150.0, 0.4)
        assert pen.state is State.FAULT
        reason = str(pen.last_fault)
        assert "the needle stop's DISARM" in reason, reason
        assert not pen.lease_needed()
