"""Recording a resumption, once `smpdevice.sessions.resume.resume_session` has checked its
arguments and holds the session (`players.reserved`): the checks against this pen and log,
the `session_resume` record, and the session object that plays what is left."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from smpdevice.outcomes import command
from smpdevice.sessions.profiles import TreatmentProfile
from smpdevice.sessions.resume import (
    NothingLeft,
    ScreeningDue,
    check_footswitch,
    check_resumable,
    last_screened_at,
    recover_profile,
    remaining_passes,
    screening_due,
)


def record_resumption(pen: Any, passlog: Any, record: Any, *, technician: str, screening: Any,
                      profile: TreatmentProfile | None, now: datetime,
                      rescreen_after_min: float, close_how: str | None,
                      before_record: Callable[[], None] | None) -> Any:
    """`resume_session`'s work from its session's `record` on (arguments checked, `now`
    known, the session held by this resume): see there."""
    from smpdevice.envelope import envelope_record
    from smpdevice.sessions.crash_count import crash_count_of
    from smpdevice.sessions.session import TreatmentSession, preflight
    from smpdevice.sessions.session_guard import OpeningWatch

    sid = record.session_id  # the full id (a unique prefix was given)
    check_resumable(record, pen_serial=pen.identity.serial,
                    key_fingerprint=passlog.key_fingerprint)
    check_footswitch(record, getattr(pen, "footswitch", None))
    profile = recover_profile(record, profile, pen.zones)
    resumptions = passlog.resumptions(sid)
    crash = crash_count_of(pen, passlog, record, resumptions)
    left = remaining_passes(profile.plan, record.passes, counted=crash.counted)
    if not left:
        from smpdevice.sessions.crash_count import keep_count

        if before_record is not None:
            before_record()
        keep_count(passlog, sid, crash.records, now, technician, len(resumptions))
        raise NothingLeft(sid, close_how or command(
            "smp", "run", "--resume", sid, "--close", "--port", str(pen.port_url),
            *(["--db", str(Path(passlog.path).resolve())] if hasattr(passlog, "path") else [])))
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
    with OpeningWatch(pen) as counts:  # a latch or stop from here on ends the first play()
        if before_record is not None:
            before_record()
            calibration = preflight(pen, profile, technician)  # again: what the hook left in force
        passlog.resume_session(sid, resumed_at=now, details={
            "recording_before": before, "passes_before": len(record.passes),  # REV3B-9
            "number": len(resumptions) + 1, "technician": technician,
            "footswitch": getattr(pen, "footswitch", None),  # the mode in force for these passes
            "firmware_version": pen.identity.firmware_version,
            "calibration_id": calibration.calibration_id,
            "envelope_sha256": envelope_record(pen.zones)["sha256"],
            "screening": screening.as_record() if screening is not None else None,
            "passes_left": [{"index": i, "duration_s": p.duration_s, "impressions": p.impressions}
                            for i, p in left],
            **({"pen_counted": crash.records} if crash.records else {}),  # a host crash's pass
        })
        session = TreatmentSession(pen, passlog, profile, sid, technician,
                                   calibration_id=calibration.calibration_id)  # the record's
        session.remaining = left
        session.keep_opening_counts(counts)
    session.recording = start_recording(pen, passlog, sid, profile, technician, screening,
                                        part=part, opened_on=counts.counts)  # (15.3)
    session.resume_notes = crash.notes  # a crashed pass the pen could not count: may repeat
    for note in crash.notes:
        session._log.warning("crashed pass not counted by the pen", note=note)
    session._log.info("session resumed", passes_left=len(left), number=len(resumptions) + 1)
    return session
