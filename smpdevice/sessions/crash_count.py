"""How many dots a pass cut by a host crash or a lost link made, counted by the pen itself.

A host that dies mid-pass leaves the pass recorded up to its last checkpoint (at most
`CHECKPOINT_EVERY_S` behind, `controller_crashed` once the log is next opened), while the needle
runs on until the pen's lease runs out. A pass whose link went silent (`link_lost`) is recorded
up to the pen's last report the host heard, and the needle ran on too: until the host judged
the silence (at most two leases or three reports at 1 Hz) and the lease it last renewed ran
out. So each pass's begin record keeps the pen's cumulative
counters, its uptime and the host's lease (`pen_counters`). At a resume, on the same pen (a
resume requires it), the crashed pass made the pen's counters at the next pass begun on that
pen (of this session, or of another session in the same log: another client's) or now, when
none began since, less those at its own begin, provided the pen's uptime shows it did not
restart in between. A calibration since, or a pass of the pen begun since in another pass
log beside this one (`other_logs`: "since" by the pen's counters, never the host's clock; or
such a log that cannot be read), or the pen's needle run outside a pass since (a speed
check saved or not, a start outside a session: `control.needle_work`), sets the pen's count
aside (below). Dots the pen made since by other means (a host with another data directory)
would count too, so the count is also capped by
what the pass could physically make after its last checkpoint: the recorded dots plus one
checkpoint interval and one lease at its own pulse period (strokes: at its speed). The
remainder it gives is never longer than the plan. Otherwise (a restarted pen, counters not
recorded) the pass counts what its checkpoint recorded, and up to one checkpoint interval
plus one lease of it may be played again: the resume says so, unless that planned pass was
completed since (nothing of it plays).

A count is made once, by the first resume after the crash, and kept in its `session_resume`
record (`pen_counted`); later resumes and the close use it (the counters have moved on since).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from smpdevice.control.needle_work import (
    ORDERING_KEYS,
    NeedleWork,
    needle_work_dirs,
    read_needle_work,
)
from smpdevice.sessions.other_logs import OtherWork, other_work

# The host's and the pen's clocks may drift apart; a pen that restarted lost at least its
# uptime at the pass's begin, which is seconds at the least (booting, connecting, arming).
CLOCK_SLACK_S = 2.0
CLOCK_SLACK_RATIO = 0.001
LEASE_MAX_MS = 2000  # the protocol's longest lease: what a note says when the lease is unknown
# The motor may run a little above its setpoint (its speed tolerance): the strokes' cap allows it.
STROKE_RATE_SLACK = 1.25
# The outcomes of a pass whose needle may have run on after its record ended.
PEN_RAN_ON = ("controller_crashed", "link_lost")
SLOWEST_REPORTS_S = 3.0  # three reports at the slowest telemetry (1 Hz): silence judged by then


@dataclass
class CrashCount:
    counted: dict[str, int] = field(default_factory=dict)  # pass id -> impressions to count
    records: list[dict[str, Any]] = field(default_factory=list)  # this resume's `pen_counted`
    notes: list[str] = field(default_factory=list)  # what could not be counted, to say so


def count_crashed(passes: Sequence[Any], resumptions: Iterable[Mapping[str, Any]],
                  at_begin: Mapping[str, Mapping[str, int]], telemetry: Any,
                  pen_now: datetime, *,
                  later: Mapping[str, tuple[Mapping[str, int] | None, str]] | None = None,
                  calibrated_at: datetime | None = None,
                  elsewhere: OtherWork | None = None,
                  outside: NeedleWork | None = None) -> CrashCount:
    """The dots to count for each pass of a session cut by a host crash or a lost link
    (`PEN_RAN_ON`): the pen's count (see
    the module's docstring), or an earlier resume's. `passes`: the session's, in the order they
    began; `at_begin`: pass id -> its `pen_counters`; `telemetry`: the pen's last report (it is
    idle); `pen_now`: the pen's record time now (the clock its passes' `started_at` use);
    `later`: pass id -> (`pen_counters`, `started_at`) of the first pass of another session
    begun on the same pen after it (`PassLog.pen_counters_after`); `calibrated_at`: when the
    pen's calibration in force was made (a calibration since a pass began spun its needle);
    `elsewhere`: the pen's passes in the other pass logs beside this one (`other_logs`);
    `outside`: the pen's needle work outside passes (`control.needle_work`: a speed check
    saved or not, a start outside a session)."""
    result, resumptions = CrashCount(), list(resumptions)
    result.counted.update(earlier_counts(resumptions))
    judged = judged_passes(resumptions)
    completed = {p.index for p in passes if p.outcome == "completed"}
    for k, p in enumerate(passes):
        if p.outcome not in PEN_RAN_ON or p.pass_id in judged:
            continue
        following = passes[k + 1] if k + 1 < len(passes) else None
        other = (later or {}).get(p.pass_id)
        end, end_at = _end_bound(following, at_begin, telemetry, pen_now, other)
        begin = at_begin.get(p.pass_id)
        why = (_unplaced(other) or _uncountable(begin, end, p.started_at, end_at)
               or _other_work(p, begin, end)
               or _calibrated_since(p, calibrated_at) or _elsewhere(elsewhere, begin, end)
               or _elsewhere(outside, begin, end))
        if why is None:
            assert begin is not None and end is not None
            most_dots, most_strokes = most_after_checkpoint(p, begin["lease_ms"])
            dots = max(int(p.impressions), min(end["impressions"] - begin["impressions"],
                                               int(p.impressions) + most_dots))
            strokes = max(int(p.strokes), min(end["strokes"] - begin["strokes"],
                                              int(p.strokes) + most_strokes))
            result.counted[p.pass_id] = dots
            result.records.append({
                "pass_id": p.pass_id, "index": p.index, "counted": True, "impressions": dots,
                "strokes": strokes, "recorded_impressions": int(p.impressions),
                "recorded_strokes": int(p.strokes)})
            continue
        if p.index in completed:  # made whole since: nothing of it plays again, no note
            continue
        result.records.append({"pass_id": p.pass_id, "index": p.index, "counted": False,
                               "why": why, "recorded_impressions": int(p.impressions)})
        result.notes.append(_may_repeat(p, begin, why))
    return result


def earlier_counts(resumptions: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """pass id -> the dots an earlier resume (or refused resume) counted for it by the pen."""
    return {str(c["pass_id"]): int(c["impressions"]) for r in resumptions
            for c in r.get("pen_counted") or []
            if c.get("counted") and isinstance(c.get("impressions"), int)}


def judged_passes(resumptions: Iterable[Mapping[str, Any]]) -> set[str]:
    """The pass ids an earlier resume judged (counted, or found it could not)."""
    return {str(c.get("pass_id")) for r in resumptions for c in r.get("pen_counted") or []}


def most_after_checkpoint(p: Any, lease_ms: int) -> tuple[int, int]:
    """(dots, strokes) a pass could make at most after its record ended (`ran_on_s`) at its
    pulse period (one more dot: a period begun) and its speed (strokes uncapped when its
    speed is not known)."""
    window_s = ran_on_s(p, lease_ms)
    dots = math.ceil(window_s * 1000.0 / p.period_ms) + 1 if p.period_ms > 0 else 0
    speed_hz = getattr(p, "speed_hz", None)
    strokes = (math.ceil(window_s * float(speed_hz) * STROKE_RATE_SLACK) + 1
               if isinstance(speed_hz, int | float) else 2**32)
    return dots, strokes


def ran_on_s(p: Any, lease_ms: int) -> float:
    """How long the needle may have run after the pass's record ended: a crash, one
    checkpoint interval and one lease; a lost link, the silence the host waited before
    judging it (two leases, or three reports at the slowest rate) and one lease."""
    from smpdevice.sessions.session import CHECKPOINT_EVERY_S

    lease_s = lease_ms / 1000.0
    if getattr(p, "outcome", None) == "link_lost":
        hz = _reports_hz(p)
        return max(2 * lease_s, 3.0 / hz if hz else SLOWEST_REPORTS_S) + lease_s
    return CHECKPOINT_EVERY_S + lease_s


def _reports_hz(p: Any) -> float | None:
    """The pass's reports per second, at least (its samples over its recorded time, the
    silence included); None when its record cannot say."""
    samples, ended_at = getattr(p, "samples", None), getattr(p, "ended_at", None)
    if not isinstance(samples, int) or samples < 2 or not ended_at:
        return None
    spent_s = (datetime.fromisoformat(ended_at)
               - datetime.fromisoformat(p.started_at)).total_seconds()
    return samples / spent_s if spent_s > 0 else None


def _cut_by(p: Any) -> str:
    return "a lost link" if getattr(p, "outcome", None) == "link_lost" else "a host crash"


def _recorded(p: Any) -> str:
    return ("the last report the host heard" if getattr(p, "outcome", None) == "link_lost"
            else "its last checkpoint")


def not_counted_notes(passes: Sequence[Any], resumptions: Iterable[Mapping[str, Any]]
                      ) -> list[str]:
    """For a close without a pen: each pass cut by a crash or a lost link that no resume
    counted by the pen (and not completed since) counts its recorded figures; the pen may have
    made more (`ran_on_s` with the protocol's longest lease)."""
    counted = earlier_counts(resumptions)
    completed = {p.index for p in passes if p.outcome == "completed"}
    return [f"pass {p.index + 1} was cut by {_cut_by(p)} and no resume counted it by the pen: "
            f"the close counts the {p.impressions} dots {_recorded(p)} recorded (the pen "
            f"may have made up to about {most_after_checkpoint(p, LEASE_MAX_MS)[0]} more)"
            for p in passes if p.outcome in PEN_RAN_ON and p.pass_id not in counted
            and p.index not in completed]


def _unplaced(other: tuple[Mapping[str, int] | None, str] | None) -> str | None:
    """Another session's pass of the pen in this log, begun after it, recorded without the
    pen's counters: the same rule as in another log (`OtherWork`), cannot tell."""
    if other is None or other[0] is not None:
        return None
    return ("this pass log has a later pass of this pen recorded without the pen's counters "
            f"(begun {other[1]} by the host's clock, another session's): whether it moved "
            "this pen's needle since cannot be told")


def _end_bound(following: Any, at_begin: Mapping[str, Mapping[str, int]], telemetry: Any,
               pen_now: datetime, other: tuple[Mapping[str, int] | None, str] | None = None,
               ) -> tuple[Mapping[str, int] | None, str]:
    """The pen's counters when the crashed pass was over at the latest: at the next pass's
    begin on the pen (this session's, or `other`: another session's, whichever began first
    by the pen's counters, never the host's clock), else now; and when (an ISO time)."""
    mine = ((at_begin.get(following.pass_id), following.started_at)
            if following is not None else None)
    if other is not None and mine is not None:
        return _first_on_pen(other, mine)
    if other is not None:
        return other
    if mine is not None:
        return mine
    if telemetry is None:
        return None, pen_now.isoformat()
    return ({"strokes": int(telemetry.strokes), "impressions": int(telemetry.impressions),
             "uptime_ms": int(telemetry.uptime_ms)}, pen_now.isoformat())


def _first_on_pen(a: tuple[Mapping[str, int] | None, str],
                  b: tuple[Mapping[str, int] | None, str]
                  ) -> tuple[Mapping[str, int] | None, str]:
    """Of two passes begun on the pen, the one begun first: within one boot its counters are
    at or below the other's on every count. Counters not recorded, or out of order (the pen
    restarted between them): which came first cannot be told, so neither bounds the count."""
    keys = ORDERING_KEYS
    if a[0] is not None and b[0] is not None:
        if all(a[0][k] <= b[0][k] for k in keys):
            return a
        if all(b[0][k] <= a[0][k] for k in keys):
            return b
    return None, min(a[1], b[1], key=datetime.fromisoformat)


def _elsewhere(elsewhere: OtherWork | NeedleWork | None, begin: Mapping[str, int] | None,
               end: Mapping[str, int] | None) -> str | None:
    """Another log's work of the pen within the count (`other_logs`), by the pen's counters."""
    if elsewhere is None or begin is None or end is None:
        return None
    return elsewhere.why_not_counted(begin, end)


def _uncountable(begin: Mapping[str, int] | None, end: Mapping[str, int] | None,
                 began_at: str, ended_at: str) -> str | None:
    """Why the pen's counters cannot bound the pass, or None when they can."""
    if begin is None:
        return "the pen's counters at its begin were not recorded"
    if end is None:
        return "the pen's counters after it are not known"
    elapsed_s = (datetime.fromisoformat(ended_at)
                 - datetime.fromisoformat(began_at)).total_seconds()
    up_s = (end["uptime_ms"] - begin["uptime_ms"]) / 1000.0
    if (end["uptime_ms"] < begin["uptime_ms"] or elapsed_s < 0
            or up_s < elapsed_s - CLOCK_SLACK_S - CLOCK_SLACK_RATIO * elapsed_s
            or end["impressions"] < begin["impressions"] or end["strokes"] < begin["strokes"]):
        return "the pen restarted since (its uptime or counters went back)"
    return None


def _other_work(p: Any, begin: Mapping[str, int] | None,
                end: Mapping[str, int] | None) -> str | None:
    """A lost link's pass whose pen made more dots by the count's end than the pass could
    have (a calibration's speed check, a session in another pass log moved the needle since):
    which of them were this pass's the counters cannot say. A crash's short window keeps its
    cap instead (README: never more than the pass could make after its checkpoint)."""
    if p.outcome != "link_lost" or begin is None or end is None:
        return None
    if end["impressions"] - begin["impressions"] <= int(p.impressions) + \
            most_after_checkpoint(p, begin["lease_ms"])[0]:
        return None
    return ("the pen made more dots since than this pass could have: a calibration or "
            "another pass log's session moved its needle")


def _calibrated_since(p: Any, calibrated_at: datetime | None) -> str | None:
    """The pen was calibrated after the pass began: its speed check's dots are on the counters
    too, and which were the pass's cannot be told (README: recalibrate, then resume)."""
    if calibrated_at is None or calibrated_at <= datetime.fromisoformat(p.started_at):
        return None
    return "the pen was calibrated since: its speed check moved the needle"


def _may_repeat(p: Any, begin: Mapping[str, int] | None, why: str) -> str:
    from smpdevice.sessions.session import CHECKPOINT_EVERY_S

    lease_ms = begin["lease_ms"] if begin is not None else LEASE_MAX_MS
    dots = max(most_after_checkpoint(p, lease_ms)[0] - 1, 0)  # whole periods (as said before)
    lease = f"{lease_ms} ms" if begin is not None else f"at most {LEASE_MAX_MS} ms"
    window = (f"{ran_on_s(p, lease_ms) - lease_ms / 1000.0:g} s of silence" if
              p.outcome == "link_lost" else f"{CHECKPOINT_EVERY_S:g} s")
    return (f"pass {p.index + 1} was cut by {_cut_by(p)} and the pen cannot say how far it "
            f"went ({why}): it counts the {p.impressions} dots {_recorded(p)} recorded, "
            f"so up to {window} plus one lease ({lease}) of it, about {dots} dots, may be "
            "played again")


def keep_count(passlog: Any, sid: str, counted: list[dict[str, Any]], now: datetime,
               technician: str, resumed: int) -> None:
    """The pen's count of a crashed pass, when it leaves nothing to play: kept in a
    `session_resume` record that plays nothing (`count_only`, not counted as a resumption), so
    that the close (which needs no pen) counts it as a resume would have."""
    if not counted:
        return
    from smpdevice.replay.recorder import part_record

    passlog.resume_session(sid, resumed_at=now, details={
        "count_only": True, "technician": technician, "passes_left": [],
        # the last part's frames, for the close to link (it looks one part further)
        "recording_before": (part_record(passlog.path, sid, resumed + 1)
                             if hasattr(passlog, "path") else None),
        "pen_counted": counted})


def crash_count_of(pen: Any, passlog: Any, record: Any, resumptions: Any) -> CrashCount:
    """The pen's count of `record`'s passes cut by a host crash or a lost link
    (`count_crashed`), each up to
    the next pass begun on the pen (this session's, or another's in this log); the pen's work
    in another log beside this one since, or a log there that cannot be read, leaves it
    uncounted (its recorded dots, the resume says how many may play again)."""
    at_begin = getattr(passlog, "pen_counters_at_begin", None)
    after = getattr(passlog, "pen_counters_after", None)
    crashed = [p.pass_id for p in record.passes if p.outcome in PEN_RAN_ON]
    judged = judged_passes(resumptions)
    first = min((p.started_at for p in record.passes
                 if p.outcome in PEN_RAN_ON and p.pass_id not in judged),
                key=datetime.fromisoformat, default=None)  # no pass to count: nothing read
    record_now = getattr(pen, "record_now", None)
    calibration = getattr(pen, "calibration", None)
    return count_crashed(record.passes, resumptions,
                         at_begin(record.session_id) if callable(at_begin) else {},
                         getattr(pen, "telemetry", None),
                         record_now() if callable(record_now) else datetime.now(UTC),
                         later=after(record.session_id, crashed) if callable(after) else None,
                         calibrated_at=getattr(calibration, "created_at", None),
                         elsewhere=other_work(passlog, record.session_id, record.pen_serial,
                                              first),
                         outside=(read_needle_work(needle_work_dirs(passlog), record.pen_serial)
                                  if first is not None else None))
