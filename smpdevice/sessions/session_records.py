"""A session's summary and its close record, computed from the pass log (no pen needed).

`TreatmentSession.close` uses them, and so does `smp run --resume` to close a session with
nothing left to play.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from smpdevice.outcomes import SessionOutcome, classify_session
from smpdevice.passlog import PassLog
from smpdevice.sessions.aftercare import aftercare_sheet, summarize_passes
from smpdevice.sessions.profiles import TreatmentProfile


def session_summary(passlog: PassLog, session_id: str, profile: TreatmentProfile, *,
                    stop_requested: bool = False, pen_state: str | None = None) -> dict:
    """The summary of a session's passes so far, with its `outcome`, `planned_passes` and
    `resumptions` (how often it was resumed). A pass played again after a resume (its
    remainder) counts by its last part: the outcome is judged per planned pass."""
    passes = passlog.passes(session_id)
    resumptions = passlog.resumptions(session_id)
    last: dict[int, str] = {}
    for p in passes:  # in the order they began
        last[p.index] = p.outcome or "in_progress"
    judged, left = _completed_by_dots(last, profile, passes, resumptions)
    # Every planned pass must be done: a hand pass filed past the plan (another zone's, or
    # one more of a zone) is one more to play through, never one of the plan's (review 17).
    planned = len(profile.plan) + sum(1 for i in last if i >= len(profile.plan))
    if left:
        planned = max(planned, len(last) + 1)
    outcome = classify_session([last[i] for i in sorted(last)], planned,
                               stop_requested=stop_requested, pen_state=pen_state,
                               stopped_by=passes[-1].outcome if passes else None)
    if stop_requested and _stopped_before_this_part_played(passes, resumptions, pen_state):
        outcome = SessionOutcome.interrupted
    summary = summarize_passes(passes)
    _tally_judged(summary, judged)
    summary["planned_passes"] = len(profile.plan)
    summary["planned_done"] = len(profile.plan) - len(left)  # a pass past the plan is none
    summary["outcome"] = outcome.value
    _count_crashed_by_pen(summary, passes, resumptions)
    # a `count_only` record (a refused resume that kept the pen's count) resumed nothing
    resumed = [r.get("resumed_at") for r in resumptions if not r.get("count_only")]
    if resumed:  # absent for a session never resumed (summaries as before)
        summary["resumptions"] = len(resumed)
        summary["resumed_at"] = resumed
    return summary


def _completed_by_dots(last: dict[int, str], profile: TreatmentProfile, passes: list,
                       resumptions: list[dict]) -> tuple[list[dict], set[int]]:
    """One notion of "done" with a resume (review 12 REV3B-5): a planned pass of which nothing
    is left to play (`remaining_passes`: all its dots made, counted by the pen for a host
    crash) is judged completed, whatever cut its last part (a fault at its last dot, a host
    crash): a resume never plays it again, so the session's outcome must not wait for it.
    Returns those passes (last part's id, index, recorded outcome; the records stay as they
    were), and the plan's indexes still to play."""
    from smpdevice.sessions.crash_count import earlier_counts
    from smpdevice.sessions.resume import remaining_passes

    left = {i for i, _ in remaining_passes(profile.plan, passes,
                                           counted=earlier_counts(resumptions))}
    last_part = {p.index: p for p in passes}
    judged = []
    for index, outcome in last.items():
        if outcome in ("completed", "in_progress") or index >= len(profile.plan) \
                or index in left:
            continue
        last[index] = "completed"
        judged.append({"pass_id": getattr(last_part[index], "pass_id", None),
                       "index": index, "recorded_outcome": outcome})
    return judged, left


def _tally_judged(summary: dict, judged: list[dict]) -> None:
    """The summary's per-outcome tally counts a pass judged completed (`_completed_by_dots`)
    as completed, so its counts, next steps and the client's sheet agree with the outcome;
    `judged_completed` lists them with what their records say (absent when none)."""
    if not judged:
        return
    outcomes = summary["outcomes"]
    for j in judged:
        recorded = j["recorded_outcome"]
        outcomes[recorded] = outcomes.get(recorded, 0) - 1
        if outcomes[recorded] <= 0:
            del outcomes[recorded]
        outcomes["completed"] = outcomes.get("completed", 0) + 1
    summary["judged_completed"] = judged


def _stopped_before_this_part_played(passes: list, resumptions: list[dict],
                                     pen_state: str | None) -> bool:
    """Whether a stop asked (Ctrl-C, SIGTERM, `session.stop`) came before the latest resumed
    part began any pass, with the pen not latched: then it ends as `interrupted`, not by the
    earlier part's fault, which this part did not meet (review 12 REV3B-9). `passes_before`:
    the pass records when that part was resumed (absent in older records: judged as before)."""
    parts = [r for r in resumptions if not r.get("count_only")]
    if not parts or parts[-1].get("passes_before") is None:
        return False
    if pen_state in ("fault", "estop", "disconnected"):
        return False  # the pen says why it ended
    return len(passes) <= int(parts[-1]["passes_before"])


def _count_crashed_by_pen(summary: dict, passes: list, resumptions: list[dict]) -> None:
    """A pass cut by a host crash is recorded to its last checkpoint; a resume that counted it
    by the pen's counters (`crash_count`, in its `session_resume` record; a resume refused for
    having nothing left to play keeps it too, in a `count_only` one) says how many dots it
    made: the summary's figures (and the client's sheet) count those, and `pen_counted` lists
    the passes so counted, with what their records say (the records stay as they were)."""
    counted = {str(c.get("pass_id")): c for r in resumptions for c in r.get("pen_counted") or []
               if c.get("counted")}
    zone_of = {p.pass_id: p.zone for p in passes}
    listed = []
    for pass_id, c in counted.items():
        zone = summary["zones"].get(zone_of.get(pass_id, ""))
        if zone is None:
            continue
        for key in ("strokes", "impressions"):
            extra = max(int(c[key]) - int(c[f"recorded_{key}"]), 0)
            zone[key] += extra
            summary[key] += extra
        listed.append({k: c[k] for k in ("pass_id", "index", "strokes", "impressions",
                                         "recorded_strokes", "recorded_impressions")})
    if listed:  # absent otherwise: summaries as before
        summary["pen_counted"] = listed


def close_session_record(passlog: PassLog, session_id: str, profile: TreatmentProfile, *,
                         today: date | None = None, stop_requested: bool = False,
                         pen_state: str | None = None,
                         recording: dict | None = None,
                         closed_at: datetime | None = None,
                         calibrations: list[dict] | None = None,
                         interruptions: list[dict] | None = None,
                         ) -> tuple[dict, str, SessionOutcome]:
    """Record a session's close with its summary; return (summary, aftercare sheet, outcome).
    Needs no pen: `smp run --resume` closes a session with nothing left this way.
    `recording`: the sealed frame recording (file, sha256), kept in the summary (15.3); a
    resumed session's summary lists every part's (the earlier ones from its resume records).
    `calibrations`: the passes that ran on a calibration other than the one the session (or
    its resumed part) was opened with (`set_calibration` between passes), each with that
    calibration's id, offset_mm and gain: the summary's `pass_calibrations` (absent if none).
    `interruptions`: each fault, E-stop or lost link between passes, from play()'s start to
    where it ended (state, reason, `before_index`: the pass not begun), cleared since or not,
    oldest first: `interruptions_between` (absent if none), as no pass record can say them.
    Read them with `interruptions_between()`: one rev-20 summary has `interrupted_between`."""
    summary = session_summary(passlog, session_id, profile, stop_requested=stop_requested,
                              pen_state=pen_state)
    if calibrations:
        summary["pass_calibrations"] = [dict(c) for c in calibrations]
    if interruptions:
        summary["interruptions_between"] = [dict(i) for i in interruptions]
    earlier = [r["recording_before"] for r in passlog.resumptions(session_id)
               if r.get("recording_before")]
    if earlier:  # a resumed session: every part's file and hash, in order (15.3)
        summary["recording"] = earlier + ([recording] if recording is not None else [])
    elif recording is not None:
        summary["recording"] = recording  # one part: the single form, as before
    receipt = passlog.close_session(session_id, closed_at=closed_at or _now(), summary=summary)
    sheet = aftercare_sheet(
        session_kind=profile.session_kind, session_date=today or date.today(),
        client_ref=profile.client_ref, summary=summary,
        receipt=receipt.text() if receipt is not None else None,
    )
    return summary, sheet, SessionOutcome(summary["outcome"])


def interruptions_between(summary: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """A close summary's interruptions between passes, oldest first, whichever form it was
    written in: `interruptions_between` (a list), `interrupted_between` (the one dict a close
    of rev 20's first form kept), or neither (an older summary, or none came): []."""
    summary = summary or {}
    listed = summary.get("interruptions_between")
    if isinstance(listed, list):
        return [dict(i) for i in listed if isinstance(i, Mapping)]
    single = summary.get("interrupted_between")
    return [dict(single)] if isinstance(single, Mapping) else []


def interruption_words(interruption: Mapping[str, Any]) -> str:
    """One interruption between passes for people: "estop before pass 2 (E-stop requested
    by the host)"."""
    where = interruption.get("before_index")
    before = f" before pass {where + 1}" if isinstance(where, int) else ""
    return f"{interruption.get('state', 'unknown')}{before} ({interruption.get('reason', '')})"


def _now() -> datetime:
    return datetime.now(UTC)
