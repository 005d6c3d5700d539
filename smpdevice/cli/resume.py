"""`smp run --resume SESSION`: play what is left of a session interrupted by a fault, an
E-stop, a lost pen or a host crash (see smpdevice.sessions.resume), or close it as it stands."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from smpdevice.cli.device import pen_identity
from smpdevice.cli.interrupt import CTRL_C, CtrlC
from smpdevice.cli.playing import finish_session
from smpdevice.cli.run import _calibration_for
from smpdevice.cli.run_report import RunReport, needle_state, report_through_service
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


def check_resume_id(session_id: str) -> str:
    """`--resume SESSION` as given, or refused (exit 2) before anything opens: an empty or
    blank id (a script's unset variable) used to be taken as no --resume at all, and the whole
    plan was played again as a new session (review 12 REVF-1). Held to the service's rule for
    an id (service/schema.py SESSION_ID), so the station and the service refuse alike."""
    import re

    from smpdevice.service.schema import SESSION_ID

    if not session_id.strip():
        raise ResumeError(f"--resume {session_id!r}: no session id was given (an unset or "
                          "empty variable?); nothing was opened or played. Give the id of the "
                          "session to go on with (`smp sessions list` shows them), or leave "
                          "--resume out to play the whole profile as a new session")
    if not re.fullmatch(SESSION_ID["pattern"], session_id):
        raise ResumeError(f"--resume {session_id[:80]!r} is not a session id (letters, digits "
                          "and _ . : - only, at most 80); nothing was opened or played. "
                          "`smp sessions list` shows the ids")
    return session_id


def find_session_log(session_id: str, db: str | None,
                     warn: Callable[[str], None] | None = None) -> Path:
    """The pass log that holds `session_id`: --db, else the station's log or a pen's own log
    (a run writes there while another chair holds the station's log). A prefix must name one
    session across all of them (else refused, naming the candidates). A log left out (it
    cannot be read) is named through `warn` (default: a `warning:` line at once)."""
    from smpdevice.paths import pass_log_paths
    from smpdevice.sessions.resume import find_session_log as find_in

    return find_in(pass_log_paths(db), session_id,
                   where=db or "the station's pass logs (`smp sessions list` shows them)",
                   hint="check the id (`smp sessions list`), or give its log with --db",
                   warn=warn or _warning)


def _warning(text: str) -> None:  # a bad log of the data directory, left out
    import click

    click.secho(f"warning: {text}", fg="yellow", err=True)


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
                   now: datetime | None = None,
                   say_checked: Callable[[], None] | None = None) -> RunReport:
    """Check the session can be resumed (before touching the pen), connect, check the pen,
    calibration and envelope as a new run does, ask the screening again if it is due, record
    the resumption, play the remaining passes, close (or leave open again).

    `say_checked` says which envelope holds the run (`smp run`'s "checked against" line), once
    every check has passed: a refused resume never names an envelope it does not use. It and
    `Resuming session ...` (or the close's summary) come first; `warning:`s and `Note:`s after."""
    said = say_checked or (lambda: None)
    held: list[str] = []  # warnings of logs left out, said after the first lines
    from smpdevice.calibration.store import CalibrationStore
    from smpdevice.control import PenController
    from smpdevice.envelope import load_envelope
    from smpdevice.sessions.crash_count import earlier_counts, not_counted_notes
    from smpdevice.sessions.preflight import lost_before_session
    from smpdevice.sessions.profiles import ProfileError, check_profile, load_profile
    from smpdevice.sessions.resume import RESCREEN_AFTER_MIN, resume_session
    from smpdevice.sessions.session_records import close_session_record

    minutes = check_rescreen_after(RESCREEN_AFTER_MIN if rescreen_after_min is None
                                   else rescreen_after_min)
    zones = load_envelope(envelope)
    given = load_profile(profile_path, zones) if profile_path else None
    with ctrl_c.deferred(), contextlib.ExitStack() as stack:
        stack.callback(_said, held)  # last: also before a refusal's error
        from smpdevice.records.logcopies import readers_name_copies

        with readers_name_copies():  # each copy named here once: the writer names it no more
            path = find_session_log(session_id, db, warn=held.append)
        passlog = _open_writer(path, session_id, stack)
        report.passlog_path = passlog.path
        record = passlog.session(session_id)
        sid = report.session_id = record.session_id
        check_resumable(record, key_fingerprint=passlog.key_fingerprint)
        profile = recover_profile(record, given, zones)
        report.planned_passes = len(profile.plan)
        report.pen_serial = record.pen_serial
        resumptions = passlog.resumptions(sid)
        # a pass cut by a host crash counts as the pen counted it (at a resume, even refused)
        left = remaining_passes(profile.plan, record.passes,
                                counted=earlier_counts(resumptions))
        if not left or close_only:
            what = ("has nothing left to play: every planned pass is completed (or, cut by a "
                    "host crash, made all its dots by the pen's counters)" if not left
                    else f"is closed as it stands ({len(left)} planned pass(es) not played)")
            from smpdevice.replay.recorder import part_record

            last = part_record(passlog.path, sid, len(passlog.resumptions(sid)) + 1)
            said()  # the session and its profile passed their checks against the envelope
            report.summary, report.sheet, report.outcome = close_session_record(
                passlog, sid, profile, recording=last)  # its last part's frames, linked
            ctrl_c.settle()  # recorded: a stop signal from here changes nothing (end_run)
            console.print(f"Session {sid} {what}; it is now closed.", markup=False,
                          soft_wrap=True)
            _said(held)
            for note in not_counted_notes(record.passes, resumptions):
                console.print(f"  Note: {note}", markup=False, soft_wrap=True)
            return report
        screened_at = last_screened_at(record.opened_at, passlog.resumptions(sid))
        if screening is None and screening_due(screened_at, now or datetime.now(UTC), minutes) \
                and (now or datetime.now(UTC)) >= screened_at:
            require_terminal_for_screening()  # refuse now, not after connecting
        ctrl_c.check()
        pen, resumed = PenController(report.port, zones=zones), False
        with lost_before_session(pen):  # exit 6 once the pen answered, not a bad port's 2
            pen.open()
        with pen, lost_before_session(pen, lambda: resumed):
            report.simulated, report.lease_ms = pen.simulated, pen.lease_ms
            serial = pen_identity(pen).serial
            check_resumable(record, pen_serial=serial)
            calibration = _calibration_for(serial, CalibrationStore(calibrations), report.port,
                                           calibrations)
            pen.set_calibration(calibration)
            issues = check_profile(profile, pen.zones, pen_limits=pen.pen_limits())
            if issues:
                raise ProfileError(issues, f"for pen {serial}")
            # judged again on the pen's time, as its records are (a simulated pen's runs ahead)
            if screening is None and screening_due(screened_at, now or pen.record_now(), minutes):
                require_terminal_for_screening()
                console.print(f"The screening of session {sid} is older than {minutes:g} min: "
                              "it is asked again.", markup=False)
                with ctrl_c.immediate():
                    screening = ask_screening()
            ctrl_c.check()
            files = [word for option, value in (("--db", db), ("--calibrations", calibrations),
                                                ("--envelope", envelope)) if value
                     for word in (option, str(Path(value).resolve()))]
            resumed = True  # from here a lost pen is the resumed session's (it says so)
            session = resume_session(pen, passlog, sid, technician=technician,
                                     screening=screening, profile=given, now=now,
                                     rescreen_after_min=minutes, close_how=resume_command(
                                         sid, ["--port", report.port], close=True,
                                         files=files))
            said()  # calibration, envelope, pen state and screening passed; resumption recorded
            report.passes = session.results
            parts = ", ".join(str(i + 1) for i, _ in session.remaining)
            console.print(f"Resuming session {sid} on pen {serial} (calibration "
                          f"{calibration.calibration_id}): {len(session.remaining)} of "
                          f"{len(profile.plan)} planned passes left (pass {parts}); a pass cut "
                          "short plays only its remainder.", markup=False, soft_wrap=True)
            _said(held)
            for note in session.resume_notes:  # a pass cut by a crash the pen could not count
                console.print(f"  Note: {note}", markup=False, soft_wrap=True)
            finish_session(session, console, progress_enabled, ctrl_c.is_requested, report,
                           leave_open=True)
            report.needle = needle_state(pen)
            report.outcome = session.outcome
            ctrl_c.settle()  # recorded: a stop signal from here changes nothing (end_run)
    return report


def _said(held: list[str]) -> None:
    while held:
        _warning(held.pop(0))


def resume_command(session_id: str, pen: list[str], *, close: bool = False,
                   technician: str | None = None, files: Sequence[str] = ()) -> str:
    """`smp run --resume SESSION` as it runs when copied: the pen, the run's own files (`--db`,
    `--calibrations`, `--envelope`: the resume must read what the run wrote and was held to)
    and, to play, who treats (`-t`, which a resume needs), each word quoted."""
    words = ["smp", "run", "--resume", session_id, *(["--close"] if close else []), *pen]
    if technician and not close:
        words += ["-t", technician]
    return command(*words, *files)


def show_command(session_id: str, db: str | None = None) -> str:
    """`smp sessions show SESSION`, reading the run's `--db` when it had one."""
    return command("smp", "sessions", "show", session_id, *(["--db", db] if db else []))


def with_show(steps: list[str], session_id: str, db: str | None) -> list[str]:
    """`next_steps` with its last line ("What was done is recorded: ...") reading `db`."""
    if db and steps and steps[-1].startswith("What was done is recorded: "):
        steps[-1] = "What was done is recorded: " + show_command(session_id, db)
    return steps


def print_suspended(console: Console, session_id: str, outcome: SessionOutcome, *, port: str,
                    completed: int, planned: int, paused_on_pedal: bool = False,
                    service: str | None = None, technician: str | None = None,
                    files: Sequence[str] = (), db: str | None = None, why: str | None = None,
                    fix: str | None = None) -> None:
    """The technician's summary of a session left open: what to clear, how to resume it
    (through `smp serve` at `service` when one drove the session), each command as it runs
    when copied (`technician`, `files`, `db`: see `resume_command`). `why`: why it ended, when
    its outcome cannot say (a calibration that lapsed); `fix`: the command that clears it."""
    pen = ["--service", service] if service else ["--port", port]
    again = resume_command(session_id, pen, technician=technician, files=files)
    if paused_on_pedal:
        console.print(f"Session {session_id} PAUSED on the footswitch (the pedal was released, "
                      f"or up when a pass started); {completed} of {planned} planned passes "
                      "completed. It is left OPEN: no pass is replayed. With the foot on the "
                      "pedal, play only what is left: " + again,
                      style="bold yellow", markup=False, soft_wrap=True)
        return
    reason = f"ended early: {why.rstrip('.')}" if why else outcome.reason
    console.print(f"Session {session_id} INCOMPLETE: {reason}; {completed} of "
                  f"{planned} planned passes completed. It is left OPEN, to be resumed.",
                  style="bold red", markup=False, soft_wrap=True)
    steps = with_show(next_steps(outcome, port=port, session_id=session_id,
                                 remaining_passes=0, service=service), session_id, db)
    if fix:
        steps.insert(0, "Recalibrate the pen (the session stays open meanwhile): " + fix)
    steps.insert(-1, "Then play what is left (only the passes not completed): " + again)
    steps.insert(-1, "Or, if the session does not go on today, close it as it stands (prints "
                 "the aftercare sheet): " + resume_command(session_id, pen, close=True,
                                                            files=files))
    for step in steps:
        console.print(f"  Next: {step}", markup=False, soft_wrap=True)


# ------------------------------------------------------------------ through `smp serve`


def resume_through_service(url: str, *, session_id: str, profile_path: str | None,
                           technician: str | None, screening_file: str | None,
                           rescreen_after_min: float | str | None, close_only: bool,
                           local_files: dict[str, str | None]) -> None:
    """`smp run --resume SESSION --service URL`: the service that owns the pen checks and
    resumes the session (`session.resume`; `--close`: `session.close`) against its own pen,
    envelope, calibration and pass log; this asks the screening at the terminal when the
    service says it is due, then follows the session as `smp run --service` does."""
    from smpdevice.cli import remote
    from smpdevice.cli.console import cli_console
    from smpdevice.cli.screening_prompt import read_screening
    from smpdevice.sessions.resume import RESCREEN_AFTER_MIN

    for name, value in local_files.items():
        if value:
            raise SmpError(f"{name} {value} cannot be used with --service: the service's pen, "
                           "envelope, pass log and calibrations are its own; leave it out (or "
                           "run without --service)")
    minutes = check_rescreen_after(RESCREEN_AFTER_MIN if rescreen_after_min is None
                                   else rescreen_after_min)
    extra: dict[str, str] = {}
    if profile_path:  # only for a session recorded before sessions kept their profile
        from smpdevice.cli.profile_remote import read_for_service

        extra = read_for_service(profile_path)  # the strict loader, as a local resume
    answers = read_screening(screening_file) if screening_file else None
    console = cli_console()
    with remote._connect(url, "operator") as svc:
        serial, ident = remote._identity(svc)
        # The first line, as the plain `smp run --service`'s, once the service's own checks
        # passed: a refused resume or close names no envelope.
        if close_only:
            closed = svc.call("session.close", session_id=session_id, **extra)
            remote.say_envelope(url, serial)
            _report_closed(console, closed)
        params: dict = {"session_id": session_id, "technician": technician,
                        "rescreen_after_min": minutes, **extra}
        if answers is not None:
            params["screening"] = answers.as_record()
        svc.drive(lease_ms=1000)
        sid: str | None = None
        with CTRL_C.stop_signals():  # SIGTERM, SIGHUP: taken as Ctrl-C, as by `smp run`
            try:
                answer = _call_resume(svc, console, params, minutes)
                sid, _, planned = started_answer(answer)
                remote.say_envelope(url, serial)  # then the passes left and the notes
                remote.say_resuming(console, url, serial, bool(ident["simulated"]), answer)
                result, passes = remote.follow(svc, console, sid, url, technician)
                CTRL_C.settle()  # recorded by the service: a stop signal changes nothing now
            except KeyboardInterrupt:
                remote._interrupted(svc, sid, url, technician)
            finally:
                with contextlib.suppress(Exception):  # gone: the service stops the pen itself
                    svc.release()
    report_through_service(console, url, result, passes, planned, ident["port"], technician,
                           simulated=bool(ident["simulated"]))


def started_answer(answer: object) -> tuple[str, list[int], int]:
    """session.resume's answer as (session id, plan indexes left, planned passes); SmpError
    (never a KeyError traceback) for anything else, e.g. from a service of another version."""
    fields = answer if isinstance(answer, dict) else {}
    sid, left, planned = (fields.get(k) for k in ("session_id", "passes_left", "planned_passes"))
    if not (isinstance(sid, str) and sid and type(planned) is int and isinstance(left, list)
            and all(type(i) is int for i in left)):
        raise SmpError(f"the service's answer to session.resume is not understood: "
                       f"{str(answer)[:200]}. Is it another version of smpdevice? Check the "
                       "session with: smp sessions show (on the service's station); the "
                       "needle is stopped when this client goes")
    return sid, left, planned


def _call_resume(svc, console: Console, params: dict, minutes: float) -> dict:
    """session.resume; when the service says the screening is due (and none was given),
    ask it at the terminal (refused when there is none) and call again."""
    from smpdevice.cli import remote
    from smpdevice.cli.screening_prompt import ask_screening
    from smpdevice.service.client import ServiceError

    try:
        return remote.start_session(svc, "session.resume", **params)
    except ServiceError as exc:
        if (exc.data or {}).get("type") != "ScreeningDue" or "screening" in params:
            raise
    require_terminal_for_screening()
    console.print(f"The screening of session {params['session_id']} is older than "
                  f"{minutes:g} min: it is asked again.", markup=False)
    params["screening"] = ask_screening().as_record()
    return remote.start_session(svc, "session.resume", **params)


def _report_closed(console: Console, closed: dict) -> None:
    import sys

    sid = closed["session_id"]
    left = closed["passes_not_played"]
    what = (f"is closed as it stands ({left} planned pass(es) not played)" if left else
            "has nothing left to play: every planned pass is completed")
    console.print(f"Session {sid} {what}; it is now closed.", markup=False, soft_wrap=True)
    console.print(closed.get("aftercare") or "", markup=False, soft_wrap=True)
    console.print("Pass log: the service's own; see it with: "
                  + command("smp", "sessions", "show", sid), markup=False)
    sys.exit(SessionOutcome(closed["outcome"]).exit_code)
