"""The session summary and the aftercare sheet given to the client when a session closes.

Pure functions of dates and pass records: no clock, no I/O, so they are easy to test and the
session code decides what "today" is. Every interval is a documented default that callers may
override; they are for simulation and testing, not clinical advice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from smpdevice.sessions.profiles import SessionKind

# Scabs must not soften and fall off early: no washing, sweating or swimming for these days.
KEEP_DRY_DAYS = 4
# Days from this session to the next one; None: no further session is planned after it.
NEXT_SESSION_DAYS: dict[SessionKind, tuple[int, int] | None] = {
    SessionKind.base_density: (10, 30),
    SessionKind.shading_definition: (10, 30),
    SessionKind.adjustment: None,  # the final session of the standard protocol
    SessionKind.touch_up: None,
    # Scar tissue takes pigment poorly and heals slower; a further session is common.
    SessionKind.scar_camouflage: (14, 30),
}
TOUCH_UP_YEARS = (3, 6)


@dataclass(frozen=True)
class DateWindow:
    """An inclusive range of dates."""

    earliest: date
    latest: date

    def __str__(self) -> str:
        return f"{self.earliest.isoformat()} to {self.latest.isoformat()}"


class PassLike(Protocol):
    """What the summary needs of a pass (`smpdevice.passlog.PassRecord` has it; read-only,
    so a frozen record fits)."""

    @property
    def zone(self) -> str: ...
    @property
    def outcome(self) -> str | None: ...
    @property
    def started_at(self) -> str: ...
    @property
    def ended_at(self) -> str | None: ...
    @property
    def strokes(self) -> int: ...
    @property
    def impressions(self) -> int: ...


def keep_dry_until(session_date: date, days: int = KEEP_DRY_DAYS) -> date:
    """The last day the treated area must be kept dry."""
    if days < 0:
        raise ValueError("days must not be negative")
    return session_date + timedelta(days=days)


def next_session_window(
    kind: SessionKind | str,
    session_date: date,
    windows: Mapping[SessionKind, tuple[int, int] | None] = NEXT_SESSION_DAYS,
) -> DateWindow | None:
    """When the next session should be, or None after a final session."""
    days = windows.get(SessionKind(kind))
    if days is None:
        return None
    return DateWindow(session_date + timedelta(days=days[0]),
                      session_date + timedelta(days=days[1]))


def touch_up_window(final_session_date: date,
                    years: tuple[int, int] = TOUCH_UP_YEARS) -> DateWindow:
    """When a touch-up is due, counted from the final session."""
    return DateWindow(_add_years(final_session_date, years[0]),
                      _add_years(final_session_date, years[1]))


def summarize_passes(passes: Iterable[PassLike]) -> dict[str, Any]:
    """Totals per zone and per outcome: what `PassLog.close_session(summary=...)` stores."""
    zones: dict[str, dict[str, float]] = {}
    outcomes: dict[str, int] = {}
    count = 0
    for p in passes:
        count += 1
        outcome = p.outcome or "in_progress"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        z = zones.setdefault(p.zone, {"passes": 0, "strokes": 0, "impressions": 0,
                                      "needle_s": 0.0})
        z["passes"] += 1
        z["strokes"] += p.strokes
        z["impressions"] += p.impressions
        if p.ended_at:
            seconds = (datetime.fromisoformat(p.ended_at)
                       - datetime.fromisoformat(p.started_at)).total_seconds()
            z["needle_s"] = round(z["needle_s"] + max(seconds, 0.0), 3)
    return {
        "passes": count,
        "outcomes": outcomes,
        "zones": zones,
        "strokes": sum(int(z["strokes"]) for z in zones.values()),
        "impressions": sum(int(z["impressions"]) for z in zones.values()),
        "needle_s": round(sum(z["needle_s"] for z in zones.values()), 3),
    }


def aftercare_sheet(
    *,
    session_kind: SessionKind | str,
    session_date: date,
    client_ref: str,
    keep_dry_days: int = KEEP_DRY_DAYS,
    summary: Mapping[str, Any] | None = None,
    windows: Mapping[SessionKind, tuple[int, int] | None] = NEXT_SESSION_DAYS,
    touch_up_years: tuple[int, int] = TOUCH_UP_YEARS,
    receipt: str | None = None,
) -> str:
    """The plain-text sheet for the client: summary, keep-dry date, next session, touch-up;
    and the session's record `receipt` (`PassLog.close_session`), when given, for the client
    to keep."""
    kind = SessionKind(session_kind)
    title = kind.value.replace("_", " ")
    number = f"session {kind.number}: " if kind.number else ""
    lines = [
        "Scalp micropigmentation: aftercare",
        f"Client {client_ref}, {number}{title}, {session_date.isoformat()}",
        "",
    ]
    incomplete = session_incomplete(summary)
    if incomplete:
        lines += [
            "SESSION INCOMPLETE: " + incomplete,
            "The clinic will contact you to arrange the rest of this session; call the clinic",
            "if you have not heard from them within a few days.",
            "",
        ]
    if summary:
        lines.append(
            f"Today: {summary.get('passes', 0)} passes, {summary.get('impressions', 0)} "
            f"impressions over {', '.join(sorted(summary.get('zones', {}))) or 'no zone'}."
        )
        resumed = summary.get("resumptions")
        if isinstance(resumed, int) and resumed > 0:
            times = "once" if resumed == 1 else f"{resumed} times"
            lines.append(f"The session was interrupted and resumed {times}; these figures "
                         "include every part.")
        lines.append("")
    treated = not summary or summary.get("impressions", 0) or summary.get("strokes", 0)
    if treated:
        dry = keep_dry_until(session_date, keep_dry_days)
        lines += [
            f"Keep the treated area dry until {dry.isoformat()} inclusive ({keep_dry_days} "
            "days):",
            "  no washing, swimming, sauna or heavy sweating; let the small scabs fall off by",
            "  themselves and do not scratch or pick them.",
            "",
        ]
    else:
        lines += ["No pigment was applied today: no aftercare is needed.", ""]
    if incomplete:  # no next-session date until this one is complete
        return "\n".join(lines + _receipt_lines(receipt)) + "\n"
    nxt = next_session_window(kind, session_date, windows)
    if nxt is not None:
        lines.append(f"Next session: {nxt}.")
    else:
        touch = touch_up_window(session_date, touch_up_years)
        lines.append("This completes the treatment: no further session is planned.")
        lines.append(f"Touch-up: {touch} "
                     f"({touch_up_years[0]}-{touch_up_years[1]} years from today).")
    return "\n".join(lines + _receipt_lines(receipt)) + "\n"


def _receipt_lines(receipt: str | None) -> list[str]:
    """The record receipt, split in two lines so it fits a printed sheet (records F)."""
    if not receipt:
        return []
    head, _, signature = receipt.rpartition(" ")
    return ["", "Record receipt (keep it: it lets anyone check the clinic's record of today):",
            f"  {head}", f"  {signature}"]


def planned_done(summary: Mapping[str, Any]) -> int:
    """How many of the plan's passes are done: `planned_done` (a pass played by hand past the
    plan is none of them); a summary from before session 17 has only the tally of passes."""
    completed = (summary.get("outcomes") or {}).get("completed", 0)
    return int(summary.get("planned_done", completed))


def session_incomplete(summary: Mapping[str, Any] | None) -> str:
    """Why a session with this summary is incomplete ("" when it is complete or unknown).

    A summary written by `TreatmentSession.close` carries `outcome`, `planned_passes` and
    (since session 17) `planned_done`: the plan's passes with nothing left to play.
    """
    if not summary or "outcome" not in summary:
        return ""
    outcome = str(summary["outcome"])
    completed = planned_done(summary)
    planned = int(summary.get("planned_passes", completed))
    if outcome == "completed" and completed >= planned:
        return ""
    why = {
        "fault": "the pen stopped on a fault",
        "estop": "the pen was emergency-stopped",
        "link_lost": "the connection to the pen was lost",
        "interrupted": "the treatment was stopped by the technician",
        "log_error": "the treatment record could not be written",
    }.get(outcome, "the treatment ended early")
    return f"{completed} of {planned} planned passes were completed; {why}."


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February into a non-leap year
        return d.replace(year=d.year + years, day=28)
