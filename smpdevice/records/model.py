"""Pass-log records as values: outcomes, per-pass figures, sessions and passes. No I/O.

The storage backends (`smpdevice.records.sqlite`) build these from the chained record bodies
(`session_from_bodies`, `pass_from_bodies`); the exports and the CLI read them.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from smpdevice.errors import SmpError

# The pen's stroke and impression counters are taken to be unsigned 32-bit and may wrap.
COUNTER_MODULUS = 2**32


class PassLogError(SmpError):
    """The pass log cannot be read or written. The controller must stop the needle."""

    exit_code = 3


class PassOutcome(StrEnum):
    """How a pass ended."""

    completed = "completed"  # the plan's duration or impressions were reached
    stopped = "stopped"  # the technician stopped it (footswitch, Ctrl-C, stop command)
    fault = "fault"  # the pen latched a fault: `fault_code` and `fault_names` say which
    estop = "estop"
    link_lost = "link_lost"  # the host lost the pen (cable, lease); the pen stopped itself
    controller_crashed = "controller_crashed"  # written by recovery on the next open
    log_error = "log_error"  # the log could not record progress, so the needle was stopped
    footswitch_released = "footswitch_released"  # footswitch required: the pedal went up


class ExactSum:
    """A running float sum without rounding drift (Shewchuk's partials, as `math.fsum`)."""

    __slots__ = ("_partials",)

    def __init__(self, start: float = 0.0) -> None:
        self._partials: list[float] = [start] if start else []

    def add(self, x: float) -> None:
        partials, i = self._partials, 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low:
                partials[i] = low
                i += 1
            x = high
        partials[i:] = [x]

    def __float__(self) -> float:
        return math.fsum(self._partials)

    def __copy__(self) -> ExactSum:
        clone = ExactSum()
        clone._partials = list(self._partials)
        return clone


_WRAP_WINDOW = 2**24  # far more than one telemetry interval of strokes at any speed


def _counter_step(last: int, now: int) -> int:
    if now >= last:
        return now - last
    if last >= COUNTER_MODULUS - _WRAP_WINDOW and now < _WRAP_WINDOW:
        return now + COUNTER_MODULUS - last  # a real u32 wrap
    return now  # the pen restarted its counters (reboot): count from its new zero


@dataclass
class PassStats:
    """Aggregates of a pass's telemetry, updated one sample at a time.

    `add(depth_mm, speed_hz)` per telemetry sample; `counters(strokes, impressions)` with the
    pen's running counters: the first values seen are the base, so call it once before the
    needle starts (or the strokes before the first sample are not counted).

    Honest figures: sums are exact (`ExactSum`) and a mean is kept within [min, max], where the
    true mean always lies. Two speeds: `speed_mean_hz` over every sample, so a duty-weighted
    mean (the needle rests between bursts), and `speed_burst_hz` over the samples where the
    motor turns (speed > 0), comparable with the speed setpoint.
    """

    samples: int = 0
    depth_min_mm: float | None = None
    depth_max_mm: float | None = None
    strokes: int = 0
    impressions: int = 0
    burst_samples: int = 0
    depth_sum: ExactSum = field(default_factory=ExactSum, repr=False)
    speed_sum: ExactSum = field(default_factory=ExactSum, repr=False)
    burst_sum: ExactSum = field(default_factory=ExactSum, repr=False)
    last_counters: tuple[int, int] | None = field(default=None, repr=False)

    def add(self, depth_mm: float, speed_hz: float) -> None:
        self.samples += 1
        self.depth_sum.add(depth_mm)
        self.speed_sum.add(speed_hz)
        if speed_hz > 0:
            self.burst_samples += 1
            self.burst_sum.add(speed_hz)
        if self.depth_min_mm is None or depth_mm < self.depth_min_mm:
            self.depth_min_mm = depth_mm
        if self.depth_max_mm is None or depth_mm > self.depth_max_mm:
            self.depth_max_mm = depth_mm

    def counters(self, stroke_count: int, impression_count: int) -> None:
        """Add what the pen's running counters moved since the last call.

        A counter that went backwards either wrapped (u32: only from near the top to near the
        bottom) or restarted from 0 because the pen rebooted (a brownout mid-pass): then only
        the new value counts. Treating a restart as a wrap would record ~4.3 billion strokes.
        """
        if self.last_counters is None:
            self.last_counters = (stroke_count, impression_count)
        last_strokes, last_impressions = self.last_counters
        self.strokes += _counter_step(last_strokes, stroke_count)
        self.impressions += _counter_step(last_impressions, impression_count)
        self.last_counters = (stroke_count, impression_count)

    @property
    def depth_mean_mm(self) -> float | None:
        if not self.samples or self.depth_min_mm is None or self.depth_max_mm is None:
            return None
        mean = float(self.depth_sum) / self.samples  # exact sum; one rounding in the division
        return min(max(mean, self.depth_min_mm), self.depth_max_mm)

    @property
    def speed_mean_hz(self) -> float | None:
        return float(self.speed_sum) / self.samples if self.samples else None

    @property
    def speed_burst_hz(self) -> float | None:
        return float(self.burst_sum) / self.burst_samples if self.burst_samples else None

    def __copy__(self) -> PassStats:
        return PassStats(self.samples, self.depth_min_mm, self.depth_max_mm, self.strokes,
                         self.impressions, self.burst_samples, copy.copy(self.depth_sum),
                         copy.copy(self.speed_sum), copy.copy(self.burst_sum),
                         self.last_counters)

    def figures(self) -> dict[str, Any]:
        """The figures a pass record keeps."""
        return {
            "samples": self.samples,
            "depth_min_mm": self.depth_min_mm,
            "depth_mean_mm": self.depth_mean_mm,
            "depth_max_mm": self.depth_max_mm,
            "speed_mean_hz": self.speed_mean_hz,
            "speed_burst_hz": self.speed_burst_hz,
            "burst_samples": self.burst_samples,
            "strokes": self.strokes,
            "impressions": self.impressions,
        }

    @classmethod
    def from_figures(cls, figures: dict[str, Any]) -> PassStats:
        samples = int(figures.get("samples") or 0)
        bursts = int(figures.get("burst_samples") or 0)
        return cls(
            samples=samples,
            depth_min_mm=figures.get("depth_min_mm"),
            depth_max_mm=figures.get("depth_max_mm"),
            strokes=int(figures.get("strokes") or 0),
            impressions=int(figures.get("impressions") or 0),
            burst_samples=bursts,
            depth_sum=ExactSum((figures.get("depth_mean_mm") or 0.0) * samples),
            speed_sum=ExactSum((figures.get("speed_mean_hz") or 0.0) * samples),
            burst_sum=ExactSum((figures.get("speed_burst_hz") or 0.0) * bursts),
        )


@dataclass(frozen=True)
class PassRecord:
    """One pass as logged. `outcome` is None while the pass is in progress."""

    pass_id: str
    session_id: str
    index: int
    zone: str
    depth_mm: float
    speed_hz: float
    duty_pct: float
    period_ms: float
    started_at: str
    ended_at: str | None
    outcome: str | None
    fault_code: int | None
    fault_names: list[str]
    recovered: bool
    samples: int
    depth_min_mm: float | None
    depth_mean_mm: float | None
    depth_max_mm: float | None
    speed_mean_hz: float | None  # duty-weighted: over every sample, rests included
    strokes: int
    impressions: int
    number: int = 0  # 1, 2, ...: the pass's place in its session, in the order passes began
    speed_burst_hz: float | None = None  # while the motor turns; None in older records
    # None: written before the log recorded it (schema 2 logs): unknown, neither true nor false.
    simulated: bool | None = None
    # {calibration_id, offset_mm, gain} the pass was played on (`PASS_CALIBRATION_KEYS`);
    # None in records written before passes named it (rev 20): the opening's or resumption's
    calibration: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SessionRecord:
    """One session as logged; `passes` is filled by `PassLog.session()` only."""

    session_id: str
    opened_at: str
    technician: str
    client_ref: str
    session_kind: str
    pen_serial: str
    firmware_version: str
    calibration_id: str
    profile_hash: str
    screening: dict[str, Any]
    closed_at: str | None
    summary: dict[str, Any] | None
    pass_count: int
    passes: list[PassRecord] = field(default_factory=list)
    simulated: bool | None = None  # None: an older log that did not record it (unknown)
    envelope: dict[str, Any] | None = None  # {"sha256", "zones"} in force, when recorded
    key_fingerprint: str | None = None  # the installation key that signs its heads
    profile: dict[str, Any] | None = None  # the profile's content, when recorded (resume)
    footswitch: str | None = None  # the station's footswitch mode, when recorded

    @property
    def envelope_sha256(self) -> str | None:
        return (self.envelope or {}).get("sha256")


SESSION_FIELDS = ("session_id", "client_ref", "session_kind", "technician", "pen_serial",
                  "firmware_version", "calibration_id", "profile_hash", "envelope_sha256")
PASS_FIELDS = ("pass_id", "pass_number", "zone", "depth_mm", "speed_hz", "duty_pct", "period_ms",
               "started_at", "ended_at", "outcome", "fault_code", "fault_names", "recovered",
               "samples", "depth_min_mm", "depth_mean_mm", "depth_max_mm", "speed_burst_hz",
               "speed_mean_hz", "strokes", "impressions", "simulated")
# One exported row per pass, with its session's identity: the same columns in JSONL and CSV.
EXPORT_FIELDS = SESSION_FIELDS + PASS_FIELDS


def canonical(value: Any) -> str:
    """The one JSON text of a record body that its hash covers."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times in the pass log must be timezone-aware (e.g. datetime.now(UTC))")
    return moment.isoformat()


def session_from_bodies(sid: str, o: dict[str, Any], c: dict[str, Any] | None,
                        count: int) -> SessionRecord:
    """A session from its opening body `o`, its closing body `c` (None while open)."""
    return SessionRecord(
        session_id=sid, opened_at=o["opened_at"], technician=o["technician"],
        client_ref=o["client_ref"], session_kind=o["session_kind"], pen_serial=o["pen_serial"],
        firmware_version=o["firmware_version"], calibration_id=o["calibration_id"],
        profile_hash=o["profile_hash"], screening=o["screening"],
        closed_at=c["closed_at"] if c else None, summary=c["summary"] if c else None,
        pass_count=count, simulated=o.get("simulated"), envelope=o.get("envelope"),
        key_fingerprint=o.get("key_fingerprint"), profile=o.get("profile"),
        footswitch=o.get("footswitch"),
    )


_NO_FIGURES: dict[str, Any] = PassStats().figures()


def pass_from_bodies(pass_id: str, sid: str, b: dict[str, Any],
                     e: dict[str, Any] | None, number: int = 0) -> PassRecord:
    """A pass from its begin body `b` and its end body `e` (None while in progress)."""
    e = e or {}
    figures = e.get("stats") or _NO_FIGURES
    return PassRecord(
        pass_id=pass_id, session_id=sid, index=b["index"], zone=b["zone"],
        depth_mm=b["depth_mm"], speed_hz=b["speed_hz"], duty_pct=b["duty_pct"],
        period_ms=b["period_ms"], started_at=b["started_at"], ended_at=e.get("ended_at"),
        outcome=e.get("outcome"), fault_code=e.get("fault_code"),
        fault_names=e.get("fault_names") or [], recovered=bool(e.get("recovered")),
        samples=figures["samples"], depth_min_mm=figures["depth_min_mm"],
        depth_mean_mm=figures["depth_mean_mm"], depth_max_mm=figures["depth_max_mm"],
        speed_mean_hz=figures["speed_mean_hz"], strokes=figures["strokes"],
        impressions=figures["impressions"], simulated=b.get("simulated"), number=number,
        speed_burst_hz=figures.get("speed_burst_hz"), calibration=b.get("calibration"),
    )


# A `pass_begin`'s calibration, the pen's as armed: each pass names the one it drove (rev 20).
PASS_CALIBRATION_KEYS = ("calibration_id", "offset_mm", "gain")


def checked_pass_calibration(calibration: Mapping[str, Any]) -> dict[str, Any]:
    """`calibration` as a `pass_begin` keeps it: exactly `PASS_CALIBRATION_KEYS`, its id
    non-empty text, offset_mm and gain finite numbers; ValueError before anything is written."""
    if not isinstance(calibration, Mapping) or set(calibration) != set(PASS_CALIBRATION_KEYS) \
            or not isinstance(calibration["calibration_id"], str) \
            or not calibration["calibration_id"] or not all(
                _number(calibration[k]) and math.isfinite(calibration[k])
                for k in ("offset_mm", "gain")):
        raise ValueError(f"calibration must map {', '.join(PASS_CALIBRATION_KEYS)} to its id "
                         f"(text) and two finite numbers, not {str(calibration)[:80]!r}")
    return {key: calibration[key] for key in PASS_CALIBRATION_KEYS}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def begin_extras(pen_counters: Mapping[str, int] | None,
                 calibration: Mapping[str, Any] | None) -> dict[str, Any]:
    """A `pass_begin`'s optional fields, checked, only when given (older hashes unchanged)."""
    extras: dict[str, Any] = {}
    if pen_counters is not None:
        extras["pen_counters"] = checked_pen_counters(pen_counters)
    if calibration is not None:
        extras["calibration"] = checked_pass_calibration(calibration)
    return extras


# The pen's figures a `pass_begin` keeps as the pass begins (the pen's cumulative counters,
# its uptime, the host's lease): a resume after a host crash counts that pass's dots from them.
PEN_COUNTER_KEYS = ("strokes", "impressions", "uptime_ms", "lease_ms")


def checked_pen_counters(counters: Mapping[str, int]) -> dict[str, int]:
    """`counters` as the record keeps them: exactly `PEN_COUNTER_KEYS`, each a whole number
    from 0 to 2**32 - 1 (the pen's u32 fields); ValueError otherwise, before anything is
    written."""
    if not isinstance(counters, Mapping) or set(counters) != set(PEN_COUNTER_KEYS):
        raise ValueError(f"pen_counters must map exactly {', '.join(PEN_COUNTER_KEYS)} to "
                         f"whole numbers, not {counters!r}")
    for key in PEN_COUNTER_KEYS:
        value = counters[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
            raise ValueError(f"pen_counters[{key!r}] = {value!r}: give a whole number from 0 "
                             f"to {2**32 - 1}")
    return {key: int(counters[key]) for key in PEN_COUNTER_KEYS}


# A pass's figures (`PassStats.figures`): the counts, and the measures (None without samples).
# Checkpoints written before burst speeds were kept lack the last two.
_FIGURE_COUNTS = ("samples", "strokes", "impressions")
_FIGURE_MEASURES = ("depth_min_mm", "depth_mean_mm", "depth_max_mm", "speed_mean_hz")
_FIGURE_BURSTS = ("burst_samples", "speed_burst_hz")


def checked_figures(figures: Any) -> dict[str, Any]:
    """`figures` as a pass record keeps them (`PassStats.figures`), when they are such figures:
    the same keys, whole non-negative counts, finite measures present exactly when there were
    samples, min <= mean <= max. ValueError naming the first that is not (a damaged or edited
    checkpoint, which recovery must not sign into the chain)."""
    if not isinstance(figures, dict):
        raise ValueError(f"not a mapping of figures: {str(figures)[:60]!r}")
    keys = set(figures)
    required = {*_FIGURE_COUNTS, *_FIGURE_MEASURES}
    if not required <= keys or keys - required not in (set(), set(_FIGURE_BURSTS)):
        raise ValueError(f"keys {sorted(keys)[:12]} are not a pass's figures")
    for key in (*_FIGURE_COUNTS, "burst_samples"):
        value = figures.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            raise ValueError(f"{key} = {str(value)[:40]!r} is not a whole count")
    for key in (*_FIGURE_MEASURES, "speed_burst_hz"):
        value = figures.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not math.isfinite(value)):
            raise ValueError(f"{key} = {str(value)[:40]!r} is not a finite number")
    for count, measures in (("samples", _FIGURE_MEASURES), ("burst_samples", ("speed_burst_hz",))):
        if count in figures and any((figures.get(m) is None) != (figures[count] == 0)
                                    for m in measures):
            raise ValueError(f"{', '.join(measures)} disagree with {count} = {figures[count]}")
    if figures["samples"] and not (figures["depth_min_mm"] <= figures["depth_mean_mm"]
                                   <= figures["depth_max_mm"]):
        raise ValueError("the depth mean is not within its min and max")
    if figures.get("burst_samples", 0) > figures["samples"]:
        raise ValueError("more burst samples than samples")
    return dict(figures)
