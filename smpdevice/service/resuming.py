"""`session.resume` and `session.close`: go on with, or end, a session left open by a fault,
an E-stop, a lost pen or a crash, through the service that owns the pen (issue 15.5).

The guarantees are those of `smp run --resume` at the pen's own port
(`smpdevice.sessions.resume`), checked by the service against its own pen, envelope
(`smp serve --envelope`), calibration and pass log, never a client's word:
- the session must be in the service's pass log (the station's log, or this pen's own log
  beside it), open, recorded on this pen and signed by this installation's key;
- the profile is the session's own (from its header, checked against its hash; a profile
  given must be that same one), checked again against the service's envelope and the pen;
- the pen must be idle with a valid calibration; the screening is asked again when older than
  `rescreen_after_min` (refused as `ScreeningDue` without answers: the client asks, calls
  again; nothing is recorded before);
- only what is left plays: a pass cut short plays its remainder (the pen's dot counter);
- the resumption is a chained `session_resume` record;
- one at a time: refused while a session runs or is being resumed on this service, and while
  another process writes the session's log (its writer lock).
Who may: the operator role and the driving client, as for `session.run`. `session.close`
needs the operator role (it moves nothing) and no running session (SessionBusy: wait for
session.result, call again; it waits itself for a session whose result is out).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smpdevice.service.pen_service import method
from smpdevice.sessions.resume import ResumeError

if TYPE_CHECKING:
    from smpdevice.service.pen_service import PenService
    from smpdevice.service.session_gate import Receipt


def log_paths(service: PenService) -> list[Path]:
    """Where the service writes sessions: its station log, then this pen's own log beside it
    (used while another process held the station's log)."""
    from smpdevice.paths import pen_log_name

    main = service.passlog_path
    if main is None:
        return []
    return [main, main.with_name(pen_log_name(service.serial or service.pen.serial))]


def find_log(service: PenService, session_id: str) -> Path:
    """The service's pass log that holds `session_id` (a prefix of exactly one session across
    both logs will do; a prefix of several is refused naming them, never the first taken)."""
    from smpdevice.sessions.resume import find_session_log

    return find_session_log(log_paths(service), session_id, where="this service's pass log",
                            hint="check the id (sessions.list; `smp sessions list` on the "
                                 "service's station)")


def open_writer(path: Path, session_id: str, doing: str = "resumed") -> Any:
    """The log open for writing, or SessionBusy while another process writes it (a refusal
    for now: call again once that run ends)."""
    from smpdevice.passlog import PassLog
    from smpdevice.records.sqlite_schema import PassLogInUse
    from smpdevice.service.work import SessionBusy

    try:
        return PassLog.open(path)
    except PassLogInUse as exc:
        raise SessionBusy(f"session {session_id} cannot be {doing} now: {exc}. Is it being "
                          "resumed (or another session run) already? Wait for that run to "
                          "end, then call again.") from None


def resume(service: PenService, client_id: str, p: dict[str, Any],
           stops_seen: Receipt | None = None) -> dict[str, Any]:
    """Check the request, then open the resumed session in the service's session thread and
    play what is left (as session.run does). Answers the session's id, its planned passes and
    the plan indexes left to play."""
    from smpdevice.sessions.preflight import reached_by
    from smpdevice.sessions.resume import RESCREEN_AFTER_MIN, check_rescreen_after
    from smpdevice.sessions.screening import parse_screening

    epoch = service.lease.epoch  # the claim as the request arrived (launch looks again)
    work, pen = service.work, service.pen
    minutes = check_rescreen_after(p.get("rescreen_after_min", RESCREEN_AFTER_MIN))
    given = work.parse_profile(p["profile"], p.get("format", "yaml")) if "profile" in p \
        else None
    screening = None
    if "screening" in p:
        screening = parse_screening(p["screening"], source="screening form")
        screening.require_clear()
    service.lease.require(client_id)
    pen.require_footswitch()  # a pen the station's footswitch mode cannot run (pedal_gate.py)
    session_id, technician = p["session_id"], p["technician"]
    reach = work.reach(client_id)  # "clear it: smp clear --service URL", not the pen's port

    def open_session(before_record: Any) -> tuple[Any, Any]:
        from smpdevice.sessions.resume import (
            check_footswitch,
            check_resumable,
            recover_profile,
            remaining_passes,
            resume_session,
        )
        from smpdevice.sessions.session import preflight

        passlog = open_writer(find_log(service, session_id), session_id)
        try:
            with reached_by(*reach):
                record = passlog.session(session_id)
                check_resumable(record, pen_serial=pen.serial, reach=reach,
                                key_fingerprint=passlog.key_fingerprint)
                check_footswitch(record, pen.footswitch)
                profile = recover_profile(record, given, pen.zones)  # the service's envelope
                if not remaining_passes(profile.plan, record.passes):
                    raise ResumeError(f"session {record.session_id} has nothing left to play: "
                                      "every planned pass is completed; end it with session.close")
                # Pen, calibration, envelope before the screening is asked: a client asks a
                # person only when nothing else stands in the way.
                preflight(pen, profile, technician)
                session = resume_session(pen, passlog, record.session_id, technician=technician,
                                         screening=screening, profile=given,
                                         rescreen_after_min=minutes,
                                         close_how="end it with session.close",
                                         before_record=before_record)
        except BaseException:
            passlog.close()
            raise
        return passlog, session

    with reached_by(*reach):
        work.install_newest_if_free()  # as `smp run --resume` does: the store's newest
    return work.launch(client_id, open_session, leave_open=p.get("leave_open", True),
                       stops_seen=stops_seen, epoch=epoch)


def close(service: PenService, p: dict[str, Any],
          reach: tuple[str, ...] = ("--service", "URL")) -> dict[str, Any]:
    """End an open session as it stands (nothing is played): its summary (outcome from its
    passes) and the client's aftercare sheet, as `smp run --resume SESSION --close`. Refused
    (SessionBusy) while a session runs or is being opened; no session starts meanwhile.
    `reach`: how the client reaches the pen (Work.reach), for the commands a refusal names."""
    session_id = p["session_id"]
    with service.work.exclusive():  # SessionBusy while one runs; waits for one that ended
        return _close(service, session_id, p, reach)


def _close(service: PenService, session_id: str, p: dict[str, Any],
           reach: tuple[str, ...]) -> dict[str, Any]:
    from smpdevice.replay.recorder import part_record
    from smpdevice.sessions.resume import check_resumable, recover_profile, remaining_passes
    from smpdevice.sessions.session_records import close_session_record

    path = find_log(service, session_id)
    with open_writer(path, session_id, "closed") as passlog:
        record = passlog.session(session_id)
        sid = record.session_id
        check_resumable(record, pen_serial=service.serial or service.pen.serial, reach=reach,
                        key_fingerprint=passlog.key_fingerprint)
        given = service.work.parse_profile(p["profile"], p.get("format", "yaml")) \
            if "profile" in p else None  # only for a session recorded without its profile
        profile = recover_profile(record, given, service.pen.zones)
        left = remaining_passes(profile.plan, record.passes)
        last = part_record(passlog.path, sid, len(passlog.resumptions(sid)) + 1)
        summary, sheet, outcome = close_session_record(passlog, sid, profile, recording=last)
    return {"session_id": sid, "outcome": outcome.value, "complete": outcome.complete,
            "passes_not_played": len(left), "summary": summary, "aftercare": sheet}


@method("session.resume")
async def m_session_resume(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    stops = self.work.received()  # a latch or loss at receipt: never opens after a clear
    return await asyncio.to_thread(resume, self, client.id, p, stops)


@method("session.close")
async def m_session_close(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    return await asyncio.to_thread(close, self, p, self.work.reach(client.id))
