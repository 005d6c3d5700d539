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
    last: dict[int, str] = {}
    for p in passes:  # in the order they began
        last[p.index] = p.outcome or "in_progress"
    outcome = classify_session([last[i] for i in sorted(last)], len(profile.plan),
                               stop_requested=stop_requested, pen_state=pen_state)
    summary = summarize_passes(passes)
    summary["planned_passes"] = len(profile.plan)
    summary["outcome"] = outcome.value
    resumed = [r.get("resumed_at") for r in passlog.resumptions(session_id)]
    if resumed:  # absent for a session never resumed (summaries as before)
        summary["resumptions"] = len(resumed)
        summary["resumed_at"] = resumed
    return summary


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
