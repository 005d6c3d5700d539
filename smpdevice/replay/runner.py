"""`smp replay`: load a session's recording (checked), replay it, name the first difference.

`replay_session` connects a fresh `PenController` on a virtual clock to the recorded pen
(`replay://`), plays the session's profile with a `TreatmentSession` whose passes go to a
pass log in memory, and compares three things with what was recorded, in this order:
the commands sent (decoded, see `smpdevice.replay.script` for what is tolerated), the
controller's state changes, and each pass's outcome and figures.
"""

from __future__ import annotations

import contextlib
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smpdevice.errors import SmpError
from smpdevice.link.clock import VirtualTimeDriver
from smpdevice.records.frames import (
    Recording,
    RecordingError,
    file_sha256,
    read_recording,
    recording_path,
)
from smpdevice.records.model import PassOutcome, PassRecord, PassStats, pass_from_bodies
from smpdevice.replay.pen import Difference, ReplayPen
from smpdevice.replay.script import build_script, preamble_entries, session_entries

STEP_S = 0.005  # virtual time step: the pen reports every 10 ms
PASS_FIGURES = ("outcome", "zone", "samples", "strokes", "impressions", "depth_min_mm",
                "depth_mean_mm", "depth_max_mm", "speed_mean_hz", "speed_burst_hz", "fault_code")


@dataclass
class ReplayReport:
    session_id: str
    recording: Path
    difference: Difference | None
    decisions: int = 0  # host decisions in the recording
    matched: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def match(self) -> bool:
        return self.difference is None


@dataclass
class LoadedSession:
    session_id: str
    record: Any  # SessionRecord
    recording: Recording
    notes: list[str]


def load(passlog: Any, session_id: str) -> LoadedSession:
    """The session's record and its recording, hash-checked. SmpError when it cannot be."""
    session = passlog.session(session_id)  # SmpError for an unknown id, with what to do
    sid = session.session_id
    linked = (session.summary or {}).get("recording")
    notes: list[str] = []
    if isinstance(linked, list):  # a resumed session: one recording per part (15.3)
        parts = [_verified(passlog, sid, part) for part in linked]
        if len(parts) > 1:
            raise RecordingError(
                f"session {sid} was resumed: its {len(parts)} recorded parts "
                f"({', '.join(p.name for p in parts)}) are all there and match the hashes in its "
                "close record, but a replay plays the whole plan from the session's start, "
                "which no single part holds: a resumed session cannot be replayed yet (its "
                "passes are in `smp sessions show " + sid + "`)")
        linked = linked[0] if linked else None
    if isinstance(linked, dict):
        name = str(linked.get("file", ""))
        path = recording_path(Path(passlog.path), name.removesuffix(".mcap"))
    else:
        path = recording_path(Path(passlog.path), sid)
        if session.closed_at is not None:
            why = ("its recording is there but unverifiable: a resumed session keeps the "
                   "recording of its first part, unlinked" if path.is_file() else
                   "recorded before recordings existed, or the recording could not be started; "
                   "see the log")
            raise RecordingError(f"session {sid} has no frame recording linked in its close "
                                 f"record ({why})")
        notes.append(f"session {sid} is still open (interrupted or crashed): its recording "
                     "is not linked by hash, so it is replayed unverified")
    if not path.is_file():
        raise RecordingError(f"the recording of session {sid} is missing: {path}. Recordings "
                             "live beside the pass log; restore it from the backup")
    if isinstance(linked, dict):
        _check_hash(path, sid, linked)
    rec = read_recording(path)
    meta = rec.meta
    if meta.get("session_id") != sid:
        raise RecordingError(f"{path} records session {meta.get('session_id')!r}, not {sid}")
    if (session.key_fingerprint and meta.get("key_fingerprint")
            and meta["key_fingerprint"] != session.key_fingerprint):
        raise RecordingError(
            f"{path} was made by another installation (key {meta['key_fingerprint']}, this "
            f"log's session is signed by {session.key_fingerprint}); replay it there")
    if rec.truncated:
        notes.append(f"the recording was cut short ({rec.truncated}): replayed up to there")
    if rec.damaged:
        notes.append(f"the recording ends mid-record ({rec.damaged}): replayed up to its last "
                     "complete frame")
    return LoadedSession(sid, session, rec, notes)


def _verified(passlog: Any, sid: str, linked: Any) -> Path:
    """A linked part's file, checked against its hash (RecordingError otherwise)."""
    name = str((linked or {}).get("file", "")) if isinstance(linked, dict) else ""
    path = recording_path(Path(passlog.path), name.removesuffix(".mcap"))
    if not path.is_file():
        raise RecordingError(f"the recording {path} of session {sid} is missing. Recordings "
                             "live beside the pass log; restore it from the backup")
    _check_hash(path, sid, linked)
    return path


def _check_hash(path: Path, sid: str, linked: dict[str, Any]) -> None:
    """RecordingError unless the file's SHA-256 is the one the close record links."""
    actual = file_sha256(path)
    if actual != linked.get("sha256"):
        raise RecordingError(
            f"the recording {path} does not match the hash in session {sid}'s close record "
            f"(recorded {str(linked.get('sha256'))[:16]}..., file {actual[:16]}...): it was "
            "edited or replaced. Restore the original from the backup")


# ------------------------------------------------------------------------ in-memory pass log

class MemoryPassLog:
    """What a `TreatmentSession` writes, kept in memory (a replay records nothing)."""

    path = None

    def __init__(self) -> None:
        self._begin: dict[str, dict[str, Any]] = {}
        self._end: dict[str, dict[str, Any]] = {}
        self.summary: dict[str, Any] | None = None

    def begin_pass(self, session_id: str, **body: Any) -> str:
        pass_id = "P" + uuid.uuid4().hex[:16]
        body["started_at"] = body["started_at"].isoformat()
        self._begin[pass_id] = body
        return pass_id

    def checkpoint(self, pass_id: str, stats: PassStats) -> None:
        pass

    def end_pass(self, pass_id: str, *, outcome: Any, stats: PassStats, ended_at: datetime,
                 fault_code: int | None = None, fault_names: list[str] | None = None) -> None:
        self._end[pass_id] = {"outcome": str(PassOutcome(outcome)), "stats": stats.figures(),
                              "ended_at": ended_at.isoformat(), "fault_code": fault_code,
                              "fault_names": list(fault_names or [])}

    def passes(self, session_id: str | None = None) -> list[PassRecord]:
        return [pass_from_bodies(pid, "replay", b, self._end.get(pid), n)
                for n, (pid, b) in enumerate(self._begin.items(), 1)]

    def resumptions(self, session_id: str) -> list[dict[str, Any]]:
        return []

    def close_session(self, session_id: str, *, closed_at: datetime,
                      summary: dict[str, Any]) -> None:
        self.summary = summary


# ------------------------------------------------------------------------------ time

# ------------------------------------------------------------------------------ replay

def replay_session(passlog: Any, session_id: str) -> ReplayReport:
    """Replay a recorded session against a fresh controller (see the module's docstring)."""
    import smpdevice.replay  # noqa: F401  # registers replay://
    from simulators.clock import VirtualClock
    from smpdevice.control import PenController
    from smpdevice.control.calibration import Calibration
    from smpdevice.envelope import ZoneEnvelope
    from smpdevice.link.clock import timebase_for
    from smpdevice.sessions.profiles import TreatmentProfile
    from smpdevice.sessions.session import TreatmentSession

    loaded = load(passlog, session_id)
    rec, meta = loaded.recording, loaded.recording.meta
    try:
        profile = TreatmentProfile.model_validate(meta["profile"])
        calibration = (Calibration.model_validate(meta["calibration"])
                       if meta.get("calibration") else None)
        zones = {str(k): ZoneEnvelope.model_validate(v) for k, v in meta["zones"].items()}
        lease_ms, telemetry_hz = int(meta["lease_ms"]), int(meta["telemetry_hz"])
        technician = str(meta["technician"])
        # The mode the session ran under (recorded since 15.4, else the session header's), not
        # this station's: a station set differently must not make a difference.
        footswitch = meta.get("footswitch") or getattr(loaded.record, "footswitch", None)
        footswitch = str(footswitch) if footswitch else "optional"
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordingError(f"{rec.path}: its metadata is incomplete or invalid ({exc})") from None
    session_script = build_script(session_entries(rec))
    report = ReplayReport(loaded.session_id, rec.path, None,
                          decisions=len(session_script.decisions), notes=loaded.notes)
    clock = VirtualClock()
    pen_side = ReplayPen(build_script(preamble_entries(rec)), session_script, clock)
    driver = VirtualTimeDriver(clock, STEP_S, name="replay-time")
    driver.start()
    states: list[tuple[str, str, float]] = []
    memlog = MemoryPassLog()
    try:
        pen = PenController.connect(pen_side.url, calibration=calibration, zones=zones,
                                    lease_ms=lease_ms, telemetry_hz=telemetry_hz, clock=clock,
                                    footswitch=footswitch)
        try:
            start_s, collecting = clock.now(), [True]

            def on_state(old: Any, new: Any, _why: str) -> None:
                if collecting[0]:  # the session's changes only, as recorded
                    states.append((old.value, new.value, clock.now() - start_s))

            pen.add_state_listener(on_state)

            def press_estop() -> None:
                with contextlib.suppress(SmpError):
                    pen.estop()

            pen_side.press_estop = press_estop
            pen_side.begin_session()
            session = TreatmentSession(pen, memlog, profile,  # type: ignore[arg-type]
                                       "replay", technician)
            try:
                session.play()
            except SmpError as exc:
                report.notes.append(f"the replayed session stopped: {exc}")
            # The live session closed after what the pen said meanwhile (a lease that lapsed
            # while a loaded host was slow, say): let the recorded pen catch up first.
            cond = timebase_for(clock).condition()
            with cond:
                cond.wait_for(pen_side.caught_up, pen_side.pending_for_s() + 1.0)
            try:
                session.close()
            except SmpError as exc:
                report.notes.append(f"closing the replayed session: {exc}")
            collecting[0] = False
            pen_side.finish()
        finally:
            pen.close()
    except SmpError as exc:
        if pen_side.difference is None:
            raise RecordingError(f"the replay could not connect to the recorded pen: {exc}. "
                                 "The recording's handshake is damaged or missing") from None
    finally:
        driver.close()
        pen_side.close()
    report.matched = pen_side.matched
    report.difference = (pen_side.difference
                         or _first_state_difference(rec, states)
                         or _first_pass_difference(loaded.record.passes, memlog.passes(),
                                                   telemetry_hz))
    return report


def _first_state_difference(rec: Recording, got: list[tuple[str, str, float]]
                            ) -> Difference | None:
    expected = []
    for entry in rec.channel("/state"):
        value = json.loads(entry.data)
        expected.append((str(value.get("old")), str(value.get("new")), entry.t_s))
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


def _first_pass_difference(expected: list[PassRecord], got: list[PassRecord],
                           telemetry_hz: int = 100) -> Difference | None:
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
    return None


def now_utc() -> datetime:
    return datetime.now(UTC)
