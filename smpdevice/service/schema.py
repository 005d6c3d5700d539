"""The service's API description: every method and notification, as JSON Schema.

`describe()` is what `rpc.describe` returns. The dispatcher validates every request's params
against `METHODS[name].params` before anything runs, and a test checks that every registered
handler is described here and every description has a handler. Numbers are bounded by the
absolute caps (`smpdevice.envelope.CAPS`); the zone's envelope and the pen's limits narrow
them further when the call runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smpdevice.checks import NOT_IN_LINE_RANGES, TECHNICIAN_MAX_CHARS
from smpdevice.control.calibration import Calibration
from smpdevice.envelope import CAPS
from smpdevice.service import line_ranges
from smpdevice.service.auth import Role
from smpdevice.service.jsonschema_lite import check_schema
from smpdevice.service.limits import LIST_PAGE_MAX, MAX_ANSWER_BYTES, MAX_MESSAGE_BYTES
from smpdevice.sessions.resume import RESCREEN_AFTER_MIN, RESCREEN_AFTER_RANGE_MIN
from smpdevice.sessions.screening import QUESTIONS

API_VERSION = 1
MAX_ID_CHARS = 64
LEASE_RANGE_MS = (200, 10_000)  # a driving client's own lease (heartbeats on its connection)
TELEMETRY_RATE_HZ = (1, 100)
MAX_REASON_CHARS = 500
MAX_PROFILE_CHARS = 200_000
NAME_CHARS = TECHNICIAN_MAX_CHARS  # a technician's name: the station's one limit (checks.py)


def _obj(props: dict[str, Any] | None = None, required: tuple[str, ...] = (),
         description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props or {},
                              "required": list(required), "additionalProperties": False}
    if description:
        schema["description"] = description
    return schema


def _capped(key: str, description: str) -> dict[str, Any]:
    lo, hi = CAPS[key]
    return {"type": "number", "minimum": lo, "maximum": hi, "description": description}


def _text(max_len: int, description: str, min_len: int = 1) -> dict[str, Any]:
    return {"type": "string", "minLength": min_len, "maxLength": max_len,
            "description": description}


def _class(ranges: tuple[tuple[int, int], ...]) -> str:
    """Code point ranges as the inside of a regex character class: \\uXXXX escapes, and astral
    code points as themselves (Python and Unicode-aware JavaScript regexes both read that)."""
    def one(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)
    return "".join(one(lo) + (f"-{one(hi)}" if hi > lo else "") for lo, hi in ranges)


# A name or reason that reaches a record, a log line or a terminal reads as it was typed:
# none of checks.NOT_IN_LINE_RANGES (control characters, bidirectional controls, line and
# paragraph separators, lone surrogates) nor a code point this Python's Unicode tables do not
# know (checks.unassigned_ranges), and not blank: the rule of smpdevice.checks.text, published
# in the schema so clients see it. (The ranges are stored, not scanned at import: line_ranges.)
_BLANK_RANGES, _UNASSIGNED_RANGES = line_ranges.ranges()
_NEVER = _class(NOT_IN_LINE_RANGES + _UNASSIGNED_RANGES)
# ... and at least one character that shows (checks.visible: not a space, a control, a format
# character, a lone mark or a default-ignorable code point, in any plane): a lookahead, so
# that each class is written once.
_INVISIBLE = _class(_BLANK_RANGES)
# `(?![\s\S])` ends the text: `$` would also match before a final "\n" in Python's `re`
# (python-jsonschema searches with it), unlike ECMA-262. The astral code points are written
# as themselves: the pattern is for Unicode mode (JavaScript's `u` or `v` flag), as JSON
# Schema 2020-12 asks; without it JavaScript reads them as surrogate pairs and refuses it.
LINE_PATTERN = f"^(?=[\\s\\S]*[^{_INVISIBLE}])[^{_NEVER}]*(?![\\s\\S])"
LINE_PATTERN_NOTE = ("the pattern is for Unicode mode: compile it with JavaScript's `u` (or "
                     "`v`) flag")


def _line(max_len: int, description: str, min_len: int = 1) -> dict[str, Any]:
    """A one-line text: a name, a reason (see LINE_PATTERN)."""
    return {**_text(max_len, description, min_len), "pattern": LINE_PATTERN,
            "$comment": LINE_PATTERN_NOTE}


ANY_RESULT: dict[str, Any] = {"type": "object"}
OK_RESULT = _obj({"ok": {"type": "boolean"}}, ("ok",))
SESSION_ID = {"type": "string", "pattern": "[A-Za-z0-9_.:-]{1,80}",
              "description": "a session id from sessions.list"}
SCREENING = _obj({name: {"type": "boolean", "description": q}
                  for name, (q, _why) in QUESTIONS.items()}, tuple(QUESTIONS),
                 "every contraindication question answered true (yes) or false (no)")
PROFILE_PARAMS = {
    "profile": _text(MAX_PROFILE_CHARS, "the treatment profile's text (YAML or JSON)"),
    "format": {"type": "string", "enum": ["yaml", "json"], "default": "yaml"},
}

# Only for a session recorded before sessions kept their profile: it must be that same one.
_OPTIONAL_PROFILE = {
    "profile": _text(MAX_PROFILE_CHARS, "the session's own profile (YAML or JSON); only for "
                                        "a session recorded without it"),
    "format": PROFILE_PARAMS["format"],
}


def _leave_open(default: bool) -> dict[str, Any]:
    return {"type": "boolean", "default": default,
            "description": "true: a session ended by a fault, an E-stop, a lost pen, the "
                           "pedal, its driving client gone or the service stopping (no "
                           "session.stop) stays open (session.result `left_open`), to be "
                           "resumed with session.resume or ended with session.close; false: "
                           "closed"}


# `calibration.auto`'s settings: `smp calibrate`'s options of the same names, same ranges.
AUTO_SETTINGS: dict[str, Any] = {
    "depth_points": {"type": "integer", "minimum": 3, "maximum": 8,
                     "description": "depth points across the actuator travel (default 6)"},
    "tolerance_mm": {"type": "number", "minimum": 0.001, "maximum": 0.5,
                     "description": "largest residual and verify error accepted (0.02)"},
    "speed_tolerance_pct": {"type": "number", "minimum": 0.1, "maximum": 50,
                            "description": "largest speed error accepted (3.0)"},
    "valid_days": {"type": "number", "minimum": 0.01, "maximum": 365,
                   "description": "how long the new calibration stays valid (30)"},
    "spin_seconds": {"type": "number", "minimum": 0.1, "maximum": 10,
                     "description": "how long the motor runs at each speed checked (1.0)"},
}

_POINT = {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}}
_CALIBRATION_FIELDS: dict[str, Any] = {
    "calibration_id": _line(64, "made by the client"),
    "pen_serial": _line(32, "this service's pen"),
    "technician": _line(200, "who calibrated"),
    "created_at": _text(40, "ISO 8601 with a time zone"),
    "expires_at": _text(40, "ISO 8601 with a time zone"),
    "offset_mm": {"type": "number"},
    "gain": {"type": "number"},
    "points": {"type": "array", "maxItems": 64, "items": _POINT},
    "residuals_mm": {"type": "array", "maxItems": 64, "items": {"type": "number"}},
    "speed_error_pct": {"type": ["number", "null"]},
    "simulated": {"type": "boolean"},
}
# Every field of the model (it grows), each checked strictly by `Calibration`'s own validator.
CALIBRATION = _obj({name: _CALIBRATION_FIELDS.get(name, {"description": "see Calibration"})
                    for name in Calibration.model_fields},
                   ("pen_serial", "technician", "created_at", "expires_at", "offset_mm",
                    "gain"), "a linear depth calibration, as `Calibration.model_dump(mode="
                             "'json')`")


@dataclass(frozen=True)
class Method:
    role: Role  # the lowest role allowed to call it
    summary: str
    params: dict[str, Any] = field(default_factory=_obj)
    result: dict[str, Any] = field(default_factory=lambda: ANY_RESULT)
    drives: bool = False  # moves or configures the pen: only the driving client may call it


_V, _O, _T = Role.VIEWER, Role.OPERATOR, Role.TECHNICIAN

METHODS: dict[str, Method] = {
    # ---- connection
    "rpc.hello": Method(_V, "Authenticate this connection (first message). The role comes "
                            "from the token; `role` may only ask for a lower one.", _obj({
                                "token": _text(128, "a token from the token file"),
                                "role": {"type": "string",
                                         "enum": ["viewer", "operator", "technician"]},
                                "client": _line(NAME_CHARS, "a name for the logs (the "
                                                            "technician recorded by "
                                                            "calibration.save)"),
                            }, ("token",))),
    "rpc.describe": Method(_V, "This document: every method and notification, JSON Schema."),
    "rpc.ping": Method(_V, "Answer at once (round-trip check).", result=OK_RESULT),
    # ---- pen: reading
    "pen.identity": Method(_V, "The pen's identity, hard limits, zones and calibration."),
    "pen.state": Method(_V, "State, last fault, zone, setpoints, last telemetry, driver."),
    "telemetry.subscribe": Method(_V, "Receive `pen.telemetry` notifications, at most "
                                      "`rate_hz` per second on this connection.", _obj({
                                          "rate_hz": {"type": "integer",
                                                      "minimum": TELEMETRY_RATE_HZ[0],
                                                      "maximum": TELEMETRY_RATE_HZ[1]},
                                      }, ("rate_hz",))),
    "telemetry.unsubscribe": Method(_V, "Stop `pen.telemetry` notifications.",
                                    result=OK_RESULT),
    # ---- dead-man: the driving client
    "pen.drive": Method(_O, "Become the one driving client. The pen's lease is renewed only "
                            "while this connection sends pen.heartbeat within `lease_ms`.", _obj({
                                "lease_ms": {"type": "integer", "minimum": LEASE_RANGE_MS[0],
                                             "maximum": LEASE_RANGE_MS[1]},
                            }, ("lease_ms",))),
    "pen.heartbeat": Method(_O, "Renew this driving client's lease.", drives=True),
    "pen.release": Method(_O, "Stop driving: the needle is stopped and the pen disarmed.",
                          drives=True, result=OK_RESULT),
    # ---- pen: commands
    "pen.set_zone": Method(_O, "Select the zone whose envelope every setpoint must fit.",
                           _obj({"zone": _line(64, "a zone name from pen.identity")},
                                ("zone",)), drives=True),
    "pen.set_setpoints": Method(_O, "Check against the zone's envelope and send.", _obj({
        "depth_mm": _capped("depth_mm", "depth in skin"),
        "speed_hz": _capped("speed_hz", "strokes per second"),
        "duty_pct": _capped("duty_pct", "needle-on share of a period"),
        "period_ms": _capped("period_ms", "pulse period (one impression)"),
    }, ("depth_mm", "speed_hz", "duty_pct", "period_ms")), drives=True),
    "pen.arm": Method(_O, "idle -> armed (needs calibration, zone, setpoints).", drives=True,
                      result=OK_RESULT),
    "pen.disarm": Method(_O, "armed -> idle.", drives=True, result=OK_RESULT),
    "pen.start": Method(_O, "armed -> running: the needle starts.", drives=True,
                        result=OK_RESULT),
    "pen.stop": Method(_O, "running -> armed: the needle stops. Any operator may stop.",
                       result=OK_RESULT),
    "pen.estop": Method(_V, "Emergency stop. Any authenticated client; handled ahead of all "
                            "queued work; latches until pen.clear_faults.", result=_obj({
                                "ok": {"type": "boolean"}, "state": {"type": "string"},
                                "confirmed": {"type": "boolean"},
                            })),
    "pen.clear_faults": Method(_T, "fault/estop -> idle once the cause is gone; the reason "
                                   "is logged.", _obj({
                                       "reason": _line(MAX_REASON_CHARS,
                                                       "why it is safe to clear", min_len=3),
                                   }, ("reason",)), result=OK_RESULT),
    "pen.reconnect": Method(_O, "After a lost link: open the pen's port again now (the "
                                "service also retries by itself). Nothing restarts: the pen "
                                "comes back idle, or with its E-stop or fault still latched. "
                                "Only this service's pen is taken back.",
                            result=_obj({"ok": {"type": "boolean"},
                                         "state": {"type": "string"}})),
    # ---- calibration (technician, driving)
    "calibration.begin": Method(_T, "idle -> calibrating.", drives=True, result=OK_RESULT),
    "calibration.move": Method(_T, "Move the depth actuator and wait until it stands.", _obj({
        "actuator_mm": {"type": "number", "minimum": 0.0, "maximum": 3.0},
    }, ("actuator_mm",)), drives=True),
    "calibration.read_gauge": Method(_T, "Read the simulated pen's depth gauge (simulated "
                                         "pens only).", drives=True),
    "calibration.spin": Method(_T, "Speed check: run the motor (off the skin) at `speed_hz` "
                                   "for `duration_s`; answers the encoder's mean speed and "
                                   "the frames [uptime_ms, strokes, needle_running] of the "
                                   "spin.", _obj({
                                       "speed_hz": {"type": "number", "exclusiveMinimum": 0,
                                                    "maximum": 1000, "description": "off the "
                                                    "skin: the pen's hard limits bound it"},
                                       "duration_s": {"type": "number", "minimum": 0.1,
                                                      "maximum": 10.0},
                                   }, ("speed_hz", "duration_s")), drives=True),
    "calibration.save": Method(_T, "Save a calibration fitted by a guided client to the "
                                   "service's store. It must belong to this pen, be fresh, "
                                   "and pass the station's checks against this connection's "
                                   "run: the refit of its points (>= 3), its residuals, >= 3 "
                                   "depth checks within the accuracy bounds, fit points and "
                                   "depth checks at positions calibration.move reached, rate "
                                   "checks the service counted in calibration.spin. The "
                                   "technician recorded is the connection's name (rpc.hello "
                                   "`client`), not the payload's. Answers the calibration_id "
                                   "to install with calibration.end.", _obj({
                                       "calibration": CALIBRATION,
                                   }, ("calibration",)), drives=True),
    "calibration.end": Method(_T, "calibrating -> idle. With `calibration_id` (the one "
                                  "calibration.save answered in this connection's current "
                                  "run, accepted from idle too; any other id is refused) that "
                                  "calibration is installed; without, the one installed is "
                                  "kept (a run's save installed its own).",
                              _obj({"calibration_id": _line(64, "from calibration.save in this "
                                                                "run")}), drives=True),
    "calibration.auto": Method(_T, "The whole calibration against the simulated pen's gauge "
                                   "(simulated pens only): zero, depth, speed, verify, save. "
                                   "The settings left out take `smp calibrate`'s defaults.",
                               _obj({"technician": _line(NAME_CHARS, "who calibrates"),
                                     **AUTO_SETTINGS}, ("technician",)), drives=True),
    # ---- sessions
    "session.check": Method(_V, "Check a profile against this pen's envelope and limits.",
                            _obj(PROFILE_PARAMS, ("profile",))),
    "session.run": Method(_O, "Check the profile, then the screening, then open and play the "
                              "session; progress and results come as notifications.", _obj({
                                  **PROFILE_PARAMS,
                                  "screening": SCREENING,
                                  "technician": _line(NAME_CHARS, "who runs the session"),
                                  "quick_pass_s": {"type": "number", "exclusiveMinimum": 0,
                                                   "maximum": 600,
                                                   "description": "shorten every pass "
                                                                  "planned longer to it "
                                                                  "(demos, tests)"},
                                  "leave_open": _leave_open(False),
                              }, ("profile", "screening", "technician")), drives=True),
    "session.stop": Method(_O, "Stop the running session after stopping the needle; it is "
                               "closed as interrupted.", result=OK_RESULT),
    "session.resume": Method(_O, "Play what is left of a session left open by a fault, an "
                                 "E-stop, a lost pen or a crash (session.run with "
                                 "`leave_open`; session.result says `left_open`), once the "
                                 "cause is cleared: the same checks as session.run against "
                                 "this service's pen, envelope and calibration; only the "
                                 "passes not completed play (a pass cut short: its "
                                 "remainder); recorded as a chained session_resume. "
                                 "Refused for a closed session, another pen's or "
                                 "installation's, while a session runs, and (type ScreeningDue) "
                                 "without `screening` when the last one is older than "
                                 "`rescreen_after_min`.", _obj({
                                     "session_id": SESSION_ID,
                                     "technician": _line(NAME_CHARS, "who treats now (recorded)"),
                                     "screening": SCREENING,
                                     "rescreen_after_min": {
                                         "type": "number", "minimum": RESCREEN_AFTER_RANGE_MIN[0],
                                         "maximum": RESCREEN_AFTER_RANGE_MIN[1],
                                         "default": RESCREEN_AFTER_MIN,
                                         "description": "ask the screening again when older"},
                                     "leave_open": _leave_open(True),
                                     **_OPTIONAL_PROFILE,
                                 }, ("session_id", "technician")), drives=True,
                             result=_obj({"session_id": {"type": "string"},
                                          "planned_passes": {"type": "integer"},
                                          "passes_left": {"type": "array",
                                                          "items": {"type": "integer"}},
                                          "notes": {"type": "array", "items": {
                                              "type": "string"}, "description": "a pass cut "
                                              "by a crash the pen could not count: what may "
                                              "be played again"}})),
    "session.close": Method(_O, "Close an open session as it stands, playing nothing; answers "
                                "its outcome, summary and aftercare sheet. Refused for a "
                                "closed session, another pen's or installation's, and while a "
                                "session runs.", _obj({
                                    "session_id": SESSION_ID, **_OPTIONAL_PROFILE,
                                }, ("session_id",))),
    "sessions.list": Method(_V, "Sessions of every pass log of the service's data directory, "
                                f"oldest first: the newest {LIST_PAGE_MAX}, or `limit` from "
                                "`start`; `total` counts them all, `truncated` says some were "
                                "left out.",
                            _obj({"start": {"type": "integer", "minimum": -LIST_PAGE_MAX,
                                            "description": "index of the first (0: oldest; "
                                                           "negative, down to -limit: a "
                                                           "shorter first page from 0); a "
                                                           "start below -limit is refused "
                                                           "with -32602"},
                                  "limit": {"type": "integer", "minimum": 1,
                                            "maximum": LIST_PAGE_MAX,
                                            "default": LIST_PAGE_MAX}})),
    "sessions.show": Method(_V, "One session with its passes, summary and receipt.",
                            _obj({"session_id": SESSION_ID}, ("session_id",))),
    "sessions.verify": Method(_V, "Check the pass log's chain and signed heads."),
    "sessions.export": Method(_V, "The pass log as JSON lines or CSV text (capped).", _obj({
        "format": {"type": "string", "enum": ["jsonl", "csv"]},
    }, ("format",))),
}

NOTIFICATIONS: dict[str, dict[str, Any]] = {
    "pen.state": _obj({"old": {"type": "string"}, "new": {"type": "string"},
                       "reason": {"type": "string"},
                       "last_fault": {"type": ["string", "null"]}},
                      ("old", "new", "reason"), "every controller state change"),
    "pen.fault": _obj({"state": {"type": "string"}, "reason": {"type": "string"},
                       "faults": {"type": "array", "items": {"type": "string"}}},
                      ("state", "reason", "faults"), "the pen entered fault or estop"),
    "pen.telemetry": _obj(description="one telemetry frame (subscribers only, rate-limited)"),
    "pen.driver": _obj({"client": {"type": ["string", "null"]},
                        "reason": {"type": "string"}}, ("client", "reason"),
                       "who drives the pen changed (dead-man: a lost driver stops the needle)"),
    "pen.zone": _obj({"zone": {"type": ["string", "null"]}, "zone_window": {"type": "object"},
                      "client": {"type": ["string", "null"]}}, ("zone", "zone_window"),
                     "the active zone changed (its window)"),
    "session.progress": _obj(description="a running pass: index, total, zone, elapsed_s, "
                                         "fraction, strokes, impressions"),
    "session.pass": _obj(description="a pass ended: index, zone, outcome, detail, stats"),
    "session.result": _obj(description="a session ended: session_id, outcome, complete, summary, "
                           "aftercare, left_open (true: ended by a fault, an E-stop, a lost pen, "
                           "the pedal or a calibration that expired between passes, it stays open "
                           "for session.resume or session.close), cause (why it ended when the "
                           "outcome cannot say, else null)"),
}

ERRORS: dict[int, str] = {
    -32700: "parse error: the message is not JSON",
    -32600: "invalid request: not a JSON-RPC 2.0 request object, or over the size cap",
    -32601: "method not found",
    -32602: "invalid params: the message names the parameter, the value and the rule",
    -32000: "the pen or the service refused (the message says why and what to do)",
    -32001: "not authenticated: send rpc.hello with a token first",
    -32003: "forbidden: the connection's role may not call this method",
    -32004: "not the driving client: call pen.drive first (one driver at a time)",
    -32005: "rate limited: too many requests; slow down",
    -32006: "busy: too many requests in flight on this connection",
}

for _name, _schema in [*((n, m.params) for n, m in METHODS.items()), *NOTIFICATIONS.items()]:
    check_schema(_schema, _name)


def describe() -> dict[str, Any]:
    """The description document served by `rpc.describe`."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "smpdevice pen service (JSON-RPC 2.0 over WebSocket)",
        "api_version": API_VERSION,
        "max_message_bytes": MAX_MESSAGE_BYTES,
        "max_answer_bytes": MAX_ANSWER_BYTES,
        "roles": [r.label for r in Role],
        "methods": {name: {"role": m.role.label, "drives": m.drives, "summary": m.summary,
                           "params": m.params, "result": m.result}
                    for name, m in METHODS.items()},
        "notifications": NOTIFICATIONS,
        "errors": {str(code): text for code, text in ERRORS.items()},
    }
