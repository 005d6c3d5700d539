"""The regulator's two bench figures (21 CFR 878.4430, powered microneedling pens), for the pen
at hand. Pure functions, no I/O: the workflow feeds them readings.

- **Needle penetration depth accuracy**: the check readings taken through the NEW calibration
  after the fit (commanded true depth against the gauge), never the points the fit came from:
  mean error (bias), sample standard deviation (spread) and maximum error, over N readings.
- **Puncture rate accuracy**: per set speed, the punctures the pen counted per second (its
  stroke counter against its own uptime: the rate every frame allows) against the set
  speed in Hz. One puncture is one needle stroke; the speed check runs at 100 % duty, so the set
  speed in Hz is punctures per second.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from smpdevice.calibration.speed import DEFAULT_SPEED_TOLERANCE_PCT
from smpdevice.control.calibration import CalibrationError

# SPIN_UP_S is imported where it is used: its module is the controller's (states, the link,
# structlog), which a service client (`smp calibrate --service`) formatting a report never
# loads otherwise (issue 13: start-up).

DEFAULT_DEPTH_MEAN_MAX_MM = 0.01  # |mean error|: a bias this size is half the default tolerance
DEFAULT_DEPTH_SD_MAX_MM = 0.01  # spread of the check errors
MIN_DEPTH_CHECKS = 3  # a standard deviation over fewer says nothing
MAX_COUNT_WINDOW_S = 10.0  # the longest the motor runs at one speed to count punctures
COUNT_MARGIN = 1.25  # spin a quarter longer than one puncture needs: frames end a bit early
COUNTER_MODULUS = 2**32  # the pen's stroke counter is a uint32 and wraps


# ----------------------------------------------------------------------------- depth


@dataclass(frozen=True)
class DepthAccuracy:
    """Errors (measured - commanded) of N check readings. `max_error_mm` is signed: the error
    largest in magnitude."""

    n: int
    mean_error_mm: float
    sd_mm: float
    max_error_mm: float

    def problems(self, *, mean_max_mm: float, sd_max_mm: float, max_max_mm: float,
                 min_n: int = MIN_DEPTH_CHECKS) -> list[str]:
        out = []
        if self.n < min_n:
            out.append(f"depth accuracy: only {self.n} check readings, at least {min_n} are "
                       "needed. Check the verify depths against the actuator travel.")
        for what, value, bound in (
            ("mean error", self.mean_error_mm, mean_max_mm),
            ("standard deviation", self.sd_mm, sd_max_mm),
            ("max error", self.max_error_mm, max_max_mm),
        ):
            if abs(value) > bound:
                out.append(f"depth accuracy: {what} {value:+.4f} mm over {self.n} check "
                           f"readings is outside the bound {bound:.4f} mm. Redo the calibration "
                           "with a re-seated gauge; if it repeats, service the actuator.")
        return out


def depth_accuracy(checks: Sequence[tuple[float, float]]) -> DepthAccuracy:
    """Figures of (commanded_mm, measured_mm) check readings; at least two (for a spread)."""
    pairs = [(float(c), float(m)) for c, m in checks]
    if len(pairs) < 2:
        raise CalibrationError(f"depth accuracy needs at least 2 check readings, got "
                               f"{len(pairs)}")
    if not all(math.isfinite(c) and math.isfinite(m) for c, m in pairs):
        raise CalibrationError("depth accuracy: a check reading is not a finite number")
    errors = [m - c for c, m in pairs]
    return DepthAccuracy(
        n=len(errors),
        mean_error_mm=statistics.fmean(errors),
        sd_mm=statistics.stdev(errors),
        max_error_mm=max(errors, key=abs),
    )


# ----------------------------------------------------------------------------- puncture rate


@dataclass(frozen=True)
class RatePoint:
    """One set speed against the punctures counted per second over `window_s`."""

    set_hz: float
    measured_hz: float
    window_s: float
    punctures: int

    @property
    def error_hz(self) -> float:
        return self.measured_hz - self.set_hz

    @property
    def error_pct(self) -> float:
        return 100.0 * self.error_hz / self.set_hz

    @property
    def resolution_hz(self) -> float:
        """One puncture more or less over the window (a conservative bound of the count)."""
        return 1.0 / self.window_s

    @property
    def resolution_pct(self) -> float:
        return 100.0 * self.resolution_hz / self.set_hz


@dataclass(frozen=True)
class PunctureRateCheck:
    points: tuple[RatePoint, ...]
    tolerance_pct: float

    @property
    def worst_error_pct(self) -> float:
        return max((p.error_pct for p in self.points), key=abs, default=0.0)

    @property
    def passed(self) -> bool:
        return bool(self.points) and not self.problems()

    def problems(self) -> list[str]:
        if not self.points:
            return ["puncture rate accuracy: no set speed was measured"]
        out = []
        for p in self.points:
            if p.resolution_pct > self.tolerance_pct:
                out.append(
                    f"puncture rate at {p.set_hz:g} Hz: {p.punctures} punctures in "
                    f"{p.window_s:.2f} s resolve only +/-{p.resolution_pct:.1f} %, coarser than "
                    f"the bound {self.tolerance_pct:g} %. {self._what_helps(p)}"
                )
            elif abs(p.error_pct) > self.tolerance_pct:
                out.append(
                    f"puncture rate at {p.set_hz:g} Hz: the pen counted {p.measured_hz:.2f} "
                    f"punctures/s, error {p.error_hz:+.2f} Hz ({p.error_pct:+.1f} %) exceeds "
                    f"{self.tolerance_pct:g} %. Service the motor and cam."
                )
        return out


    def _what_helps(self, p: RatePoint) -> str:
        """A longer spin only while the longest one (MAX_COUNT_WINDOW_S, less its spin-up)
        could resolve the bound; past that, only a looser bound can."""
        from smpdevice.control.speed_check import SPIN_UP_S

        longest_window_s = MAX_COUNT_WINDOW_S - SPIN_UP_S
        if 100.0 / (longest_window_s * p.set_hz) <= self.tolerance_pct:
            return "Raise --speed-tolerance-pct or spin longer (--spin-seconds)."
        return (f"No spin can count that finely (the longest lasts {MAX_COUNT_WINDOW_S:g} s): "
                f"use the default --speed-tolerance-pct ({DEFAULT_SPEED_TOLERANCE_PCT:g} %) or "
                "a looser bound.")


def puncture_rate_hz(frames: Sequence[tuple[int, int]]) -> tuple[float, float, int]:
    """(punctures per second, window s, punctures counted) from (uptime_ms, stroke counter)
    telemetry: the rate every frame allows, against the pen's clock. Using every frame, it
    resolves the rate far finer than first-and-last would, and never worse."""
    if len(frames) < 3:
        raise CalibrationError(f"cannot count punctures from {len(frames)} telemetry frames; "
                               "at least 3 are needed (spin longer)")
    times_s: list[float] = []
    counts: list[int] = []
    base_count = frames[0][1]
    wraps = 0
    prev = base_count
    for uptime_ms, count in frames:
        if count < prev and prev - count > COUNTER_MODULUS // 2:
            wraps += 1  # the uint32 counter wrapped
        prev = count
        times_s.append(uptime_ms / 1000.0)
        counts.append(count + wraps * COUNTER_MODULUS - base_count)
    window_s = times_s[-1] - times_s[0]
    if window_s <= 0:
        raise CalibrationError("cannot count punctures: the telemetry frames span no time")
    return _rate_within_one_puncture(times_s, counts), window_s, counts[-1] - counts[0]


def _rate_within_one_puncture(times_s: list[float], counts: list[int]) -> float:
    """The middle of the rates every frame allows. A whole-stroke counter read at t_i and t_j
    says the rate lies strictly within (c_j - c_i ± 1) / (t_j - t_i); pairs with the first and
    with the last frame narrow the first-to-last interval (2 punctures wide) from both ends, so
    the middle is within one puncture over the window of the true rate, and usually far closer.
    (A least-squares slope can be 1.5 punctures off: review 15a.) Frames that contradict each
    other (a counter read late against its stamp) fall back to the least-squares slope."""
    t0, c0, t1, c1 = times_s[0], counts[0], times_s[-1], counts[-1]
    low, high = -math.inf, math.inf
    for t, c in zip(times_s, counts, strict=True):
        if t > t0:
            low, high = max(low, (c - c0 - 1) / (t - t0)), min(high, (c - c0 + 1) / (t - t0))
        if t < t1:
            low, high = max(low, (c1 - c - 1) / (t1 - t)), min(high, (c1 - c + 1) / (t1 - t))
    if low < high:
        return (low + high) / 2
    mt, mc = statistics.fmean(times_s), statistics.fmean(counts)
    sxx = sum((t - mt) ** 2 for t in times_s)
    return sum((t - mt) * (c - mc) for t, c in zip(times_s, counts, strict=True)) / sxx


def count_window_s(set_hz: float, tolerance_pct: float, spin_s: float) -> float:
    """How long to spin at `set_hz` so one puncture is within the bound: at least `spin_s`,
    longer at low speeds, at most MAX_COUNT_WINDOW_S."""
    needed_s = COUNT_MARGIN * 100.0 / (tolerance_pct * set_hz)
    return min(max(spin_s, needed_s), max(spin_s, MAX_COUNT_WINDOW_S))


def count_punctures(set_hz: float, duration_s: float,
                    frames: list[tuple[int, int, bool]]) -> RatePoint:
    """The punctures per second a spin's (uptime_ms, strokes, needle_running) frames show,
    after the spin-up (as the encoder mean skips it). The service counts with it too."""
    from smpdevice.control.speed_check import SPIN_UP_S

    running = [(u, s) for u, s, on in frames if on]
    if running:
        start_ms = running[0][0] + 1000 * min(SPIN_UP_S, duration_s / 2)
        running = [f for f in running if f[0] >= start_ms]
    measured, window_s, punctures = puncture_rate_hz(running)
    return RatePoint(set_hz, measured, window_s, punctures)
