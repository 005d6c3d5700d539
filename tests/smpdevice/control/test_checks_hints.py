"""Calibration hints are commands that can be pasted as they are (issue 16, item 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smpdevice.control.calibration import Calibration, CalibrationError, require_calibration


@pytest.mark.parametrize(("port", "hint"), [
    ("pensim://", "smp calibrate --port pensim:// --auto"),
    ("/dev/ttyACM0", "smp calibrate --port /dev/ttyACM0"),
    ("socket://127.0.0.1:7000", "smp calibrate --port socket://127.0.0.1:7000"),
])
def test_every_calibration_refusal_names_the_real_port(port, hint):
    with pytest.raises(CalibrationError) as missing:
        require_calibration(None, "SMP-1", port=port)
    assert hint in str(missing.value) and "PORT" not in str(missing.value)
    other = Calibration.linear(pen_serial="SMP-2", technician="ana", offset_mm=0.0, gain=1.0)
    with pytest.raises(CalibrationError) as wrong_pen:
        require_calibration(other, "SMP-1", port=port)
    assert hint in str(wrong_pen.value)
    old = Calibration.linear(pen_serial="SMP-1", technician="ana", offset_mm=0.0, gain=1.0,
                             created_at=datetime.now(UTC) - timedelta(days=400))
    with pytest.raises(CalibrationError) as expired:
        old.check_for("SMP-1", port=port)
    assert hint in str(expired.value)
