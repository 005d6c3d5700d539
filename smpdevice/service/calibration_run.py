"""What the service saw of one guided calibration run, and the station's checks of a submitted
calibration against it.

A guided client fits the calibration from the technician's gauge readings, so the service
cannot measure the gauge itself; it can and does:
- refit offset and gain from the submitted points with the station's own fit (`fit_linear`:
  >= 3 points, monotonic, worst residual within tolerance) and refuse a calibration whose
  offset, gain or residuals differ from that refit;
- refuse depth checks that fail the station's verify bounds (`VerifyResult`: >= 3 readings,
  each within tolerance, mean error and SD within `calibration.accuracy`'s bounds);
- refuse a fit point or depth check at an actuator position the service did not move the pen
  to in this run, and rate checks that differ from the punctures per second the service
  counted itself from the pen's telemetry during this run's spins (`count_punctures`), which
  must pass the station's puncture rate and encoder speed checks; a calibration without them
  (no speed check in this run, or fewer speeds than the station's three, or speeds that are
  not those three: one near each of 15, 50 and 85 % of the pen's range) is refused.
The bounds are the station's defaults (`CalibrationSettings()`), not the client's options.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from smpdevice.calibration.accuracy import PunctureRateCheck, RatePoint
from smpdevice.calibration.report import CalibrationSettings
from smpdevice.calibration.savable import (
    SAME_MM,
    check_depths,
    check_fit,
    check_rates,
    check_savable,
)
from smpdevice.calibration.speed import SpeedSample, check_speed
from smpdevice.control.calibration import Calibration, CalibrationError

SAME_HZ = 1e-6
MAX_MOVES = 512  # a guided run moves a few dozen times; bounded against a looping client
MIN_SPEEDS = 3  # the station's speed check spins at 15, 50 and 85 % of the pen's range


@dataclass
class Spin:
    set_hz: float
    encoder_hz: float
    rate: RatePoint | None  # None: too few frames to count punctures


@dataclass
class CalibrationRun:
    """One `calibration.begin` .. `calibration.end` of one connection."""

    client_id: str
    moved_to_mm: list[float] = field(default_factory=list)  # positions the pen reported
    asked_mm: list[float] = field(default_factory=list)  # positions the client asked for
    spins: list[Spin] = field(default_factory=list)
    saved_id: str | None = None

    def moved(self, asked_mm: float, at_mm: float) -> None:
        if len(self.moved_to_mm) < MAX_MOVES:
            self.asked_mm.append(asked_mm)
            self.moved_to_mm.append(at_mm)


def _near(value: float, seen: list[float], tol: float) -> bool:
    return any(abs(value - s) <= tol for s in seen)


def check_evidence(cal: Calibration, run: CalibrationRun,
                   settings: CalibrationSettings | None = None,
                   speed_range_hz: tuple[float, float] | None = None) -> None:
    """CalibrationError naming the first thing the station's save would refuse, or that this
    run did not produce. `speed_range_hz`: the pen's (min, max); its rate checks must then
    hold one speed near each of the station's three (15, 50 and 85 % of it)."""
    s = settings or CalibrationSettings()
    check_fit(cal, s)  # the checks that need no pen: shared with an import (`savable`)
    for i, (actuator_mm, _) in enumerate(cal.points):
        if not _near(actuator_mm, run.moved_to_mm, SAME_MM):
            raise CalibrationError(f"calibration.points[{i}] at actuator {actuator_mm} mm is "
                                   "refused: the pen was not moved there in this calibration "
                                   "run; measure the points with calibration.move")
    check_depths(cal, s)
    for i, (target_mm, _) in enumerate(cal.depth_checks):
        if not _near(round(cal.to_actuator_mm(target_mm), 3), run.asked_mm, 1e-3):
            raise CalibrationError(f"calibration.depth_checks[{i}] at {target_mm} mm is "
                                   "refused: the pen was not moved to that depth through this "
                                   "calibration in this run; verify it with calibration.move")
    _check_rates(cal, run, s)
    check_rates(cal, s)
    if speed_range_hz is not None:  # the store's own rule (`savable`): one place
        check_savable(cal, speed_range_hz)


def _check_rates(cal: Calibration, run: CalibrationRun, s: CalibrationSettings) -> None:
    # every calibration the station saves ran the speed check: never one without (review 17)
    missing = [f"{name}={value!r}" for name, value in (("rate_checks", cal.rate_checks),
               ("speed_error_pct", cal.speed_error_pct)) if value in ([], None)]
    if missing:
        raise CalibrationError(
            f"calibration.{' and '.join(missing)} is refused: a calibration is saved only with "
            "the speed check of its own run (encoder speed and puncture rate at "
            f"{MIN_SPEEDS} speeds, as at the station); spin the pen with calibration.spin and "
            "send the rates and the speed error its answers gave")
    seen: list[Spin] = []
    for i, (set_hz, measured_hz) in enumerate(cal.rate_checks):
        match = next((sp for sp in run.spins if sp.rate is not None and sp.set_hz == set_hz
                      and abs(sp.rate.measured_hz - measured_hz) <= SAME_HZ), None)
        if match is None:
            raise CalibrationError(f"calibration.rate_checks[{i}]=({set_hz}, {measured_hz}) is "
                                   "refused: no calibration.spin of this run counted that "
                                   "rate; send the rates the service's spins answered")
        seen.append(match)
    if len({sp.set_hz for sp in seen}) < MIN_SPEEDS:
        raise CalibrationError(f"calibration.rate_checks are refused: they hold "
                               f"{len({sp.set_hz for sp in seen})} speeds; the station checks "
                               f"{MIN_SPEEDS} (15, 50 and 85 % of the pen's range)")
    rates = PunctureRateCheck(tuple(sp.rate for sp in seen if sp.rate is not None),
                              s.speed_tolerance_pct)
    speed = check_speed([SpeedSample(sp.set_hz, sp.encoder_hz) for sp in seen],
                        s.speed_tolerance_pct)
    problems = rates.problems() + speed.problems()
    if problems:
        raise CalibrationError(f"calibration.rate_checks are refused: {'; '.join(problems)}")
    if cal.speed_error_pct is not None and \
            abs(cal.speed_error_pct) < abs(speed.worst_error_pct) - 1e-6:  # understated
        raise CalibrationError(f"calibration.speed_error_pct={cal.speed_error_pct} is refused: "
                               f"this run's spins show {speed.worst_error_pct:+.3f} %")
