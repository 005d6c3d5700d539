"""Needle penetration depth accuracy and puncture rate accuracy (21 CFR 878.4430 bench figures):
hand-computed figures on known readings, then real runs against the simulator on the virtual
clock, where an injected gauge bow or a wandering motor must show worse figures and fail."""

from __future__ import annotations

import json
import math
import statistics

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from simulators.pen_model import PenModel
from smpdevice.calibration.accuracy import (
    MAX_COUNT_WINDOW_S,
    PunctureRateCheck,
    RatePoint,
    count_window_s,
    depth_accuracy,
    puncture_rate_hz,
)
from smpdevice.calibration.gauges import SimulatorGauge
from smpdevice.calibration.report import (
    CalibrationSettings,
    VerifyResult,
    VerifySample,
    format_report,
)
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.workflow import run_calibration
from smpdevice.cli import main
from smpdevice.control import PenController
from smpdevice.control.calibration import Calibration, CalibrationError
from tests.smpdevice.virtual_time import virtual_sim

NO_SPEED = CalibrationSettings(run_speed=False)

# ----------------------------------------------------------------------------- pure: depth


def test_depth_figures_on_known_readings():
    # errors +0.01, -0.01, +0.03: mean 0.01; deviations 0, -0.02, +0.02 -> var 0.0008/2
    acc = depth_accuracy([(0.5, 0.51), (1.0, 0.99), (1.5, 1.53)])
    assert acc.n == 3
    assert acc.mean_error_mm == pytest.approx(0.01)
    assert acc.sd_mm == pytest.approx(0.02)
    assert acc.max_error_mm == pytest.approx(0.03)


def test_the_max_error_keeps_its_sign():
    acc = depth_accuracy([(1.0, 0.95), (1.0, 1.02), (1.2, 1.2)])
    assert acc.max_error_mm == pytest.approx(-0.05)
    assert acc.mean_error_mm == pytest.approx(-0.01)


@pytest.mark.parametrize("readings", [[], [(1.0, 1.0)], [(1.0, math.nan), (1.5, 1.5)],
                                      [(1.0, 1.0), (math.inf, 1.5)]])
def test_depth_figures_refuse_too_few_or_non_finite_readings(readings):
    with pytest.raises(CalibrationError, match="depth accuracy"):
        depth_accuracy(readings)


@given(bias=st.floats(-0.5, 0.5), depths=st.lists(st.floats(0.1, 2.0), min_size=2, max_size=12))
def test_a_pure_bias_is_all_mean_and_no_spread(bias, depths):
    acc = depth_accuracy([(d, d + bias) for d in depths])
    assert acc.mean_error_mm == pytest.approx(bias, abs=1e-9)
    assert acc.max_error_mm == pytest.approx(bias, abs=1e-9)
    assert acc.sd_mm == pytest.approx(0.0, abs=1e-9)


@given(errors=st.lists(st.floats(-0.1, 0.1), min_size=2, max_size=12))
def test_depth_figures_agree_with_the_textbook(errors):
    acc = depth_accuracy([(1.0, 1.0 + e) for e in errors])
    measured = [(1.0 + e) - 1.0 for e in errors]
    assert acc.mean_error_mm == pytest.approx(statistics.fmean(measured), abs=1e-12)
    assert acc.sd_mm == pytest.approx(statistics.stdev(measured), abs=1e-12)
    assert abs(acc.max_error_mm) == pytest.approx(max(abs(e) for e in measured), abs=1e-12)


def test_depth_bounds_name_the_figure_and_the_bound():
    acc = depth_accuracy([(0.5, 0.51), (1.0, 0.99), (1.5, 1.53)])
    assert acc.problems(mean_max_mm=0.02, sd_max_mm=0.03, max_max_mm=0.04) == []
    problems = acc.problems(mean_max_mm=0.005, sd_max_mm=0.03, max_max_mm=0.04)
    assert problems == [problems[0]] and "mean error +0.0100 mm over 3 check readings" in \
        problems[0] and "bound 0.0050 mm" in problems[0]
    assert "standard deviation" in acc.problems(mean_max_mm=1, sd_max_mm=0.01, max_max_mm=1)[0]
    assert "max error +0.0300" in acc.problems(mean_max_mm=1, sd_max_mm=1, max_max_mm=0.02)[0]


def test_a_verify_fails_on_a_bias_every_reading_of_which_is_within_tolerance():
    # each error 0.015 mm is inside the 0.02 mm tolerance: the old check passed this pen
    samples = [VerifySample(d, d, d + 0.015) for d in (0.5, 1.0, 1.5)]
    result = VerifyResult("x", 0.02, samples)
    assert not result.passed
    assert any("mean error +0.0150 mm" in p for p in result.problems())
    assert VerifyResult("x", 0.02, samples, mean_max_mm=0.02).passed
    too_few = VerifyResult("x", 0.02, samples[:2])
    assert not too_few.passed and "only 2 check readings" in too_few.problems()[0]


# ----------------------------------------------------------------------------- pure: rate


def test_rate_figures_on_known_readings():
    p = RatePoint(set_hz=100.0, measured_hz=97.0, window_s=0.5, punctures=48)
    assert p.error_hz == pytest.approx(-3.0)
    assert p.error_pct == pytest.approx(-3.0)
    assert p.resolution_hz == pytest.approx(2.0)  # one puncture in half a second
    assert p.resolution_pct == pytest.approx(2.0)


def test_punctures_per_second_from_an_exact_counter():
    frames = [(1000 + 10 * k, 7 + k) for k in range(50)]  # one stroke every 10 ms
    rate, window_s, punctures = puncture_rate_hz(frames)
    assert rate == pytest.approx(100.0)
    assert window_s == pytest.approx(0.49) and punctures == 49


def test_punctures_per_second_across_the_counter_wrap():
    frames = [(10 * k, (2**32 - 20 + k) % 2**32) for k in range(40)]
    assert puncture_rate_hz(frames)[0] == pytest.approx(100.0)


@pytest.mark.parametrize("rate_hz", [30.0, 52.0, 105.0, 158.0, 180.0])
def test_a_whole_stroke_counter_read_every_10_ms_resolves_the_rate_over_a_second(rate_hz):
    # the pen reports floor(strokes): the slope over 100 frames must beat one puncture in 1 s
    frames = [(10 * k, math.floor(rate_hz * k / 100 + 0.37)) for k in range(101)]
    rate, window_s, _ = puncture_rate_hz(frames)
    assert abs(rate - rate_hz) < 1.0 / window_s / 2


@given(rate_hz=st.floats(20.0, 400.0), start=st.integers(0, 2**32 - 1),
       phase=st.floats(0.0, 0.999), period_ms=st.integers(1, 20))
def test_any_counter_start_and_frame_rate_give_the_rate_within_one_puncture(rate_hz, start,
                                                                            phase, period_ms):
    frames = [(period_ms * k, (start + math.floor(rate_hz * period_ms * k / 1000 + phase))
               % 2**32) for k in range(1000 // period_ms + 1)]
    rate, window_s, punctures = puncture_rate_hz(frames)
    assert abs(rate - rate_hz) <= 1.0 / window_s
    assert punctures == pytest.approx(rate_hz * window_s, abs=1)


def test_counting_refuses_too_few_frames_or_no_time():
    with pytest.raises(CalibrationError, match="from 2 telemetry frames"):
        puncture_rate_hz([(0, 0), (10, 1)])
    with pytest.raises(CalibrationError, match="span no time"):
        puncture_rate_hz([(5, 0), (5, 0), (5, 0)])


def test_the_count_window_is_long_enough_for_one_puncture_to_be_within_the_bound():
    assert count_window_s(158, 3.0, 1.0) == 1.0  # the spin is already long enough
    slow = count_window_s(52, 3.0, 0.2)
    assert slow == pytest.approx(1.25 * 100 / (3.0 * 52))
    assert 100 / (slow * 52) < 3.0  # one puncture in the window is inside 3 %
    assert count_window_s(30, 0.1, 1.0) == MAX_COUNT_WINDOW_S


def test_rate_bounds_refuse_an_error_and_an_unresolved_count():
    good = RatePoint(100.0, 101.0, 1.0, 101)
    bad = RatePoint(50.0, 47.5, 1.0, 47)
    coarse = RatePoint(50.0, 50.0, 0.2, 10)
    assert PunctureRateCheck((good,), 3.0).passed
    check = PunctureRateCheck((good, bad, coarse), 3.0)
    assert not check.passed and check.worst_error_pct == pytest.approx(-5.0)
    assert check.problems() == [
        "puncture rate at 50 Hz: the pen counted 47.50 punctures/s, error -2.50 Hz (-5.0 %) "
        "exceeds 3 %. Service the motor and cam.",
        "puncture rate at 50 Hz: 10 punctures in 0.20 s resolve only +/-10.0 %, coarser than "
        "the bound 3 %. Raise --speed-tolerance-pct or spin longer (--spin-seconds).",
    ]
    assert not PunctureRateCheck((), 3.0).passed


@pytest.mark.parametrize("field", ["depth_mean_max_mm", "depth_sd_max_mm", "verify_tolerance_mm",
                                   "speed_tolerance_pct"])
@pytest.mark.parametrize("value", [0.0, -0.01, math.nan, math.inf, True, "0.01"])
def test_an_acceptance_bound_must_be_a_finite_positive_number(field, value):
    with pytest.raises(CalibrationError, match=f"{field} must be a finite number above 0"):
        CalibrationSettings(**{field: value})


# ----------------------------------------------------------------------------- stored


def _cal(**kw) -> Calibration:
    return Calibration.linear(pen_serial="SMP-TEST0001", technician="qa", offset_mm=-0.3,
                              gain=1.0, **kw)


@pytest.mark.parametrize("field,value", [
    ("depth_checks", [(1.0, math.nan)]), ("depth_checks", [(1.0,)]), ("depth_checks", "x"),
    ("rate_checks", [(100.0, -1.0)]), ("rate_checks", [(math.inf, 100.0)]),
    ("rate_checks", [(1.0, 1.0)] * 65),
])
def test_a_calibration_refuses_bad_check_readings(field, value):
    with pytest.raises(CalibrationError, match=field):
        _cal(**{field: value})


def test_a_calibration_from_before_the_figures_loads_without_them():
    data = _cal().model_dump(mode="json")
    del data["depth_checks"], data["rate_checks"]
    old = Calibration.model_validate(data)
    assert old.depth_checks == [] and old.rate_checks == []


# ----------------------------------------------------------------------------- simulator


def _run(model: PenModel, settings: CalibrationSettings, store: CalibrationStore | None = None):
    with virtual_sim(model=model) as sim, PenController.connect(sim.url,
                                                                clock=sim.clock) as ctl:
        report = run_calibration(ctl, SimulatorGauge(sim.url), technician="qa",
                                 settings=settings, store=store)
        return report, ctl.calibration


def test_a_run_reports_and_stores_both_figures(tmp_path):
    store = CalibrationStore(tmp_path / "c.sqlite")
    report, installed = _run(PenModel(seed=7), CalibrationSettings(spin_duration_s=0.2), store)
    assert report.passed, format_report(report)
    cal = store.latest(installed.pen_serial)
    assert cal == installed == report.calibration
    # depth: six check readings through the fit, taken apart from the six fit points
    assert [c for c, _ in cal.depth_checks] == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    assert [(s.target_mm, s.gauge_mm) for s in report.verify.samples] == cal.depth_checks
    assert not set(g for _, g in cal.points) & set(g for _, g in cal.depth_checks)
    acc = report.verify.accuracy
    assert acc == depth_accuracy(cal.depth_checks)
    assert acc.n == 6 and abs(acc.mean_error_mm) < 0.002 and acc.sd_mm < 0.002
    # puncture rate: counted by the pen at each set speed, within a fraction of a percent
    points = report.puncture_rate.points
    assert [p.set_hz for p in points] == [52, 105, 158]
    assert cal.rate_checks == [(p.set_hz, p.measured_hz) for p in points]
    for p in points:
        assert abs(p.error_pct) < 1.0
        assert p.punctures == pytest.approx(p.measured_hz * p.window_s, abs=2)
        assert p.resolution_pct < 3.0  # the count window was stretched past --spin-seconds 0.2
    text = format_report(report)
    assert "Needle penetration depth accuracy (N = 6 check readings through the new fit" in text
    assert f"mean error {acc.mean_error_mm:+.4f} mm, standard deviation {acc.sd_mm:.4f} mm" \
        in text
    assert "Puncture rate accuracy (punctures the pen counted per second; bound 3 %)" in text
    assert f"set   52.0 Hz  measured {points[0].measured_hz:7.2f} /s" in text


def test_an_injected_gauge_bow_shows_worse_depth_accuracy_and_fails_a_tight_bound():
    tight = CalibrationSettings(run_speed=False, depth_sd_max_mm=0.002)
    straight, _ = _run(PenModel(seed=7, gauge_nonlinearity_mm=0.0), tight)
    bowed, installed = _run(PenModel(seed=7, gauge_nonlinearity_mm=0.03), tight)
    good, bad = straight.verify.accuracy, bowed.verify.accuracy
    assert bad.sd_mm > 2 * good.sd_mm and abs(bad.max_error_mm) > 2 * abs(good.max_error_mm)
    assert straight.passed, format_report(straight)
    assert bowed.fit is not None  # the fit alone accepted the bowed gauge ...
    assert not bowed.passed and bowed.calibration is None and installed is None  # ... not this
    assert any(p.startswith("depth accuracy: standard deviation") and "bound 0.0020 mm" in p
               for p in bowed.problems), bowed.problems
    assert "Result: FAIL; nothing was saved" in format_report(bowed)


def test_a_wandering_motor_fails_the_puncture_rate_and_saves_nothing(tmp_path):
    store = CalibrationStore(tmp_path / "c.sqlite")
    report, installed = _run(PenModel(seed=7, speed_wander_pct=10.0),
                             CalibrationSettings(spin_duration_s=0.2), store)
    assert not report.passed and installed is None and store.list() == []
    assert any(p.startswith("puncture rate at") and "punctures/s" in p
               for p in report.problems), report.problems
    assert "puncture rate: FAIL" in format_report(report)


def test_calibrations_show_prints_the_stored_figures(tmp_path):
    db = tmp_path / "c.sqlite"
    report, cal = _run(PenModel(seed=7), CalibrationSettings(spin_duration_s=0.2),
                       CalibrationStore(db))
    out = CliRunner().invoke(main, ["calibrations", "show", cal.calibration_id, "--db",
                                    str(db)], catch_exceptions=False).output
    acc = report.verify.accuracy
    assert (f"depth accuracy   N=6 check readings: mean error {acc.mean_error_mm:+.4f} mm, "
            f"sd {acc.sd_mm:.4f} mm") in out
    assert "puncture rate    set 52 Hz -> " in out
    data = json.loads(CliRunner().invoke(main, ["calibrations", "show", cal.calibration_id,
                                                "--db", str(db), "--json"]).output)
    assert data["depth_accuracy"]["n"] == 6
    assert data["depth_accuracy"]["sd_mm"] == pytest.approx(acc.sd_mm, abs=1e-6)
    assert [p["set_hz"] for p in data["puncture_rate"]] == [52, 105, 158]
