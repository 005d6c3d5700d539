"""Review 16: a speed check shorter than the telemetry can measure (`calibration_spin(100,
1e-320)`, inside the old range "more than 0, up to 60 s") raised LinkTimeout "no telemetry while
the motor ran", blaming the link. It is refused before the needle runs, naming the least."""

from __future__ import annotations

import pytest

from firmware_protocol.codes import MsgType
from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController, State
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim


@pytest.mark.parametrize("duration_s", [1e-320, 0.001, 0.019])
def test_a_spin_too_short_to_measure_is_refused_and_the_needle_never_runs(duration_s):
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):  # 100 Hz telemetry: 0.02 s least
        pen.begin_calibration()
        with pytest.raises(InvalidArgument, match=r"at least 0\.02 s"):
            pen.calibration_spin(100.0, duration_s)
        assert pen.state is State.CALIBRATING
        assert sim.firmware.executed[MsgType.NEEDLE_START] == 0
        assert 90 < pen.calibration_spin(100.0, 0.2) < 110  # a spin that can be measured
