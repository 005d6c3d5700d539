"""Resuming a session interrupted by a fault, an E-stop, a lost pen or a host crash.

`smp run` leaves such a session OPEN in the pass log (no close record); `smp run --resume
SESSION` plays what is left of its plan once the cause is cleared:

- the plan comes from the log (the profile's content is in the session's header, checked
  against its hash); a profile given on the command line must be that same profile;
- a planned pass that completed is never played again; a pass cut short is played for its
  **remainder** only, counted in dots the pen made (its impression counter): impressions left
  for an impressions pass; for a duration pass, the duration less one pulse period per dot
  made. A pass cut by a host crash is recorded to its last checkpoint only (the needle ran on
  until the pen's lease ran out): its dots are counted by the pen's own counters when it did
  not restart since (`smpdevice.sessions.crash_count`), else up to one checkpoint interval plus
  one lease of it may repeat, and the resume says so;
- calibration, envelope and the pen's state are checked exactly as for a new session; the
  screening is asked again after `rescreen_after_min` (default `RESCREEN_AFTER_MIN`) minutes;
- a session a live session object of this program plays, or another resume of this program is
  resuming, is not resumed a second time (`players.reserved`);
- the resumption is a chained `session_resume` record (covered by `smp sessions verify`).
A closed session is never reopened. The functions here are pure (no pen, no I/O, no clock):
`smpdevice.cli.resume` and `resume_session` below put them together."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
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


class NothingLeft(ResumeError):
    """Every planned pass is completed (or, cut by a host crash, made all its dots by the pen's
    count, recorded before this is raised): the session is to be closed. `session_id`: its
    full id, for the caller to print how to close it (`close_how`: as given, or a default)."""

    def __init__(self, session_id: str, close_how: str) -> None:
        super().__init__(f"session {session_id} has nothing left to play: every planned pass "
                         "is completed (or, cut by a host crash, made all its dots by the "
                         f"pen's counters); close it: {close_how}")
        self.session_id = session_id


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
                    key_fingerprint: str | None = None,
                    reach: Sequence[str] = ("--port", "PORT")) -> None:
    """Refuse (ResumeError) a closed session, one of another pen (when `pen_serial` is known)
    or one opened by another installation (another key signs its log). `reach`: how the
    caller reaches the pen, for the command a refusal names (`--service URL` through
    `smp serve`, whose own pen port would reach another pen or none)."""
    sid = record.session_id
    if record.closed_at is not None:
        outcome = (record.summary or {}).get("outcome", "unknown")
        raise ResumeError(
            f"session {sid} is closed (at {record.closed_at}, outcome {outcome}); a closed "
            "session cannot be reopened. Play the rest in a new session: "
            + command("smp", "run", "PROFILE", *reach))
    if pen_serial is not None and record.pen_serial != pen_serial:
        raise ResumeError(
            f"session {sid} was recorded on pen {record.pen_serial}; this is pen {pen_serial}. "
            f"Resume it on pen {record.pen_serial} (give its {reach[0]})")
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


def remaining_passes(plan: Sequence[PlannedPass], passes: Iterable[Any], *,
                     counted: Mapping[str, int] | None = None) -> list[tuple[int, PlannedPass]]:
    """(plan index, pass) still to play, in plan order: every planned pass not completed,
    reduced to its remainder by the dots already made (see the module's docstring).
    `counted`: pass id -> the dots to count instead of the recorded ones (a pass cut by a host
    crash, counted by the pen: `smpdevice.sessions.crash_count`). A record counts for a
    planned pass only in its zone (one filed under another zone's index treated none of it)."""
    counted = counted or {}
    done: dict[int, list[Any]] = {}
    for p in passes:
        if 0 <= p.index < len(plan) and getattr(p, "zone", None) in (None, plan[p.index].zone):
            done.setdefault(p.index, []).append(p)
    left: list[tuple[int, PlannedPass]] = []
    for index, planned in enumerate(plan):
        parts = done.get(index, [])
        if any(p.outcome == "completed" for p in parts):
            continue
        made = [(max(int(counted.get(getattr(p, "pass_id", ""), p.impressions)), 0), p)
                for p in parts]
        dots = sum(n for n, _ in made)
        spent_s = sum(n * p.period_ms / 1000.0 for n, p in made)
        rest = pass_remainder(planned, dots, spent_s)
        if rest is not None:
            left.append((index, rest))
    return left


def pass_remainder(planned: PlannedPass, dots: int, spent_s: float) -> PlannedPass | None:
    """What is left of `planned` once `dots` impressions were made, `spent_s` of dots' time
    (impressions x period); None when nothing is. For a resume and a session's `remaining`."""
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
    lost, `smp serve` stopping): as a crashed host, the session stays open unless complete.
    A session whose every planned pass is done (a pass cut after its last dot counts) is
    closed, whatever cut its last pass: nothing would be left to resume."""
    from smpdevice.sessions.session_records import session_summary

    if stop_asked:
        return False
    outcome = session_summary(session.passlog, session.session_id, session.profile,
                              pen_state=session.judged_pen_state())["outcome"]
    if outcome == "completed":
        return False
    if session.calibration_lapsed:  # recalibrate, then resume (review 12)
        return True
    results = session.results
    if results and results[-1].outcome.value == "footswitch_released":
        return True
    return outcome in RESUMABLE_OUTCOMES or host_gone


MAX_CANDIDATES = 10  # session ids an ambiguous prefix names


def find_session_log(paths: Iterable[Path], session_id: str, *, where: str,
                     hint: str = "check the id (`smp sessions list`)",
                     warn: Callable[[str], None] | None = None) -> Path:
    """The one pass log among `paths` that holds `session_id`: the id, or a prefix of exactly
    one session across EVERY log (never the first log with a match: a prefix of sessions in
    two logs could end or resume the wrong one). Refused (ResumeError) naming the candidates;
    an empty or blank id is refused (it would prefix every session). `where` names the logs,
    `hint` says what to do when none holds it.

    Two files holding one log (a backup left beside it, a link: `logset.copies`, the rule
    `smp sessions` reads by) are read once, as the log written on; the other is named through
    `warn`. A log that cannot be opened (damaged, or a stray file named like a pen's log) is
    left out and named through `warn` (default: a logged warning), as `smp sessions` reads
    around it; then only an exact id is taken (a prefix could also name a session in the
    unread log). When none of them opens, the first one's error is raised (a `--db` given
    alone)."""
    from smpdevice.records.logset import CopiedLog, matching, open_all

    require_session_id(session_id)
    found: list[tuple[Path, str]] = []
    skipped: list[tuple[Path, SmpError]] = []
    with open_all([p for p in paths if p.is_file()], skipped=skipped) as logs:
        for log in logs:
            found += matching(((Path(log.path), s) for s in log.sessions()), session_id)
    say = warn or _log_warning
    for _path, error in skipped:
        if isinstance(error, CopiedLog):  # read once (or both, named): nothing left unread
            say(f"{str(error).rstrip().rstrip('.')} (`smp sessions verify` fails on it until "
                "then)")
    skipped = [(p, e) for p, e in skipped if not isinstance(e, CopiedLog)]
    for path, error in skipped:
        say(f"{str(error).rstrip().rstrip('.')}. Its sessions are left out; the other logs are "
            f"read (check it: {command('smp', 'sessions', 'verify', '--db', str(path))})")
    if skipped and not any(sid == session_id for _, sid in found):
        unread = ", ".join(str(p) for p, _ in skipped)
        raise ResumeError(f"no session is exactly {session_id!r} in {where} that could be "
                          f"read, and {unread} could not be read (named above): give the "
                          "session's full id (`smp sessions list`); nothing was changed")
    return pick_session(found, session_id, where=where, hint=hint)[0]


def _log_warning(text: str) -> None:
    import structlog

    structlog.get_logger("smpdevice.sessions.resume").warning("pass log left out", why=text)


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
    if exact or len({sid for _, sid in found}) == 1:  # one id in two logs (both read): which
        raise error(f"session {found[0][1]} is in several pass logs ({shown}{more}); "  # is
                    f"{todo}")  # meant cannot be told, and more of the id would not say
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
                   rescreen_after_min: float = RESCREEN_AFTER_MIN,
                   close_how: str | None = None,
                   before_record: Callable[[], None] | None = None) -> Any:
    """Check an interrupted session may go on on this pen, record its resumption, and return
    it (a `TreatmentSession` whose `remaining` is what is left: `play()` plays only that).

    `screening`: answers asked again (required, and checked, when the last screening is older
    than `rescreen_after_min`; `ScreeningDue` otherwise); `now`: the time (UTC) it is judged at
    (default: the pen's `record_now()`, the time its records carry). Raises NothingLeft when
    there is nothing left to play, having recorded the pen's count of a pass cut by a host
    crash first (so the close counts it); `close_how`: what its message says to do then
    (default: the `smp run --resume SID --close` that runs as printed, with this pen's port and
    this log). `before_record`: called after every check, right before anything is recorded;
    what it raises refuses the resume, nothing recorded. A wrong argument (plain data for
    `screening` or `profile`, a naive `now`) is refused with `InvalidArgument` before anything
    is read or recorded.
    """
    from smpdevice.sessions import players
    from smpdevice.sessions.resume_args import check_resume_args
    from smpdevice.sessions.resume_record import record_resumption

    check_resume_args(pen, passlog, session_id, technician=technician, screening=screening,
                      profile=profile, now=now, close_how=close_how)  # nothing read yet
    rescreen_after_min = check_rescreen_after(rescreen_after_min)
    # the time the pen's records carry (on a virtual clock too: no record "from the future")
    record_now = getattr(pen, "record_now", None)
    now = now or (record_now() if callable(record_now) else datetime.now(UTC))
    record = passlog.session(session_id)
    # held from this look to its session object: a second player here would play what is
    # left again, and two resumes at once would both record a resumption (review 19)
    with players.reserved(passlog, record.session_id):
        # read again now it is held: what played since the first look is not planned again
        record = passlog.session(record.session_id)
        return record_resumption(pen, passlog, record, technician=technician,
                                 screening=screening, profile=profile, now=now,
                                 rescreen_after_min=rescreen_after_min, close_how=close_how,
                                 before_record=before_record)
