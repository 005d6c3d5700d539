"""Ctrl-C on `smp run --service` when the service does not answer (review 13, HANG): the run
still exits 130 within its own bound, says the needle's state is unknown and that the leases
stop it, and prints no asyncio "Task was destroyed" traceback.

- the service frozen (SIGSTOP on a real `smp serve`) across the Ctrl-C: session.stop is never
  answered. It waited 60 s (+5) for it, then 65 s for pen.release, and said "its result was not
  confirmed" with a traceback of tasks destroyed pending; a websocket keepalive that happened
  to close the connection first was what ended it.
- the service answers session.stop but the session's result does not come (the session's
  close held by the test): the run waited for session.result 24 h.
- the wait for an event cut short by Ctrl-C left its `next_event` running in the client's
  loop: it took the next event (the session.result) from the wait that followed, which then
  never saw it.

And (review 13, REVHANG): SIGTERM on a resume through the service is taken as Ctrl-C (it
killed the client), and a Ctrl-C after the last pass exits by the recorded outcome (0 for
`completed`, with the sheet and a `note:` line; it exited 130).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators import PenSimulator
from simulators.clock import VirtualClock
from smpdevice.cli import remote
from smpdevice.cli.interrupt import CTRL_C
from smpdevice.cli.remote import STOP_WAIT_S
from smpdevice.outcomes import ExitCode
from smpdevice.service.client import SyncServiceClient
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.cli.test_cli_service import (  # noqa: F401  (env: a fixture)
    SERVED_PEN,
    WAIT_S,
    Proc,
    env,
    save_calibration,
    smp_here,
)
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import TimeDriver, after

RUN = ("run", "examples/session1_base_density.yaml", "-t", "ana", "--screening",
       "examples/screening_clear.yaml")

NOISE = ("Traceback", "destroyed but it is pending", "Event loop is closed")


def _eventually(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextlib.contextmanager
def _waits_on_virtual_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[TimeDriver]:
    """The waits `smp run --service` makes after Ctrl-C (remote.py: OPENING_WAIT_S,
    STOP_WAIT_S) measured on a virtual clock with its driver: the 30 s bound passes in a blink
    of wall time, with the same figures. The service's own answers come on the wall.
    A run still waiting 5 s past its bound gets a fresh Ctrl-C (one that raises), so that a
    run that overstays fails on the clock's reading instead of hanging this process."""
    clock = VirtualClock()
    monkeypatch.setattr(remote, "WAIT_CLOCK", clock)

    def overstayed() -> None:
        CTRL_C.requested = False
        os.kill(os.getpid(), signal.SIGINT)

    after(clock, STOP_WAIT_S + 5, overstayed)
    with TimeDriver(clock, step_s=0.05) as driver:
        yield driver


class _Watched:
    """The run's console, telling `seen` once the run prints pass 1 running."""

    def __init__(self, console: Any, seen: threading.Event) -> None:
        self._console, self._seen = console, seen

    def print(self, *args: Any, **kwargs: Any) -> None:
        if args and str(args[0]).startswith("  pass 1/") and "running" in str(args[0]):
            self._seen.set()
        self._console.print(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._console, name)


def _run_here(url: str, env: dict[str, str], at_pass_1: Callable[[], None],  # noqa: F811
              monkeypatch: pytest.MonkeyPatch) -> subprocess.CompletedProcess:
    """`smp run ... --service URL` in this process (so remote.WAIT_CLOCK is the test's), with
    a real SIGINT to this process once the run has printed pass 1 running and `at_pass_1()`
    has run (as `run.wait_for("pass 1/4 top running")` then SIGINT on a process)."""
    pressed, running, ended = threading.Event(), threading.Event(), threading.Event()
    follow = remote.follow

    def follow_watched(svc: Any, console: Any, *rest: Any) -> Any:
        return follow(svc, _Watched(console, running), *rest)

    monkeypatch.setattr(remote, "follow", follow_watched)
    failed: list[BaseException] = []

    def press() -> None:
        try:
            assert running.wait(WAIT_S) and not ended.is_set(), "no pass 1 running printed"
            at_pass_1()
        except BaseException as exc:  # said by the assertion below
            failed.append(exc)
            return
        pressed.set()
        os.kill(os.getpid(), signal.SIGINT)

    # a press landing after the run ended finds this handler, not pytest's
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    presser = threading.Thread(target=press, daemon=True)
    presser.start()
    try:
        done = smp_here(*RUN, "--service", url, env=env)
    finally:
        ended.set()
        running.set()  # the presser ends (pressing nothing, if the run never got there)
        presser.join(WAIT_S)
        signal.signal(signal.SIGINT, previous)
        CTRL_C.requested = False  # process-wide: a later in-process command must not see it
    assert pressed.is_set(), (failed, done.stdout, done.stderr)
    return done


def _session_id(out: str) -> str:
    line = next(x for x in out.splitlines() if x.startswith("Session S"))
    return line.split()[1].rstrip(":")


@pytest.mark.realtime  # a pass playing on the wall clock, the run in another process than its pen's
def test_ctrl_c_with_the_service_frozen_exits_130_saying_the_needle_state_is_unknown(
        env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    save_calibration(env)
    serve = Proc("serve", *SERVED_PEN, "--listen", "127.0.0.1:0", "--no-socket", env=env)
    frozen = False

    def freeze() -> None:
        nonlocal frozen
        serve.popen.send_signal(signal.SIGSTOP)  # silent from here until the run has exited
        frozen = True

    try:
        url = serve.wait_for("JSON-RPC:").split()[-1]
        with _waits_on_virtual_time(monkeypatch) as driver:
            done = _run_here(url, env, freeze, monkeypatch)
        serve.popen.send_signal(signal.SIGCONT)
        frozen = False
        rc, out, err = done.returncode, done.stdout, done.stderr
        assert rc == ExitCode.INTERRUPTED, (out, err)
        sid = _session_id(out)
        line = err.strip().splitlines()[-1]
        assert line.startswith(f"interrupted: asked the service to stop session {sid}"), err
        assert "the needle's state is unknown here" in line, err
        assert "lease" in line and f"smp sessions show {sid}" in line, err
        assert "Traceback" not in err and "destroyed" not in err, err
        # within its own bound (the old run's 65 s + 65 s did not fit), measured on its clock
        assert STOP_WAIT_S <= driver.clock.now() < STOP_WAIT_S + 1, driver.clock.now()
        # Back, the service finds its driver gone (and the stop asked): the needle stops.
        _eventually(lambda: "needle stopped" in smp_here("monitor", "--service", url,
                                                          "--once", env=env).stdout,
                    "the served pen's needle stopped")
    finally:
        if frozen:
            serve.popen.send_signal(signal.SIGCONT)
        serve.popen.terminate()
        serve.popen.wait(WAIT_S)


def test_ctrl_c_when_the_result_never_comes_exits_130_saying_the_stop_was_answered(
        env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Virtual time stands still until the run has the stop's answer (however long the wall
    takes to bring it: test 1 is the one about an unanswered stop), then STOP_WAIT_S of it
    passes waiting for the result the test holds."""
    follow = remote._follow
    answered = threading.Event()

    with _close_held(env) as (_sim, url, _viewer, work, release), \
            _waits_on_virtual_time(monkeypatch) as driver:
        def follow_after_the_stop(*args: Any) -> Any:
            if len(args) > 4 and args[4] is driver.clock and not answered.is_set():
                answered.set()
                driver.timebase.count(pending=-1)  # the hold below ends: time goes on
            return follow(*args)

        monkeypatch.setattr(remote, "_follow", follow_after_the_stop)
        driver.timebase.count(pending=1)  # held until the stop is answered
        try:
            done = _run_here(url, env, lambda: None, monkeypatch)
        finally:
            if not answered.is_set():
                driver.timebase.count(pending=-1)
            release.set()
        _eventually(lambda: not work.busy(), "the session to end")
        status = work.status() or {}
    rc, out, err = done.returncode, done.stdout, done.stderr
    assert rc == ExitCode.INTERRUPTED, (out, err)
    sid = _session_id(out)
    # the one `interrupted:` line (the in-process service logs to this stderr too)
    [line] = [x for x in err.splitlines() if x.startswith("interrupted:")]
    assert f"the service stopped the needle (it answered the stop); the result of session " \
           f"{sid} did not come within 30 s" in line, err
    assert f"smp sessions show {sid}" in line and "Traceback" not in err, err
    assert STOP_WAIT_S <= driver.clock.now() < STOP_WAIT_S + 1, driver.clock.now()
    assert status.get("outcome") == "interrupted", status  # stopped as asked, and closed


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_a_wait_for_an_event_cut_short_leaves_the_next_event_to_the_next_wait(
        env: dict[str, str]) -> None:  # noqa: F811
    with PenSimulator(seed=0, clock=VirtualClock(host_driven=True)) as sim, ServiceHandle(
            ServiceOptions(port=sim.url, listen="127.0.0.1:0",
                           data_dir=Path(env["SMP_DATA_DIR"]),
                           calibration=true_calibration(sim))) as handle, \
            SyncServiceClient.connect(handle.url, role="viewer",
                                      data_dir=Path(env["SMP_DATA_DIR"])) as svc:
        def ctrl_c(*_: Any) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGALRM, ctrl_c)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(KeyboardInterrupt):
                svc.next_event({"pen.state"}, timeout_s=WAIT_S)  # cut short, as by Ctrl-C
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert svc.estop()["confirmed"]  # a pen.state (-> estop) after the cut-short wait
        method, p = svc.next_event({"pen.state"}, timeout_s=WAIT_S)  # a hang guard
        assert (method, p["new"]) == ("pen.state", "estop"), p



def test_an_event_taken_just_before_the_ctrl_c_is_the_next_waits(
        env: dict[str, str]) -> None:  # noqa: F811
    """Ctrl-C landing after the wait had taken its event, before it returned (review 13,
    REVHANG F3): the event was lost with the cut-short wait."""
    with PenSimulator(seed=0, clock=VirtualClock(host_driven=True)) as sim, ServiceHandle(
            ServiceOptions(port=sim.url, listen="127.0.0.1:0",
                           data_dir=Path(env["SMP_DATA_DIR"]),
                           calibration=true_calibration(sim))) as handle, \
            SyncServiceClient.connect(handle.url, role="viewer",
                                      data_dir=Path(env["SMP_DATA_DIR"])) as svc, \
            SyncServiceClient.connect(handle.url, role="viewer",
                                      data_dir=Path(env["SMP_DATA_DIR"])) as other:
        def ctrl_c_once_taken(_signum: int, frame: Any) -> None:
            while frame is not None and "future" not in frame.f_locals:
                frame = frame.f_back
            if frame is not None and frame.f_locals["future"].done():
                signal.setitimer(signal.ITIMER_REAL, 0)
                raise KeyboardInterrupt  # the key pressed just after the event came

        previous = signal.signal(signal.SIGALRM, ctrl_c_once_taken)
        estop = threading.Timer(0.2, other.estop)  # a pen.state (-> estop) for the wait
        try:
            estop.start()
            signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
            with pytest.raises(KeyboardInterrupt):
                svc.next_event({"pen.state"}, timeout_s=WAIT_S)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            estop.join()
        method, p = svc.next_event({"pen.state"}, timeout_s=WAIT_S)  # a hang guard
        assert (method, p["new"]) == ("pen.state", "estop"), p


def _left_open(url: str, env: dict[str, str]) -> bool:  # noqa: F811
    shown = smp_here("monitor", "--service", url, "--once", env=env).stdout
    return "driven by nobody" in shown and "running" not in shown.split("session", 1)[-1]


@pytest.mark.realtime  # a pass playing on the wall clock, the run in another process than its pen's
def test_sigterm_and_ctrl_c_on_a_resume_through_the_service_exit_130(
        env: dict[str, str]) -> None:  # noqa: F811
    """README row 130: SIGTERM/SIGHUP during a session are taken as Ctrl-C (stop, record,
    exit 130). `smp run --resume SID --service URL` takes them the same way?"""
    save_calibration(env)
    serve = Proc("serve", *SERVED_PEN, "--listen", "127.0.0.1:0", "--no-socket", env=env)
    try:
        url = serve.wait_for("JSON-RPC:").split()[-1]
        first = Proc(*RUN, "--service", url, env=env)
        sid = first.wait_for("Session S").split()[1].rstrip(":")
        first.wait_for("pass 1/4 top running")
        first.popen.kill()  # the driver gone: the session is left open
        first.popen.wait(WAIT_S)
        _eventually(lambda: _left_open(url, env), "the session left open")
        resumed = Proc("run", "--resume", sid, "--service", url, "-t", "ana", env=env)
        resumed.wait_for("running")
        t0 = time.monotonic()
        resumed.popen.send_signal(signal.SIGTERM)
        rc_term, out_term, err_term = resumed.finish()
        took_term_s = time.monotonic() - t0
        if rc_term != ExitCode.INTERRUPTED:  # killed: the session is left open again
            _eventually(lambda: _left_open(url, env), "the session left open again")
            again = Proc("run", "--resume", sid, "--service", url, "-t", "ana", env=env)
            again.wait_for("running")
            again.popen.send_signal(signal.SIGINT)
            rc_int, out_int, err_int = again.finish()
            assert rc_int == ExitCode.INTERRUPTED, (out_int, err_int)
            assert f"interrupted: the needle is stopped; session {sid} is recorded" in err_int
            assert not any(n in err_int for n in NOISE), err_int
    finally:
        serve.popen.terminate()
        serve.popen.wait(WAIT_S)
    assert rc_term == ExitCode.INTERRUPTED, (rc_term, out_term, err_term, took_term_s)
    assert f"interrupted: the needle is stopped; session {sid} is recorded" in err_term



@contextlib.contextmanager
def _close_held(env: dict[str, str], virtual: bool = False  # noqa: F811
                ) -> Iterator[tuple[Any, str, Any, Any, threading.Event]]:
    """A service on a real-time pen whose session close waits for `release` (the session
    ended, its result not sent yet), with a viewer: (sim, url, viewer, work, release).
    `virtual`: the pen on a clock the service's controller drives (docs/simulator.md), for a
    test that waits for the session to end rather than acting while it plays."""
    clock = VirtualClock(host_driven=True) if virtual else None
    with PenSimulator(seed=0, clock=clock) as sim, ServiceHandle(ServiceOptions(
            port=sim.url, listen="127.0.0.1:0", data_dir=Path(env["SMP_DATA_DIR"]),
            calibration=true_calibration(sim))) as handle, \
            SyncServiceClient.connect(handle.url, role="viewer",
                                      data_dir=Path(env["SMP_DATA_DIR"])) as viewer:
        work = handle.server.service.work
        finish, release = work._finish, threading.Event()

        def held_finish(*args: Any) -> Any:
            release.wait(WAIT_S)
            return finish(*args)

        work._finish = held_finish  # type: ignore[method-assign]
        try:
            yield sim, handle.url, viewer, work, release
        finally:
            release.set()


def _ended(run: Proc, work: Any) -> tuple[int, str, str, dict[str, Any]]:
    """The run's exit status and output, once the service's session has ended, and its
    status there."""
    rc, out, err = run.finish()
    _eventually(lambda: not work.busy(), "the session to end")
    return rc, out, err, work.status() or {}

def test_ctrl_c_after_the_last_pass_exits_by_the_recorded_outcome(
        env: dict[str, str]) -> None:  # noqa: F811
    """README, exit 130: "a Ctrl-C that comes after the session ended, e.g. after its last
    pass, changes nothing: the status is the recorded outcome's, 0 for `completed`, with a
    `note:` line". Through the service the run gets the session.result after its stop: does
    it exit by it? The pen plays its four passes on virtual time: the Ctrl-C comes once they
    have ended (session.pass), whenever that is on the wall clock (11 s of it on real time)."""
    with _close_held(env, virtual=True) as (_sim, url, viewer, work, release):
        run = Proc(*RUN, "--service", url, env=env)
        try:
            passes = [viewer.next_notification("session.pass", timeout_s=WAIT_S)
                      for _ in range(4)]
            assert all(p["outcome"] == "completed" for p in passes), passes
            run.wait_for("  pass 4 ")  # its own line of the last pass: it waits for the next
            run.popen.send_signal(signal.SIGINT)  # after the last pass
            # the run's session.stop reaches the service before the close goes on
            _eventually(lambda: work._stop_asked.is_set(), "the stop asked")
        finally:
            release.set()
        rc, out, err, status = _ended(run, work)
    assert status.get("outcome") == "completed", status
    assert rc == ExitCode.OK, (rc, out, err)
    assert "note: Ctrl-C came too late to change session" in err, err
    assert "Keep the treated area dry" in out, out  # the aftercare sheet is printed


@pytest.mark.realtime  # a pass playing on the wall clock, the run in another process than its pen's
def test_ctrl_c_after_a_fault_ended_the_session_exits_by_the_fault(
        env: dict[str, str]) -> None:  # noqa: F811
    """The same promise for a session a latched fault ended (README: exit 4): the Ctrl-C
    after it changes nothing (it exited 130, "interrupted"). The stop reached the service
    before the session's close, so the session is closed, not left open (service.md)."""
    from simulators.faults import DeviceFault

    with _close_held(env) as (sim, url, viewer, work, release):
        run = Proc(*RUN, "--service", url, env=env)
        try:
            viewer.next_notification("session.progress", timeout_s=WAIT_S)
            sim.inject(DeviceFault.JAM)  # the first pass ends on a latched jam
            ended = viewer.next_notification("session.pass", timeout_s=WAIT_S)
            assert ended["outcome"] == "fault", ended
            # Its own line of it: the Ctrl-C lands as the run starts its next wait, where a
            # wait left running on the client's loop took the session.result (review 18: lost
            # 1 run in 15 beside a busy suite; `SyncServiceClient.next_event` keeps it now)
            run.wait_for(" fault strokes")
            run.popen.send_signal(signal.SIGINT)  # after the session ended
            _eventually(lambda: work._stop_asked.is_set(), "the stop asked")
        finally:
            release.set()
        rc, out, err, status = _ended(run, work)
    assert status.get("outcome") == "fault", status
    assert rc == ExitCode.FAULT, (rc, out, err)
    assert "note: Ctrl-C came too late to change session" in err, err
    assert "recorded as fault" in err and "interrupted" not in err, err
