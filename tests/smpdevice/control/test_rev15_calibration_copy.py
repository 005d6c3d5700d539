"""A `Calibration` changed with `model_copy(update=...)` (which skips pydantic's checks) is
installed by `set_calibration()` and `end_calibration()` and drives the needle.

Promised: docs/safety.md "Non-finite or absurd input through the API": "Every public entry of
the controller and every `Calibration` constructor checks type, finiteness and range before
anything is sent or stored ... calibration gain 0.5-2.0 mm/mm, offset -3 to 3 mm, validity up
to 366 days"; docs/integration.md: the controller checks a zone made with `model_copy` "again,
whole" (a calibration sets the depth as much as a zone does).
Found (review 15): a gain of 10 is installed and a 0.5 mm depth in skin is sent as an actuator
command of 0.082 mm instead of 0.797 mm (same calibration_id, so the session header names the
genuine one); an expiry in 2099 is installed too (the 366-day validity never ends); NaN gain.
"""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from smpdevice.errors import SmpError
from tests.smpdevice.conftest import CROWN, pen, sim, true_calibration  # noqa: F401

pytestmark = pytest.mark.virtual_time

BAD = {"gain-10": {"gain": 10.0}, "gain-nan": {"gain": math.nan},
       "expires-2099": {"expires_at": datetime(2099, 1, 1, tzinfo=UTC)}}


@pytest.mark.parametrize("how", ["set_calibration", "end_calibration"])
@pytest.mark.parametrize("update", list(BAD.values()), ids=list(BAD))
def test_a_copied_calibration_out_of_range_is_refused(sim, pen, update, how):
    good = pen.calibration
    bad = true_calibration(sim).model_copy(update=update)
    with pytest.raises(SmpError):
        if how == "set_calibration":
            pen.set_calibration(bad)
        else:
            pen.begin_calibration()
            pen.end_calibration(bad)
    assert pen.calibration is good
    pen.set_zone("crown")
    pen.set_setpoints(**CROWN)
    assert abs(pen._actuator_cmd_mm - good.to_actuator_mm(CROWN["depth_mm"])) < 1e-3


@pytest.mark.parametrize("update", list(BAD.values()), ids=list(BAD))
def test_a_copied_calibration_out_of_range_is_refused_at_connect(sim, update):
    from smpdevice.control import PenController

    bad = true_calibration(sim).model_copy(update=update)
    with pytest.raises(SmpError, match="is refused"):
        PenController.connect(sim.url, calibration=bad)
    assert sim.firmware.state.name in ("IDLE", "BOOTING"), sim.firmware.state  # nothing armed
