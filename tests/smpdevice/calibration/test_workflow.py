"""Calibration workflows against the real controller and simulated pens with hidden errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from simulators import PenSimulator
from smpdevice.calibration.gauges import GaugeRequest, SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings, format_report
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.verify import run_verify, save_calibration
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController, State, StateError
from smpdevice.control.calibration import Calibration, CalibrationError
from tests.smpdevice.virtual_time import virtual_sim

FAST = CalibrationSettings(run_speed=False)
SAVED = CalibrationSettings(spin_duration_s=0.2)  # with the speed check: what a store takes
SEEDS = [1, 5, 13, 42]


@pytest.fixture
def pen(request):
    seed = getattr(request, "param", 7)
    with virtual_sim(seed=seed) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        yield sim, ctl


def truth(sim: PenSimulator) -> tuple[float, float]:
    """The simulator's hidden error in the host's convention: true = offset + gain * actuator."""
    return -sim.model.offset_mm, sim.model.gain


def test_seeds_give_different_hidden_errors():
    truths = {truth_of(seed) for seed in SEEDS}
    assert len(truths) == len(SEEDS)


def truth_of(seed: int) -> tuple[float, float]:
    with PenSimulator(seed=seed) as sim:
        return truth(sim)


@pytest.mark.parametrize("pen", SEEDS, indirect=True)
def test_automatic_calibration_recovers_the_hidden_offset_and_gain(pen):
    sim, ctl = pen
    report = run_calibration(ctl, SimulatorGauge(sim.url), technician="qa", settings=FAST)
    assert report.passed, format_report(report)
    cal = ctl.calibration
    assert cal is report.calibration and cal.pen_serial == sim.serial
    offset, gain = truth(sim)
    assert cal.offset_mm == pytest.approx(offset, abs=0.02)
    assert cal.gain == pytest.approx(gain, abs=0.01)
    for actuator_mm in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5):  # depth right across the travel
        assert abs(cal.to_depth_mm(actuator_mm) - (offset + gain * actuator_mm)) <= 0.02
    assert cal.zero_actuator_mm == pytest.approx(sim.model.actuator_mm_for(0.0), abs=0.02)
    assert report.zero_search_mm == pytest.approx(sim.model.actuator_mm_for(0.0), abs=0.02)
    assert report.verify.passed and abs(report.verify.worst_error_mm) <= 0.02
    assert ctl.state is State.IDLE


def test_full_run_checks_speed_saves_and_writes_the_pen_table(pen, tmp_path):
    sim, ctl = pen
    store = CalibrationStore(tmp_path / "c.sqlite")
    settings = CalibrationSettings(spin_duration_s=0.2)
    report = run_calibration(ctl, SimulatorGauge(sim.url), technician="qa", settings=settings,
                             store=store)
    assert report.passed, format_report(report)
    assert report.speed is not None and report.speed.passed
    assert [s.commanded_hz for s in report.speed.samples] == [52, 105, 158]
    assert abs(report.speed.worst_error_pct) < 3.0
    assert report.saved and store.latest(sim.serial) == report.calibration
    assert report.calibration.speed_error_pct == report.speed.worst_error_pct
    table = ctl.read_calibration_table()
    assert table.points() == [
        (round(a * 1000), round(g * 1000)) for a, g in report.calibration.points
    ]
    text = format_report(report)
    assert "Result: PASS" in text and "Speed (tolerance 3 %)" in text


class OffGauge:
    """A real gauge that reads one depth point wrong, as a slipping gauge would."""

    manual = False
    description = "gauge with one bad reading"

    def __init__(self, inner: SimulatorGauge, bad_label: str, error_mm: float) -> None:
        self.inner, self.bad_label, self.error_mm = inner, bad_label, error_mm

    def read_mm(self, request: GaugeRequest) -> float:
        value = self.inner.read_mm(request)
        return value + self.error_mm if request.label == self.bad_label else value

    def close(self) -> None:
        pass


def test_a_failing_fit_names_the_point_and_is_never_saved(pen, tmp_path):
    sim, ctl = pen
    store = CalibrationStore(tmp_path / "c.sqlite")
    gauge = OffGauge(SimulatorGauge(sim.url), "Depth point 4 of 6", 0.05)
    # with the speed check: a run without it is never saved (review 17), so takes no store
    report = run_calibration(ctl, gauge, technician="qa", settings=SAVED, store=store)
    assert not report.passed
    assert report.calibration is None and not report.saved
    assert any("point 4" in p and "off the fitted line" in p for p in report.problems)
    assert store.list() == []
    assert ctl.calibration is None and ctl.state is State.IDLE
    with pytest.raises(CalibrationError, match="refusing to save a failed calibration"):
        save_calibration(report, store)
    assert "Result: FAIL; nothing was saved" in format_report(report)


def test_a_non_monotonic_set_is_refused_naming_the_point(pen):
    sim, ctl = pen
    gauge = OffGauge(SimulatorGauge(sim.url), "Depth point 3 of 6", 0.6)
    report = run_calibration(ctl, gauge, technician="qa", settings=FAST)
    assert not report.passed
    assert any("not monotonic" in p and "Redo point 3" in p for p in report.problems)


def test_calibrating_is_entered_only_from_idle(pen):
    _, ctl = pen
    ctl.begin_calibration()
    try:
        with pytest.raises(StateError):
            ctl.begin_calibration()
        with pytest.raises(StateError):
            ctl.arm()
    finally:
        ctl.end_calibration(None)
    assert ctl.state is State.IDLE


def _refused_arm(ctl: PenController, why: str) -> None:
    ctl.set_zone("crown")
    with pytest.raises(StateError, match=why):
        ctl.arm()
    assert ctl.state is State.IDLE


def test_arming_is_refused_without_a_valid_calibration_for_this_pen(tmp_path):
    with virtual_sim(seed=21) as sim_a, virtual_sim(seed=22) as sim_b:
        with PenController.connect(sim_a.url, clock=sim_a.clock) as ctl:
            _refused_arm(ctl, f"pen {sim_a.serial} has no calibration. Calibrate it first")
            report = run_calibration(ctl, SimulatorGauge(sim_a.url), technician="qa",
                                     settings=SAVED, store=CalibrationStore(tmp_path / "c.db"))
            assert report.passed
            good = report.calibration
        expired = good.model_copy(update={
            "created_at": datetime.now(UTC) - timedelta(days=31),
            "expires_at": datetime.now(UTC) - timedelta(days=1),
        })
        with PenController.connect(sim_a.url, calibration=expired, clock=sim_a.clock) as ctl:
            _refused_arm(ctl, f"the calibration of pen {sim_a.serial} expired on .* Recalibrate")
            with pytest.raises(CalibrationError, match="expired on"):
                ctl.set_setpoints(depth_mm=0.5, speed_hz=100, duty_pct=40, period_ms=120)
        # another pen's
        with PenController.connect(sim_b.url, calibration=good, clock=sim_b.clock) as ctl:
            _refused_arm(ctl, f"belongs to pen {sim_a.serial}, but pen {sim_b.serial} is conn")
        # the stored calibration, loaded for the right pen, arms
        stored = CalibrationStore(tmp_path / "c.db").latest(sim_a.serial)
        with PenController.connect(sim_a.url, calibration=stored, clock=sim_a.clock) as ctl:
            ctl.set_zone("crown")
            ctl.set_setpoints(depth_mm=0.5, speed_hz=100, duty_pct=40, period_ms=120)
            ctl.arm()
            assert ctl.state is State.ARMED
            ctl.disarm()


def test_verify_alone_passes_a_good_calibration_and_fails_a_drifted_one(pen):
    sim, ctl = pen
    report = run_calibration(ctl, SimulatorGauge(sim.url), technician="qa", settings=FAST)
    good = report.calibration
    result = run_verify(ctl, SimulatorGauge(sim.url), good)
    assert result.passed and len(result.samples) == 6  # an automatic gauge reads six
    shifted = good.model_copy(update={"offset_mm": good.offset_mm + 0.05})
    result = run_verify(ctl, SimulatorGauge(sim.url), shifted)
    assert not result.passed
    assert result.worst_error_mm == pytest.approx(-0.05, abs=0.005)
    assert "exceeds 0.020 mm" in result.problems()[0]
    other = Calibration.linear(pen_serial="SMP-OTHER000", technician="x", offset_mm=-0.3, gain=1)
    with pytest.raises(CalibrationError, match="belongs to pen SMP-OTHER000"):
        run_verify(ctl, SimulatorGauge(sim.url), other)
    assert ctl.state is State.IDLE


def test_settings_are_validated():
    with pytest.raises(CalibrationError, match="depth_points must be 3..8"):
        replace(FAST, depth_points=9)
