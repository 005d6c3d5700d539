"""Checking a calibration on its own (before a session), and saving a run's calibration.

    result = run_verify(ctl, gauge, calibration)   # a few depths through it; saves nothing
    save_calibration(report, store)                # a passed run's, if not saved already
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smpdevice.calibration.arguments import verify_arguments, verify_calibration
from smpdevice.calibration.report import CalibrationReport, CalibrationSettings, VerifyResult
from smpdevice.calibration.workflow import (
    CalibrationSteps,
    Echo,
    leave_calibrating,
    pen_identity,
    silent,
)
from smpdevice.control.calibration import Calibration, CalibrationError

if TYPE_CHECKING:
    from smpdevice.calibration.gauges import Gauge
    from smpdevice.calibration.store import CalibrationStore
    from smpdevice.control import PenController


def run_verify(
    ctl: PenController,
    gauge: Gauge,
    calibration: Calibration,
    *,
    settings: CalibrationSettings | None = None,
    echo: Echo = silent,
) -> VerifyResult:
    """Check `calibration` at a few depths on its own (before a session). Saves nothing.
    Arguments of the wrong kind are refused (InvalidArgument) before the pen moves."""
    verify_calibration(calibration)
    calibration.check_for(pen_identity(ctl).serial, port=ctl.port_url)  # a command to copy
    verify_arguments(gauge, settings, echo)
    settings = settings or CalibrationSettings()
    run = CalibrationSteps(ctl, gauge, settings, echo)
    ctl.begin_calibration()
    try:
        result = run.verify(calibration, step="Verify")
    except BaseException:
        leave_calibrating(ctl, None)
        raise
    ctl.end_calibration(None)
    return result


def save_calibration(report: CalibrationReport, store: CalibrationStore) -> Calibration:
    """Save the run's calibration; refuses a run that did not pass."""
    if not report.passed or report.calibration is None:
        why = "aborted" if report.aborted else "; ".join(report.problems) or "no fit"
        raise CalibrationError(f"refusing to save a failed calibration ({why}).")
    if not report.calibration.rate_checks:  # run_speed=False: depth only, never saved
        raise CalibrationError("refusing to save a calibration without the speed check (a "
                               "depth-only run: no encoder speed, no puncture rate accuracy). "
                               "Calibrate with the speed check to save one.")
    if not report.saved:
        store.save(report.calibration)
        report.saved = True
    return report.calibration


