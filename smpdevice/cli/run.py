"""`smp run PROFILE`: play a treatment profile on a pen, recording every pass."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.console import Console

from smpdevice.cli.console import cli_console
from smpdevice.cli.device import pen_identity, port_option
from smpdevice.cli.interrupt import CTRL_C, CtrlC, Interrupted
from smpdevice.cli.playing import LogFailed, finish_session
from smpdevice.cli.run_report import (  # noqa: F401 - RunReport, print_outcome: imported from here
    RunReport,
    end_run,
    needle_state,
    print_outcome,
    recalibrate_command,
)
from smpdevice.cli.screening_prompt import (
    ask_screening,
    read_screening,
    require_terminal_for_screening,
)
from smpdevice.errors import SmpError
from smpdevice.service.cli_client import service_option

if TYPE_CHECKING:
    from smpdevice.envelope import Envelope, StationEnvelope
    from smpdevice.sessions.profiles import TreatmentProfile


def play_profile(
    report: RunReport,
    *,
    profile_path: str,
    technician: str,
    screening,
    db: str | None,
    calibrations: str | None,
    console: Console,
    envelope: str | None = None,
    progress_enabled: bool = True,
    ctrl_c: CtrlC = CTRL_C,
    on_connected: Callable | None = None,
    checked: tuple[Envelope, TreatmentProfile] | None = None,
) -> RunReport:
    """Check, connect, check again, open the session, play its plan with live figures, close.

    Everything that can be checked without a person (profile, envelope, pen, calibration) is
    checked before the screening is asked (`screening=None`: at the terminal). From the pass
    log's opening on, Ctrl-C is deferred to safe points (see smpdevice.cli.interrupt).
    `report` is filled in as the run goes, so an interruption can say where it stopped.
    `checked`: the (zones, profile) `run` already loaded (`_judged`) from `envelope` and
    `profile_path` (not parsed again).
    """
    from smpdevice.calibration.store import CalibrationStore
    from smpdevice.control import PenController
    from smpdevice.envelope import load_envelope
    from smpdevice.passlog import PassLog
    from smpdevice.paths import db_path, pen_log_path
    from smpdevice.records.sqlite_file import refuse_foreign
    from smpdevice.sessions.preflight import lost_before_session
    from smpdevice.sessions.profiles import ProfileError, check_profile, load_profile

    if checked is None:
        zones = load_envelope(envelope)
        profile = load_profile(profile_path, zones)  # a bad profile never reaches the pen
    else:
        zones, profile = checked
    if not profile.plan:
        from smpdevice.sessions.profile_checks import NO_PLAN  # the sentence `profile check` says

        raise SmpError(f"{profile_path} {NO_PLAN}")
    report.planned_passes = len(profile.plan)
    if screening is None:
        require_terminal_for_screening()  # refuse now, not after connecting
    refuse_foreign(db_path(db))  # a --db that is no pass log, before the store touches it
    store = CalibrationStore(calibrations)
    port = report.port
    with ctrl_c.deferred(), contextlib.ExitStack() as logs:
        passlog = _station_log(logs, db)  # None: another chair's run holds it (issue 16.5)
        report.passlog_path = passlog.path if passlog is not None else None
        ctrl_c.check()
        pen = PenController(port, zones=zones)
        with lost_before_session(pen):  # exit 6 once the pen answered, not a bad port's 2
            pen.open()
        with pen, lost_before_session(pen, lambda: report.session_id is not None):
            serial = report.pen_serial = pen_identity(pen).serial
            report.simulated = pen.simulated
            report.lease_ms = pen.lease_ms
            if passlog is None:  # closed after the pen, like the station's log
                passlog = logs.enter_context(PassLog.open(pen_log_path(serial)))
                report.passlog_path = passlog.path
                console.print(f"The station's pass log is in use by another run (another "
                              f"chair): this pen's passes go to its own log {passlog.path}; "
                              "`smp sessions` reads every log as one.", markup=False)
            ctrl_c.check()
            pen.set_calibration(_calibration_for(serial, store, port, calibrations))
            issues = check_profile(profile, pen.zones, pen_limits=pen.pen_limits())
            if issues:
                raise ProfileError(issues, f"for pen {serial}")
            if screening is None:
                with ctrl_c.immediate():
                    screening = ask_screening()
            ctrl_c.check()
            if on_connected is not None:
                on_connected(pen)
            session = run_session(pen, passlog, profile, technician=technician,
                                  screening=screening, console=console,
                                  progress_enabled=progress_enabled,
                                  should_stop=ctrl_c.is_requested, report=report,
                                  leave_open=True)
            report.needle = needle_state(pen)
            report.outcome = session.outcome
            ctrl_c.settle()  # recorded: a stop signal from here changes nothing (end_run)
    return report


def _judged(profile_path: str, station: StationEnvelope) -> TreatmentProfile:
    """PROFILE loaded against the station's envelope. A refusal names that envelope (as `smp
    profile check` does), on stderr: an error leaves stdout empty, and the technician can tell
    the station's stricter zone from the built-in one."""
    from smpdevice.sessions.profiles import ProfileError, load_profile

    try:
        return load_profile(profile_path, station.zones)
    except ProfileError as exc:
        raise ProfileError(exc.issues, f"{exc.source or profile_path}, checked against "
                                       f"{station.describe()},") from None


def _station_log(logs: contextlib.ExitStack, db: str | None):
    """The station's pass log (or --db), open for writing; None when another process writes
    it and no --db was given: the run then writes its pen's own log (one writer per file)."""
    from smpdevice.passlog import PassLog
    from smpdevice.records.sqlite_schema import PassLogInUse

    try:
        return logs.enter_context(PassLog.open(db))
    except PassLogInUse:
        if db:
            raise
        return None


def _calibration_for(serial: str, store, port: str, calibrations: str | None = None):
    """The pen's newest calibration if it may be used now; else how to make one, for this
    port (and the run's `--calibrations`, the database it reads), as a command to copy."""
    from smpdevice.control.calibration import CalibrationError

    calibration = store.latest(serial)
    fix = recalibrate_command(port, calibrations)
    if calibration is None:
        raise CalibrationError(f"pen {serial} has no calibration. Calibrate it first: {fix}")
    if datetime.now(UTC) >= calibration.expires_at:
        raise CalibrationError(
            f"the calibration of pen {serial} expired on {calibration.expires_at:%Y-%m-%d %H:%M} "
            f"UTC. Recalibrate: {fix}"
        )
    calibration.check_for(serial, port=port)
    return calibration


def run_session(pen, passlog, profile, *, technician: str, screening, console: Console,
                progress_enabled: bool = True, should_stop: Callable[[], bool] | None = None,
                report: RunReport | None = None, leave_open: bool = False):
    """Open the session on a connected, calibrated pen, play it, close it; return it closed
    (`session.outcome`, `session.summary`, `session.sheet`). With `leave_open`, a session
    ended by a fault, an E-stop or a lost pen is left open, to be resumed (`report.suspended`).
    """
    from smpdevice.sessions.session import TreatmentSession

    if passlog.recovered:
        console.print(f"[yellow]Recovered {len(passlog.recovered)} pass(es) left open by a "
                      "crash; they are recorded as controller_crashed.[/yellow]")
    session = TreatmentSession.open(pen, passlog, profile, technician=technician,
                                    screening=screening)
    if report is not None:
        report.session_id = session.session_id
        report.passes = session.results  # the same list: filled as passes are played
    kind = "SIMULATED pen" if pen.simulated else "pen"
    console.print(f"Session {session.session_id}: {profile.session_kind.value} for client "
                  f"{profile.client_ref} on {kind} {pen.identity.serial} (calibration "
                  f"{pen.calibration.calibration_id}), {len(profile.plan)} passes.",
                  markup=False, soft_wrap=True)
    return finish_session(session, console, progress_enabled, should_stop, report, leave_open)


@click.command()
@click.argument("profile", type=click.Path(dir_okay=False), required=False)
@port_option()
@service_option()
@click.option("--technician", "-t", default=None, metavar="NAME",
              help="Who treats (recorded). Default: $SMP_TECHNICIAN, else `technician` in the "
                   "station config.")
@click.option("--screening", "screening_file", metavar="FILE",
              help="Contraindication answers (YAML/JSON, every question true/false, e.g. "
                   "examples/screening_clear.yaml). Asked at the terminal when omitted, after "
                   "everything else is checked.")
@click.option("--db", metavar="PATH",
              help="Pass log file (default: passlog.sqlite in the data directory: $SMP_DATA_DIR, "
                   "else `data_dir` in the station config, else the per-user one).")
@click.option("--calibrations", metavar="PATH",
              help="Calibration database (default: calibrations.sqlite in the data directory).")
@click.option("--envelope", metavar="FILE",
              help="Zone limits overriding the defaults (YAML/JSON, same shape as "
                   "smpdevice.envelope.DEFAULT_ZONES); still narrowed to the pen's limits. "
                   "Default: $SMP_ENVELOPE, else `envelope` in the station config.")
@click.option("--resume", "resume_id", metavar="SESSION",
              help="Play what is left of SESSION, left open by a fault, an E-stop, a lost pen, "
                   "an expired calibration or a crash (PROFILE optional: the session's own plan "
                   "is in the log). An empty id is refused.")
@click.option("--close", "close_only", is_flag=True,
              help="With --resume: close the session as it stands, playing nothing; prints "
                   "its summary and aftercare sheet.")
@click.option("--rescreen-after-min", metavar="MINUTES", envvar="SMP_RESCREEN_AFTER_MIN",
              default=None, show_envvar=True,
              help="With --resume: ask the screening again when it is older than this "
                   "(0-480 min; default 30).")
def run(profile: str | None, port: str, service: str | None, technician: str | None,
        screening_file: str | None, db: str | None, calibrations: str | None,
        envelope: str | None, resume_id: str | None = None, close_only: bool = False,
        rescreen_after_min: str | None = None) -> None:
    """Play a treatment profile on a pen and record every pass.

    Checks the profile and the envelope, connects, checks the pen's calibration, asks the
    screening (unless --screening), opens the session, plays the plan pass by pass with live
    figures, and closes with the summary and the aftercare sheet. The pen is never chosen for
    you: pass --port, or set SMP_PORT or `port` in the station config (`smp config show`).

    A session that does not play every planned pass is INCOMPLETE: the summary and the
    aftercare sheet say so, with what to do next, and the exit status says why: 4 a fault,
    5 an E-stop, 6 the pen was lost, 7 ended early otherwise, 3 the pass log failed, 130 Ctrl-C.
    Ctrl-C at any moment stops the needle first, records what ran, and prints one line saying
    what state the needle is in and what was recorded.

    \b
    Example (built-in simulator):
      smp calibrate --port pensim:// --auto
      smp run examples/session1_base_density.yaml --port pensim:// -t ana --screening examples/screening_clear.yaml

    A fault, an E-stop, a lost pen or a calibration expiring between passes leaves the session
    OPEN: clear the cause (recalibrate), then `smp run --resume SESSION --port PORT` plays
    only what is left (see README, "Resuming");
    through a running `smp serve`, `--resume SESSION --service URL` (the service checks it
    against its own pen, envelope and log).

    With --service URL (or SMP_SERVICE) the session runs on the pen of a running `smp serve`:
    `smp monitor --service URL` can watch it, and `smp estop --service URL` from another
    terminal stops it (exit 5).
    """  # noqa: E501
    from smpdevice.cli import exit_interrupted
    from smpdevice.config import setting

    if resume_id is not None:  # '' (an unset variable) is refused, never "no --resume"
        from smpdevice.cli.resume import check_resume_id

        resume_id = check_resume_id(resume_id)
    resuming = resume_id is not None
    if rescreen_after_min is not None:  # refused as typed, with --resume or not (exit 2)
        from smpdevice.sessions.resume import check_rescreen_after

        check_rescreen_after(rescreen_after_min)
    for option, path, own in (("--db", db, "the data directory's own"),
                              ("--calibrations", calibrations, "the data directory's own"),
                              ("--envelope", envelope, "the station's")):
        if path is not None and not path.strip():  # a script's unset variable, as --resume ''
            raise SmpError(f"{option} {path!r}: no file was given (an unset or empty "
                           f"variable?); nothing was opened. Give the file, or leave {option} "
                           f"out for {own}")
    if close_only and not resuming:  # (SMP_RESCREEN_AFTER_MIN may be set for every run)
        raise SmpError("--close goes with --resume SESSION: which session to close?")
    if profile is None and not resuming:
        raise SmpError("give the PROFILE to play (e.g. examples/session1_base_density.yaml), "
                       "or --resume SESSION to go on with an interrupted session")
    if db and calibrations and os.path.realpath(db) == os.path.realpath(calibrations):
        raise SmpError(f"--db and --calibrations both name {db}: the pass log and the "
                       "calibrations are two databases; give two files (or leave them out "
                       "for the data directory's own); nothing was changed")
    who = setting("technician", technician).value
    if not who and not close_only:
        raise SmpError("who treats? pass --technician NAME (-t NAME), or set SMP_TECHNICIAN or "
                       "`technician` in the station config (see: smp config show).")
    if who:  # refused before anything opens: it is recorded in the signed log as given
        from smpdevice import checks

        who = checks.technician(who, name="--technician")
    if service and resume_id is not None:
        from smpdevice.cli.resume import resume_through_service

        resume_through_service(service, session_id=resume_id, profile_path=profile,
                               technician=who, screening_file=screening_file,
                               rescreen_after_min=rescreen_after_min, close_only=close_only,
                               local_files={"--envelope": envelope, "--db": db,
                                            "--calibrations": calibrations})
        return
    if service:
        from smpdevice.cli import remote

        # no --resume here (handled above), so both were checked before
        assert profile is not None and who is not None
        remote.run(service, profile_path=profile, technician=who, screening_file=screening_file,
                   envelope=envelope, db=db, calibrations=calibrations)
        return
    from smpdevice.envelope import station_envelope

    # the files this run was given, for the commands it prints (absolute: they run anywhere)
    files = [word for option, value in (("--db", db), ("--calibrations", calibrations),
                                        ("--envelope", envelope)) if value
             for word in (option, os.path.abspath(value))]

    station, loaded = station_envelope(envelope), None
    if not resuming:  # a resume says it once its own checks (calibration, screening) pass
        assert profile is not None  # (refused above without --resume)
        loaded = _judged(profile, station)
        click.echo(f"checked against {station.describe()}")  # which one holds the run
    envelope = station.file
    console = cli_console()
    report = RunReport(port, recalibrate=recalibrate_command(port, calibrations))
    try:
        answers = read_screening(screening_file) if screening_file else None
        if resume_id is not None:
            from smpdevice.cli.resume import resume_profile

            resume_profile(report, session_id=resume_id, profile_path=profile,
                           technician=who or "", screening=answers, db=db,
                           calibrations=calibrations, console=console, envelope=envelope,
                           rescreen_after_min=rescreen_after_min, close_only=close_only,
                           say_checked=lambda: click.echo(f"checked against {station.describe()}"))
        else:
            # checked above, without --resume (and so loaded by _judged)
            assert profile is not None and who is not None and loaded is not None
            play_profile(report, profile_path=profile, technician=who, screening=answers,
                         db=db, calibrations=calibrations, console=console, envelope=envelope,
                         checked=(station.zones, loaded))
    except (KeyboardInterrupt, Interrupted):
        exit_interrupted(report.interrupted_line())
    except click.exceptions.Abort:
        if CTRL_C.requested:  # Ctrl-C at a screening question
            exit_interrupted(report.interrupted_line())
        raise
    except LogFailed as exc:  # left open as far as recorded: INCOMPLETE, how to resume, exit 3
        CTRL_C.settle()
        needle = report.needle[:1].upper() + report.needle[1:]
        click.secho(f"error: {str(exc).rstrip('.')}. {needle}.", fg="red", err=True)
    end_run(report, console, who=who, files=files, db=db)
