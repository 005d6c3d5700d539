"""review9b R03 and R07, the calibration workflow: a pedal released during the speed check
ends the run with a report that says so (never the next speed's start running the needle
again); figures `Calibration` refuses (a tachometer more than 100 % off, a fit gain outside
0.5..2.0) fail the run with its report, not an error about an internal field."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpdevice.calibration.accuracy import PunctureRateCheck, RatePoint
from smpdevice.calibration.candidate import candidate, fit_problems, speed_problems
from smpdevice.calibration.fit import LinearFit
from smpdevice.calibration.gauges import SimulatorGauge
from smpdevice.calibration.readings import Point
from smpdevice.calibration.report import CalibrationReport, CalibrationSettings, format_report
from smpdevice.calibration.speed import SpeedCheck, SpeedSample
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.workflow import run_calibration
from smpdevice.cli.calibrate_remote import RemotePen
from smpdevice.control import PenController, State
from smpdevice.control.footswitch import PedalReleased
from smpdevice.service.client import ServiceError
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


def _calibrate_with_pedal_up(spec: str, tmp_path):
    frames: list[tuple[int, bool, bool]] = []
    store = CalibrationStore(tmp_path / "c.sqlite")
    with virtual_sim(seed=7, link_faults=spec) as sim, \
            PenController.connect(sim.url, clock=sim.clock, footswitch="required") as ctl:
        ctl.add_telemetry_listener(
            lambda t: frames.append((t.uptime_ms, t.needle_running, t.footswitch)))
        report = run_calibration(ctl, SimulatorGauge(sim.url), technician="qa", store=store,
                                 settings=CalibrationSettings(spin_duration_s=1.0))
        state = ctl.state
        ctl.pause(1.0)  # the pedal is pressed again meanwhile: nothing may start
    return report, frames, state, store


@pytest.mark.parametrize("spec, speeds_before", [("pedal_up@1.0-1.6", 0),
                                                 ("pedal_up@2.3-2.6", 1)])
def test_a_pedal_release_in_the_speed_check_ends_the_run_and_says_so(tmp_path, spec,
                                                                      speeds_before):
    report, frames, state, store = _calibrate_with_pedal_up(spec, tmp_path)
    released = [u for u, _, pedal in frames if not pedal]
    assert released, "the scenario needs the pedal lifted during the speed check"
    assert [u for u, running, _ in frames if running and u > released[0]] == [], \
        "the needle ran again after the pedal release without an explicit start"
    assert not report.passed and report.calibration is None and not report.saved
    assert store.list() == [] and state is State.IDLE
    text = format_report(report)
    assert "pedal" in text and "Result: FAIL" in text
    assert "encoder error" not in text and "puncture rate" not in " ".join(report.problems)
    assert report.speed is not None and len(report.speed.samples) == speeds_before
    assert report.verify is None  # the run ended at the release


def test_the_served_pens_release_ends_a_remote_run_the_same_way():
    """`smp calibrate --service`: the service refuses the spin with the error's type; the
    station's workflow gets the same `PedalReleased` back, so its report says the same."""

    class Service:
        def call(self, method, **params):
            assert method == "calibration.spin"
            raise ServiceError("calibration.spin: the footswitch (pedal) was released",
                               -32001, {"type": "PedalReleased"})

    pen = RemotePen.__new__(RemotePen)
    pen.svc, pen._listeners = Service(), []
    with pytest.raises(PedalReleased, match="pedal"):
        pen.calibration_spin(52.0, 1.0)


class TwoMarkTachometer(SimulatorGauge):
    """A tachometer that sees two marks per turn: 110 Hz at 52 Hz (+111.5 %)."""

    def read_tachometer_hz(self, commanded_hz: float, low_hz: float, high_hz: float) -> float:
        return min(high_hz, 2.0 * commanded_hz + 6.0)


class ScaledGauge(SimulatorGauge):
    """A gauge reading 0.45 x the protrusion (a wrong range or unit on a digital gauge)."""

    def read_mm(self, request):
        return round(super().read_mm(request) * 0.45, 4)


def test_a_tachometer_over_100_pct_off_fails_the_run_with_its_report():
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        report = run_calibration(ctl, TwoMarkTachometer(sim.url), technician="qa",
                                 settings=CalibrationSettings(ask_tachometer=True))
        assert ctl.state is State.IDLE
    assert not report.passed and report.calibration is None
    assert any("tachometer error +111.5 %" in p for p in report.problems), report.problems
    assert report.verify is not None and report.verify.samples  # the report is complete
    assert "speed_error_pct" not in format_report(report)


def test_a_fit_gain_outside_the_allowed_range_fails_the_run_with_its_report():
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        report = run_calibration(ctl, ScaledGauge(sim.url), technician="qa",
                                 settings=CalibrationSettings(run_speed=False))
        assert ctl.state is State.IDLE
    assert not report.passed and report.calibration is None
    gain = [p for p in report.problems if p.startswith("fit: gain")]
    assert gain and "outside the allowed 0.5..2" in gain[0] and "gauge" in gain[0], report.problems
    assert "Result: FAIL" in format_report(report)


def _report(fit: LinearFit, samples: list[SpeedSample], tolerance_pct: float,
            rates: list[RatePoint]) -> CalibrationReport:
    report = CalibrationReport(pen_serial="SMP-AAAA0001", firmware_version="1.0",
                               technician="qa", gauge="test",
                               settings=CalibrationSettings())
    report.fit = fit
    report.speed = SpeedCheck(tuple(samples), tolerance_pct)
    report.puncture_rate = PunctureRateCheck(tuple(rates), tolerance_pct)
    report.problems = report.speed.problems() + report.puncture_rate.problems()
    return report


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(gain=st.floats(-5, 5), offset=st.floats(-10, 10),
       encoder=st.floats(-1e4, 1e4), tach=st.none() | st.floats(0, 1e4),
       measured=finite, tolerance=st.floats(0.1, 500))
def test_any_figures_give_a_candidate_or_a_problem_never_a_crash(gain, offset, encoder, tach,
                                                                  measured, tolerance):
    """Whatever a gauge, a tachometer or a pen reports, the run either builds the calibration
    it verifies, or its report already fails naming the figure."""
    fit = LinearFit(offset, gain, (Point(0.5, 0.5), Point(1.5, 1.5)), (0.0, 0.0))
    report = _report(fit, [SpeedSample(52.0, encoder, tach)], tolerance,
                     [RatePoint(52.0, measured, 1.0, 52)])
    problems = fit_problems(fit)
    if problems:
        assert any("fit:" in p for p in problems)
        return
    cal = candidate(report, fit, simulated=True)  # never raises once the fit is allowed
    report.problems += speed_problems(report)
    worst = report.speed.worst_error_pct if report.speed else 0.0
    if cal.speed_error_pct is None and worst:
        assert report.problems, "a speed error left out of the calibration must fail the run"
    if len(cal.rate_checks) < 1 and math.isfinite(measured):
        assert report.problems, "a rate left out of the calibration must fail the run"
