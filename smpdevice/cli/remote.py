"""`smp run` and `smp monitor` with `--service URL` (or SMP_SERVICE): the pen
belongs to a running `smp serve`, so a monitor can watch while a run drives and an E-stop from
another terminal stops the run, which then exits 5 and says so (issue 14, item 4)."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, NoReturn

import click
from rich.console import Console

from smpdevice.cli.console import cli_console
from smpdevice.cli.interrupt import CTRL_C
from smpdevice.errors import SmpError
from smpdevice.link.clock import MONOTONIC, Clock, timebase_for
from smpdevice.outcomes import ExitCode, SessionOutcome, command

EVENTS = frozenset({"session.progress", "session.pass", "session.result", "pen.state"})
OPENING_WAIT_S = 30.0  # after Ctrl-C, for the answer to a session.run already sent
STOP_WAIT_S = 30.0  # after Ctrl-C, for session.stop's answer and the session's result
RELEASE_WAIT_S = 5.0  # then for pen.release (unanswered: the service's lease lets go)
CLOSE_WAIT_S = 2.0  # then for the connection's close (a silent service is left behind)
WAIT_CLOCK: Clock = MONOTONIC  # OPENING_WAIT_S, STOP_WAIT_S measured on it (tests: virtual)


class ServiceCheckFailed(SmpError):
    exit_code = ExitCode.CHECK_FAILED


class ServiceGoneMidSession(SmpError):
    """The service went away while it ran a session: it stopped the needle (or the pen's own
    lease did) and left the session open, as it does for a lost pen."""

    exit_code = ExitCode.LINK_LOST


def gone_mid_session(url: str, sid: str, why: object,
                     technician: str | None = None) -> ServiceGoneMidSession:
    from smpdevice.cli.resume import resume_command

    again = resume_command(sid, ["--service", url], technician=technician)
    close = resume_command(sid, ["--service", url], close=True)
    return ServiceGoneMidSession(
        f"the service at {url} went away during session {sid} ({why}); the needle is "
        f"stopped (by the service, else by the pen's own lease) and session {sid} is left "
        f"open. When `smp serve` is back, resume it: {again} (or close it as it stands: "
        f"{close})")


def follow(svc: Any, console: Console, sid: str, url: str, technician: str | None = None
           ) -> tuple[dict[str, Any], list[dict]]:
    """`_follow`, with the service's going away said as such (session id, how to resume, as
    `technician`)."""
    from smpdevice.service.client import ServiceGone

    try:
        return _follow(svc, console, sid)
    except ServiceGone as exc:
        raise gone_mid_session(url, sid, exc.reason, technician) from None


def _connect(url: str, role: str) -> Any:
    from smpdevice.service.client import SyncServiceClient

    return SyncServiceClient.connect(url, role=role, name="smp")


def say_envelope(url: str, serial: str) -> None:
    """As a local `smp run`'s first line (also `--resume`): which envelope holds the run.
    Through the service it is the service's own (`smp serve --envelope`, else its station's),
    never this terminal's (review 8b, R05)."""
    click.echo(f"checked against the envelope of the service at {url} (its `smp serve "
               "--envelope`, else its SMP_ENVELOPE or station config, else the built-in "
               f"zones), narrowed to pen {serial}'s limits")


def say_resuming(console: Console, url: str, serial: str, simulated: bool,
                 answer: dict[str, Any]) -> None:
    """session.resume's answer (checked: cli.resume.started_answer) as a local `smp run
    --resume` says it: the passes left, then its notes (`notes`: a pass cut by a host crash
    the pen could not count, part of which may be played again)."""
    left, planned = answer["passes_left"], answer["planned_passes"]
    console.print(f"Resuming session {answer['session_id']} on "
                  f"{'SIMULATED pen' if simulated else 'pen'} {serial} through the service at "
                  f"{url}: {len(left)} of {planned} planned passes left (pass "
                  f"{', '.join(str(i + 1) for i in left)}); a pass cut short plays only its "
                  "remainder.", markup=False, soft_wrap=True)
    notes = answer.get("notes")
    for note in notes if isinstance(notes, list) else []:
        console.print(f"  Note: {note}", markup=False, soft_wrap=True)


def _identity(svc: Any) -> tuple[str, dict[str, Any]]:
    ident = svc.call("pen.identity")
    return (ident["identity"] or {}).get("serial", "?"), ident


def calibrate_through(url: str, *, simulated: bool) -> str:
    """How to calibrate the pen `smp serve` at `url` owns (automatic on a simulated pen)."""
    return command("smp", "calibrate", "--service", url, *(["--auto"] if simulated else []))


# ------------------------------------------------------------------------------------- run


def run(url: str, *, profile_path: str, technician: str, screening_file: str | None,
        envelope: str | None, db: str | None, calibrations: str | None) -> None:
    """Check (profile against the served pen's envelope, calibration), then screen, then drive
    the session through the service and report it like a local `smp run`."""
    from smpdevice.cli.screening_prompt import (
        ask_screening,
        read_screening,
        require_terminal_for_screening,
    )

    for name, value in (("--envelope", envelope), ("--db", db), ("--calibrations",
                                                                  calibrations)):
        if value:
            raise SmpError(f"{name} {value} cannot be used with --service: the service's pen, "
                           "envelope, pass log and calibrations are its own; leave it out (or "
                           "run without --service)")
    from smpdevice.cli.profile_remote import read_for_service

    sent = read_for_service(profile_path)  # the strict loader, as a local run reads it
    answers = read_screening(screening_file) if screening_file else None
    console = cli_console()
    with _connect(url, "operator") as svc:
        serial, ident = _identity(svc)
        checked = svc.call("session.check", **sent)
        if not checked["ok"]:
            raise ServiceCheckFailed(checked["message"].replace("profile uploaded",
                                                                f"profile {profile_path}"))
        say_envelope(url, serial)
        if ident["calibration"] is None:
            fix = calibrate_through(url, simulated=bool(ident["simulated"]))
            raise SmpError(f"pen {serial} has no valid calibration. Calibrate it first: {fix}")
        if answers is None:
            require_terminal_for_screening()
        if answers is None:
            answers = ask_screening()
        planned = len(checked["passes"])
        svc.drive(lease_ms=1000)
        kind = "SIMULATED pen" if ident["simulated"] else "pen"
        sid: str | None = None
        with CTRL_C.stop_signals():  # SIGTERM, SIGHUP: taken as Ctrl-C, as by `smp run`
            try:
                started = start_session(svc, "session.run", **sent,
                                        screening=answers.as_record(), technician=technician,
                                        leave_open=True)  # as `smp run`: resumable (issue 15.5)
                sid = started["session_id"]
                console.print(f"Session {sid}: {checked['session_kind']} for client "
                              f"{checked['client_ref']} on {kind} {serial} through the service "
                              f"at {url}, {planned} passes.", markup=False)
                result, passes = follow(svc, console, sid, url, technician)
                CTRL_C.settle()  # recorded by the service: a stop signal changes nothing now
            except KeyboardInterrupt:
                _interrupted(svc, sid, url, technician)
            finally:
                # the connection may be gone: the service then stops the pen by itself
                with contextlib.suppress(Exception):
                    svc.release()
    _report(console, url, result, passes, planned, ident["port"], technician,
            simulated=bool(ident["simulated"]))


def _follow(svc: Any, console: Console, sid: str, timeout_s: float = 24 * 3600,
            clock: Clock = MONOTONIC) -> tuple[dict[str, Any], list[dict]]:
    """Print each pass as it starts and ends; return the session's result and its passes
    (TimeoutError, or ServiceError, when it has not come within `timeout_s` on `clock`)."""
    started: set[int] = set()
    passes: list[dict[str, Any]] = []
    end_s = clock.now() + timeout_s
    while True:
        method, p = _next_event(svc, clock, end_s)
        if p.get("session_id") not in (None, sid):
            continue
        if method == "session.progress" and p["index"] not in started:
            started.add(p["index"])
            console.print(f"  pass {p['index'] + 1}/{p['total']} {p['zone']} running",
                          markup=False)
        elif method == "pen.state" and p["new"] in ("estop", "fault", "disconnected"):
            console.print(f"  pen: {p['old']} -> {p['new']} ({p.get('reason', '')})",
                          markup=False)
        elif method == "session.pass":  # as it ends: kept on screen if the service goes
            passes.append(p)
            console.print(pass_line(p), markup=False)
        elif method == "session.result":
            return p, passes


def _next_event(svc: Any, clock: Clock, end_s: float) -> tuple[str, dict[str, Any]]:
    """`svc.next_event(EVENTS)` by `end_s` on `clock` (virtual: 10 ms looks, 0.5 s between)."""
    while True:
        try:
            return svc.next_event(EVENTS, timeout_s=0.01 if clock.is_virtual else
                                  max(0.01, end_s - clock.now()))
        except TimeoutError:  # (events that come meanwhile queue for the next look)
            if not clock.is_virtual or clock.now() >= end_s:
                raise
            with (cond := timebase_for(clock).condition()):
                cond.wait_for(None, min(end_s - clock.now(), 0.5))


def _answer(svc: Any, pending: Any, timeout_s: float) -> Any:
    """`svc.answer(pending, timeout_s)`, `timeout_s` measured on WAIT_CLOCK."""
    if WAIT_CLOCK.is_virtual:  # not done by then: the ServiceError of a wait run out
        cond = timebase_for(WAIT_CLOCK).condition()
        pending.add_done_callback(lambda _f: cond.notify_all())  # the answer wakes the wait
        with cond:
            cond.wait_for(pending.done, timeout_s)
        timeout_s = timeout_s if pending.done() else 0.0
    return svc.answer(pending, timeout_s)


def pass_line(r: dict[str, Any]) -> str:
    """A `session.pass` as a local run prints a pass."""
    detail = f" — {r['detail']}" if r.get("detail") else ""
    return (f"  pass {r['index'] + 1} {r['zone']:<10} {r['outcome']} strokes "
            f"{r['stats']['strokes']}, impressions {r['stats']['impressions']}{detail}")


def start_session(svc: Any, method: str, **params: Any) -> dict[str, Any]:
    """`session.run` or `session.resume`. Ctrl-C before its answer does not take it back: the
    service may have opened the session meanwhile, so its answer is awaited and what it opened
    is stopped (never "the needle never ran" for a session that started)."""
    pending = None
    try:
        pending = svc.submit(method, **params)
        return svc.answer(pending)
    except KeyboardInterrupt:
        _interrupted_opening(svc, pending)


def _interrupted_opening(svc: Any, pending: Any) -> NoReturn:
    from smpdevice.cli import exit_interrupted
    from smpdevice.service.client import ServiceError

    try:
        if pending is None:  # Ctrl-C as it was being sent: it may have left
            raise ServiceError("no answer to wait for")
        sid = _answer(svc, pending, OPENING_WAIT_S)["session_id"]
    except ServiceError as exc:
        if exc.code is not None:  # refused: nothing was opened
            exit_interrupted("the session did not start: the needle never ran.")
        _interrupted(svc, None)
    except KeyboardInterrupt:  # Ctrl-C again while waiting: the run may still open
        _interrupted(svc, None)
    _interrupted(svc, sid)


def _interrupted(svc: Any, sid: str | None, url: str | None = None,
                 technician: str | None = None) -> NoReturn:
    """After Ctrl-C: stop session `sid` (None: the one a session.run on its way may open; a
    stop wins over it) and say what became of it, within STOP_WAIT_S (+ RELEASE_WAIT_S +
    CLOSE_WAIT_S) whatever the service does: a silent service never holds the terminal (review
    13, HANG). A further Ctrl-C ends the wait only. The connection is closed before the exit."""
    from smpdevice.cli import exit_interrupted
    from smpdevice.service.client import ServiceGone

    check = (command("smp", "sessions", "show", sid) if sid is not None
             else command("smp", "sessions", "list"))
    which = f"session {sid}" if sid is not None else "the session it may have opened"
    end_s = WAIT_CLOCK.now() + STOP_WAIT_S
    try:
        _answer(svc, svc.submit("session.stop"), STOP_WAIT_S)
    except (SmpError, KeyboardInterrupt) as exc:  # no answer, or the connection closed
        svc.close(CLOSE_WAIT_S)  # the service sees its driver go and stops the pen
        why = ("the connection to it closed" if isinstance(exc, ServiceGone) else
               f"it refused ({exc})" if getattr(exc, "code", None) is not None else
               f"it did not answer within {STOP_WAIT_S:g} s")
        exit_interrupted(
            f"asked the service to stop {which}, but {why}: the needle's state is unknown "
            "here. This client has let go of the pen, so the service stops the needle when "
            "its lease lapses, and the pen stops itself when its own lease runs out if the "
            f"service is gone. Check it: {check}")
    try:
        if sid is None:
            exit_interrupted(f"the service answered the stop: the needle is stopped, and so "
                             f"is {which} (its answer did not come). Check it: {check}")
        result, _passes = _follow(svc, Console(stderr=True, quiet=True), sid,
                                  max(0.01, end_s - WAIT_CLOCK.now()), WAIT_CLOCK)
    except (TimeoutError, SmpError, KeyboardInterrupt):
        exit_interrupted(f"the service stopped the needle (it answered the stop); the result "
                         f"of session {sid} did not come within {STOP_WAIT_S:g} s. Check it: "
                         f"{check}")
    finally:
        _let_go(svc)
    outcome = SessionOutcome(result["outcome"])
    if outcome is not SessionOutcome.interrupted:  # it ended before the stop: README, 130
        Console().print(result.get("aftercare") or "", markup=False)
        left_open = ""
        if result.get("left_open") and url is not None:
            from smpdevice.cli.resume import resume_command

            left_open = (" It is left open; resume it with: "
                         + resume_command(sid, ["--service", url], technician=technician) + ".")
        click.secho(f"note: Ctrl-C came too late to change session {sid}: it is recorded as "
                    f"{outcome.value} ({outcome.reason}), as the exit status says.{left_open} "
                    f"See it with: {check}", err=True)
        sys.exit(outcome.exit_code)
    exit_interrupted(f"the needle is stopped; session {sid} is recorded by the service.")


def _let_go(svc: Any) -> None:
    """Release the pen and close, each bounded: unanswered, the service's lease lets go."""
    with contextlib.suppress(Exception):
        svc.release(RELEASE_WAIT_S)
    svc.close(CLOSE_WAIT_S)


def _report(console: Console, url: str, result: dict[str, Any], passes: list[dict],
            planned: int, port: str, technician: str | None = None, *,
            simulated: bool = False) -> None:
    from smpdevice.cli.run import print_outcome
    from smpdevice.cli.run_report import late_stop_note

    if result.get("left_open"):  # resumable: say how, through the service (issue 15.5)
        from smpdevice.cli.run_report import report_through_service

        report_through_service(console, url, result, passes, planned, port, technician,
                               simulated=simulated)
    outcome = SessionOutcome(result["outcome"])
    completed = sum(1 for r in passes if r["outcome"] == "completed")
    console.print()
    if not outcome.complete:
        print_outcome(console, result["session_id"], outcome, port=port, completed=completed,
                      planned=planned, service=url)
    console.print(result.get("aftercare") or "", markup=False)
    console.print("Pass log: the service's own; see it with: "
                  + command("smp", "sessions", "show", result["session_id"]), markup=False)
    late_stop_note(result["session_id"], outcome)
    sys.exit(outcome.exit_code)


# --------------------------------------------------------------------------------- monitor


def monitor(url: str, *, refresh_hz: float, once: bool, duration_s: float | None) -> None:
    """Watch through the service as a viewer: it never holds the pen. Key e/space E-stops."""
    import threading

    from smpdevice.cli.monitor import _keys

    with _connect(url, "viewer") as svc:
        if once:
            click.echo(render_state(svc.call("pen.state"), url))
            return
        from rich.live import Live

        stop = threading.Event()
        message = [""]

        def key(k: str) -> bool:
            if k in ("e", " "):
                answer = svc.estop()
                message[0] = ("E-stop latched" if answer.get("confirmed") else
                              "E-stop NOT confirmed by the pen")
            return k != "q"

        ends_at = None if duration_s is None else time.monotonic() + duration_s
        with _keys(key, stop) as reading, Live(render_state(svc.call("pen.state"), url),
                                               refresh_per_second=refresh_hz) as live:
            if not reading:
                message[0] = "stdin is not a terminal: keys are off (Ctrl-C quits)"
            try:
                while not stop.is_set() and (ends_at is None or time.monotonic() < ends_at):
                    live.update(render_state(svc.call("pen.state"), url, message[0]))
                    time.sleep(1 / refresh_hz)
            except KeyboardInterrupt:
                pass


def render_state(s: dict[str, Any], url: str, message: str = "") -> str:
    """A plain-text view of `pen.state`: one fact per line, each number beside its unit."""
    t, sp, w = s.get("telemetry") or {}, s.get("setpoints") or {}, s.get("zone_window")
    lines = [f"state {s['state']}  driven by {s['driver'] or 'nobody'}  (service {url})"]
    if s.get("zone"):
        window = (f"  window {w['depth_min_mm']:.2f}-{w['depth_max_mm']:.2f}\u00a0mm"
                  if w else "")
        lines.append(f"zone {s['zone']}{window}")
    if sp:
        lines.append(f"set   depth {sp['depth_mm']:.2f}\u00a0mm  speed {sp['speed_hz']:g}\u00a0Hz"
                     f"  duty {sp['duty_pct']:g}\u00a0%")
    if t:
        depth = t.get("depth_mm")
        shown = "uncalibrated" if depth is None else f"{depth:.2f}\u00a0mm"
        lines.append(f"meas  depth {shown}  speed {t.get('speed_hz', 0):.1f}\u00a0Hz  "
                     f"needle {'RUNNING' if t.get('needle_running') else 'stopped'}")
    session = s.get("session")
    if session:
        lines.append(f"session {session['session_id']}: "
                     + ("running" if session.get("running") else session.get("outcome", "")))
    if s.get("last_fault"):
        lines.append(f"LATCHED: {s['last_fault']}  (clear: smp clear --service {url})")
    if message:
        lines.append(message)
    return "\n".join(lines) + "\n"
