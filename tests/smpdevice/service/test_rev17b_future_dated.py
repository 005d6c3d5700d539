"""Review 17 (b17b, fixed): a service whose pen's newest stored calibration was future-dated
(made while a clock ran ahead) did not start at all: `smp serve` exited 2 with the
calibration's refusal, after opening the pen, while an expired one started it uncalibrated as
`smpdevice.service.runner._calibration_for` promises ("None otherwise (clients then
calibrate)"). docs/service.md lists what refuses a start; a stored calibration is not among
them, and a served pen is recalibrated through the service. Now any newest calibration the
pen may not use now (the check installing makes) leaves the service starting uncalibrated,
the reason in its log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from simulators import PenSimulator
from smpdevice.calibration.store import CALIBRATIONS_NAME, CalibrationStore
from smpdevice.control.calibration import Calibration
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration

CASES = {  # created (from now), valid for, what the log's reason says
    "future-dated": (timedelta(hours=3), timedelta(days=30), "after this computer's clock"),
    "expired": (-timedelta(days=31), timedelta(days=30), "expired"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_calibration_the_pen_may_not_use_leaves_the_service_starting_uncalibrated(
        tmp_path, case):
    created, valid, reason = case
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    with PenSimulator(seed=5) as sim:
        at = datetime.now(UTC) + created
        cal = true_calibration(sim)
        cal = Calibration.model_validate({**cal.model_dump(), "simulated": True,
                                          "created_at": at, "expires_at": at + valid})
        CalibrationStore(data_dir / CALIBRATIONS_NAME).save(cal)
        options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                                 lease_ms=1000)
        with capture_logs() as logs:
            try:
                with ServiceHandle(options) as handle:
                    installed = handle.pen.calibration
                started = ""
            except Exception as exc:  # the start refused
                started, installed = f"{type(exc).__name__}: {exc}", None
    assert not started, f"the service did not start: {started}"
    assert installed is None, "a calibration the pen may not use was installed"
    said = [e for e in logs if e.get("calibration_id") == cal.calibration_id]
    assert said and reason in said[0]["reason"], logs
