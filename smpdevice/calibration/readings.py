"""What a person or a gauge reports during calibration, checked: the typed value parsed,
refused when it is not a number, out of range, a likely factor-10 typo, or not growing with the
actuator (each with its own error type), and the (actuator, gauge) `Point` it becomes."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import NamedTuple

from smpdevice.control.calibration import GAIN_RANGE, CalibrationError

MIN_FIT_POINTS = 3  # two points always fit exactly; a third is what makes a residual mean something
# A typed value 6.25x..16x (or 1/16..1/6.25) of the expected one is taken as a slipped decimal.
TYPO_RATIO_LOW = 6.25
TYPO_RATIO_HIGH = 16.0
# Between two zero readings the tip moves at most this many times the actuator (twice the
# largest gain a calibration may hold), plus what a person reads off a dial: more is a slip.
ZERO_STEEP_FACTOR = 2 * GAIN_RANGE[1]
ZERO_STEEP_ALLOWANCE_MM = 0.05


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
    if not _NUMBER.fullmatch(cleaned):
        shown = repr(raw) if raw else "an empty entry"
        example = "120" if unit == "Hz" else "0.52"
        raise NotANumberError(f"{shown} is not a number. Enter the {what} in {unit}, e.g. "
                              f"{example}")
    return float(cleaned.replace(",", "."))


def check_typo(value: float, expected: float | None, *, what: str, unit: str) -> None:
    """Refuse `value` if it is about 10x or 1/10 of `expected` (a slipped decimal point)."""
    if expected is None or expected <= 0 or value <= 0:
        return
    ratio = value / expected
    again = f"Read the {what.split()[0]} again and re-enter."  # the gauge, the tachometer
    if TYPO_RATIO_LOW <= ratio <= TYPO_RATIO_HIGH:
        hint = value / 10
        raise LikelyTypoError(
            f"{what} {value:g} {unit} is about 10x the expected ~{expected:.3f} {unit}. "
            f"Did you mean {hint:g}? {again}",
            suggestion=hint,
        )
    if 1 / TYPO_RATIO_HIGH <= ratio <= 1 / TYPO_RATIO_LOW:
        hint = value * 10
        raise LikelyTypoError(
            f"{what} {value:g} {unit} is about 1/10 of the expected ~{expected:.3f} {unit}. "
            f"Did you mean {hint:g}? {again}",
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


def check_between(points: Sequence[Point], index: int, new: Point) -> None:
    """Refuse a reading of point `index` (0-based) read again that does not lie between its
    neighbours': above the previous point's, below the next one's (the needle extends further
    at each)."""
    prev = points[index - 1] if index > 0 else None
    nxt = points[index + 1] if index + 1 < len(points) else None
    for near, side, out_of_order in (
            (prev, "above the previous", prev is not None and new.gauge_mm <= prev.gauge_mm),
            (nxt, "below the next", nxt is not None and new.gauge_mm >= nxt.gauge_mm)):
        if near is not None and out_of_order:
            raise NonMonotonicError(
                f"reading {new.gauge_mm:.3f} mm at actuator {new.actuator_mm:.3f} mm is not "
                f"{side} point's {near.gauge_mm:.3f} mm (actuator {near.actuator_mm:.3f} mm): "
                "the reading must grow with the actuator. Read the gauge again (a slipped "
                "decimal point?).", point_index=index + 1)


def check_zero_reading(readings: Sequence[Point], new: Point) -> None:
    """Refuse a zero-step reading that shrinks as the actuator grows against any reading so
    far, whatever the order they were asked in: the tip only comes out further as the actuator
    goes out (0 = inside), and at most ZERO_STEEP_FACTOR times as far (plus a dial's reading
    allowance). Equal readings pass (0 and 0 inside; a gauge's last digit)."""
    for i, p in enumerate(readings, start=1):
        further = new.actuator_mm > p.actuator_mm and new.gauge_mm < p.gauge_mm
        nearer = new.actuator_mm < p.actuator_mm and new.gauge_mm > p.gauge_mm
        apart_mm = abs(new.actuator_mm - p.actuator_mm)
        steep = abs(new.gauge_mm - p.gauge_mm) > (ZERO_STEEP_FACTOR * apart_mm
                                                  + ZERO_STEEP_ALLOWANCE_MM)
        if not (further or nearer or steep):
            continue
        back = len(readings) - i + 1  # each r takes back the last reading and asks it again
        redo = ("enter r to read it again" if back == 1 else
                f"enter r {back} times (once at each prompt) to go back to it")
        why = (f"{'below' if further else 'above'} reading {i}'s {p.gauge_mm:g} mm at "
               f"{p.actuator_mm:.3f} mm, further {'in' if further else 'out'}: the tip comes "
               "out further as the actuator goes out" if further or nearer else
               f"{abs(new.gauge_mm - p.gauge_mm):.3f} mm from reading {i}'s {p.gauge_mm:g} mm "
               f"with the actuator only {apart_mm:.3f} mm away: the tip moves at most "
               f"{ZERO_STEEP_FACTOR:g}x the actuator")
        raise NonMonotonicError(
            f"reading {new.gauge_mm:g} mm at actuator {new.actuator_mm:.3f} mm is {why}. Read "
            f"again (a slipped decimal point?); if reading {i} was the wrong one, {redo}.",
            point_index=len(readings) + 1,
        )


# ----------------------------------------------------------------------------- fit


