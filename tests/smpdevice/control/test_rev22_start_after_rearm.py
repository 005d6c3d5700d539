"""Session 22: a needle start waits for a report that postdates the arm.

The start waits until the pen reports its needle at the set depth. It took the last report it
had, whatever its age: a pass stopped, disarmed and armed again at once (a session's next pass
in the same zone) still held the report from before the DISARM, ARMED at depth, while the
pen had spent the disarm retracting. The needle started some 60 um shallow (a busy CI run: the
recording and its replay differed there, "expected NeedleStart; got NeedleStop", the replay
having seen the next report in time). Virtual time, the real simulator, whose firmware notes
where its needle stands as each NEEDLE_START arrives.
"""

from __future__ import annotations

import pytest

from firmware_protocol.messages import MsgType
from simulators.firmware import PenFirmware
from smpdevice.control import PenController, State
from tests.smpdevice.conftest import CROWN, run_needle, true_calibration

pytestmark = pytest.mark.virtual_time


def test_a_start_right_after_a_rearm_waits_for_the_needle_at_depth(sim, monkeypatch):
    at_start_um: list[tuple[float, int]] = []
    original = PenFirmware._HANDLERS[MsgType.NEEDLE_START]

    def noting(fw: PenFirmware, msg) -> None:
        at_start_um.append((fw.physics.position_um, fw.depth_cmd_um))
        original(fw, msg)

    monkeypatch.setitem(PenFirmware._HANDLERS, MsgType.NEEDLE_START, noting)
    # reports 100 ms apart: the disarm and re-arm below fit between two of them
    pen = PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=500,
                                telemetry_hz=10, clock=sim.clock)
    try:
        run_needle(pen)
        pen.stop_needle()
        before = pen.telemetry
        assert pen._wait_news(lambda: pen.telemetry is not before, 1.0)
        report = pen.telemetry
        assert report is not None and report.actuator_mm > 0.4  # armed, at depth
        pen.disarm()
        pen.pause(0.05)  # the pen retracts meanwhile (10 mm/s): no report yet
        assert pen.telemetry is report
        pen.set_setpoints(**CROWN)
        pen.arm()
        pen.start_needle()
        assert pen.state is State.RUNNING
    finally:
        pen.close()
    assert len(at_start_um) == 2
    for position_um, cmd_um in at_start_um:
        assert abs(position_um - cmd_um) <= 10, at_start_um
