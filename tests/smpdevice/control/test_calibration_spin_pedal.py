"""review9b R03, controller side: footswitch `required`, the pedal goes up during a calibration
spin. The pen stops the needle; the spin ends there with `PedalReleased` (a message naming the
pedal), the controller stays `calibrating` with the pen disarmed, and nothing runs the needle
again by itself, also not once the pedal is pressed again. The real simulator over pensim://
byte streams, on its virtual clock."""

from __future__ import annotations

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.control import PenController, State
from smpdevice.control.footswitch import PedalReleased
from smpdevice.control.pen import PenTelemetry
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import after

pytestmark = pytest.mark.virtual_time


def _spin_with_release(sim, footswitch: str) -> tuple[PenController, list[PenTelemetry], object]:
    pen = PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                clock=sim.clock, footswitch=footswitch)
    frames: list[PenTelemetry] = []
    pen.add_telemetry_listener(frames.append)
    pen.begin_calibration()
    after(sim.clock, 0.5, sim.release_pedal)  # mid-spin (spin-up 0.3 s, then 1 s measured)
    try:
        outcome: object = pen.calibration_spin(60.0, 1.0)
    except PedalReleased as exc:
        outcome = exc
    return pen, frames, outcome


def test_a_release_ends_the_spin_and_the_needle_stays_stopped(sim):
    pen, frames, outcome = _spin_with_release(sim, "required")
    with pen:
        assert isinstance(outcome, PedalReleased), outcome
        text = str(outcome)
        assert "pedal" in text and "60 Hz" in text and "calibrate again" in text
        assert pen.state is State.CALIBRATING  # the run decides; the spin did not go on
        pen.pause(0.1)
        assert sim.firmware.state is FirmwareState.IDLE  # stopped and disarmed, not armed
        sim.press_pedal()
        pen.pause(0.5)  # pressing again starts nothing
        released = [t.uptime_ms for t in frames if not t.footswitch]
        assert released, "the pen's reports must show the pedal up"
        assert not [t for t in frames if t.needle_running and t.uptime_ms > released[0]]
        assert sim.firmware.state is FirmwareState.IDLE
        pen.end_calibration(None)
        assert pen.state is State.IDLE


def test_with_the_pedal_optional_a_release_does_not_end_the_spin(sim):
    pen, frames, outcome = _spin_with_release(sim, "optional")
    with pen:
        assert isinstance(outcome, float) and abs(outcome - 60.0) < 3.0, outcome
        assert any(not t.footswitch and t.needle_running for t in frames)
        pen.end_calibration(None)


def test_a_spin_with_the_pedal_up_is_refused_naming_the_pedal_and_leaves_the_pen_disarmed(sim):
    with PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                               clock=sim.clock, footswitch="required") as pen:
        pen.begin_calibration()
        sim.release_pedal()
        with pytest.raises(PedalReleased, match="pedal. is not pressed.*52 Hz"):
            pen.calibration_spin(52.0, 1.0)
        pen.pause(0.1)
        assert pen.state is State.CALIBRATING and sim.firmware.state is FirmwareState.IDLE
        pen.end_calibration(None)
        assert pen.state is State.IDLE
