"""Session 22 (review A): a calibration move waits for a report that postdates its ARM.

`calibration_move` waited until the last report showed the pen ARMED, driven to the move's
depth and settled there, whatever that report's age. A calibration ended (NEEDLE_STOP,
RETRACT, DISARM: the needle retracts) and begun again at once, moved to the same point, still
held the report from before the end: ARMED at that point. The move was taken as settled at
once, and its reading was the next report, the needle still on its way back out: a gauge
point paired with a position the needle had not reached (the same defect as a needle start
after a re-arm, test_rev22_start_after_rearm.py). Virtual time, the real simulator.
"""

from __future__ import annotations

import pytest

from smpdevice.control import PenController
from smpdevice.control.calibrating import SETTLE_TOLERANCE_MM
from tests.smpdevice.conftest import true_calibration

pytestmark = pytest.mark.virtual_time

TARGET_MM = 1.2


def test_a_move_right_after_a_new_begin_waits_for_the_needle_at_its_point(sim):
    # reports 100 ms apart: the end, the begin and the move's ARM fit between two of them
    pen = PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=500,
                                telemetry_hz=10, clock=sim.clock)
    try:
        pen.begin_calibration()
        first_mm = pen.calibration_move(TARGET_MM)
        assert abs(first_mm - TARGET_MM) <= SETTLE_TOLERANCE_MM
        report = pen.telemetry
        pen.end_calibration()  # the pen retracts the needle (10 mm/s)
        pen.pause(0.09)  # the needle retracts meanwhile: 0.9 mm of its 1.2, no report yet
        pen.begin_calibration()
        assert pen.telemetry is report  # no report since: the one before the end
        again_mm = pen.calibration_move(TARGET_MM)
        position_um = sim.firmware.physics.position_um
        pen.end_calibration()
    finally:
        pen.close()
    assert abs(again_mm - TARGET_MM) <= SETTLE_TOLERANCE_MM, again_mm
    assert abs(position_um / 1000 - TARGET_MM) <= SETTLE_TOLERANCE_MM, position_um
