"""Playing a session's passes with live figures, then closing it or leaving it open
(`smp run` and `smp run --resume`)."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

# How a session ends that `smp run` leaves open: the cause can be cleared, then resumed.
RESUMABLE = ("fault", "estop", "link_lost")


def finish_session(session, console: Console, progress_enabled: bool,
                   should_stop: Callable[[], bool] | None, report,
                   leave_open: bool):
    """Play the session's remaining passes, then close it (or leave it open: `leave_open`
    and it ended on a fault, an E-stop, a lost pen or the pedal: released, or up at a start)."""
    from smpdevice.sessions.session_records import session_summary

    try:
        _play(session, console, progress_enabled, should_stop)
    except BaseException:
        try:  # close what can be closed, but never hide the first error behind a second
            session.close()
        except Exception as close_error:
            console.print(f"[red]The session could not be closed cleanly: {close_error}[/red]")
        raise
    lapsed = session.calibration_lapsed
    if report is not None and lapsed:
        report.cause = recalibrate_in(lapsed, session.pen.port_url, report.recalibrate)
    if leave_open and not session.stop_requested and (
            pedal_lifted(session) or lapsed or session_summary(
                session.passlog, session.session_id, session.profile,
                pen_state=session.judged_pen_state())["outcome"] in RESUMABLE):
        # a lapsed calibration too: recalibrating clears it, then the rest is resumed
        session.summary, session.sheet = session.suspend(), ""
        if report is not None:
            report.summary, report.suspended = session.summary, True
            report.paused_on_pedal = pedal_lifted(session)
        return session
    session.summary, session.sheet = session.close()
    if report is not None:
        report.summary, report.sheet = session.summary, session.sheet
    return session


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
    for r in results:
        style = "green" if r.outcome == "completed" else "red"
        console.print(f"  pass {r.index + 1} {r.zone:<10} [{style}]{r.outcome.value}[/{style}] "
                      f"strokes {r.stats.strokes}, impressions {r.stats.impressions}"
                      + (f" — {r.detail}" if r.detail else ""))
