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
