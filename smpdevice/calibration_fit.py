"""The arithmetic of calibration: fitting gauge points, checking entries, speed and zero.

Pure functions, no I/O: the workflows in `smpdevice.calibrate` feed them readings.

- `fit_linear` fits `gauge_mm = offset_mm + gain * actuator_mm` by least squares and refuses a
  fit whose points are not monotonic or whose worst residual exceeds a tolerance, naming the
  point to redo.
- `parse_reading` turns what a person typed into a number, refusing non-numbers, values out of
  range and likely factor-10 typos, each with its own error type.
- `check_speed` compares commanded speed with the encoder (and a tachometer, if any).
- `ZeroSearch` steps the actuator toward the position where the tip is flush with the
  cartridge; the fit's `zero_actuator_mm` is the precise value, the search a cross-check.
"""

from __future__ import annotations

import itertools
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from smpdevice.calibration import CalibrationError

DEFAULT_FIT_TOLERANCE_MM = 0.02
DEFAULT_SPEED_TOLERANCE_PCT = 3.0
MIN_FIT_POINTS = 3  # two points always fit exactly; a third is what makes a residual mean something
# A typed value 6.25x..16x (or 1/16..1/6.25) of the expected one is taken as a slipped decimal.
TYPO_RATIO_LOW = 6.25
TYPO_RATIO_HIGH = 16.0


class Point(NamedTuple):
    """One gauge reading: where the actuator was, and the true protrusion the gauge showed."""

    actuator_mm: float
    gauge_mm: float


# ----------------------------------------------------------------------------- errors


class EntryError(CalibrationError):
    """A typed reading was refused; the message says why and what to enter instead."""


class NotANumberError(EntryError):
    """The entry is not a number."""


class OutOfRangeError(EntryError):
    """The entry is a number outside what the instrument can show."""


class LikelyTypoError(EntryError):
    """The entry is about 10x (or 1/10) of the expected value: a slipped decimal point."""

    def __init__(self, message: str, suggestion: float):
        super().__init__(message)
        self.suggestion = suggestion


class FitError(CalibrationError):
    """The points do not make an acceptable calibration. `point_index` (1-based) is the culprit."""

    def __init__(self, message: str, point_index: int | None = None):
        super().__init__(message)
        self.point_index = point_index


class NonMonotonicError(FitError, EntryError):
    """A reading does not grow with the actuator position."""


# ----------------------------------------------------------------------------- entries

_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)$")


def parse_number(text: str, *, what: str = "gauge reading", unit: str = "mm") -> float:
    """A typed number. Accepts a decimal comma and a trailing unit ("0,52", "0.52 mm")."""
    raw = text.strip()
    cleaned = raw.lower().removesuffix(unit.lower()).strip() if unit else raw
    if not _NUMBER.match(cleaned):
        shown = repr(raw) if raw else "an empty entry"
        raise NotANumberError(f"{shown} is not a number. Enter the {what} in {unit}, e.g. 0.52")
    return float(cleaned.replace(",", "."))


def check_typo(value: float, expected: float | None, *, what: str, unit: str) -> None:
    """Refuse `value` if it is about 10x or 1/10 of `expected` (a slipped decimal point)."""
    if expected is None or expected <= 0 or value <= 0:
        return
    ratio = value / expected
    if TYPO_RATIO_LOW <= ratio <= TYPO_RATIO_HIGH:
        hint = value / 10
        raise LikelyTypoError(
            f"{what} {value:g} {unit} is about 10x the expected ~{expected:.3f} {unit}. "
            f"Did you mean {hint:g}? Read the gauge again and re-enter.",
            suggestion=hint,
        )
    if 1 / TYPO_RATIO_HIGH <= ratio <= 1 / TYPO_RATIO_LOW:
        hint = value * 10
        raise LikelyTypoError(
            f"{what} {value:g} {unit} is about 1/10 of the expected ~{expected:.3f} {unit}. "
            f"Did you mean {hint:g}? Read the gauge again and re-enter.",
            suggestion=hint,
        )


def check_range(value: float, low: float, high: float, *, what: str, unit: str) -> None:
    if not math.isfinite(value) or not low <= value <= high:
        raise OutOfRangeError(
            f"{what} {value:g} {unit} is outside {low:g}..{high:g} {unit}. "
            f"Check the instrument and re-enter."
        )


def parse_reading(
    text: str,
    *,
    low: float,
    high: float,
    expected: float | None = None,
    what: str = "gauge reading",
    unit: str = "mm",
) -> float:
    """A typed reading checked in the order a person needs: a number, not a typo, in range.

    The typo check runs before the range check because a slipped decimal point usually also
    lands out of range, and "did you mean 0.52?" is the more useful message.
    """
    value = parse_number(text, what=what, unit=unit)
    check_typo(value, expected, what=what, unit=unit)
    check_range(value, low, high, what=what, unit=unit)
    return value


def check_next_point(points: Sequence[Point], new: Point) -> None:
    """Refuse a reading that does not grow past the previous point's (at a larger actuator)."""
    if not points:
        return
    prev = points[-1]
    if new.actuator_mm > prev.actuator_mm and new.gauge_mm <= prev.gauge_mm:
        raise NonMonotonicError(
            f"reading {new.gauge_mm:.3f} mm at actuator {new.actuator_mm:.3f} mm is not above "
            f"the previous point's {prev.gauge_mm:.3f} mm (actuator {prev.actuator_mm:.3f} mm): "
            "the needle extends further, so the reading must grow. Read again, or enter r to "
            "redo the previous point.",
            point_index=len(points) + 1,
        )


# ----------------------------------------------------------------------------- fit


@dataclass(frozen=True)
class LinearFit:
    """`gauge_mm = offset_mm + gain * actuator_mm`, with each point's residual (measured - fit)."""

    offset_mm: float
    gain: float
    points: tuple[Point, ...]
    residuals_mm: tuple[float, ...]

    @property
    def max_abs_residual_mm(self) -> float:
        return max((abs(r) for r in self.residuals_mm), default=0.0)

    @property
    def worst_index(self) -> int:
        """1-based index of the point with the largest residual."""
        return 1 + max(range(len(self.residuals_mm)), key=lambda i: abs(self.residuals_mm[i]))

    @property
    def rms_residual_mm(self) -> float:
        return math.sqrt(sum(r * r for r in self.residuals_mm) / len(self.residuals_mm))

    @property
    def zero_actuator_mm(self) -> float:
        """Actuator position where the fitted line crosses 0 mm protrusion (tip flush)."""
        return -self.offset_mm / self.gain

    def depth_mm(self, actuator_mm: float) -> float:
        return self.offset_mm + self.gain * actuator_mm


def _describe(points: Sequence[Point], i: int) -> str:
    p = points[i]
    return f"point {i + 1} (actuator {p.actuator_mm:.3f} mm, gauge {p.gauge_mm:.3f} mm)"


def least_squares(points: Sequence[Point]) -> tuple[float, float]:
    """(offset, gain) of the least-squares line; needs two distinct actuator positions."""
    n = len(points)
    mx = sum(p.actuator_mm for p in points) / n
    my = sum(p.gauge_mm for p in points) / n
    sxx = sum((p.actuator_mm - mx) ** 2 for p in points)
    if sxx <= 0:
        raise FitError("all points are at the same actuator position: nothing to fit.")
    sxy = sum((p.actuator_mm - mx) * (p.gauge_mm - my) for p in points)
    gain = sxy / sxx
    return my - gain * mx, gain


def _theil_sen(points: Sequence[Point]) -> tuple[float, float]:
    """A line that a single bad point cannot drag: median of pairwise slopes."""
    slopes = [
        (b.gauge_mm - a.gauge_mm) / (b.actuator_mm - a.actuator_mm)
        for i, a in enumerate(points)
        for b in points[i + 1 :]
        if b.actuator_mm != a.actuator_mm
    ]
    gain = statistics.median(slopes)
    offset = statistics.median(p.gauge_mm - gain * p.actuator_mm for p in points)
    return offset, gain


def check_monotonic(points: Sequence[Point]) -> None:
    """Refuse points whose readings do not strictly grow with the actuator; name the culprit.

    When two neighbours are out of order, the one farther from a robust line through all the
    points is blamed, so one bad reading is named rather than its innocent neighbour.
    """
    order = sorted(range(len(points)), key=lambda i: points[i].actuator_mm)
    for a, b in itertools.pairwise(order):
        pa, pb = points[a], points[b]
        if pa.actuator_mm == pb.actuator_mm:
            raise NonMonotonicError(
                f"{_describe(points, b)} is at the same actuator position as point {a + 1}. "
                f"Redo point {b + 1}.",
                point_index=b + 1,
            )
        if pb.gauge_mm <= pa.gauge_mm:
            offset, gain = _theil_sen(points)
            dev_a = abs(pa.gauge_mm - (offset + gain * pa.actuator_mm))
            dev_b = abs(pb.gauge_mm - (offset + gain * pb.actuator_mm))
            bad, other = (a, b) if dev_a > dev_b else (b, a)
            raise NonMonotonicError(
                f"points are not monotonic: {_describe(points, bad)} is out of order with "
                f"point {other + 1} (gauge {points[other].gauge_mm:.3f} mm); readings must grow "
                f"with the actuator position. Redo point {bad + 1}.",
                point_index=bad + 1,
            )


def fit_linear(
    points: Sequence[Point | tuple[float, float]],
    tolerance_mm: float = DEFAULT_FIT_TOLERANCE_MM,
) -> LinearFit:
    """Least-squares line through `points`; FitError if not monotonic or a residual is too big."""
    pts = tuple(Point(float(a), float(g)) for a, g in points)
    if len(pts) < MIN_FIT_POINTS:
        raise FitError(
            f"a calibration needs at least {MIN_FIT_POINTS} points, got {len(pts)}. "
            "Measure more points."
        )
    for i, p in enumerate(pts):
        if not (math.isfinite(p.actuator_mm) and math.isfinite(p.gauge_mm)):
            raise FitError(f"{_describe(pts, i)} is not a finite number.", point_index=i + 1)
    check_monotonic(pts)
    offset, gain = least_squares(pts)
    fit = LinearFit(
        offset_mm=offset,
        gain=gain,
        points=pts,
        residuals_mm=tuple(p.gauge_mm - (offset + gain * p.actuator_mm) for p in pts),
    )
    if fit.max_abs_residual_mm > tolerance_mm:
        i = fit.worst_index - 1
        raise FitError(
            f"{_describe(pts, i)} is {fit.residuals_mm[i]:+.3f} mm off the fitted line "
            f"(tolerance {tolerance_mm:.3f} mm). Redo point {i + 1}; if it repeats, the pen's "
            "depth is not linear: check the cartridge and the actuator.",
            point_index=i + 1,
        )
    return fit


def expected_gauge_mm(
    actuator_mm: float,
    points: Sequence[Point],
    zero_actuator_mm: float | None = None,
    nominal_gain: float = 1.0,
) -> float | None:
    """What the gauge should show at `actuator_mm`, from the points so far or the zero."""
    if len(points) >= 2 and len({p.actuator_mm for p in points}) >= 2:
        offset, gain = least_squares(points)
        return offset + gain * actuator_mm
    if zero_actuator_mm is not None:
        return nominal_gain * (actuator_mm - zero_actuator_mm)
    return None


# ----------------------------------------------------------------------------- speed


@dataclass(frozen=True)
class SpeedSample:
    commanded_hz: float
    encoder_hz: float
    tachometer_hz: float | None = None

    @staticmethod
    def _pct(measured: float, commanded: float) -> float:
        return 100.0 * (measured - commanded) / commanded

    @property
    def encoder_error_pct(self) -> float:
        return self._pct(self.encoder_hz, self.commanded_hz)

    @property
    def tachometer_error_pct(self) -> float | None:
        if self.tachometer_hz is None:
            return None
        return self._pct(self.tachometer_hz, self.commanded_hz)

    @property
    def worst_error_pct(self) -> float:
        """The larger (in magnitude) of the encoder's and the tachometer's error, signed."""
        errors = [self.encoder_error_pct]
        if self.tachometer_error_pct is not None:
            errors.append(self.tachometer_error_pct)
        return max(errors, key=abs)


@dataclass(frozen=True)
class SpeedCheck:
    samples: tuple[SpeedSample, ...]
    tolerance_pct: float = DEFAULT_SPEED_TOLERANCE_PCT

    @property
    def worst_error_pct(self) -> float:
        return max((s.worst_error_pct for s in self.samples), key=abs, default=0.0)

    @property
    def flagged(self) -> tuple[SpeedSample, ...]:
        return tuple(s for s in self.samples if abs(s.worst_error_pct) > self.tolerance_pct)

    @property
    def passed(self) -> bool:
        return bool(self.samples) and not self.flagged

    def problems(self) -> list[str]:
        out = []
        for s in self.flagged:
            source = "encoder"
            if s.tachometer_error_pct is not None and abs(s.tachometer_error_pct) > abs(
                s.encoder_error_pct
            ):
                source = "tachometer"
            out.append(
                f"speed {s.commanded_hz:g} Hz: {source} error {s.worst_error_pct:+.1f} % "
                f"exceeds {self.tolerance_pct:g} %"
            )
        return out


def check_speed(
    samples: Sequence[SpeedSample], tolerance_pct: float = DEFAULT_SPEED_TOLERANCE_PCT
) -> SpeedCheck:
    if any(s.commanded_hz <= 0 for s in samples):
        raise CalibrationError("a speed check needs commanded speeds above 0 Hz.")
    return SpeedCheck(tuple(samples), tolerance_pct)


# ----------------------------------------------------------------------------- zero


@dataclass
class ZeroSearch:
    """Steps toward the flush position by secant steps on the gauge reading.

    The gauge cannot read below 0 (the tip hides in the cartridge), so the search aims just
    above flush (`approach_mm`), where readings are still informative, and extrapolates the last
    step down to 0. A reading of 0 means the step went too far: it backs off halfway. Two or
    three readings usually suffice, so a person can do it with a hand gauge too.
    """

    min_mm: float
    max_mm: float
    start_mm: float
    approach_mm: float = 0.05
    done_within_mm: float = 0.01
    nominal_gain: float = 1.0
    max_readings: int = 8
    readings: list[Point] = field(default_factory=list)

    def _out(self) -> list[Point]:
        return [p for p in self.readings if p.gauge_mm > 0]

    def _line(self) -> tuple[float, float] | None:
        """(offset, gain) through the readings that saw the tip, if they span two positions."""
        out = self._out()
        if len({p.actuator_mm for p in out}) >= 2:
            offset, gain = least_squares(out)
            if gain > 0:
                return offset, gain
        return None

    def _slope(self) -> float:
        line = self._line()
        return line[1] if line else self.nominal_gain

    def next_actuator_mm(self) -> float | None:
        """Where to read next, or None when the search is done."""
        if not self.readings:
            return self.start_mm
        if len(self.readings) >= self.max_readings:
            return None
        out = self._out()
        last = self.readings[-1]
        if not out:  # never seen the tip: go further out
            if last.actuator_mm >= self.max_mm:
                raise CalibrationError(
                    f"the gauge reads 0 mm even at full travel ({self.max_mm:.3f} mm): the "
                    "needle never leaves the cartridge. Check the cartridge and the gauge."
                )
            return self.max_mm
        nearest = min(out, key=lambda p: abs(p.gauge_mm - self.approach_mm))
        if last.gauge_mm <= 0:  # overshot into the cartridge: back off halfway
            return (last.actuator_mm + nearest.actuator_mm) / 2
        if abs(nearest.gauge_mm - self.approach_mm) <= self.done_within_mm and len(out) >= 2:
            return None
        target = nearest.actuator_mm - (nearest.gauge_mm - self.approach_mm) / self._slope()
        return min(max(target, self.min_mm), self.max_mm)

    def add(self, point: Point) -> None:
        self.readings.append(point)

    def undo(self) -> None:
        if self.readings:
            self.readings.pop()

    @property
    def zero_actuator_mm(self) -> float:
        """Flush position: where the line through the readings that saw the tip reaches 0."""
        out = self._out()
        if not out:
            raise CalibrationError("the zero search saw no protrusion; no zero to report.")
        line = self._line()
        if line is None:
            return out[-1].actuator_mm - out[-1].gauge_mm / self.nominal_gain
        offset, gain = line
        return -offset / gain
