"""Playing a session's passes with live figures, then closing it or leaving it open
(`smp run` and `smp run --resume`)."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from smpdevice.errors import SmpError


def finish_session(session, console: Console, progress_enabled: bool,
                   should_stop: Callable[[], bool] | None, report,
                   leave_open: bool):
    """Play the session's remaining passes, then close it (or leave it open: `leave_open`
    and it ended on a fault, an E-stop, a lost pen or the pedal: released, or up at a start)."""
    from smpdevice.passlog import PassLogError
    from smpdevice.sessions.resume import left_resumable

    try:
        _play(session, console, progress_enabled, should_stop)
    except PassLogError as exc:  # the needle was stopped; a pass may be open: no close()
        raise log_failed(session, console, report, exc, played=False) from exc
    except BaseException:
        try:  # close what can be closed, but never hide the first error behind a second
            session.close()
        except Exception as close_error:
            console.print(f"[red]The session could not be closed cleanly: {close_error}[/red]")
        raise
    lapsed = session.calibration_lapsed
    if report is not None and lapsed:
        report.cause = recalibrate_in(lapsed, session.pen.port_url, report.recalibrate)
    if leave_open and left_resumable(session, stop_asked=session.stop_requested):
        # a lapsed calibration too: recalibrating clears it, then the rest is resumed
        try:
            session.summary, session.sheet = session.suspend(), ""
        except PassLogError as exc:
            raise log_failed(session, console, report, exc) from exc
        if report is not None:
            report.summary, report.suspended = session.summary, True
            report.paused_on_pedal = pedal_lifted(session)
        return session
    try:
        session.summary, session.sheet = session.close()
    except PassLogError as exc:  # its passes recorded, its close not: left open
        closed = session.kept_close()
        if closed is None:
            raise log_failed(session, console, report, exc) from exc
        # recorded closed, only its receipt not anchored (review 18h): the recorded outcome
        # and sheet, never "left open"; the receipt's failure is a log error all the same
        session.summary, session.sheet = closed
        if report is not None:
            from smpdevice.cli.run_report import needle_state

            report.summary, report.sheet, report.outcome = closed[0], closed[1], session.outcome
            report.record_error, report.needle = True, needle_state(session.pen)
        raise LogFailed(f"the pass log could not be written: {exc}") from exc
    if report is not None:
        report.summary, report.sheet = session.summary, session.sheet
    return session


class LogFailed(SmpError):
    """The pass log could not be written during a session (its needle stopped first): the
    session is left open, as far as it was recorded; `report` says so (exit 3)."""

    exit_code = 3


def log_failed(session, console: Console, report, error: Exception, *,
               played: bool = True) -> LogFailed:
    """The pass log failed under `session` (a full disk): no close() (a pass may be open, and
    nothing more can be written); say which passes are recorded, and fill `report` so the run
    ends as a session left open on `log_error`: INCOMPLETE, the commands to resume it once
    the disk has room, exit 3 (README, When a session does not complete)."""
    from smpdevice.cli.interrupt import CTRL_C
    from smpdevice.cli.run_report import needle_state
    from smpdevice.outcomes import SessionOutcome

    if not played:  # play() raised: its pass lines were not printed yet
        try:  # suspend() writes nothing: the pen disarmed, the session's listeners let go
            session.suspend()
        except Exception as exc:  # said; the run still ends as below
            console.print(f"  note: the session could not wind down: {exc}", style="yellow",
                          markup=False)
        print_passes(session.results, console)
        # numbered by the plan (a resumed run's first pass is not pass 1)
        unrecorded = session.remaining[0][0] if session.remaining else len(session.results)
        console.print(f"  pass {unrecorded + 1}: not recorded — the pass log could "
                      f"not be written: {error}", style="red", markup=False, soft_wrap=True)
    if report is not None:
        report.summary = _recorded_so_far(session)
        report.outcome, report.suspended, report.sheet = SessionOutcome.log_error, True, ""
        report.needle = needle_state(session.pen)
    CTRL_C.settle()  # the outcome is decided: a stop signal now cuts no summary (review 16c)
    return LogFailed(f"the pass log could not be written: {error}")


def _recorded_so_far(session) -> dict:
    """The whole session's passes by outcome, earlier runs' too (a resume), as the log holds
    them (readable on a full disk); else this run's."""
    try:
        outcomes = [str(p.outcome) for p in session.passlog.session(session.session_id).passes
                    if p.outcome is not None]
    except Exception:
        outcomes = [r.outcome.value for r in session.results]
    return {"passes": len(outcomes), "outcomes": {"completed": outcomes.count("completed")}}


def recalibrate_in(why: str, pen_port: str, recalibrate: str | None) -> str:
    """`why` (a calibration refusal, whose hint calibrates the pen on `pen_port`) with the
    run's own command to recalibrate (`recalibrate`: its port and `--calibrations` database)."""
    from smpdevice.outcomes import calibrate_command

    hint = calibrate_command(pen_port)
    if not recalibrate or recalibrate == hint:
        return why
    return why.replace(hint, recalibrate) if hint in why else f"{why} ({recalibrate})"


def pedal_lifted(session) -> bool:
    """Whether the session's last pass ended on the pedal (released, or up at the start): the
    technician's pause, not an end; the rest of the plan stays playable (`smp run --resume`)."""
    results = session.results
    return bool(results) and results[-1].outcome.value == "footswitch_released"


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
        tasks: dict[int, TaskID] = {}

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
    print_passes(results, console)


def print_passes(results, console: Console) -> None:
    """One line per pass played: its outcome and counters."""
    for r in results:
        style = "green" if r.outcome == "completed" else "red"
        console.print(f"  pass {r.index + 1} {r.zone:<10} [{style}]{r.outcome.value}[/{style}] "
                      f"strokes {r.stats.strokes}, impressions {r.stats.impressions}"
                      + (f" — {r.detail}" if r.detail else ""))
