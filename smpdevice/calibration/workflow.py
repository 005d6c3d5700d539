"""Calibration workflows: zero, depth, speed and verify, driving a `PenController` and a gauge.

    with PenController.connect("pensim://") as ctl:
        gauge = open_gauge(None, port_url=ctl.port_url, port=ctl.link.port)  # smpdevice.ui.gauges
        report = run_calibration(ctl, gauge, technician="ana", store=CalibrationStore())
        print(format_report(report))

The controller is put in its `calibrating` state (allowed only from idle) for the whole run and
back to idle at the end, also on error or abort. Only a run that passes every check produces a
`Calibration`; it is saved to the store first, then installed on the controller and written to
the pen (`end_calibration`). A failing, aborted or stopped run saves nothing; a save the
store refuses keeps the report (`calibration.saving`: a lock is waited out for a while). A
saved run can still miss the pen (`calibration.stopping.install`): ended from outside during
the save, it is installed in idle but not written to the pen (`installed_idle`); a stop the pen
did not confirm leaves it saved but not installed (the report says so: "Result: FAIL").
Checking a calibration on its own, and saving a report's: `calibration.verify`.

Steps:
1. Zero: step toward the actuator position where the tip is flush (`ZeroSearch`).
2. Depth: read the gauge at several positions from just past flush to full travel; fit
   offset and gain; refuse a non-monotonic or poorly fitting set, naming the point.
3. Speed: commanded speed against the encoder (and a tachometer if a person has one), and the
   punctures the pen counted per second against the set speed (puncture rate accuracy).
4. Verify: move to a few depths through the new calibration and read the gauge; these check
   readings (not the fit points) give the needle penetration depth accuracy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from smpdevice.calibration.accuracy import count_punctures, count_window_s  # noqa: F401 (users)
from smpdevice.calibration.arguments import run_arguments, station_speeds
from smpdevice.calibration.candidate import candidate as make_candidate
from smpdevice.calibration.candidate import fit_problems, speed_problems
from smpdevice.calibration.fit import FitError, LinearFit, expected_gauge_mm, fit_linear
from smpdevice.calibration.gauges import CalibrationAborted, Gauge, GaugeRequest, RedoPoint
from smpdevice.calibration.readings import Point, check_between, check_next_point
from smpdevice.calibration.report import (
    CalibrationReport,
    CalibrationSettings,
    VerifyResult,
    VerifySample,
    check_spins,
    telemetry_rate_hz,
)
from smpdevice.calibration.saving import save_run
from smpdevice.calibration.speed import ZeroSearch
from smpdevice.calibration.speed_step import SpeedSteps, pen_identity
from smpdevice.calibration.stopping import (  # leave_calibrating: here for its users
    RunStopped,
    StopCheck,
    StopReason,
    install,
    leave_calibrating,
    pen_lost,
)
from smpdevice.control.calibrating import ENDED_UNDER_READING
from smpdevice.control.calibration import Calibration
from smpdevice.control.footswitch import PedalReleased
from smpdevice.control.states import SAFE, PenFault, State, StateError

if TYPE_CHECKING:
    from smpdevice.calibration.store import CalibrationStore
    from smpdevice.control import PenController

TYPO_CHECK_MIN_MM = 0.15  # below this a genuine reading and a 10x typo look alike
Echo = Callable[[str], None]


def silent(_: str) -> None:
    pass


# ----------------------------------------------------------------------------- the run


class CalibrationSteps(SpeedSteps):
    """The steps of a run against one pen and gauge (`run_calibration`, `verify.run_verify`)."""

    def __init__(
        self,
        ctl: PenController,
        gauge: Gauge,
        settings: CalibrationSettings,
        echo: Echo,
        stop: StopCheck | None = None,
    ) -> None:
        self.ctl = ctl
        self.gauge = gauge
        self.settings = settings
        self.echo = echo
        self.stop = stop or StopCheck(None)
        lim = pen_identity(ctl).limits
        self.min_mm, self.max_mm = lim.depth_min_mm, lim.depth_max_mm
        self.gauge_max_mm = settings.gauge_max_mm or round(1.25 * lim.depth_max_mm, 3)

    def _move(self, actuator_mm: float) -> float:
        self.stop.check()  # never moves (or spins) once the run must end
        return self.ctl.calibration_move(actuator_mm)

    def _read(self, request: GaugeRequest) -> float:
        """The gauge's reading, used only if the needle stayed at its point all the while: a
        pen that latched, rebooted, lost its lease or was ended (the controller's hold bound)
        under the prompt ends the run there, nothing saved (the last verify reading too)."""
        value = self.gauge.read_mm(request)
        self.stop.check()  # ended from outside (the service's dead-man rule): said so
        why = self.ctl.calibration_point_lost(request.actuator_mm)
        if why is None:
            return value
        state = self.ctl.state
        if state in SAFE or state is State.DISCONNECTED:  # the report names the latch/loss
            raise PenFault(f"that reading is not used: {why}")
        if why.startswith(ENDED_UNDER_READING):  # a plain run's own caller ended it: loud
            raise StateError(why)
        raise RunStopped(f"that reading is not used: {why}")  # the hold bound, a service

    def _request(self, label: str, actuator_mm: float, **kw) -> GaugeRequest:
        expected = kw.pop("expected_mm", None)
        if expected is not None and expected < TYPO_CHECK_MIN_MM:
            expected = None
        return GaugeRequest(label=label, actuator_mm=actuator_mm, low_mm=0.0,
                            high_mm=self.gauge_max_mm, expected_mm=expected, **kw)

    # -- zero ---------------------------------------------------------------------------
    def zero(self, report: CalibrationReport) -> ZeroSearch:
        self.echo("Step 1, zero: stepping toward the position where the tip is flush.")
        if self.gauge.manual:
            self.echo("  Enter 0 when the tip is still inside the cartridge.")
        search = ZeroSearch(
            min_mm=self.min_mm, max_mm=self.max_mm, start_mm=(self.min_mm + self.max_mm) / 2,
            approach_mm=self.settings.zero_approach_mm,
        )
        while (target := search.next_actuator_mm()) is not None:
            actuator = self._move(target)  # a typed reading is checked against the others
            req = self._request(f"Zero, reading {len(search.readings) + 1}", actuator,
                                expected_mm=search.expected_mm(actuator),
                                check=lambda v, a=actuator: search.check(Point(a, v)))
            try:
                value = self._read(req)
            except RedoPoint:
                search.undo()
                continue
            search.add(Point(actuator, value))
        report.zero_readings = list(search.readings)
        report.zero_search_mm = search.zero_actuator_mm
        self.echo(f"  flush at about actuator {search.zero_actuator_mm:.3f} mm")
        return search

    # -- depth --------------------------------------------------------------------------
    def depth_plan(self, search: ZeroSearch) -> list[float]:
        n = self.settings.depth_points
        low = search.zero_actuator_mm + self.settings.first_point_mm / search._slope()
        low = max(low, self.min_mm)
        if low >= self.max_mm:  # what was measured: the run fails, with its report
            raise FitError(
                f"the tip is flush only at actuator {search.zero_actuator_mm:.3f} mm, too close "
                f"to full travel {self.max_mm:.3f} mm to calibrate. Check the cartridge."
            )
        step = (self.max_mm - low) / (n - 1)
        return [round(low + i * step, 3) for i in range(n)]

    def depth(self, report: CalibrationReport, search: ZeroSearch) -> list[Point]:
        plan = self.depth_plan(search)
        n = len(plan)
        self.echo(f"Step 2, depth: {n} points from actuator {plan[0]:.3f} to {plan[-1]:.3f} mm.")
        points: list[Point] = []
        basis = [p for p in search.readings if p.gauge_mm > 0]
        while len(points) < n:
            k = len(points)
            actuator = self._move(plan[k])
            expected = expected_gauge_mm(actuator, basis + points, search.zero_actuator_mm)
            so_far = list(points)
            req = self._request(
                f"Depth point {k + 1} of {n}", actuator, expected_mm=expected, allow_zero=False,
                check=lambda v, a=actuator, prev=so_far: check_next_point(prev, Point(a, v)),
            )
            try:
                value = self._read(req)
            except RedoPoint:
                if points:
                    points.pop()
                    self.echo(f"  redoing depth point {k}")
                else:
                    self.echo("  this is the first depth point; reading it again")
                continue
            points.append(Point(actuator, value))
        report.points = points
        return points

    def fit(self, report: CalibrationReport, plan_points: list[Point]) -> LinearFit | None:
        points = list(plan_points)
        retries = self.settings.fit_retries if self.gauge.manual else 0
        while True:
            try:
                fit = fit_linear(points, self.settings.fit_tolerance_mm)
                break
            except FitError as exc:
                if retries <= 0 or exc.point_index is None:
                    report.points = points
                    report.problems.append(f"fit refused: {exc}")
                    return None
                retries -= 1
                i = exc.point_index - 1
                self.echo(f"  {exc}")
                points[i] = self._redo_point(points, i, report)
        report.points = points
        report.fit = fit
        report.problems.extend(fit_problems(fit))
        self.echo(
            f"  fit: offset {fit.offset_mm:+.4f} mm, gain {fit.gain:.4f}, worst residual "
            f"{fit.max_abs_residual_mm:.4f} mm"
        )
        if report.zero_search_mm is not None:  # cross-check the measured zero against the fit
            off_mm = fit.depth_mm(report.zero_search_mm)
            if abs(off_mm) > self.settings.fit_tolerance_mm:
                report.problems.append(
                    f"zero: the measured flush position {report.zero_search_mm:.3f} mm is "
                    f"{off_mm:+.3f} mm from the fit's zero {fit.zero_actuator_mm:.3f} mm; the "
                    "depth is not linear near flush (or a zero reading was misread). Check the "
                    "cartridge membrane, then calibrate again."
                )
        return fit

    def _redo_point(self, points: list[Point], i: int, report: CalibrationReport) -> Point:
        """Depth point i+1 read again, checked as at its first prompt (a number, not a
        slipped decimal point against the line of the other points, growing between its
        neighbours); `r` there asks it again rather than spending the retry."""
        actuator = self._move(points[i].actuator_mm)
        others = points[:i] + points[i + 1:]
        req = self._request(
            f"Redo depth point {i + 1}", actuator, allow_zero=False, redo="read it again",
            expected_mm=expected_gauge_mm(actuator, others, report.zero_search_mm),
            check=lambda v: check_between(points, i, Point(actuator, v)))
        while True:
            try:
                return Point(actuator, self._read(req))
            except RedoPoint:
                self.echo(f"  reading depth point {i + 1} again")

    # -- verify -------------------------------------------------------------------------
    def verify(self, calibration: Calibration, step: str = "Step 4, verify") -> VerifyResult:
        result = VerifyResult(calibration.calibration_id, self.settings.verify_tolerance_mm,
                              mean_max_mm=self.settings.depth_mean_max_mm,
                              sd_max_mm=self.settings.depth_sd_max_mm)
        targets = [
            d for d in self.settings.check_depths_mm(self.gauge.manual)
            if self.min_mm <= calibration.to_actuator_mm(d) <= self.max_mm
        ]
        self.echo(f"{step}: depths {', '.join(f'{d:g}' for d in targets)} mm.")
        while len(result.samples) < len(targets):
            target = targets[len(result.samples)]
            actuator = self._move(round(calibration.to_actuator_mm(target), 3))
            req = self._request(f"Verify at {target:g} mm", actuator, expected_mm=target,
                                allow_zero=False)  # the tip is out: 0 = gauge lifted
            try:
                value = self._read(req)
            except RedoPoint:
                if result.samples:
                    result.samples.pop()
                continue
            result.samples.append(VerifySample(target, actuator, value))
            self.echo(f"  {target:g} mm: gauge {value:.3f} mm ({value - target:+.3f})")
        return result


def run_calibration(
    ctl: PenController,
    gauge: Gauge,
    *,
    technician: str,
    settings: CalibrationSettings | None = None,
    store: CalibrationStore | None = None,
    echo: Echo = silent,
    should_stop: StopReason | None = None,
) -> CalibrationReport:
    """Zero, depth, speed and verify; save and install the calibration only if all pass.
    `should_stop() -> reason | None` ends the run from outside (`calibration.stopping`). It
    must be cheap, non-blocking and thread-safe: during a speed check it is asked on the pen's
    reader thread at every report, and every reply and lease renewal waits for it."""
    technician = run_arguments(gauge, technician, settings, store, echo, should_stop)
    settings = settings or CalibrationSettings()
    ident = pen_identity(ctl)
    report = CalibrationReport(
        pen_serial=ident.serial, firmware_version=ident.firmware_version,
        technician=technician, gauge=gauge.description, settings=settings,
    )
    stop = StopCheck(should_stop, ctl)
    run = CalibrationSteps(ctl, gauge, settings, echo, stop)
    # before the first step: refused at step 3, every gauge reading would be lost
    check_spins(settings, run.speeds_hz(), telemetry_rate_hz(ctl))
    station_speeds(settings, store, ident.limits.speed_min_hz, ident.limits.speed_max_hz)
    ctl.begin_calibration()
    try:
        search = run.zero(report)
        points = run.depth(report, search)
        fit = run.fit(report, points)
        if settings.run_speed:
            run.speed(report)
        report.problems.extend(speed_problems(report))
        if fit is not None and not fit_problems(fit):  # else no calibration can hold it
            candidate = make_candidate(report, fit, simulated=ctl.simulated)
            report.verify = run.verify(candidate)
            report.problems.extend(report.verify.problems())
            if report.passed:  # stored with the check readings its depth accuracy came from
                report.calibration = Calibration.model_validate({
                    **candidate.model_dump(),
                    "depth_checks": [(v.target_mm, v.gauge_mm) for v in report.verify.samples],
                })
        stop.check()  # nothing is saved once the run must end
    except PedalReleased as exc:  # the pen stopped the needle: end here, start nothing more
        report.problems.append(str(exc))
        report.calibration = None
        leave_calibrating(ctl, None)
        return report
    except FitError as exc:  # the pen and gauge measured no calibration: a failed run, reported
        report.problems.append(str(exc))
        report.calibration = None
        leave_calibrating(ctl, None)
        return report
    except CalibrationAborted:
        report.aborted = True
        report.calibration = None
        leave_calibrating(ctl, None)
        return report
    except BaseException as exc:
        why = stop.ended_by(exc)  # before our own end: idle now means ended from outside
        lost = pen_lost(ctl, exc) if why is None else None
        leave_calibrating(ctl, None)
        if why is None and lost is None:
            raise
        # the pen latched or the link went: a run that failed, reported (exit 1, not 2)
        report.problems.append(f"stopped: {lost}; the run ended there" if lost else
                               f"stopped: {why}; the needle was stopped and the run ended "
                               "there. Calibrate again")
        report.calibration = None
        return report
    if report.calibration is None:
        leave_calibrating(ctl, None)
        return report
    try:  # durable record first: never install unrecorded; a refusal keeps the report
        lim = ident.limits  # the station's speeds of this pen: the store's own rule
        if store is not None and not save_run(store, report.calibration, report, echo, stop,
                                              speed_range_hz=(lim.speed_min_hz,
                                                              lim.speed_max_hz)):
            report.calibration = None
            leave_calibrating(ctl, None)
            return report
        report.saved = store is not None
    except BaseException:
        leave_calibrating(ctl, None)
        raise
    install(ctl, report, report.calibration)
    return report

