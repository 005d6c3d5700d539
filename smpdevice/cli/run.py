"""`smp run PROFILE`: play a treatment profile on a pen, recording every pass."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from smpdevice.cli.console import cli_console
from smpdevice.cli.device import port_option
from smpdevice.cli.interrupt import CTRL_C, CtrlC, Interrupted
from smpdevice.errors import SmpError
from smpdevice.outcomes import (
    ExitCode,
    SessionOutcome,
    calibrate_command,
    command,
    next_steps,
)
from smpdevice.service.cli_client import service_option


def load_screening(path: str | None):
    """Screening answers from a YAML/JSON file, or asked one by one at a terminal."""
    return read_screening(path) if path else ask_screening()


def read_screening(path: str):
    """Screening answers from a YAML/JSON file (every question answered true/false)."""
    from smpdevice.screening import load_screening_file

    return load_screening_file(path)  # the strict loader (helper C), then every answer checked


def require_terminal_for_screening() -> None:
    from smpdevice.screening import QUESTIONS

    if not click.get_text_stream("stdin").isatty():
        raise SmpError(
            "a session needs the contraindication screening: pass --screening FILE "
            "(answers true/false for " + ", ".join(QUESTIONS) + "; e.g. "
            "examples/screening_clear.yaml) or run at a terminal."
        )


def ask_screening():
    """Ask the screening questions at the terminal."""
    from smpdevice.screening import QUESTIONS, parse_screening

    require_terminal_for_screening()
    click.echo("Contraindication screening (answer for the treatment area):")
    return parse_screening(
        {name: click.confirm(f"  {question}", default=None) for name, (question, _) in
         QUESTIONS.items()}
    )


@dataclass
class RunReport:
    """What a run has done so far: enough to say honestly where it stopped, at any moment."""

    port: str
    planned_passes: int = 0
    pen_serial: str | None = None
    simulated: bool | None = None
    lease_ms: int | None = None
    session_id: str | None = None
    passlog_path: Path | None = None
    passes: list = field(default_factory=list)  # PassResult of every pass begun
    outcome: SessionOutcome | None = None
    summary: dict | None = None
    sheet: str = ""
    needle: str = "the needle never started"

    @property
    def exit_code(self) -> ExitCode:
        return self.outcome.exit_code if self.outcome is not None else ExitCode.INCOMPLETE

    def interrupted_line(self) -> str:
        """One honest line after Ctrl-C: the needle's state and what was recorded."""
        if self.session_id is None:
            where = ("before the pen was connected" if self.pen_serial is None
                     else f"before the session opened on pen {self.pen_serial}")
            return f"{where}: the needle never started and nothing was recorded."
        if not self.passes:
            needle = "the needle never started"
            passes = "no pass"
        else:
            needle = self.needle
            last = self.passes[-1]
            passes = f"pass {last.index + 1} as {last.outcome.value}"
        state = self.outcome.value if self.outcome is not None else "open (it could not be closed)"
        return f"{needle}; session {self.session_id} is recorded with {passes}, as {state}."


def needle_state(pen) -> str:
    """What is known of the needle now, from the pen's own report (after a stop)."""
    from smpdevice.control import State

    t = pen.telemetry
    if pen.state is not State.DISCONNECTED and t is not None and not t.needle_running:
        return "the needle is stopped (the pen reports it)"
    return (f"the needle's stop is not confirmed ({pen.state.value}); the pen stops it by itself "
            f"within its {pen.lease_ms} ms lease")


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
) -> RunReport:
    """Check, connect, check again, open the session, play its plan with live figures, close.

    Everything that can be checked without a person (profile, envelope, pen, calibration) is
    checked before the screening is asked (`screening=None`: at the terminal). From the pass
    log's opening on, Ctrl-C is deferred to safe points (see smpdevice.cli.interrupt).
    `report` is filled in as the run goes, so an interruption can say where it stopped.
    """
    from smpdevice.calibration.store import CalibrationStore
    from smpdevice.control import PenController
    from smpdevice.envelope import load_envelope
    from smpdevice.passlog import PassLog
    from smpdevice.paths import pen_log_path
    from smpdevice.profiles import ProfileError, check_profile, load_profile

    zones = load_envelope(envelope)
    profile = load_profile(profile_path, zones)  # a bad profile never reaches the pen
    if not profile.plan:
        raise SmpError(f"{profile_path} has no plan of passes to play; add a `plan:` list")
    report.planned_passes = len(profile.plan)
    if screening is None:
        require_terminal_for_screening()  # refuse now, not after connecting
    store = CalibrationStore(calibrations)
    port = report.port
    with ctrl_c.deferred(), contextlib.ExitStack() as logs:
        passlog = _station_log(logs, db)  # None: another chair's run holds it (issue 16.5)
        report.passlog_path = passlog.path if passlog is not None else None
        ctrl_c.check()
        with PenController.connect(port, zones=zones) as pen:
            report.pen_serial = pen.identity.serial
            report.simulated = pen.simulated
            report.lease_ms = pen.lease_ms
            if passlog is None:  # closed after the pen, like the station's log
                passlog = logs.enter_context(PassLog.open(pen_log_path(pen.identity.serial)))
                report.passlog_path = passlog.path
                console.print(f"The station's pass log is in use by another run (another "
                              f"chair): this pen's passes go to its own log {passlog.path}; "
                              "`smp sessions` reads every log as one.", markup=False)
            ctrl_c.check()
            pen.set_calibration(_calibration_for(pen.identity.serial, store, port))
            issues = check_profile(profile, pen.zones, pen_limits=pen.pen_limits())
            if issues:
                raise ProfileError(issues, f"for pen {pen.identity.serial}")
            if screening is None:
                with ctrl_c.immediate():
                    screening = ask_screening()
            ctrl_c.check()
            if on_connected is not None:
                on_connected(pen)
            session = run_session(pen, passlog, profile, technician=technician,
                                  screening=screening, console=console,
                                  progress_enabled=progress_enabled,
                                  should_stop=ctrl_c.is_requested, report=report)
            report.needle = needle_state(pen)
            report.outcome = session.outcome
    return report


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


def _calibration_for(serial: str, store, port: str):
    """The pen's newest calibration if it may be used now; else how to make one, for this
    port, as a command to copy."""
    from smpdevice.control.calibration import CalibrationError

    calibration = store.latest(serial)
    fix = calibrate_command(port)
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
                report: RunReport | None = None):
    """Open the session on a connected, calibrated pen, play it, close it; return it closed
    (`session.outcome`, `session.summary`, `session.sheet`)."""
    from smpdevice.session import TreatmentSession

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
    try:
        _play(session, console, progress_enabled, should_stop)
    except BaseException:
        try:  # close what can be closed, but never hide the first error behind a second
            session.close()
        except Exception as close_error:
            console.print(f"[red]The session could not be closed cleanly: {close_error}[/red]")
        raise
    session.summary, session.sheet = session.close()
    if report is not None:
        report.summary, report.sheet = session.summary, session.sheet
    return session


def print_outcome(console: Console, session_id: str, outcome: SessionOutcome, *, port: str,
                  completed: int, planned: int, service: str | None = None) -> None:
    """The technician's summary of an incomplete session, with what to do next."""
    if outcome.complete:
        return
    console.print(f"Session {session_id} INCOMPLETE: {outcome.reason}; {completed} of "
                  f"{planned} planned passes completed.", style="bold red", markup=False,
                  soft_wrap=True)
    for step in next_steps(outcome, port=port, session_id=session_id,
                           remaining_passes=planned - completed, service=service):
        console.print(f"  Next: {step}", markup=False, soft_wrap=True)


def _play(session, console: Console, progress_enabled: bool,
          should_stop: Callable[[], bool] | None = None) -> None:
    columns = [
        TextColumn("pass {task.fields[index]}/{task.fields[passes]} {task.fields[zone]:<10}"),
        BarColumn(),
        TextColumn("{task.fields[figures]}"),
        TimeElapsedColumn(),
    ]
    # Piped (not a terminal), a live bar would only leave a truncated last frame in the file:
    # the per-pass lines below say what ran.
    live = progress_enabled and console.is_terminal
    with Progress(*columns, console=console, disable=not live) as progress:
        tasks: dict[int, int] = {}

        def on_progress(p) -> None:
            t, sp = p.telemetry, session.pen.setpoints
            depth = t.depth_mm if t and t.depth_mm is not None else float("nan")
            figures = (f"depth {depth:.2f} mm  {sp.speed_hz:g} Hz x {sp.duty_pct:g} %  "
                       f"strokes {p.strokes:>4}" if t and sp else "")
            if p.index not in tasks:
                tasks[p.index] = progress.add_task("", total=1.0, index=p.index + 1,
                                                   passes=p.total, zone=p.zone, figures=figures)
            progress.update(tasks[p.index], completed=p.fraction, figures=figures)

        results = session.play(on_progress=on_progress, should_stop=should_stop)
    for r in results:
        style = "green" if r.outcome == "completed" else "red"
        console.print(f"  pass {r.index + 1} {r.zone:<10} [{style}]{r.outcome.value}[/{style}] "
                      f"strokes {r.stats.strokes}, impressions {r.stats.impressions}"
                      + (f" — {r.detail}" if r.detail else ""))


@click.command()
@click.argument("profile", type=click.Path(dir_okay=False))
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
def run(profile: str, port: str, service: str | None, technician: str | None,
        screening_file: str | None, db: str | None, calibrations: str | None,
        envelope: str | None) -> None:
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

    With --service URL (or SMP_SERVICE) the session runs on the pen of a running `smp serve`:
    `smp monitor --service URL` can watch it, and `smp estop --service URL` from another
    terminal stops it (exit 5).
    """  # noqa: E501
    from smpdevice.cli import exit_interrupted
    from smpdevice.config import setting

    who = setting("technician", technician).value
    if not who:
        raise SmpError("who treats? pass --technician NAME (-t NAME), or set SMP_TECHNICIAN or "
                       "`technician` in the station config (see: smp config show).")
    if service:
        from smpdevice.cli import remote

        remote.run(service, profile_path=profile, technician=who, screening_file=screening_file,
                   envelope=envelope, db=db, calibrations=calibrations)
        return
    envelope = setting("envelope", envelope).value
    console = cli_console()
    report = RunReport(port)
    try:
        answers = read_screening(screening_file) if screening_file else None
        play_profile(report, profile_path=profile, technician=who, screening=answers, db=db,
                     calibrations=calibrations, console=console, envelope=envelope)
    except (KeyboardInterrupt, Interrupted):
        exit_interrupted(report.interrupted_line())
    except click.exceptions.Abort:
        if CTRL_C.requested:  # Ctrl-C at a screening question
            exit_interrupted(report.interrupted_line())
        raise
    completed = sum(1 for r in report.passes if r.outcome.value == "completed")
    console.print()
    if report.outcome is not None and report.session_id is not None:
        print_outcome(console, report.session_id, report.outcome, port=port,
                      completed=completed, planned=report.planned_passes)
    console.print(report.sheet, markup=False, soft_wrap=True)
    show = ["smp", "sessions", "show", report.session_id or ""]
    if db:
        show += ["--db", str(report.passlog_path)]
    console.print(f"Pass log: {report.passlog_path}  —  see it with: {command(*show)}",
                  markup=False, soft_wrap=True)
    if CTRL_C.requested:
        exit_interrupted(report.interrupted_line())
    sys.exit(report.exit_code)
