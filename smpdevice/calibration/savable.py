"""The one rule of what a calibration store takes: the speed check of the station.

Every calibration saved ran the station's speed check (review 17): encoder speed and puncture
rate at three speeds, one near each of 15, 50 and 85 % of the pen's speed range. The run paths
(`run_calibration`, the service's `calibration.save`) and `CalibrationStore.save` itself apply
this one check, so a hand-built calibration without it (or with a "check" at one speed, or at
three speeds 1 Hz apart) is refused wherever it is saved. The pen's range is known to a run
(its identity) and is passed as `speed_range_hz`; without it (an API caller saving by hand),
the set speeds must still be three spread as the station's are (15/50/85 % of some range at
least `MIN_SPAN_HZ` wide): a check at one point of the range is not the station's.
"""

from __future__ import annotations

from smpdevice.calibration.fit import fit_linear
from smpdevice.calibration.report import CalibrationSettings, VerifyResult, VerifySample
from smpdevice.calibration.speed_step import (
    STATION_FRACTIONS,
    STATION_SPEED_SLACK_HZ,
    missing_station_speeds,
    station_speeds_hz,
)
from smpdevice.control.calibration import Calibration, CalibrationError

MIN_STATION_SPEEDS = 3
SAME_MM = 1e-6  # a refit on the same floats gives the same numbers; JSON keeps them exactly
# No pen's speed range is narrower (the simulator's: 30..180 Hz); three speeds closer than
# this test one point of the range, not the station's three
MIN_SPAN_HZ = 10.0
_HOW = ("save the calibration a run made (smp calibrate, or run_calibration with a store), "
        "which spins the pen at those speeds")


def check_savable(cal: Calibration, speed_range_hz: tuple[float, float] | None = None) -> None:
    """CalibrationError naming what is missing unless `cal` carries the station's speed check
    (at the station's three speeds for `speed_range_hz`, the pen's (min, max), when known)."""
    who = f"calibration {repr(cal.calibration_id)[:60]}"
    missing = [name for name, value in (("rate_checks", cal.rate_checks),
                                        ("speed_error_pct", cal.speed_error_pct))
               if value in ([], None)]
    if missing:
        raise CalibrationError(
            f"{who} is refused: it has no {' and no '.join(missing)}, so it never ran the "
            f"station's speed check (encoder speed and puncture rate at {MIN_STATION_SPEEDS} "
            f"speeds: 15, 50 and 85 % of the pen's range). Nothing was stored: {_HOW}.")
    speeds = sorted({hz for hz, _ in cal.rate_checks})
    if len(speeds) < MIN_STATION_SPEEDS:
        raise CalibrationError(
            f"{who} is refused: its rate_checks hold {len(speeds)} speed"
            f"{'' if len(speeds) == 1 else 's'} ({', '.join(f'{hz:g}' for hz in speeds)} Hz); "
            f"the station checks {MIN_STATION_SPEEDS} (15, 50 and 85 % of the pen's range). "
            f"Nothing was stored: {_HOW}.")
    if speed_range_hz is not None:
        lo, hi = speed_range_hz
        absent = missing_station_speeds(speeds, lo, hi)
        if absent:
            raise CalibrationError(
                f"{who} is refused: of its rate_checks none is at "
                f"{', '.join(f'{hz:g}' for hz in absent)} Hz; the station checks this pen at "
                f"15, 50 and 85 % of its {lo:g}..{hi:g} Hz "
                f"({', '.join(f'{hz:g}' for hz in station_speeds_hz(lo, hi))} Hz, within "
                f"{STATION_SPEED_SLACK_HZ:g} Hz). Nothing was stored: {_HOW}.")
        return
    if not _spread_as_station(speeds):
        raise CalibrationError(
            f"{who} is refused: its rate_checks' speeds "
            f"({', '.join(f'{hz:g}' for hz in speeds)} Hz) are not the station's three (15, 50 "
            f"and 85 % of a pen's range, at least {MIN_SPAN_HZ:g} Hz wide). Nothing was "
            f"stored: {_HOW}.")


def _spread_as_station(speeds: list[float]) -> bool:
    """Whether three of `speeds` are the station's for some range at least MIN_SPAN_HZ wide:
    the outer two give the range (15 and 85 %), the middle one must be at 50 % of it."""
    low_f, _, high_f = STATION_FRACTIONS
    for i, low in enumerate(speeds):
        for high in speeds[i + 1:]:
            span = (high - low) / (high_f - low_f)
            if span < MIN_SPAN_HZ:
                continue
            lo = low - low_f * span
            if not missing_station_speeds(speeds, lo, lo + span):
                return True
    return False


def check_recorded(cal: Calibration, settings: CalibrationSettings | None = None,
                   speed_range_hz: tuple[float, float] | None = None) -> None:
    """Every check of the station's save that needs no pen, on what `cal` records
    (CalibrationError naming the first refused): the speed check at the station's speeds
    (`check_savable`), its fit (`check_fit`), its depth checks (`check_depths`) and its rates
    (`check_rates`), against `settings`' bounds (the station's defaults when None). The
    service's save (`calibration_run.check_evidence`) and an import of a kept calibration
    (`unsaved`) apply these same functions."""
    s = settings or CalibrationSettings()
    check_savable(cal, speed_range_hz)
    check_fit(cal, s)
    check_depths(cal, s)
    check_rates(cal, s)


def check_fit(cal: Calibration, s: CalibrationSettings) -> None:
    """Offset, gain and residuals are the station's fit of its own points (>= 3, monotonic,
    worst residual within `s.fit_tolerance_mm`)."""
    fit = fit_linear(cal.points, s.fit_tolerance_mm)  # refuses < 3 points, naming the count
    for name, mine, theirs in (("offset_mm", fit.offset_mm, cal.offset_mm),
                               ("gain", fit.gain, cal.gain)):
        if abs(mine - theirs) > SAME_MM:
            raise CalibrationError(f"calibration.{name}={theirs!r} is refused: its own points "
                                   f"fit {mine:.6f}; send the fit of the points measured")
    if len(cal.residuals_mm) != len(fit.residuals_mm) or any(
            abs(a - b) > SAME_MM for a, b in zip(cal.residuals_mm, fit.residuals_mm,
                                                 strict=False)):
        raise CalibrationError("calibration.residuals_mm is refused: they are not the residuals "
                               "of its points against its fit")


def check_depths(cal: Calibration, s: CalibrationSettings) -> None:
    """The depth checks pass the station's verify bounds (>= 3 readings, each within
    tolerance, mean error and SD within the depth accuracy bounds)."""
    verify = VerifyResult(cal.calibration_id, s.verify_tolerance_mm,
                          [VerifySample(t, cal.to_actuator_mm(t), g) for t, g in cal.depth_checks],
                          mean_max_mm=s.depth_mean_max_mm, sd_max_mm=s.depth_sd_max_mm)
    problems = verify.problems()
    if problems:
        raise CalibrationError(f"calibration.depth_checks are refused: {'; '.join(problems)}")


def check_rates(cal: Calibration, s: CalibrationSettings) -> None:
    """Each recorded puncture rate, and the recorded encoder speed error, within the speed
    tolerance (what the station's rate and speed checks passed)."""
    for set_hz, measured_hz in cal.rate_checks:
        error_pct = 100.0 * (measured_hz - set_hz) / set_hz if set_hz > 0 else float("inf")
        if not abs(error_pct) <= s.speed_tolerance_pct:
            raise CalibrationError(
                f"calibration.rate_checks are refused: puncture rate at {set_hz:g} Hz: "
                f"{measured_hz:.2f} punctures/s, error {error_pct:+.1f} % exceeds "
                f"{s.speed_tolerance_pct:g} %")
    if cal.speed_error_pct is not None and not abs(cal.speed_error_pct) <= s.speed_tolerance_pct:
        raise CalibrationError(f"calibration.speed_error_pct={cal.speed_error_pct} is refused: "
                               f"it exceeds the speed tolerance {s.speed_tolerance_pct:g} %")
