"""A session's summary and its close record, computed from the pass log (no pen needed).

`TreatmentSession.close` uses them, and so does `smp run --resume` to close a session with
nothing left to play.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

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
    _completed_by_pen(last, profile, passes, resumptions)
    outcome = classify_session([last[i] for i in sorted(last)], len(profile.plan),
                               stop_requested=stop_requested, pen_state=pen_state)
    summary = summarize_passes(passes)
    summary["planned_passes"] = len(profile.plan)
    summary["outcome"] = outcome.value
    _count_crashed_by_pen(summary, passes, resumptions)
    # a `count_only` record (a refused resume that kept the pen's count) resumed nothing
    resumed = [r.get("resumed_at") for r in resumptions if not r.get("count_only")]
    if resumed:  # absent for a session never resumed (summaries as before)
        summary["resumptions"] = len(resumed)
        summary["resumed_at"] = resumed
    return summary


def _completed_by_pen(last: dict[int, str], profile: TreatmentProfile, passes: list,
                      resumptions: list[dict]) -> None:
    """A planned pass whose last part was cut by a host crash but made all its dots by the
    pen's count (kept by a resume, or by one refused for it: nothing was left to play) is
    judged completed: the session's outcome says what the pen did, not where the host died."""
    from smpdevice.sessions.crash_count import earlier_counts
    from smpdevice.sessions.resume import remaining_passes

    counted = earlier_counts(resumptions)
    if not counted:
        return
    left = {i for i, _ in remaining_passes(profile.plan, passes, counted=counted)}
    for index, outcome in last.items():
        if outcome == "controller_crashed" and index < len(profile.plan) and index not in left:
            last[index] = "completed"


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
                         closed_at: datetime | None = None) -> tuple[dict, str, SessionOutcome]:
    """Record a session's close with its summary; return (summary, aftercare sheet, outcome).
    Needs no pen: `smp run --resume` closes a session with nothing left this way.
    `recording`: the sealed frame recording (file, sha256), kept in the summary (15.3); a
    resumed session's summary lists every part's (the earlier ones from its resume records)."""
    summary = session_summary(passlog, session_id, profile, stop_requested=stop_requested,
                              pen_state=pen_state)
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


def _now() -> datetime:
    return datetime.now(UTC)
