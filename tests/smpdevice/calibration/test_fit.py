"""The pure arithmetic of calibration: fit, entry checks, speed check, zero search."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.pen_model import PenModel
from smpdevice.calibration.fit import expected_gauge_mm, fit_linear
from smpdevice.calibration.readings import (
    EntryError,
    FitError,
    LikelyTypoError,
    NonMonotonicError,
    NotANumberError,
    OutOfRangeError,
    Point,
    check_next_point,
    parse_reading,
)
from smpdevice.calibration.speed import SpeedSample, ZeroSearch, check_speed
from smpdevice.control.calibration import CalibrationError

ACTUATORS = [0.5, 0.9, 1.3, 1.7, 2.1, 2.5]


def line(offset: float, gain: float, actuators=ACTUATORS) -> list[Point]:
    return [Point(a, offset + gain * a) for a in actuators]


# ----------------------------------------------------------------------------- fit


def test_fit_recovers_an_exact_line_and_its_zero():
    fit = fit_linear(line(-0.3, 1.05))
    assert fit.offset_mm == pytest.approx(-0.3)
    assert fit.gain == pytest.approx(1.05)
    assert fit.max_abs_residual_mm == pytest.approx(0.0, abs=1e-12)
    assert fit.zero_actuator_mm == pytest.approx(0.3 / 1.05)


@settings(max_examples=60, deadline=None)
@given(
    offset=st.floats(-0.5, -0.2),
    gain=st.floats(0.9, 1.1),
    noise=st.lists(st.floats(-0.005, 0.005), min_size=6, max_size=6),
)
def test_fit_recovers_noisy_lines_within_the_noise(offset, gain, noise):
    points = [Point(a, offset + gain * a + n) for a, n in zip(ACTUATORS, noise, strict=True)]
    fit = fit_linear(points)
    assert fit.max_abs_residual_mm <= 0.01
    for a in (0.5, 1.5, 2.5):  # the prediction error is at most the noise times the leverage
        assert abs(fit.depth_mm(a) - (offset + gain * a)) <= 0.005 * _leverage(a) + 1e-12


def _leverage(a: float) -> float:
    """Sum of |least-squares weights| of the points at `a`: how far point noise can carry."""
    mean = sum(ACTUATORS) / len(ACTUATORS)
    sxx = sum((x - mean) ** 2 for x in ACTUATORS)
    return sum(abs(1 / len(ACTUATORS) + (a - mean) * (x - mean) / sxx) for x in ACTUATORS)


def test_the_noise_bound_is_reached_at_the_ends():
    # Noise of +-0.005 arranged against the end weights moves the line 0.0074 mm at 0.5 mm:
    # a fixed 0.006 bound was wrong, and hypothesis found it (0.00609).
    mean = sum(ACTUATORS) / len(ACTUATORS)
    noise = [0.005 if (1 / 6 + (0.5 - mean) * (x - mean) / sum((y - mean) ** 2 for y in ACTUATORS))
             > 0 else -0.005 for x in ACTUATORS]
    fit = fit_linear([Point(a, -0.3 + a + n) for a, n in zip(ACTUATORS, noise, strict=True)])
    assert abs(fit.depth_mm(0.5) - 0.2) == pytest.approx(0.005 * _leverage(0.5))
    assert _leverage(0.5) > 1.4


def test_fit_refuses_a_residual_beyond_tolerance_and_names_the_point():
    points = line(-0.3, 1.0)
    points[3] = Point(points[3].actuator_mm, points[3].gauge_mm + 0.06)  # monotonic, but off
    with pytest.raises(FitError) as exc:
        fit_linear(points)
    assert exc.value.point_index == 4
    assert "point 4 (actuator 1.700 mm" in str(exc.value)
    assert "tolerance 0.020 mm" in str(exc.value)
    assert isinstance(exc.value, CalibrationError)


def test_fit_tolerance_is_configurable():
    points = line(-0.3, 1.0)
    points[2] = Point(points[2].actuator_mm, points[2].gauge_mm + 0.03)
    with pytest.raises(FitError):
        fit_linear(points)  # default 0.02 mm
    fit = fit_linear(points, tolerance_mm=0.05)
    assert fit.worst_index == 3


def test_fit_refuses_non_monotonic_points_and_blames_the_outlier_not_its_neighbour():
    points = line(-0.3, 1.0)  # gauge 0.2, 0.6, 1.0, 1.4, 1.8, 2.2
    points[2] = Point(1.3, 1.6)  # point 3 reads too high: above point 4 (1.4)
    with pytest.raises(NonMonotonicError) as exc:
        fit_linear(points)
    assert exc.value.point_index == 3
    assert "not monotonic" in str(exc.value)
    assert "Redo point 3" in str(exc.value)

    points = line(-0.3, 1.0)
    points[3] = Point(1.7, 0.5)  # point 4 reads too low: below point 2 and 3
    with pytest.raises(NonMonotonicError) as exc:
        fit_linear(points)
    assert exc.value.point_index == 4


def test_fit_refuses_duplicate_positions_and_too_few_points():
    points = line(-0.3, 1.0)
    points[1] = Point(points[0].actuator_mm, 0.3)
    with pytest.raises(NonMonotonicError, match="same actuator position"):
        fit_linear(points)
    with pytest.raises(FitError, match="at least 3 points"):
        fit_linear(line(-0.3, 1.0)[:2])


# ----------------------------------------------------------------------------- entries


@pytest.mark.parametrize("text", ["abc", "", "  ", "1.2.3", "0.5x", "nan", "inf", "--1"])
def test_non_numbers_are_refused(text):
    with pytest.raises(NotANumberError, match="is not a number"):
        parse_reading(text, low=0, high=3)


@pytest.mark.parametrize(("text", "value"), [("0.52", 0.52), ("0,52", 0.52), ("0.52 mm", 0.52),
                                             (".5", 0.5), ("1", 1.0), (" 2.0 ", 2.0)])
def test_numbers_are_accepted_in_the_forms_people_type(text, value):
    assert parse_reading(text, low=0, high=3) == pytest.approx(value)


def test_out_of_range_is_refused_with_the_range():
    with pytest.raises(OutOfRangeError, match=r"outside 0\.\.3 mm"):
        parse_reading("3.5", low=0, high=3)
    with pytest.raises(OutOfRangeError):
        parse_reading("-0.1", low=0, high=3)


def test_a_factor_10_typo_is_refused_with_a_suggestion():
    with pytest.raises(LikelyTypoError, match="about 10x") as exc:
        parse_reading("5.2", low=0, high=30, expected=0.53)  # even when in range
    assert exc.value.suggestion == pytest.approx(0.52)
    with pytest.raises(LikelyTypoError, match="about 1/10") as exc:
        parse_reading("0.12", low=0, high=3, expected=1.2)
    assert exc.value.suggestion == pytest.approx(1.2)
    # close to the expectation, or off by a factor that is not 10: accepted
    assert parse_reading("0.6", low=0, high=3, expected=0.53) == 0.6
    assert parse_reading("1.5", low=0, high=3, expected=0.53) == 1.5


def test_a_reading_must_grow_with_the_actuator():
    points = [Point(0.5, 0.2), Point(0.9, 0.6)]
    check_next_point(points, Point(1.3, 1.0))
    with pytest.raises(NonMonotonicError, match="not above the previous point") as exc:
        check_next_point(points, Point(1.3, 0.55))
    assert isinstance(exc.value, EntryError)
    assert "enter r to redo the previous point" in str(exc.value)


def test_expected_reading_comes_from_the_points_or_the_zero():
    assert expected_gauge_mm(1.0, [], None) is None
    assert expected_gauge_mm(1.0, [], zero_actuator_mm=0.3) == pytest.approx(0.7)
    assert expected_gauge_mm(2.0, line(-0.3, 1.1)[:2]) == pytest.approx(-0.3 + 2.2)


# ----------------------------------------------------------------------------- speed


def test_speed_check_flags_errors_beyond_tolerance():
    ok = check_speed([SpeedSample(50, 50.5), SpeedSample(100, 98.0)])
    assert ok.passed
    assert ok.worst_error_pct == pytest.approx(-2.0)
    bad = check_speed([SpeedSample(50, 50.5), SpeedSample(150, 154.8)])
    assert not bad.passed
    assert bad.worst_error_pct == pytest.approx(3.2)
    assert bad.problems() == ["speed 150 Hz: encoder error +3.2 % exceeds 3 %"]
    assert check_speed([SpeedSample(150, 154.8)], tolerance_pct=5).passed


def test_speed_check_uses_the_tachometer_when_it_is_worse():
    check = check_speed([SpeedSample(100, 100.2, tachometer_hz=95.0)])
    assert check.worst_error_pct == pytest.approx(-5.0)
    assert "tachometer error -5.0 %" in check.problems()[0]
    with pytest.raises(CalibrationError):
        check_speed([SpeedSample(0, 0)])


# ----------------------------------------------------------------------------- zero


def _search(model: PenModel) -> ZeroSearch:
    search = ZeroSearch(min_mm=0.0, max_mm=2.5, start_mm=1.25)
    while (a := search.next_actuator_mm()) is not None:
        a = round(a, 3)  # the actuator moves in µm
        search.add(Point(a, round(max(0.0, model.true_depth_mm(a)), 4)))  # the gauge clamps at 0
    return search


@pytest.mark.parametrize("seed", range(10))
def test_zero_search_finds_flush_in_a_few_readings(seed):
    model = PenModel(seed=seed)
    search = _search(model)
    assert len(search.readings) <= 4
    assert search.zero_actuator_mm == pytest.approx(model.actuator_mm_for(0.0), abs=0.002)


def test_zero_search_backs_off_when_it_steps_into_the_cartridge():
    search = ZeroSearch(min_mm=0.0, max_mm=2.5, start_mm=1.25, nominal_gain=0.8)  # bad guess
    search.add(Point(1.25, 0.9))
    nxt = search.next_actuator_mm()
    assert nxt == pytest.approx(1.25 - (0.9 - search.approach_mm) / 0.8)
    search.add(Point(nxt, 0.0))  # overshot: tip inside
    assert search.next_actuator_mm() == pytest.approx((nxt + 1.25) / 2)


def test_zero_search_refuses_a_pen_whose_tip_never_comes_out():
    search = ZeroSearch(min_mm=0.0, max_mm=2.5, start_mm=1.25)
    search.add(Point(1.25, 0.0))
    assert search.next_actuator_mm() == 2.5
    search.add(Point(2.5, 0.0))
    with pytest.raises(CalibrationError, match="never leaves the cartridge"):
        search.next_actuator_mm()
