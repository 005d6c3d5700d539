"""Speed and zero: `check_speed` compares commanded speed with the encoder (and a tachometer,
if any); `ZeroSearch` steps the actuator toward the position where the tip is flush with the
cartridge (the fit's `zero_actuator_mm` is the precise value, the search a cross-check)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from smpdevice.calibration.fit import least_squares
from smpdevice.calibration.readings import FitError, Point, check_zero_reading
from smpdevice.control.calibration import CalibrationError

DEFAULT_SPEED_TOLERANCE_PCT = 3.0


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
            if last.actuator_mm >= self.max_mm:  # what was measured: the run fails (exit 1)
                raise FitError(
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

    def expected_mm(self, actuator_mm: float) -> float | None:
        """What the line through the readings that saw the tip predicts at `actuator_mm` (for
        the factor-10 check of a typed reading); None before two positions saw it."""
        line = self._line()
        if line is None:
            return None
        predicted = line[0] + line[1] * actuator_mm
        return predicted if predicted > 0 else None

    def check(self, point: Point) -> None:
        """NonMonotonicError (an entry a person types again) if `point` shrinks as the
        actuator grows against any reading so far (`readings.check_zero_reading`)."""
        check_zero_reading(self.readings, point)

    def add(self, point: Point) -> None:
        self.readings.append(point)

    def undo(self) -> None:
        if self.readings:
            self.readings.pop()

    @property
    def zero_actuator_mm(self) -> float:
        """Flush position: where the line through the readings that saw the tip reaches 0,
        kept between the furthest-out position read inside (0) and the nearest-in one that
        saw the tip: a line bent by one bad reading never puts flush where the tip was read
        inside, nor past where it was read out."""
        out = self._out()
        if not out:
            raise FitError("the zero search saw no protrusion; no zero to report.")
        line = self._line()
        if line is None:
            estimate = out[-1].actuator_mm - out[-1].gauge_mm / self.nominal_gain
        else:
            estimate = -line[0] / line[1]
        high = min(p.actuator_mm for p in out)
        inside = [p.actuator_mm for p in self.readings if p.gauge_mm <= 0]
        low = max(inside, default=-math.inf)
        return min(max(estimate, low), high) if low <= high else estimate
