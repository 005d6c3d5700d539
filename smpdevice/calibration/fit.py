"""The depth fit: `gauge_mm = offset_mm + gain * actuator_mm` by least squares, refused when
the points are not monotonic or the worst residual exceeds a tolerance, naming the point to
redo. Pure functions, no I/O: the workflow feeds them readings."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from smpdevice.calibration.readings import (
    MIN_FIT_POINTS,
    FitError,
    NonMonotonicError,
    Point,
)
from smpdevice.control.calibration import Calibration, CalibrationError

DEFAULT_FIT_TOLERANCE_MM = 0.02


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


SAME_FIT = 1e-6  # a refit of the same floats gives the same numbers; JSON keeps them exactly


def check_fit_of_points(calibration: Calibration) -> None:
    """CalibrationError when the offset or gain that would drive the needle is not the
    least-squares fit of the calibration's own points: a row edited by hand (a gain changed
    from 0.9455 to 0.6 drove every depth a third off; review 14). A calibration made in code
    without points has nothing to check against."""
    if len(calibration.points) < 2:
        return
    try:
        fitted = least_squares([Point(float(a), float(g)) for a, g in calibration.points])
    except FitError as exc:
        raise CalibrationError(f"its points cannot be fitted ({exc})") from None
    for name, mine in zip(("offset_mm", "gain"), fitted, strict=True):
        stored = getattr(calibration, name)
        if abs(mine - stored) > SAME_FIT:
            raise CalibrationError(f"its {name} {stored!r} is not the fit of its own points "
                                   f"({mine:.6f}): it was changed after the fit")


def check_stored(calibration: Calibration) -> None:
    """CalibrationError unless `calibration` may be (or stay) in a calibration store: it carries
    the points its offset and gain were fitted from (a run, guided or automatic, records at
    least MIN_FIT_POINTS) and they are their fit. A row whose points were emptied or cut to one
    or two (review 16: gain edited to 0.6 with `points: []`) has nothing left to check
    against, so it is damaged, never used; a calibration made in code without points may still
    be installed on a controller, but is never stored."""
    count = len(calibration.points)
    if count < MIN_FIT_POINTS:
        raise CalibrationError(
            f"it holds {count} fit point{'' if count == 1 else 's'}, fewer than the "
            f"{MIN_FIT_POINTS} every calibration run records: its offset and gain cannot be "
            "checked against the points they were fitted from")
    check_fit_of_points(calibration)


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


