"""The calibration a run's figures make, and the checks that keep figures `Calibration` refuses
(a fit gain outside 0.5..2.0, a speed error beyond 100 %, a puncture rate off its scale) in the
run's report as problems, instead of ending the run without one."""

from __future__ import annotations

import math

from smpdevice.calibration.fit import LinearFit
from smpdevice.calibration.report import CalibrationReport
from smpdevice.control.calibration import (
    GAIN_RANGE,
    OFFSET_RANGE_MM,
    RATE_RANGE_HZ,
    SPEED_ERROR_MAX_PCT,
    Calibration,
)


def fit_problems(fit: LinearFit) -> list[str]:
    """A fit no calibration may hold: the gauge or the pen is not what the run assumes."""
    out = []
    lo, hi = GAIN_RANGE
    if not (math.isfinite(fit.gain) and lo <= fit.gain <= hi):
        out.append(
            f"fit: gain {fit.gain:.4f} (gauge mm per actuator mm) is outside the allowed "
            f"{lo:g}..{hi:g}: the gauge does not read the needle's protrusion in mm (check its "
            "range and unit, and that it touches the tip), or the actuator is broken. Nothing "
            "was saved; fix the gauge and calibrate again.")
    lo, hi = OFFSET_RANGE_MM
    if not (math.isfinite(fit.offset_mm) and lo <= fit.offset_mm <= hi):
        out.append(
            f"fit: offset {fit.offset_mm:+.4f} mm (protrusion at actuator 0 mm) is outside the "
            f"allowed {lo:g}..{hi:g} mm: check the gauge's zero and the cartridge. Nothing was "
            "saved; calibrate again.")
    return out


def speed_problems(report: CalibrationReport) -> list[str]:
    """A speed error too large to be recorded at all; with a speed tolerance below 100 % the
    speed check has named it already."""
    out = []
    speed = report.speed
    if speed is not None and speed.tolerance_pct >= SPEED_ERROR_MAX_PCT:
        out += [f"speed {s.commanded_hz:g} Hz: error {s.worst_error_pct:+.1f} % is beyond "
                f"+/-{SPEED_ERROR_MAX_PCT:g} %: check the tachometer and the motor"
                for s in speed.samples if abs(s.worst_error_pct) > SPEED_ERROR_MAX_PCT]
    rates = () if report.puncture_rate is None else report.puncture_rate.points
    out += [f"puncture rate at {p.set_hz:g} Hz: the pen counted {p.measured_hz:.2f} "
            f"punctures/s, outside {RATE_RANGE_HZ[0]:g}..{RATE_RANGE_HZ[1]:g}: its stroke "
            "counter is not usable. Service the pen."
            for p in rates if not _in_range(p.measured_hz, *RATE_RANGE_HZ)]
    return out


def _in_range(value: float, lo: float, hi: float) -> bool:
    return math.isfinite(value) and lo <= value <= hi


def candidate(report: CalibrationReport, fit: LinearFit, *, simulated: bool) -> Calibration:
    """The calibration to verify. A figure `Calibration` cannot hold is left out of it: the
    report already fails on it (`fit_problems`, `speed_problems`, the speed and rate checks),
    so such a candidate is only ever verified, never saved."""
    worst = None if report.speed is None else report.speed.worst_error_pct
    if worst is not None and not _in_range(worst, -SPEED_ERROR_MAX_PCT, SPEED_ERROR_MAX_PCT):
        worst = None
    rates = [] if report.puncture_rate is None else [
        (p.set_hz, p.measured_hz) for p in report.puncture_rate.points
        if _in_range(p.set_hz, *RATE_RANGE_HZ) and _in_range(p.measured_hz, *RATE_RANGE_HZ)]
    return Calibration.linear(
        pen_serial=report.pen_serial,
        technician=report.technician,
        offset_mm=fit.offset_mm,
        gain=fit.gain,
        validity_days=report.settings.validity_days,
        points=[(p.actuator_mm, p.gauge_mm) for p in fit.points],
        residuals_mm=list(fit.residuals_mm),
        speed_error_pct=worst,
        rate_checks=rates,
        simulated=simulated,
    )
