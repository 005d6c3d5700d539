"""Session 21 (review 20 F3): what the controller accepts of the pen while calibrating.

A calibration move arms the pen (the needle out at the point, not spinning), a speed check
runs it, its stop disarms it. The controller knows which of these it asked for, so an armed
pen is no fault, but a pen that runs its needle during a depth move (another host, a start
nobody here sent) is stopped and latched, and the pen's refusal to arm without a cartridge
says what to do. The real controller and simulated pen over their byte stream, virtual time.
"""

from __future__ import annotations

import pytest

from firmware_protocol import encode
from firmware_protocol.codes import FirmwareState, MsgType
from firmware_protocol.messages import NeedleStart
from firmware_protocol.timing import RETRACT_MAX_MS
from smpdevice.control import PenController, State
from smpdevice.link import CommandRefused
from tests.smpdevice.virtual_time import virtual_sim


def test_a_move_arms_the_pen_and_armed_is_no_fault_until_the_end_retracts():
    with virtual_sim(seed=5) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        ctl.begin_calibration()
        fw = sim.firmware
        assert ctl.calibration_move(1.2) == pytest.approx(1.2, abs=0.01)
        assert fw.state is FirmwareState.ARMED and fw.physics.position_um == 1200
        assert fw.lease_remaining_ms() > 0  # granted with the ARM: a dead host lets it lapse
        assert fw.executed[MsgType.NEEDLE_START] == 0  # out, never spinning
        sim.time.sleep(10 * ctl.lease_ms / 1000)  # renewed all the while, no false fault
        assert ctl.state is State.CALIBRATING and fw.state is FirmwareState.ARMED
        ctl.end_calibration(None)
        assert ctl.state is State.IDLE
        sim.time.sleep(RETRACT_MAX_MS / 1000)
        assert fw.state is FirmwareState.IDLE and fw.physics.position_um == 0


def test_a_needle_started_by_another_host_during_a_depth_move_is_stopped_and_latched():
    with virtual_sim(seed=5) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        ctl.begin_calibration()
        ctl.calibration_move(1.0)
        fw = sim.firmware
        other = sim.open_port()  # a second host on the pen's line
        other.write(encode(NeedleStart(), 200))
        sim.time.wait_until(lambda: ctl.state is State.FAULT, timeout_s=1.0)
        assert "ran the needle while calibrating" in str(ctl.last_fault), ctl.last_fault
        sim.time.wait_until(lambda: fw.state is not FirmwareState.RUNNING, timeout_s=0.1)
        # the controller renews nothing in `fault`: the armed pen's lease lapses, it retracts
        sim.time.sleep(ctl.lease_ms / 1000 + RETRACT_MAX_MS / 1000)
        assert fw.state is FirmwareState.IDLE and fw.physics.position_um == 0


def test_a_move_without_a_cartridge_is_refused_by_the_pen_and_moves_nothing():
    with virtual_sim(seed=5) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        ctl.begin_calibration()
        sim.inject("cartridge_removed")
        with pytest.raises(CommandRefused, match="NO_CARTRIDGE.*Fit a cartridge"):
            ctl.calibration_move(1.0)
        sim.time.sleep(0.2)
        fw = sim.firmware
        assert fw.state is FirmwareState.IDLE and fw.physics.position_um == 0
        assert ctl.state is State.CALIBRATING  # refused, not latched: fit one and go on
        sim.clear("cartridge_removed")
        assert ctl.calibration_move(1.0) == pytest.approx(1.0, abs=0.01)
        ctl.end_calibration(None)


def test_a_speed_check_after_a_move_runs_and_its_stop_disarms_and_retracts():
    with virtual_sim(seed=5) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        ctl.begin_calibration()
        ctl.calibration_move(0.8)
        assert ctl.calibration_spin(100.0, 0.3) == pytest.approx(100.0, rel=0.05)
        fw = sim.firmware
        assert ctl.state is State.CALIBRATING and fw.state is FirmwareState.IDLE
        sim.time.sleep(RETRACT_MAX_MS / 1000)
        assert fw.physics.position_um == 0  # the spin's DISARM retracted it
        assert ctl.calibration_move(0.5) == pytest.approx(0.5, abs=0.01)  # armed again
        ctl.end_calibration(None)
