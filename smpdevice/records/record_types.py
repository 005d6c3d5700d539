"""The types of the fields the readers use, checked where a record body is read (review 15, F5).

A body that is a JSON object with its fields present but of the wrong type (an edit, a bad
sector that kept the JSON valid: `zone` 5, `started_at` null, `envelope` "x") would otherwise
reach code that assumes the type (a table, a time difference, `.get`) and end in a traceback.
Each check returns why the first field does not hold, or None; `sqlite_read` raises it as
`DamagedRecord` (one line naming the record, exit 3), as it does for a missing field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from smpdevice.records.model import PassRecord, SessionRecord

# Text every session opening has (and every export row carries).
OPENING_TEXT = ("technician", "client_ref", "session_kind", "pen_serial", "firmware_version",
                "calibration_id", "profile_hash")
_OPTIONAL_TEXT = ("key_fingerprint", "footswitch")
_OPTIONAL_OBJECTS = ("envelope", "profile")
_PLAN_NUMBERS = ("depth_mm", "speed_hz", "duty_pct", "period_ms")
_COUNTS = ("samples", "strokes", "impressions")
_MEASURES = ("depth_min_mm", "depth_mean_mm", "depth_max_mm", "speed_mean_hz",
             "speed_burst_hz")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _time(value: Any) -> bool:
    """An ISO 8601 time with its offset, as the writer records every time (`model.iso`)."""
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _bad(field: str, value: Any, want: str) -> str:
    return f"its {field} is {str(value)[:40]!r} ({type(value).__name__}), not {want}"


def opening_problem(body: dict[str, Any]) -> str | None:
    """Why a session opening's body (present fields) is not usable, or None."""
    for name in OPENING_TEXT:
        if name in body and not isinstance(body[name], str):
            return _bad(name, body[name], "text")
    if "opened_at" in body and not _time(body["opened_at"]):
        return _bad("opened_at", body["opened_at"], "a time with its offset")
    if "screening" in body and not isinstance(body["screening"], dict):
        return _bad("screening", body["screening"], "an object")
    for name in _OPTIONAL_OBJECTS:
        if body.get(name) is not None and not isinstance(body[name], dict):
            return _bad(name, body[name], "an object")
    sha = (body.get("envelope") or {}).get("sha256")
    if sha is not None and not isinstance(sha, str):
        return _bad("envelope sha256", sha, "text")
    for name in _OPTIONAL_TEXT:
        if body.get(name) is not None and not isinstance(body[name], str):
            return _bad(name, body[name], "text")
    if body.get("simulated") is not None and not isinstance(body["simulated"], bool):
        return _bad("simulated", body["simulated"], "true or false")
    return None


def closing_problem(session: SessionRecord) -> str | None:
    """Why a session's close (read into `session`) is not usable, or None."""
    if not _time(session.closed_at):
        return _bad("closed_at", session.closed_at, "a time with its offset")
    if not isinstance(session.summary, dict):
        return _bad("summary", session.summary, "an object")
    return None


def begin_problem(p: PassRecord) -> str | None:
    """Why a pass's start (read into `p`) is not usable, or None."""
    if not _whole(p.index):
        return _bad("index", p.index, "a whole number")
    if not isinstance(p.zone, str):
        return _bad("zone", p.zone, "text")
    for name in _PLAN_NUMBERS:
        if not _number(getattr(p, name)):
            return _bad(name, getattr(p, name), "a number")
    if not _time(p.started_at):
        return _bad("started_at", p.started_at, "a time with its offset")
    if p.simulated is not None and not isinstance(p.simulated, bool):
        return _bad("simulated", p.simulated, "true or false")
    return None


def end_problem(p: PassRecord) -> str | None:
    """Why a pass's end (read into `p`) is not usable, or None."""
    if not isinstance(p.outcome, str):
        return _bad("outcome", p.outcome, "text")
    if p.ended_at is not None and not _time(p.ended_at):
        return _bad("ended_at", p.ended_at, "a time with its offset")
    if p.fault_code is not None and not _whole(p.fault_code):
        return _bad("fault_code", p.fault_code, "a whole number")
    if not isinstance(p.fault_names, list) or not all(isinstance(n, str)
                                                      for n in p.fault_names):
        return _bad("fault_names", p.fault_names, "a list of names")
    for name in _COUNTS:
        if not _whole(getattr(p, name)):
            return _bad(f"stats {name}", getattr(p, name), "a whole number")
    for name in _MEASURES:
        value = getattr(p, name)
        if value is None and p.samples and name.startswith("depth"):
            return _bad(f"stats {name}", value, f"a number (with {p.samples} samples)")
        if value is not None and not _number(value):
            return _bad(f"stats {name}", value, "a number")
    return None


# Optional fields of a `session_resume` body that readers use as text, or as an object.
_RESUME_TEXT = ("technician", "footswitch", "firmware_version", "calibration_id",
                "envelope_sha256")
_RESUME_WHOLE = ("number", "passes_before")  # None when absent (a `count_only` record)
_COUNTED_WHOLE = ("impressions", "strokes", "recorded_impressions", "recorded_strokes")


def resumption_problem(body: dict[str, Any]) -> str | None:
    """Why a `session_resume` body is not usable, or None: `resumed_at` a time with its
    offset; `number`, `passes_before` whole numbers from 1 and 0 (or absent); `count_only`
    true or false; `passes_left` a list of {index, one positive duration_s or impressions};
    `pen_counted` a list of the counts a crash resume made; the rest text or objects."""
    if not _time(body.get("resumed_at")):
        return _bad("resumed_at", body.get("resumed_at"), "a time with its offset")
    for name, low in zip(_RESUME_WHOLE, (1, 0), strict=True):
        value = body.get(name)
        if value is not None and not (_whole(value) and value >= low):
            return _bad(name, value, f"a whole number from {low}")
    if body.get("count_only") is not None and not isinstance(body["count_only"], bool):
        return _bad("count_only", body["count_only"], "true or false")
    for name in _RESUME_TEXT:
        if body.get(name) is not None and not isinstance(body[name], str):
            return _bad(name, body[name], "text")
    for name in ("screening", "recording_before"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            return _bad(name, body[name], "an object")
    return _passes_left_problem(body.get("passes_left")) or _pen_counted_problem(
        body.get("pen_counted"))


def _passes_left_problem(left: Any) -> str | None:
    if left is None:
        return None
    if not isinstance(left, list):
        return _bad("passes_left", left, "a list")
    for item in left:
        if not _pass_left(item):
            return _bad("passes_left entry", item, "{index, and one positive duration_s or "
                        "whole impressions}")
    return None


def _pass_left(item: Any) -> bool:
    """{index from 0, and exactly one target: a positive finite duration_s, or impressions}."""
    if not isinstance(item, dict) or not (_whole(item.get("index")) and item["index"] >= 0):
        return False
    seconds: Any = item.get("duration_s")
    dots: Any = item.get("impressions")
    if (seconds is None) == (dots is None):
        return False
    if dots is not None:
        return _whole(dots) and dots > 0
    return _number(seconds) and 0 < seconds < float("inf")


def _pen_counted_problem(counted: Any) -> str | None:
    if counted is None:
        return None
    if not isinstance(counted, list):
        return _bad("pen_counted", counted, "a list")
    for item in counted:
        ok = (isinstance(item, dict) and isinstance(item.get("pass_id"), str)
              and isinstance(item.get("counted"), bool))
        wanted = _COUNTED_WHOLE if ok and item["counted"] else ("recorded_impressions",)
        if not ok or not all(_whole(item.get(k)) for k in wanted):
            return _bad("pen_counted entry", item, "{pass_id, counted, and whole counts}")
    return None
