"""A guard of ARM that lapses while the ARM is on its way (the calibration expires as the pen
arms; review 12, after REVF-6): arm() is refused and the controller stays idle, and the pen,
which had armed, is told back to idle at once (DISARM), not left armed until its lease runs
out. Virtual time; the validity's wall clock moves 31 days on the moment the pen arms."""

from __future__ import annotations

from datetime import timedelta

import pytest

import smpdevice.control.calibration as calibration_module
from firmware_protocol.codes import FirmwareState
from smpdevice.control import State
from smpdevice.control.states import StateError
from tests.smpdevice.conftest import CROWN

pytestmark = pytest.mark.virtual_time


def test_an_arm_whose_calibration_lapses_on_the_way_leaves_pen_and_controller_idle(
        sim, pen, monkeypatch):
    real_today = calibration_module.today_utc

    def today():  # a month on from the moment the pen armed
        armed = sim.firmware.state is FirmwareState.ARMED
        return real_today() + timedelta(days=31 if armed else 0)

    pen.set_zone("crown")
    pen.set_setpoints(**CROWN)
    monkeypatch.setattr(calibration_module, "today_utc", today)
    with pytest.raises(StateError, match="arm"):
        pen.arm()
    assert pen.state is State.IDLE
    armed_at = sim.clock.now()
    sim.time.wait_until(lambda: sim.firmware.state is FirmwareState.IDLE, 0.1,
                        "the pen back to idle")
    assert sim.clock.now() - armed_at < pen.lease_ms / 1000 / 2  # told, not its lease lapsing
    assert not sim.firmware.faults  # disarmed, not faulted by a lapsed lease


def test_the_needle_never_starts_on_a_calibration_that_expired_while_armed(sim, pen,
                                                                          monkeypatch):
    """Armed on a valid calibration, which then expires (a session lasts hours): the start
    is refused, nothing reaches the pen (REV2B-8)."""
    real_today = calibration_module.today_utc
    month_on = []
    monkeypatch.setattr(calibration_module, "today_utc",
                        lambda: real_today() + timedelta(days=31 if month_on else 0))
    pen.set_zone("crown")
    pen.set_setpoints(**CROWN)
    pen.arm()
    month_on.append(True)
    with pytest.raises(StateError, match="cannot start the needle: .*expired"):
        pen.start_needle()
    assert pen.state is State.ARMED and sim.firmware.state is FirmwareState.ARMED
    pen.disarm()
