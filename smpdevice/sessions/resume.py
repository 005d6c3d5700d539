"""Resuming a session interrupted by a fault, an E-stop, a lost pen or a host crash.

`smp run` leaves such a session OPEN in the pass log (no close record); `smp run --resume
SESSION` plays what is left of its plan once the cause is cleared:

- the plan comes from the log (the profile's content is in the session's header, checked
  against its hash); a profile given on the command line must be that same profile;
- a planned pass that completed is never played again; a pass cut short is played for its
  **remainder** only, counted in dots the pen made (its impression counter): impressions left
  for an impressions pass; for a duration pass, the duration less one pulse period per dot
  made. A pass recovered after a host crash counts what its last checkpoint recorded (at most
  `CHECKPOINT_EVERY_S` behind), so its remainder may repeat up to that much;
- calibration, envelope and the pen's state are checked exactly as for a new session;
- the contraindication screening is asked again when more than `rescreen_after_min` minutes
  (default `RESCREEN_AFTER_MIN`) passed since the session's last screening;
- the resumption is a chained `session_resume` record (covered by `smp sessions verify`).

A closed session is never reopened. The functions here are pure (no pen, no I/O, no clock):
`smpdevice.cli.resume` and `resume_session` below put them together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from smpdevice.errors import SmpError
from smpdevice.outcomes import ExitCode, command
from smpdevice.sessions.profiles import PlannedPass, TreatmentProfile, parse_profile, profile_hash

# Minutes after the session's last screening beyond which a resume asks it again. Skin can
# change within a day (a flare, a scratch); 30 min keeps a short break (E-stop, a cable) quick.
RESCREEN_AFTER_MIN = 30.0
RESCREEN_AFTER_RANGE_MIN = (0.0, 480.0)  # 0: always ask again; at most a working day


class ResumeError(SmpError):
    """This session cannot be resumed (closed, unknown, another pen or installation, a
    different profile); the message says why and what to do."""

    exit_code = ExitCode.USER_ERROR


class ScreeningDue(ResumeError):
    """The session's screening is older than the limit: ask it again before resuming."""


def check_rescreen_after(value: Any) -> float:
    """`rescreen_after_min` as a float in range, or a ResumeError naming it."""
    low, high = RESCREEN_AFTER_RANGE_MIN
    try:
        minutes = float(value)
    except (TypeError, ValueError):
        minutes = math.nan
    if isinstance(value, bool) or not math.isfinite(minutes) or not low <= minutes <= high:
        raise ResumeError(f"rescreen_after_min = {value!r} is not allowed: give minutes from "
                          f"{low:g} to {high:g} (default {RESCREEN_AFTER_MIN:g}; 0 asks the "
                          "screening again at every resume)")
    return minutes


def check_resumable(record: Any, *, pen_serial: str | None = None,
                    key_fingerprint: str | None = None) -> None:
    """Refuse (ResumeError) a closed session, one of another pen (when `pen_serial` is known)
    or one opened by another installation (another key signs its log)."""
    sid = record.session_id
    if record.closed_at is not None:
        outcome = (record.summary or {}).get("outcome", "unknown")
        raise ResumeError(
            f"session {sid} is closed (at {record.closed_at}, outcome {outcome}); a closed "
            "session cannot be reopened. Play the rest in a new session: "
            + command("smp", "run", "PROFILE", "--port", "PORT"))
    if pen_serial is not None and record.pen_serial != pen_serial:
        raise ResumeError(
            f"session {sid} was recorded on pen {record.pen_serial}; this is pen {pen_serial}. "
            f"Resume it on pen {record.pen_serial} (give its --port)")
    if (key_fingerprint is not None and record.key_fingerprint is not None
            and record.key_fingerprint != key_fingerprint):
        raise ResumeError(
            f"session {sid} was opened by another installation (key {record.key_fingerprint}, "
            f"this one is {key_fingerprint}); resume it on the station that opened it")


# The footswitch modes from the strongest: a resume may keep or strengthen the session's mode,
# never weaken it (its passes would run with less of an enabling device than recorded).
FOOTSWITCH_STRENGTH = {"required": 2, "optional": 1, "off": 0}


def check_footswitch(record: Any, mode: str | None) -> None:
    """Refuse (ResumeError) resuming with a footswitch `mode` weaker than the one in the
    session's header (required > optional > off). A session recorded before headers kept the
    mode has no constraint."""
    opened = getattr(record, "footswitch", None)
    if opened is None or mode is None:
        return
    if FOOTSWITCH_STRENGTH.get(str(mode), -1) < FOOTSWITCH_STRENGTH.get(str(opened), 0):
        raise ResumeError(
            f"session {record.session_id} was opened with footswitch mode {opened!r}; this "
            f"controller's mode is {mode!r}, which is weaker (required > optional > off). "
            f"Resume it with footswitch = {opened!r} (or stronger): set SMP_FOOTSWITCH={opened} "
            "or `footswitch` in the station's settings")


def recover_profile(record: Any, given: TreatmentProfile | None,
                    envelope: Any) -> TreatmentProfile:
    """The session's own profile: from its header (validated again against `envelope`, and
    checked against the recorded hash), or `given` for a session recorded before headers kept
    the profile. A `given` profile must be the one the session was opened with."""
    sid, recorded_hash = record.session_id, record.profile_hash
    if given is not None and profile_hash(given) != recorded_hash:
        raise ResumeError(
            f"the profile given differs from the one session {sid} was opened with (hash "
            f"{profile_hash(given)[:12]}, recorded {recorded_hash[:12]}); a resume plays the "
            "session's own plan: omit PROFILE, or give that same profile")
    if record.profile is None:
        if given is None:
            raise ResumeError(
                f"session {sid} was recorded before sessions kept their profile: give the "
                "profile it was opened with: " + command("smp", "run", "PROFILE", "--resume",
                                                         sid))
        return given
    profile = parse_profile(record.profile, envelope, source=f"session {sid}'s profile")
    if profile_hash(profile) != recorded_hash:
        raise ResumeError(f"session {sid}'s recorded profile does not match its recorded hash: "
                          "check the log (smp sessions verify)")
    return profile


def remaining_passes(plan: Sequence[PlannedPass],
                     passes: Iterable[Any]) -> list[tuple[int, PlannedPass]]:
    """(plan index, pass) still to play, in plan order: every planned pass not completed,
    reduced to its remainder by the dots already made (see the module's docstring)."""
    done: dict[int, list[Any]] = {}
    for p in passes:
        done.setdefault(p.index, []).append(p)
    left: list[tuple[int, PlannedPass]] = []
    for index, planned in enumerate(plan):
        parts = done.get(index, [])
        if any(p.outcome == "completed" for p in parts):
            continue
        dots = sum(max(int(p.impressions), 0) for p in parts)
        spent_s = sum(max(int(p.impressions), 0) * p.period_ms / 1000.0 for p in parts)
        rest = pass_remainder(planned, dots, spent_s)
        if rest is not None:
            left.append((index, rest))
    return left


def pass_remainder(planned: PlannedPass, dots: int, spent_s: float) -> PlannedPass | None:
    """What is left of `planned` once `dots` impressions were made, `spent_s` of dots' time
    (impressions x period); None when nothing is. Shared by a resume and by a session's
    `remaining`."""
    if planned.impressions is not None:
        rest = planned.impressions - dots
        return planned.model_copy(update={"impressions": rest}) if rest > 0 else None
    assert planned.duration_s is not None  # a PlannedPass has exactly one target
    rest_s = planned.duration_s - spent_s
    return planned.model_copy(update={"duration_s": rest_s}) if rest_s > 0 else None


# How a session ends that is left open (not closed): the cause can be cleared, then resumed.
RESUMABLE_OUTCOMES = ("fault", "estop", "link_lost")


def left_resumable(session: Any, *, stop_asked: bool, host_gone: bool = False) -> bool:
    """Whether a session that has played should be left OPEN rather than closed: it ended on
    a fault, an E-stop, a lost pen or the pedal (released, or up at a start), and nobody asked
    it to stop (a stop asked for, e.g. Ctrl-C or `session.stop`, closes it as interrupted).
    `host_gone`: what drove it went away without asking anything (a service's driving client
    lost, `smp serve` stopping): as a crashed host, the session stays open unless complete."""
    from smpdevice.sessions.session_records import session_summary

    if stop_asked:
        return False
    results = session.results
    if results and results[-1].outcome.value == "footswitch_released":
        return True
    outcome = session_summary(session.passlog, session.session_id, session.profile,
                              pen_state=session.pen.state.value)["outcome"]
    return outcome in RESUMABLE_OUTCOMES or (host_gone and outcome != "completed")


MAX_CANDIDATES = 10  # session ids an ambiguous prefix names


def find_session_log(paths: Iterable[Path], session_id: str, *, where: str,
                     hint: str = "check the id (`smp sessions list`)") -> Path:
    """The one pass log among `paths` that holds `session_id`: the id, or a prefix of exactly
    one session across EVERY log (never the first log with a match: a prefix of sessions in
    two logs could end or resume the wrong one). Refused (ResumeError) naming the candidates;
    an empty or blank id is refused (it would prefix every session). `where` names the logs,
    `hint` says what to do when none holds it."""
    from smpdevice.passlog import PassLog
    from smpdevice.records.logset import matching

    require_session_id(session_id)
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_file():
            with PassLog(path, readonly=True) as log:
                found += matching(((path, s) for s in log.sessions()), session_id)
    return pick_session(found, session_id, where=where, hint=hint)[0]


def require_session_id(session_id: Any, error: type[SmpError] = ResumeError) -> None:
    """Refuse (`error`) an id that is not a non-blank text: it would prefix every session."""
    if not isinstance(session_id, str) or not session_id.strip():
        raise error(f"{session_id!r} is not a session id: give one (or a unique prefix "
                    "of one); `smp sessions list` shows them")


def pick_session(found: Sequence[tuple[Path, str]], session_id: str, *, where: str,
                 hint: str, error: type[SmpError] = ResumeError,
                 todo: str = "nothing was changed: resume or close it from the one log meant",
                 read_only: bool = False) -> tuple[Path, str]:
    """The one (log, full id) among `found` (every session whose id starts with `session_id`,
    across every log) that `session_id` names: the exact id, or the prefix of exactly one.
    Shared by resume/close (find_session_log) and by `smp sessions show` and the service's
    `sessions.show` (smpdevice.records.logset), so all of them resolve an id alike. Refused
    (`error`) naming the candidates; `todo` says what to do with an id in two logs;
    `read_only`: a lookup that changes nothing does not say so."""
    exact = [f for f in found if f[1] == session_id]
    found = exact or list(found)
    if not found:
        raise error(f"no session {session_id!r} in {where}: {hint}")
    if len(found) == 1:
        return found[0]
    shown = ", ".join(f"{sid} (in {path})" for path, sid in found[:MAX_CANDIDATES])
    more = f" and {len(found) - MAX_CANDIDATES} more" if len(found) > MAX_CANDIDATES else ""
    if exact:  # one id in two logs (a copied log): which one is meant cannot be told
        raise error(f"session {session_id} is in several pass logs ({shown}{more}); "
                    f"{todo}")
    changed = "" if read_only else "nothing was changed: "
    raise error(f"{session_id!r} matches {len(found)} sessions ({shown}{more}); "
                f"{changed}give more of the id")


def last_screened_at(opened_at: str, resumptions: Iterable[dict[str, Any]]) -> datetime:
    """When the session's screening was last answered: at its opening, or at a resume that
    asked it again."""
    latest = datetime.fromisoformat(opened_at)
    for r in resumptions:
        if r.get("screening") is not None:
            latest = max(latest, datetime.fromisoformat(r["resumed_at"]))
    return latest


def screening_due(screened_at: datetime, now: datetime, rescreen_after_min: float) -> bool:
    """Whether the screening must be asked again: more than `rescreen_after_min` minutes
    since `screened_at`, or a clock that went backwards (then the age is unknown: ask)."""
    age = now - screened_at
    return age < timedelta(0) or age > timedelta(minutes=rescreen_after_min)


def resume_session(pen: Any, passlog: Any, session_id: str, *, technician: str,
                   screening: Any = None, profile: TreatmentProfile | None = None,
                   now: datetime | None = None,
                   rescreen_after_min: float = RESCREEN_AFTER_MIN) -> Any:
    """Check an interrupted session may go on on this pen, record its resumption, and return
    it (a `TreatmentSession` whose `remaining` is what is left: `play()` plays only that).

    `screening`: answers asked again (required, and checked, when the last screening is older
    than `rescreen_after_min`; `ScreeningDue` otherwise); `now`: the wall-clock time (UTC) it
    is judged at. Raises ResumeError when there is nothing left to play.
    """
    from datetime import UTC

    from smpdevice.envelope import envelope_record
    from smpdevice.sessions.session import TreatmentSession, preflight

    rescreen_after_min = check_rescreen_after(rescreen_after_min)
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    record = passlog.session(session_id)
    sid = record.session_id  # the full id (a unique prefix was given)
    check_resumable(record, pen_serial=pen.identity.serial,
                    key_fingerprint=passlog.key_fingerprint)
    check_footswitch(record, getattr(pen, "footswitch", None))
    profile = recover_profile(record, profile, pen.zones)
    left = remaining_passes(profile.plan, record.passes)
    if not left:
        raise ResumeError(f"session {sid} has nothing left to play: every planned pass is "
                          "completed")
    resumptions = passlog.resumptions(sid)
    screened_at = last_screened_at(record.opened_at, resumptions)
    if screening is None and screening_due(screened_at, now, rescreen_after_min):
        raise ScreeningDue(
            f"session {sid} was last screened at {screened_at:%Y-%m-%d %H:%M} UTC, more than "
            f"{rescreen_after_min:g} min ago: ask the contraindication screening again "
            "(--screening FILE, or at a terminal)")
    if screening is not None:
        screening.require_clear()
    calibration = preflight(pen, profile, technician)
    from smpdevice.replay.recorder import part_record, start_recording

    part = len(resumptions) + 2  # this resume's recording; the one before is sealed: link it
    before = part_record(passlog.path, sid, part - 1) if hasattr(passlog, "path") else None
    passlog.resume_session(sid, resumed_at=now, details={
        "recording_before": before,
        "number": len(resumptions) + 1, "technician": technician,
        "footswitch": getattr(pen, "footswitch", None),  # the mode in force for these passes
        "firmware_version": pen.identity.firmware_version,
        "calibration_id": calibration.calibration_id,
        "envelope_sha256": envelope_record(pen.zones)["sha256"],
        "screening": screening.as_record() if screening is not None else None,
        "passes_left": [{"index": i, "duration_s": p.duration_s, "impressions": p.impressions}
                        for i, p in left],
    })
    session = TreatmentSession(pen, passlog, profile, sid, technician)
    session.remaining = left
    session.recording = start_recording(pen, passlog, sid, profile, technician, screening,
                                        part=part)  # issue 15.3: every part is recorded
    session._log.info("session resumed", passes_left=len(left), number=len(resumptions) + 1)
    return session
