"""Review 19 (fixd1): `start_needle(zone=...)` checks its new argument only after the start's
needle-work line was written (and the depth waited for), so a bad `zone` stores a line for a
movement that never happens.

docs/safety.md "Non-finite or absurd input through the API": "Every public entry of the
controller ... checks type, finiteness and range before anything is sent or stored, and raises
one typed error (`InvalidArgument` ...)". README: a needle-work line is written "synced to disk
before the needle moves"; a line of the pen between a pass's begin and a resume's count sets
that count aside. Virtual time, real simulator, real file."""

from __future__ import annotations

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController, State
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


@pytest.mark.parametrize("zone", [5, "", "crown\nhairline"])
def test_a_bad_zone_is_refused_before_a_needle_work_line_is_stored(tmp_path, zone):
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        pen.needle_work_dir = tmp_path
        pen.set_zone("crown")
        pen.set_setpoints(depth_mm=0.5, speed_hz=90.0, duty_pct=40.0, period_ms=100.0)
        pen.arm()
        with pytest.raises(InvalidArgument) as refused:
            pen.start_needle(zone=zone)
        state = pen.state
    assert "zone" in str(refused.value)
    assert state is State.ARMED
    path = tmp_path / "needle-work.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    assert lines == [], lines  # nothing stored for a start refused by its own arguments
