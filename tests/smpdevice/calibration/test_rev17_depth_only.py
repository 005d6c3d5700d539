"""Review 17 (tech): a run without the speed check (`CalibrationSettings(run_speed=False)`, the
Python API's depth-only run) is never saved as a calibration. docs/technicians.md: every report
gives depth and puncture rate accuracy, "Only a run that passes every check is saved". With a
store it is refused before the pen moves (test_rev17_api_arguments); without one it is
installed on that controller only, and its report says so; `save_calibration` refuses it."""

from __future__ import annotations

import pytest

from smpdevice.calibration.gauges import SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings, format_report
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.verify import save_calibration
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController
from smpdevice.control.calibration import CalibrationError
from tests.smpdevice.virtual_time import virtual_sim


def test_a_depth_only_run_is_installed_says_so_and_is_never_saved(tmp_path):
    store = CalibrationStore(tmp_path / "c.sqlite")
    with virtual_sim(seed=3) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        report = run_calibration(ctl, SimulatorGauge(sim), technician="ana",
                                 settings=CalibrationSettings(run_speed=False))
        assert report.passed and report.calibration is not None, report.problems
        assert ctl.calibration == report.calibration  # installed here, as asked
    cal = report.calibration
    assert cal.rate_checks == [] and cal.speed_error_pct is None
    text = format_report(report)
    assert "never saved: depth only, the speed check was not run" in text, text
    with pytest.raises(CalibrationError, match="without the speed check"):
        save_calibration(report, store)
    assert store.list() == [] and not report.saved
