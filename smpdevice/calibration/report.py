"""A calibration run's settings, its results (depth points, fit, speed, verify) and the
plain-text report a technician reads and files."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from smpdevice import checks
from smpdevice.calibration.accuracy import (
    DEFAULT_DEPTH_MEAN_MAX_MM,
    DEFAULT_DEPTH_SD_MAX_MM,
    MIN_DEPTH_CHECKS,
    DepthAccuracy,
    PunctureRateCheck,
    count_window_s,
    depth_accuracy,
)
from smpdevice.calibration.fit import DEFAULT_FIT_TOLERANCE_MM, LinearFit
from smpdevice.calibration.readings import Point
from smpdevice.calibration.speed import DEFAULT_SPEED_TOLERANCE_PCT, SpeedCheck
from smpdevice.control.calibration import (
    DEFAULT_VALIDITY_DAYS,
    VALIDITY_MAX_DAYS,
    Calibration,
    CalibrationError,
)

MAX_PEN_TABLE_POINTS = 8  # the pen's calibration table holds 8 (command, true) pairs
# Check depths after the fit: an automatic gauge reads six (a spread means something); a person
# reads three.
AUTO_CHECK_DEPTHS_MM = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
MANUAL_CHECK_DEPTHS_MM = (0.5, 1.0, 1.5)


@dataclass(frozen=True)
class CalibrationSettings:
    """Everything a run can be tuned by; the defaults suit the simulator and a typical pen."""

    depth_points: int = 6
    first_point_mm: float = 0.2  # nominal protrusion of the lowest depth point
    fit_tolerance_mm: float = DEFAULT_FIT_TOLERANCE_MM
    verify_tolerance_mm: float = DEFAULT_FIT_TOLERANCE_MM
    verify_depths_mm: tuple[float, ...] | None = None  # None: AUTO_/MANUAL_CHECK_DEPTHS_MM
    depth_mean_max_mm: float = DEFAULT_DEPTH_MEAN_MAX_MM  # depth accuracy bounds (the max
    depth_sd_max_mm: float = DEFAULT_DEPTH_SD_MAX_MM  # error's is verify_tolerance_mm)
    speed_tolerance_pct: float = DEFAULT_SPEED_TOLERANCE_PCT
    speeds_hz: tuple[float, ...] | None = None  # None: 15 %, 50 % and 85 % of the pen's range
    spin_duration_s: float = 1.0
    run_speed: bool = True
    ask_tachometer: bool = False  # manual gauge only: also ask for a tachometer reading
    zero_approach_mm: float = 0.1
    gauge_max_mm: float | None = None  # None: 1.25 x the actuator travel
    validity_days: float = DEFAULT_VALIDITY_DAYS
    fit_retries: int = 2  # manual gauge: re-measure the named point this many times

    def __post_init__(self) -> None:
        points = self.depth_points  # a whole number: 3.5 would be met as a TypeError mid-run
        if isinstance(points, bool) or not isinstance(points, int) or not (
                3 <= points <= MAX_PEN_TABLE_POINTS):
            raise CalibrationError(
                f"depth_points must be 3..{MAX_PEN_TABLE_POINTS} (a whole number: the pen's "
                f"table size), got {points!r}"
            )
        _check_types(self)
        for name in ("fit_tolerance_mm", "verify_tolerance_mm", "depth_mean_max_mm",
                     "depth_sd_max_mm", "speed_tolerance_pct"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    math.isfinite(value) and value > 0):
                raise CalibrationError(f"{name} must be a finite number above 0, got {value!r}")

    def check_depths_mm(self, manual: bool) -> tuple[float, ...]:
        if self.verify_depths_mm is not None:
            return tuple(self.verify_depths_mm)
        return MANUAL_CHECK_DEPTHS_MM if manual else AUTO_CHECK_DEPTHS_MM


def _check_types(settings: CalibrationSettings) -> None:
    """Every other setting's type, finiteness and range (CalibrationError naming it), before
    a run starts: one met mid-run would leave the pen spinning or the gauge half read."""
    err = CalibrationError
    for name, high in (("first_point_mm", 5.0), ("zero_approach_mm", 5.0),
                       ("spin_duration_s", 600.0), ("validity_days", VALIDITY_MAX_DAYS)):
        checks.finite_number(name, getattr(settings, name), 0.0, high, lo_open=True, error=err)
    if settings.gauge_max_mm is not None:
        checks.finite_number("gauge_max_mm", settings.gauge_max_mm, 0.0, 10.0, lo_open=True,
                             unit="mm", error=err)
    checks.whole_number("fit_retries", settings.fit_retries, 0, 20, error=err)
    for flag in ("run_speed", "ask_tachometer"):
        checks.instance(flag, getattr(settings, flag), bool, "True or False", error=err)
    for name, high in (("verify_depths_mm", 10.0), ("speeds_hz", 10_000.0)):
        values = getattr(settings, name)
        if values is None:
            continue
        checks.instance(name, values, (tuple, list), "a tuple of numbers, or None", error=err)
        if not values:
            raise CalibrationError(f"{name} must hold at least one value, or be None")
        for i, value in enumerate(values):
            checks.finite_number(f"{name}[{i}]", value, 0.0, high, lo_open=True, error=err)


# Frames after the spin-up that count_punctures needs (3), plus one for where the first
# running frame falls in its telemetry period.
COUNTED_FRAMES = 4


def least_spin_s(telemetry_hz: float) -> float:
    """The shortest spin count_punctures can count at `telemetry_hz`: it skips the spin-up
    (min(SPIN_UP_S, duration / 2) after the first running frame), then needs 3 frames; a
    spin of d s leaves d - min(SPIN_UP_S, d/2) s, which must hold COUNTED_FRAMES periods.
    Rounded up to 0.1 s: the value the refusal advises, so it must itself pass."""
    from smpdevice.control.speed_check import SPIN_UP_S  # as count_punctures (no cycle)

    counted_s = COUNTED_FRAMES / telemetry_hz
    least_s = min(2 * counted_s, SPIN_UP_S + counted_s)
    return math.ceil(round(least_s * 10, 6)) / 10


def check_spins(settings: CalibrationSettings, speeds_hz: list[float],
                telemetry_hz: float | None) -> None:
    """Every spin of the speed check, as long as `count_window_s` makes it, against what
    count_punctures needs at `telemetry_hz` (`least_spin_s`), before a run starts: refused at
    step 3, after the gauge readings, it would lose them all."""
    if not settings.run_speed or not telemetry_hz or telemetry_hz <= 0:
        return  # None: a rate this host cannot know (an older service's pen: it checks its own)
    least_s = least_spin_s(telemetry_hz)
    spins = [(hz, count_window_s(hz, settings.speed_tolerance_pct, settings.spin_duration_s))
             for hz in speeds_hz]
    short = [f"{duration_s:.4g} s at {hz:g} Hz" for hz, duration_s in spins
             if duration_s < least_s]
    if short:
        raise checks.InvalidArgument(
            f"spin_seconds (--spin-seconds) {settings.spin_duration_s:g} is too short for the "
            f"pen's telemetry at {telemetry_hz:g} Hz: the speed check would spin "
            f"{', '.join(short)}, and counting its punctures needs at least {least_s:g} s (the "
            f"spin-up, then 3 telemetry frames and one for margin). Give --spin-seconds "
            f"{least_s:g} or more, or a higher telemetry rate (`smp serve --telemetry-hz`). "
            "Nothing was run.")


def check_spin(speed_hz: float, duration_s: float, telemetry_hz: float | None) -> None:
    """One spin asked of a served pen (`calibration.spin`) against the same least as
    `check_spins`: a spin whose punctures cannot be counted is refused before it runs."""
    if not telemetry_hz or telemetry_hz <= 0:
        return
    least_s = least_spin_s(telemetry_hz)
    if duration_s < least_s:
        raise checks.InvalidArgument(
            f"duration_s {duration_s:g} is too short for the pen's telemetry at "
            f"{telemetry_hz:g} Hz: counting the punctures of the speed check at {speed_hz:g} "
            f"Hz needs at least {least_s:g} s (the spin-up, then 3 telemetry frames and one "
            f"for margin). Give --spin-seconds {least_s:g} or more, or a higher telemetry rate "
            "(`smp serve --telemetry-hz`). Nothing was run.")


def telemetry_rate_hz(ctl: object) -> float | None:
    """The telemetry rate a controller runs at (its own, bounded by its pen's), None when
    this host cannot tell (a pen driven over a service that does not say its rate)."""
    rate = getattr(getattr(ctl, "_engine", None), "telemetry_hz", None)
    if not isinstance(rate, int | float):
        configured, ident = getattr(ctl, "telemetry_hz", None), getattr(ctl, "identity", None)
        if not isinstance(configured, int | float) or ident is None:
            return None
        rate = min(configured, ident.limits.telemetry_max_hz)
    return float(rate) if rate > 0 else None


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class VerifySample:
    target_mm: float
    actuator_mm: float
    gauge_mm: float

    @property
    def error_mm(self) -> float:
        return self.gauge_mm - self.target_mm


@dataclass
class VerifyResult:
    """The check readings through a calibration, and its depth accuracy over them."""

    calibration_id: str
    tolerance_mm: float
    samples: list[VerifySample] = field(default_factory=list)
    mean_max_mm: float = DEFAULT_DEPTH_MEAN_MAX_MM
    sd_max_mm: float = DEFAULT_DEPTH_SD_MAX_MM

    @property
    def worst_error_mm(self) -> float:
        return max((s.error_mm for s in self.samples), key=abs, default=0.0)

    @property
    def accuracy(self) -> DepthAccuracy | None:
        """Needle penetration depth accuracy over the check readings (None below 2)."""
        if len(self.samples) < 2:
            return None
        return depth_accuracy([(s.target_mm, s.gauge_mm) for s in self.samples])

    @property
    def passed(self) -> bool:
        return bool(self.samples) and not self.problems()

    def accuracy_problems(self) -> list[str]:
        """Mean, spread and N; the max error's bound is the per-reading tolerance (below)."""
        acc = self.accuracy
        if acc is None:
            return [f"depth accuracy: only {len(self.samples)} check reading; at least "
                    f"{MIN_DEPTH_CHECKS} are needed. Check the verify depths against the "
                    "actuator travel."]
        return acc.problems(mean_max_mm=self.mean_max_mm, sd_max_mm=self.sd_max_mm,
                            max_max_mm=math.inf)

    def problems(self) -> list[str]:
        if not self.samples:
            return ["verify: no verification depth lies inside the actuator travel"]
        out = [
            f"verify at {s.target_mm:.2f} mm: gauge {s.gauge_mm:.3f} mm, error "
            f"{s.error_mm:+.3f} mm exceeds {self.tolerance_mm:.3f} mm"
            for s in self.samples
            if abs(s.error_mm) > self.tolerance_mm
        ]
        out.extend(self.accuracy_problems())
        return out


@dataclass
class CalibrationReport:
    pen_serial: str
    firmware_version: str
    technician: str
    gauge: str
    settings: CalibrationSettings
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    zero_readings: list[Point] = field(default_factory=list)
    zero_search_mm: float | None = None
    points: list[Point] = field(default_factory=list)
    fit: LinearFit | None = None
    speed: SpeedCheck | None = None
    puncture_rate: PunctureRateCheck | None = None
    verify: VerifyResult | None = None
    calibration: Calibration | None = None  # only when the run passed
    problems: list[str] = field(default_factory=list)
    aborted: bool = False
    saved: bool = False
    # installed in idle (set_calibration): calibrating was ended from outside during the save,
    # so the pen's own table was not written (stopping.install)
    installed_idle: bool = False
    # measured and verified, but the store refused it (`saving.save_run`): saved later, or not
    unsaved: Calibration | None = None
    save_error: Exception | None = None  # the store's refusal, for the command's exit status

    @property
    def passed(self) -> bool:
        return not self.aborted and not self.problems and self.fit is not None

    @property
    def zero_fit_mm(self) -> float | None:
        return None if self.fit is None else self.fit.zero_actuator_mm


# ----------------------------------------------------------------------------- report


def format_depth_accuracy(result: VerifyResult) -> list[str]:
    acc = result.accuracy
    head = "Needle penetration depth accuracy"
    if acc is None:
        return [f"{head}: not enough check readings ({len(result.samples)})."]
    ok = not result.accuracy_problems() and abs(acc.max_error_mm) <= result.tolerance_mm
    return [
        f"{head} (N = {acc.n} check readings through the new fit, not the fit points):",
        f"  mean error {acc.mean_error_mm:+.4f} mm, standard deviation {acc.sd_mm:.4f} mm, "
        f"max error {acc.max_error_mm:+.4f} mm",
        f"  bounds: |mean| <= {result.mean_max_mm:.4f} mm, sd <= {result.sd_max_mm:.4f} mm, "
        f"|max| <= {result.tolerance_mm:.4f} mm: {'PASS' if ok else 'FAIL'}",
    ]


def format_puncture_rate(check: PunctureRateCheck) -> list[str]:
    lines = [f"Puncture rate accuracy (punctures the pen counted per second; bound "
             f"{check.tolerance_pct:g} %):"]
    for p in check.points:
        lines.append(
            f"  set {p.set_hz:6.1f} Hz  measured {p.measured_hz:7.2f} /s  error "
            f"{p.error_hz:+6.2f} Hz ({p.error_pct:+.2f} %)  {p.punctures} punctures in "
            f"{p.window_s:.2f} s"
        )
    lines.append(f"  puncture rate: {'PASS' if check.passed else 'FAIL'}")
    return lines


def format_verify(result: VerifyResult) -> list[str]:
    lines = [f"Verify (tolerance {result.tolerance_mm:.3f} mm):"]
    for s in result.samples:
        lines.append(
            f"  target {s.target_mm:5.2f} mm  actuator {s.actuator_mm:6.3f} mm  "
            f"gauge {s.gauge_mm:6.3f} mm  error {s.error_mm:+.3f} mm"
        )
    lines.extend(format_depth_accuracy(result))
    lines.append(f"  verify: {'PASS' if result.passed else 'FAIL'}")
    return lines


def format_report(report: CalibrationReport) -> str:
    """A plain-text report a technician can read and file."""
    s = report.settings
    lines = [
        f"Calibration report, pen {report.pen_serial} (firmware {report.firmware_version})",
        f"  technician {report.technician}; {report.gauge}; "
        f"{report.started_at:%Y-%m-%d %H:%M} UTC",
    ]
    if report.zero_search_mm is not None:
        zero = f"Zero: flush at actuator {report.zero_search_mm:.3f} mm (search)"
        if report.fit is not None:
            zero += f", {report.fit.zero_actuator_mm:.3f} mm (fit)"
        lines.append(zero)
    if report.points:
        lines.append(f"Depth points (fit tolerance {s.fit_tolerance_mm:.3f} mm):")
        residuals = report.fit.residuals_mm if report.fit else [None] * len(report.points)
        for i, (p, r) in enumerate(zip(report.points, residuals, strict=True), 1):
            res = f"residual {r:+.4f} mm" if r is not None else ""
            lines.append(
                f"  {i}. actuator {p.actuator_mm:6.3f} mm  gauge {p.gauge_mm:6.3f} mm  {res}"
            )
    if report.fit is not None:
        f = report.fit
        lines.append(
            f"Fit: depth_mm = {f.offset_mm:+.4f} + {f.gain:.4f} x actuator_mm; worst residual "
            f"{f.max_abs_residual_mm:.4f} mm, rms {f.rms_residual_mm:.4f} mm"
        )
    if report.speed is not None:
        lines.append(f"Speed (tolerance {report.speed.tolerance_pct:g} %):"
                     + ("" if report.speed.samples else " no speed measured"))
        for smp in report.speed.samples:
            tach = (f"  tachometer {smp.tachometer_hz:7.2f} Hz" if smp.tachometer_hz is not None
                    else "")
            lines.append(
                f"  {smp.commanded_hz:6.1f} Hz  encoder {smp.encoder_hz:7.2f} Hz{tach}  "
                f"error {smp.worst_error_pct:+.2f} %"
            )
    if report.puncture_rate is not None:
        lines.extend(format_puncture_rate(report.puncture_rate))
    if report.verify is not None:
        lines.extend(format_verify(report.verify))
    if report.aborted:
        lines.append("Result: ABORTED by the technician; nothing was saved.")
    elif report.passed:
        cal = report.calibration
        assert cal is not None
        where = "saved and written to the pen" if report.saved else "installed (not saved)"
        if not s.run_speed:  # the Python API's depth-only run: never saved (run_arguments)
            where = ("installed, never saved: depth only, the speed check was not run, so no "
                     "puncture rate accuracy")
        if report.installed_idle:
            where = (("saved and " if report.saved else "") + "installed on this host; not "
                     "written to the pen (its calibration was ended from outside meanwhile)")
        lines.append(
            f"Result: PASS; calibration {cal.calibration_id} {where}, valid until "
            f"{cal.expires_at:%Y-%m-%d %H:%M} UTC."
        )
    else:
        lines.append("Result: FAIL; the calibration was saved but not installed. Problems:"
                     if report.saved else "Result: FAIL; nothing was saved. Problems:")
        lines.extend(f"  - {p}" for p in report.problems)
    return "\n".join(lines)
