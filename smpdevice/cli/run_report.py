"""What `smp run` has done, and how it ends: the summary, the next steps, the sheet, the pass
log's line and the exit status (split from smpdevice.cli.run, which plays)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.console import Console

from smpdevice.cli.interrupt import CTRL_C
from smpdevice.outcomes import ExitCode, SessionOutcome, calibrate_command, command, next_steps

LATCHES = ("fault", "estop")  # a pass that ended so left the pen latched


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
    suspended: bool = False  # left open after a fault, E-stop or lost pen: resumable
    paused_on_pedal: bool = False  # left open because the pedal was lifted (or up at start)
    recalibrate: str | None = None  # the run's command to recalibrate the pen (its files too)
    cause: str | None = None  # why the session ended, when its outcome cannot say (a lapsed
    # calibration: the outcome is `incomplete`, left open to be resumed once recalibrated)

    record_error: bool = False  # closed and recorded, but its receipt not anchored: exit 3

    @property
    def exit_code(self) -> ExitCode:
        if self.record_error:
            return ExitCode.RECORD_ERROR
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


def recalibrate_command(port: str, calibrations: str | None) -> str:
    """How to recalibrate the pen on `port` into the database a run with `--calibrations`
    reads (`smp calibrate --db`)."""
    return calibrate_command(port) + (f" {command('--db', calibrations)}" if calibrations else "")


def needle_state(pen) -> str:
    """What is known of the needle now, from the pen's own report (after a stop)."""
    from smpdevice.control import State

    t = pen.telemetry
    if pen.state is not State.DISCONNECTED and t is not None and not t.needle_running:
        return "the needle is stopped (the pen reports it)"
    return (f"the needle's stop is not confirmed ({pen.state.value}); the pen stops it by itself "
            f"within its {pen.lease_ms} ms lease")


def print_outcome(console: Console, session_id: str, outcome: SessionOutcome, *, port: str,
                  completed: int, planned: int, service: str | None = None,
                  db: str | None = None) -> None:
    """The technician's summary of an incomplete session, with what to do next (the session
    shown from `db`, the run's `--db`, when it had one)."""
    from smpdevice.cli.resume import with_show

    if outcome.complete:
        return
    console.print(f"Session {session_id} INCOMPLETE: {outcome.reason}; {completed} of "
                  f"{planned} planned passes completed.", style="bold red", markup=False,
                  soft_wrap=True)
    for step in with_show(next_steps(outcome, port=port, session_id=session_id,
                                     remaining_passes=max(0, planned - completed),
                                     service=service),
                          session_id, db):
        console.print(f"  Next: {step}", markup=False, soft_wrap=True)


def end_run(report: RunReport, console: Console, *, who: str | None, files: Sequence[str],
            db: str | None) -> None:
    """After the session has played (or was closed): its summary and next steps, the sheet,
    the pass log's line; then exit with the session's status. Ctrl-C asked after the session
    had ended (recorded completed, say) changes nothing recorded: the status is the record's,
    never 130 for a session the record calls completed (review 12 REVG-10)."""
    from smpdevice.cli import exit_interrupted
    from smpdevice.sessions.aftercare import planned_done

    port = report.port
    completed = planned_done(report.summary or {})
    shown_db = str(report.passlog_path) if db else None
    console.print()
    if report.suspended and report.outcome is not None and report.session_id is not None:
        from smpdevice.cli.resume import print_suspended

        print_suspended(console, report.session_id, report.outcome, port=port,
                        completed=completed, planned=report.planned_passes,
                        paused_on_pedal=report.paused_on_pedal, technician=who, files=files,
                        db=shown_db, why=report.cause,
                        fix=(report.recalibrate or calibrate_command(port))
                        if report.cause else None)
    elif report.outcome is not None and report.session_id is not None:
        print_outcome(console, report.session_id, report.outcome, port=port,
                      completed=completed, planned=report.planned_passes, db=shown_db)
        last = report.passes[-1] if report.passes else None
        if report.outcome.complete and last is not None and last.outcome.value in LATCHES:
            # every dot made, the session complete, but the pen latched as the pass ended
            console.print(f"Note: the pen latched {last.outcome.value} as the last pass ended"
                          f"{f' ({last.detail})' if last.detail else ''}, after all its dots. "
                          f"Clear it before the next session: "
                          f"{command('smp', 'clear', '--port', port)}", markup=False,
                          soft_wrap=True)
    if report.sheet:
        console.print(report.sheet, markup=False, soft_wrap=True)
    show = ["smp", "sessions", "show", report.session_id or ""]
    if db:
        show += ["--db", str(report.passlog_path)]
    console.print(f"Pass log: {report.passlog_path}  —  see it with: {command(*show)}",
                  markup=False, soft_wrap=True)
    if CTRL_C.requested and (report.outcome is None
                             or report.outcome is SessionOutcome.interrupted):
        exit_interrupted(report.interrupted_line())
    if report.session_id is not None and report.outcome is not None:
        late_stop_note(report.session_id, report.outcome)
    sys.exit(report.exit_code)


def late_stop_note(session_id: str, outcome: SessionOutcome) -> None:
    """After a session ended: a Ctrl-C (SIGTERM, SIGHUP) asked since changes nothing; say so
    (README, Exit status 130). Nothing when none was asked, or when it interrupted the session."""
    if CTRL_C.requested and outcome is not SessionOutcome.interrupted:
        click.secho(f"note: Ctrl-C came too late to change session {session_id}: it is "
                    f"recorded as {outcome.value} ({outcome.reason}), as the exit status says.",
                    err=True)


def report_through_service(console: Console, url: str, result: dict, passes: list[dict],
                           planned: int, port: str, technician: str | None = None, *,
                           simulated: bool = False) -> None:
    """A session's end through the service, as a local run reports it (each pass was printed
    as it ended: `remote.follow`): what is next (left open: how to resume, as `technician`,
    or close it through the service; its `cause`, a calibration that expired, named with the
    service's recalibration first), the sheet, exit. `port`, `simulated`: the service's pen."""
    from smpdevice.cli.playing import recalibrate_in
    from smpdevice.cli.remote import calibrate_through
    from smpdevice.cli.resume import print_suspended

    sid, outcome = result["session_id"], SessionOutcome(result["outcome"])
    record_error = outcome is SessionOutcome.log_error or bool(result.get("record_error"))
    if record_error and result.get("error"):  # its log failed (or a close's receipt: 18h)
        click.secho(f"error: the service's pass log could not be written: {result['error']}",
                    fg="red", err=True)
    from smpdevice.sessions.aftercare import planned_done

    completed = planned_done(result.get("summary") or {})
    console.print()
    if result.get("left_open"):
        pedal = bool(passes) and passes[-1]["outcome"] == "footswitch_released"
        cause = result.get("cause") if isinstance(result.get("cause"), str) else None
        fix = calibrate_through(url, simulated=simulated) if cause else None
        print_suspended(console, sid, outcome, port=port, completed=completed, planned=planned,
                        paused_on_pedal=pedal, service=url, technician=technician,
                        why=recalibrate_in(cause, port, fix) if cause else None, fix=fix)
    elif not outcome.complete:
        print_outcome(console, sid, outcome, port=port, completed=completed, planned=planned,
                      service=url)
    console.print(result.get("aftercare") or "", markup=False, soft_wrap=True)
    console.print("Pass log: the service's own; see it with: "
                  + command("smp", "sessions", "show", sid), markup=False)
    late_stop_note(sid, outcome)
    sys.exit(ExitCode.RECORD_ERROR if record_error else outcome.exit_code)
