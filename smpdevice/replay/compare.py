"""What a replay compares with the recording, besides the commands (`smpdevice.replay.pen`):
the controller's state changes and each pass's outcome and figures; and where a recording cut
short ends (`cut_at`), past which nothing is compared (see `smpdevice.replay.runner`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from smpdevice.records.frames import Recording
from smpdevice.records.model import PASS_CALIBRATION_KEYS, PassOutcome, PassRecord
from smpdevice.replay.pen import Difference

PASS_FIGURES = ("outcome", "zone", "samples", "strokes", "impressions", "depth_min_mm",
                "depth_mean_mm", "depth_max_mm", "speed_mean_hz", "speed_burst_hz", "fault_code")
# and, when its record names it (rev 20), the calibration each pass was played on (`_named`)


def cut_at(rec: Recording) -> float | None:
    """The recorded time of the last entry of a recording cut short (no end written: the
    host died; or a `truncated` marker); None for a recording its run ended."""
    if rec.finished and rec.truncated is None:
        return None
    times = [e.t_s for e in rec.entries if e.channel in ("/host", "/pen", "/input", "/state")]
    return max(times, default=0.0)


def first_state_difference(rec: Recording, got: list[tuple[str, str, float]],
                           unrecorded_from_s: float | None = None) -> Difference | None:
    """`unrecorded_from_s` (a recording cut short): the replayed changes past the recorded
    ones from then on came after its end (less the early tolerance): not compared."""
    expected = []
    for entry in rec.channel("/state"):
        value = json.loads(entry.data)
        expected.append((str(value.get("old")), str(value.get("new")), entry.t_s))
    if unrecorded_from_s is not None:
        extra = got[len(expected):]
        if all(t_s >= unrecorded_from_s for _, _, t_s in extra):
            got = got[:len(expected)]
    for i in range(max(len(expected), len(got))):
        e = expected[i] if i < len(expected) else None
        g = got[i] if i < len(got) else None
        if e is None or g is None or e[:2] != g[:2]:
            return Difference("state", i, (e or g)[2],  # type: ignore[index]
                              f"{e[0]} -> {e[1]}" if e else "no more state changes",
                              f"{g[0]} -> {g[1]}" if g else "no more state changes")
    return None


def _figures(p: PassRecord) -> dict[str, Any]:
    return {name: getattr(p, name) for name in PASS_FIGURES}


def _close(a: Any, b: Any, tol: float = 1e-9) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=tol)
    return bool(a == b)


def _one_frame_tolerance(e: PassRecord, telemetry_hz: int) -> dict[str, float]:
    """What one telemetry frame more or less at a pass's end changes (which frame was the last
    counted before the pass's record was written depends on thread timing, live or replayed)."""
    per_frame = 1.0 / max(telemetry_hz, 1)
    spread = lambda lo, hi: (hi - lo) if lo is not None and hi is not None else 0.0  # noqa: E731
    return {"samples": 1, "strokes": e.speed_hz * per_frame + 1,
            "impressions": 1000.0 / max(e.period_ms, 1.0) * per_frame + 1,
            "depth_mean_mm": spread(e.depth_min_mm, e.depth_max_mm),
            "speed_mean_hz": e.speed_hz, "speed_burst_hz": e.speed_hz,
            "depth_min_mm": spread(e.depth_min_mm, e.depth_max_mm),
            "depth_max_mm": spread(e.depth_min_mm, e.depth_max_mm)}


_NEVER_ENDED = (None, str(PassOutcome.controller_crashed))


def first_pass_difference(expected: list[PassRecord], got: list[PassRecord],
                          telemetry_hz: int = 100, full: int | None = None
                          ) -> Difference | None:
    """`full` (a recording cut short): how many replayed passes ended before its end. Those
    are compared in full up to the first the run never ended (open, or `controller_crashed`
    as recovery closes it); the pass after them, where the recording ends, by its zone only;
    none after it (the run's are unrecorded, the replay stopped there)."""
    if full is not None:
        ended = [i for i, p in enumerate(expected) if p.outcome in _NEVER_ENDED]
        full = min([full, *ended[:1]])
        if full < min(len(expected), len(got)) and expected[full].zone != got[full].zone:
            return Difference("pass", full, 0.0, f"zone={expected[full].zone!r}",
                              f"zone={got[full].zone!r}")
        expected, got = expected[:full], got[:full]
    for i in range(max(len(expected), len(got))):
        e = _figures(expected[i]) if i < len(expected) else None
        g = _figures(got[i]) if i < len(got) else None
        if e is None or g is None:
            return Difference("pass", i, 0.0, json.dumps(e) if e else "no more passes",
                              json.dumps(g) if g else "no more passes")
        exact = e["samples"] == g["samples"]
        tol = {} if exact else _one_frame_tolerance(expected[i], telemetry_hz)
        if not exact and abs(e["samples"] - g["samples"]) > 1:
            tol = {}
        bad = [k for k in PASS_FIGURES if not _close(e[k], g[k], tol.get(k, 1e-9))]
        if exact:  # the same frames counted: the counters may still differ by the last one
            bad = [k for k in bad if not (k in ("strokes", "impressions") and _close(
                e[k], g[k], _one_frame_tolerance(expected[i], telemetry_hz)[k]))]
        if bad:
            return Difference("pass", i, 0.0,
                              ", ".join(f"{k}={e[k]!r}" for k in bad),
                              ", ".join(f"{k}={g[k]!r}" for k in bad))
        named = expected[i].calibration  # None: recorded before passes named it (rev 20)
        if named is not None and _named(named) != _named(got[i].calibration):
            return Difference("pass", i, 0.0, f"calibration={named!r}",  # (replay/
                              f"calibration={got[i].calibration!r}")  # pass_calibration.py)
    return None


def _named(calibration: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """What a pass record names of the calibration it was played on, to compare: the one the
    depths were sent through (the bytes do not carry it), so a record naming another differs."""
    if calibration is None:
        return None
    return tuple(calibration.get(key) for key in PASS_CALIBRATION_KEYS)
