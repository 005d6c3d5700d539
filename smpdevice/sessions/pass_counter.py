"""A pass's figures (strokes, impressions, depth and speed samples), counted from every report;
and what a pass reports while it runs (`PassProgress`) and when it ends (`PassResult`).

The counter is fed by the controller on the thread that read each report
(`PenController.add_inline_telemetry_reader`), not through the public telemetry listeners: those
run on a bounded, drop-oldest queue shared with the integrator's listeners, so a slow display
made the session's own count lag and lose reports (review9a R06: a pass log short of a third
of its strokes; R07: an `impressions:` pass that ran 3x its dots because "done" was judged on
a lagging copy). Fed directly, a pass's figures and its end never depend on other listeners.
It runs on the reading thread: it only adds, under its own lock.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

from smpdevice.control.pen import PenTelemetry
from smpdevice.passlog import PassOutcome, PassStats


class PassCounter:
    """Accumulates the running pass's figures from the pen's reports, in the order read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stats: PassStats | None = None
        self.last_seq = -1  # the last report seen, in a pass or not
        self._base: PenTelemetry | None = None

    def begin(self, base: PenTelemetry | None) -> None:
        """Start a pass; `base` is the last telemetry before the needle starts (counter base)."""
        with self._lock:
            self.stats = PassStats()
            self._base = base
            if base is not None:
                self.stats.counters(base.strokes, base.impressions)

    def _before_base(self, t: PenTelemetry) -> bool:
        """`t` is the base itself or came before it (a report read while the pass began, fed
        just after): its older counters would read as a restarted pen's and add the pen's
        whole count."""
        base = self._base
        return base is not None and (t is base or (t.received_at_s <= base.received_at_s
                                                    and t.telemetry_seq <= base.telemetry_seq))

    def end(self) -> PassStats:
        with self._lock:
            stats, self.stats = self.stats or PassStats(), None
            return stats

    def snapshot(self) -> PassStats:
        with self._lock:
            return copy.copy(self.stats or PassStats())

    def __call__(self, t: PenTelemetry) -> None:
        with self._lock:
            self.last_seq = t.telemetry_seq
            stats = self.stats
            if stats is None or self._before_base(t):
                return
            stats.counters(t.strokes, t.impressions)
            if t.needle_running:
                stats.add(t.depth_mm if t.depth_mm is not None else t.actuator_mm, t.speed_hz)


def pen_counters(t: PenTelemetry | None, lease_ms: int) -> dict[str, int] | None:
    """What a pass's begin record keeps of the pen (`smpdevice.records.model.PEN_COUNTER_KEYS`):
    its cumulative counters and uptime in report `t`, and the host's lease; None with no
    report yet. A resume after a host crash counts the crashed pass's dots from them."""
    if t is None:
        return None
    return {"strokes": int(t.strokes), "impressions": int(t.impressions),
            "uptime_ms": int(t.uptime_ms), "lease_ms": int(lease_ms)}


@dataclass
class PassProgress:
    """What a progress display needs, reported while a pass runs."""

    index: int
    total: int
    zone: str
    elapsed_s: float
    target_s: float | None
    strokes: int
    impressions: int
    target_impressions: int | None
    telemetry: PenTelemetry | None

    @property
    def fraction(self) -> float:
        if self.target_s:
            return min(1.0, self.elapsed_s / self.target_s)
        if self.target_impressions:
            return min(1.0, self.impressions / self.target_impressions)
        return 0.0


@dataclass
class PassResult:
    pass_id: str
    index: int
    zone: str
    outcome: PassOutcome
    stats: PassStats
    detail: str = ""
