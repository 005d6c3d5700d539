"""Review 15 A10 (calibration settings): `CalibrationSettings(depth_points=3.5)` was taken
and met mid-run as a bare TypeError (`range(3.5)`); the settings nobody checked (first point,
spin time, validity, retries, flags, depth and speed lists) took any type too. Now each is a
CalibrationError naming it, before a run starts.
"""

from __future__ import annotations

import math

import pytest

from smpdevice.calibration.report import CalibrationSettings
from smpdevice.control.calibration import CalibrationError


@pytest.mark.parametrize(("field", "value"), [
    ("depth_points", 3.5), ("depth_points", "6"), ("depth_points", True), ("depth_points", 9),
    ("first_point_mm", math.nan), ("first_point_mm", "0.2"), ("zero_approach_mm", -0.1),
    ("spin_duration_s", math.inf), ("spin_duration_s", 0), ("validity_days", 400),
    ("validity_days", None), ("gauge_max_mm", "2"), ("fit_retries", 1.5),
    ("fit_retries", -1), ("run_speed", "no"), ("ask_tachometer", 1),
    ("verify_depths_mm", 0.5), ("verify_depths_mm", ()), ("verify_depths_mm", (0.5, math.nan)),
    ("speeds_hz", ("60",)), ("speeds_hz", [60.0, -1.0]),
])
def test_a_setting_of_the_wrong_type_or_range_is_refused_naming_it(field, value):
    with pytest.raises(CalibrationError, match=field):
        CalibrationSettings(**{field: value})


def test_the_defaults_and_usual_settings_still_hold():
    assert CalibrationSettings().depth_points == 6
    settings = CalibrationSettings(depth_points=3, spin_duration_s=0.2, run_speed=False,
                                   verify_depths_mm=(0.5, 1.0), speeds_hz=[60.0, 120.0],
                                   gauge_max_mm=3, validity_days=366, fit_retries=0)
    assert list(range(settings.depth_points)) == [0, 1, 2]
