"""`smp run --resume SESSION`: play what is left of a session interrupted by a fault, an
E-stop, a lost pen or a host crash (see smpdevice.sessions.resume), or close it as it stands."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from smpdevice.cli.device import pen_identity
from smpdevice.cli.interrupt import CTRL_C, CtrlC
from smpdevice.cli.playing import finish_session
from smpdevice.cli.run import RunReport, _calibration_for, needle_state
from smpdevice.cli.screening_prompt import ask_screening, require_terminal_for_screening
from smpdevice.errors import SmpError
from smpdevice.outcomes import SessionOutcome, command, next_steps
from smpdevice.sessions.resume import (
    ResumeError,
    check_rescreen_after,
    check_resumable,
    last_screened_at,
    recover_profile,
    remaining_passes,
    screening_due,
)


def find_session_log(session_id: str, db: str | None) -> Path:
    """The pass log that holds `session_id`: --db, else the station's log or a pen's own log
    (a run writes there while another chair holds the station's log)."""
    from smpdevice.passlog import PassLog
    from smpdevice.paths import pass_log_paths

    for path in pass_log_paths(db):
        if not path.exists():
            continue
        with PassLog(path, readonly=True) as log:
            try:
                log.session(session_id)
            except SmpError as exc:
                if "matches several" in str(exc):  # an ambiguous prefix: say so
                    raise ResumeError(str(exc)) from None
                continue
            return path
    where = db or "the station's pass logs (`smp sessions list` shows them)"
    raise ResumeError(f"no session {session_id!r} in {where}: check the id "
                      "(`smp sessions list`), or give its log with --db")


def _open_writer(path: Path, session_id: str, stack: contextlib.ExitStack):
    from smpdevice.passlog import PassLog
    from smpdevice.records.sqlite_schema import PassLogInUse

    try:
        return stack.enter_context(PassLog.open(path))
    except PassLogInUse as exc:
        raise ResumeError(f"session {session_id} cannot be resumed now: {exc}. Is it being "
                          "resumed (or another session run) already? Wait for that run to "
                          "end.") from None


def resume_profile(report: RunReport, *, session_id: str, profile_path: str | None,
                   technician: str, screening, db: str | None, calibrations: str | None,
                   console: Console, envelope: str | None = None,
                   rescreen_after_min: float | str | None = None, close_only: bool = False,
                   progress_enabled: bool = True, ctrl_c: CtrlC = CTRL_C,
                   now: datetime | None = None) -> RunReport:
    """Check the session can be resumed (before touching the pen), connect, check the pen,
    calibration and envelope as a new run does, ask the screening again if it is due, record
    the resumption, play the remaining passes, close (or leave open again)."""
    from smpdevice.calibration.store import CalibrationStore
    from smpdevice.control import PenController
    from smpdevice.envelope import load_envelope
    from smpdevice.sessions.profiles import ProfileError, check_profile, load_profile
    from smpdevice.sessions.resume import RESCREEN_AFTER_MIN, resume_session
    from smpdevice.sessions.session_records import close_session_record

    minutes = check_rescreen_after(RESCREEN_AFTER_MIN if rescreen_after_min is None
                                   else rescreen_after_min)
    zones = load_envelope(envelope)
    given = load_profile(profile_path, zones) if profile_path else None
    path = find_session_log(session_id, db)
    with ctrl_c.deferred(), contextlib.ExitStack() as stack:
        passlog = _open_writer(path, session_id, stack)
        report.passlog_path = passlog.path
        record = passlog.session(session_id)
        sid = report.session_id = record.session_id
        check_resumable(record, key_fingerprint=passlog.key_fingerprint)
        profile = recover_profile(record, given, zones)
        report.planned_passes = len(profile.plan)
        report.pen_serial = record.pen_serial
        left = remaining_passes(profile.plan, record.passes)
        if not left or close_only:
            what = ("has nothing left to play: every planned pass is completed" if not left
                    else f"is closed as it stands ({len(left)} planned pass(es) not played)")
            from smpdevice.replay.recorder import part_record

            last = part_record(passlog.path, sid, len(passlog.resumptions(sid)) + 1)
            report.summary, report.sheet, report.outcome = close_session_record(
                passlog, sid, profile, recording=last)  # its last part's frames, linked
            console.print(f"Session {sid} {what}; it is now closed.", markup=False,
                          soft_wrap=True)
            return report
        due = screening_due(last_screened_at(record.opened_at, passlog.resumptions(sid)),
                            now or datetime.now(UTC), minutes)
        if due and screening is None:
            require_terminal_for_screening()  # refuse now, not after connecting
        ctrl_c.check()
        with PenController.connect(report.port, zones=zones) as pen:
            report.simulated, report.lease_ms = pen.simulated, pen.lease_ms
            serial = pen_identity(pen).serial
            check_resumable(record, pen_serial=serial)
            calibration = _calibration_for(serial, CalibrationStore(calibrations), report.port)
            pen.set_calibration(calibration)
            issues = check_profile(profile, pen.zones, pen_limits=pen.pen_limits())
            if issues:
                raise ProfileError(issues, f"for pen {serial}")
            if due and screening is None:
                console.print(f"The screening of session {sid} is older than {minutes:g} min: "
                              "it is asked again.", markup=False)
                with ctrl_c.immediate():
                    screening = ask_screening()
            ctrl_c.check()
            session = resume_session(pen, passlog, sid, technician=technician,
                                     screening=screening, profile=given, now=now,
                                     rescreen_after_min=minutes)
            report.passes = session.results
            parts = ", ".join(str(i + 1) for i, _ in session.remaining)
            console.print(f"Resuming session {sid} on pen {serial} (calibration "
                          f"{calibration.calibration_id}): {len(session.remaining)} of "
                          f"{len(profile.plan)} planned passes left (pass {parts}); a pass cut "
                          "short plays only its remainder.", markup=False, soft_wrap=True)
            finish_session(session, console, progress_enabled, ctrl_c.is_requested, report,
                           leave_open=True)
            report.needle = needle_state(pen)
            report.outcome = session.outcome
    return report


def print_suspended(console: Console, session_id: str, outcome: SessionOutcome, *, port: str,
                    completed: int, planned: int, paused_on_pedal: bool = False) -> None:
    """The technician's summary of a session left open: what to clear, how to resume it."""
    if paused_on_pedal:
        console.print(f"Session {session_id} PAUSED on the footswitch (the pedal was released, "
                      f"or up when a pass started); {completed} of {planned} planned passes "
                      "completed. It is left OPEN: no pass is replayed. With the foot on the "
                      "pedal, play only what is left: "
                      + command("smp", "run", "--resume", session_id, "--port", port),
                      style="bold yellow", markup=False, soft_wrap=True)
        return
    console.print(f"Session {session_id} INCOMPLETE: {outcome.reason}; {completed} of "
                  f"{planned} planned passes completed. It is left OPEN, to be resumed.",
                  style="bold red", markup=False, soft_wrap=True)
    steps = next_steps(outcome, port=port, session_id=session_id, remaining_passes=0)
    steps.insert(-1, "Then play what is left (only the passes not completed): "
                 + command("smp", "run", "--resume", session_id, "--port", port))
    steps.insert(-1, "Or, if the session does not go on today, close it as it stands (prints "
                 "the aftercare sheet): " + command("smp", "run", "--resume", session_id,
                                                     "--close", "--port", port))
    for step in steps:
        console.print(f"  Next: {step}", markup=False, soft_wrap=True)
