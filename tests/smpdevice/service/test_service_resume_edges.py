"""Edges of `session.resume` / `session.close` through a real service (review 6): an id prefix
across the service's two logs, a driving client or the service gone mid-session, busy and
closing refusals, and the shape of the answer. A real simulated pen, real sockets, real SQLite.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpdevice.control import State
from smpdevice.errors import SmpError
from smpdevice.passlog import PassLog
from smpdevice.paths import pen_log_name
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from smpdevice.sessions.resume import ResumeError

from .conftest import WAIT_S, InNeedleRun, connect, run, while_held
from .test_service_resume import (
    CLEAR,
    PASS_S,
    PROFILE,
    clear_jam,
    faulted_session,
    foreign_session,
    log_path,
    refusal,
)


@pytest.fixture
def sim(vsim):
    """The pen on virtual time: sessions play as fast as the computer computes them; what a
    test does mid-pass it does while the pen's time stands still (InNeedleRun(hold=True))."""
    return vsim


def test_a_prefix_of_sessions_in_both_logs_is_refused_naming_them(service, sim):
    """The station's log and this pen's own log each hold a session the prefix matches: both
    calls are refused naming both ids, and nothing is closed (never the first match taken)."""
    pen_log = log_path(service).with_name(pen_log_name(service.pen.serial))

    async def main() -> tuple[str, str, list[tuple]]:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        a = (await faulted_session(service, sim, op, viewer))["session_id"]  # station log
        b = foreign_session(pen_log, pen_serial=service.pen.serial)  # the pen's own log
        await clear_jam(service, sim)
        prefix = os.path.commonprefix([a, b])  # noqa: RUF071 (character-wise is meant)
        refused = []
        for name, params in (("session.close", {}), ("session.resume", {"technician": "ana"})):
            with pytest.raises(ServiceError) as e:
                await op.call(name, session_id=prefix, **params)
            refused.append(refusal(e))
        closed = await op.call("session.close", session_id=a)  # the full id: that one only
        await op.close()
        await viewer.close()
        return a, b, [*refused, closed["session_id"]]

    a, b, (close_refused, resume_refused, closed) = run(main())
    for _code, kind, message in (close_refused, resume_refused):
        assert kind == "ResumeError" and a in message and b in message, message
        assert "matches 2 sessions" in message and "nothing was changed" in message
    assert closed == a
    with PassLog(pen_log, readonly=True) as log:
        assert log.session(b).closed_at is None  # the other log's session untouched


def test_find_session_log_needs_one_session_across_every_log(tmp_path):
    from smpdevice.sessions.resume import find_session_log

    station, own = tmp_path / "passlog.sqlite", tmp_path / "own.sqlite"
    a = foreign_session(station, pen_serial="SMP-A")
    b = foreign_session(own, pen_serial="SMP-A")
    paths = [station, own, tmp_path / "missing.sqlite"]
    assert find_session_log(paths, a, where="w") == station
    assert find_session_log(paths, b, where="w") == own
    prefix = os.path.commonprefix([a, b])  # noqa: RUF071 (character-wise is meant)
    with pytest.raises(ResumeError, match=f"matches 2 sessions.*{a}.*{b}"):
        find_session_log(paths, prefix, where="w")
    for blank in ("", "   "):
        with pytest.raises(ResumeError, match="not a session id"):
            find_session_log(paths, blank, where="w")
    with pytest.raises(ResumeError, match="no session 'Snope' in w: check the id"):
        find_session_log(paths, "Snope", where="w")
    copy = tmp_path / "copy.sqlite"  # one log in two files: read once, the copy named
    copy.write_bytes(station.read_bytes())
    said: list[str] = []
    assert find_session_log([station, copy], a, where="w", warn=said.append) == station
    assert len(said) == 1 and "read once" in said[0] and str(copy) in said[0]
    foreign_session(station, pen_serial="SMP-A")  # each written after the copy: both read,
    foreign_session(copy, pen_serial="SMP-A")  # the session in both: which is meant is unknown
    with pytest.raises(ResumeError, match=f"session {a} is in several pass logs"):
        find_session_log([station, copy], a, where="w")


# The driving clients' own lease: none of these tests is about it lapsing (a client that goes
# closes its connection), and at 1000 ms a test process starved on loaded cores lost the pen.
DRIVE_LEASE_MS = 5000


async def _session_under_way(service, sim, op, lease_ms: int = DRIVE_LEASE_MS) -> InNeedleRun:
    """A session in its pass 1, the pen's time held at its first impression: release it once
    the service has taken what the test does (`while_held`)."""
    mid_pass = InNeedleRun(sim, 1, hold=True)
    await op.drive(lease_ms=lease_ms)
    await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana",
                  quick_pass_s=PASS_S, leave_open=True)
    await mid_pass.reached("pass 1 under way")
    return mid_pass


def test_a_driving_client_gone_mid_session_leaves_it_open_and_resumable(service, sim):
    """As a host crash at the pen's port: the needle is stopped (dead-man), the session stays
    open, and a new driving client resumes what is left."""
    async def main() -> tuple[dict, State, dict, dict]:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        mid_pass = await _session_under_way(service, sim, op)
        lease = service.server.service.lease
        await while_held(mid_pass, op.close(), lambda: lease.holder() is None)  # gone without
        # asking anything to stop
        result = await viewer.next_notification("session.result", timeout_s=WAIT_S)
        state = service.pen.state
        again = await connect(service, Role.OPERATOR)
        await again.drive(lease_ms=DRIVE_LEASE_MS)
        started = await again.call("session.resume", session_id=result["session_id"],
                                   technician="ana")
        final = await viewer.next_notification("session.result", timeout_s=WAIT_S)
        await again.close()
        await viewer.close()
        return result, state, started, final

    result, state, started, final = run(main())
    assert result["left_open"] is True and result["aftercare"] == "", result["outcome"]
    assert state in (State.IDLE, State.ARMED)  # the needle was stopped
    assert started["session_id"] == result["session_id"] and 1 in started["passes_left"]
    assert final["outcome"] == "completed" and final["left_open"] is False
    with PassLog(log_path(service), readonly=True) as log:
        (session,) = log.sessions()
        assert session.closed_at is not None and log.verify() is None


def test_stopping_smp_serve_mid_session_leaves_it_open(sim, data_dir):
    from smpdevice.service.runner import ServiceHandle, ServiceOptions
    from tests.smpdevice.conftest import true_calibration

    handle = ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                                          lease_ms=1000, calibration=true_calibration(sim)))
    with handle:
        path = log_path(handle)

        async def main() -> None:
            viewer = await connect(handle, Role.VIEWER)
            op = await connect(handle, Role.OPERATOR)
            mid_pass = await _session_under_way(handle, sim, op, lease_ms=1000)  # as before:
            # the session must not have played to its end by the time the service stops
            # `smp serve` stops now, its clients still connected and answering its goodbye (once
            # their loop had ended, the stop waited out websockets' 10 s close timeout).
            work = handle.server.service.work
            await while_held(mid_pass, asyncio.to_thread(handle.stop),
                             lambda: work._stop.is_set(), "the service to stop its session")
            await op.close()
            await viewer.close()

        run(main())
    # `smp serve` stopped while the session ran
    assert sim.firmware.state.name != "RUNNING"  # the session stopped its needle
    with PassLog(path, readonly=True) as log:
        (session,) = log.sessions()
        assert session.closed_at is None and len(log.passes(session.session_id)) >= 2


def test_a_session_stop_still_closes_it(service, sim):
    async def main() -> dict:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        mid_pass = await _session_under_way(service, sim, op)
        work = service.server.service.work
        stops = work.stops_asked
        await while_held(mid_pass, op.call("session.stop"), lambda: work.stops_asked > stops)
        await op.close()  # and then the client goes: the stop asked for decides
        result = await viewer.next_notification("session.result", timeout_s=WAIT_S)
        await viewer.close()
        return result

    result = run(main())
    assert result["outcome"] == "interrupted" and result["left_open"] is False


def test_close_or_resume_while_a_session_runs_is_session_busy(service, sim):
    async def main() -> list[tuple]:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        left_open = (await faulted_session(service, sim, op, viewer))["session_id"]
        await clear_jam(service, sim)
        mid_pass = InNeedleRun(sim, 0, hold=True)  # the pen's time stands still mid-pass
        await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana",
                      quick_pass_s=PASS_S, leave_open=True)  # another session now runs
        await mid_pass.reached("the other session under way")
        work = service.server.service.work
        busy = []
        try:
            for name, params in (("session.close", {}), ("session.resume", {"technician": "a"})):
                with pytest.raises(ServiceError) as e:
                    await op.call(name, session_id=left_open, **params)
                busy.append(refusal(e))
            assert work.busy(), "the other session still runs"
        finally:
            stops = work.stops_asked
            await while_held(mid_pass, op.call("session.stop"), lambda: work.stops_asked > stops)
            await viewer.next_notification("session.result", timeout_s=WAIT_S)
            await op.close()
            await viewer.close()
        return busy

    for code, kind, message in run(main()):
        assert code == -32000 and kind == "SessionBusy", message
        assert "wait for its session.result" in message


def test_close_as_soon_as_the_result_is_read(service, sim, monkeypatch):
    """session.result is said once the log is free; the session thread may still be leaving
    (a loaded PC deschedules it: widened here by a pause after the broadcast, until the
    session.close has come and waits for it). session.close waits for it, as session.resume
    does, instead of refusing."""
    svc = service.server.service
    original, original_join = svc.broadcast_threadsafe, svc.work._join_finished
    result_out, close_came = threading.Event(), threading.Event()

    def descheduled_after_result(method_name, params):
        leaving = method_name == "session.result" and \
            threading.current_thread().name == "smp-service-session"
        if leaving:
            result_out.set()  # before a client can read it
        original(method_name, params)
        if leaving:
            assert close_came.wait(WAIT_S), "no session.close came"
            time.sleep(0.1)  # still leaving while the close waits; nothing waits on this time

    def join_finished():  # the close is here, after the result: it waits for a leaving thread
        if result_out.is_set():
            close_came.set()
        original_join()

    monkeypatch.setattr(svc, "broadcast_threadsafe", descheduled_after_result)
    monkeypatch.setattr(svc.work, "_join_finished", join_finished)

    async def main() -> dict:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        result = await faulted_session(service, sim, op, viewer)
        try:
            return await op.call("session.close", session_id=result["session_id"])
        finally:
            await op.close()
            await viewer.close()

    assert run(main())["outcome"] == "fault"


def test_a_slow_opening_is_refused_whole_never_a_partial_answer(service, sim, monkeypatch):
    """session.resume answers {session_id, planned_passes, passes_left}, or a refusal: when
    the session is not open within the service's wait, SessionBusy (the session then plays
    nothing and stays open), never an answer without its passes."""
    import smpdevice.service.work as work
    import smpdevice.sessions.session as session_mod

    gate = threading.Event()
    real_preflight, real_wait_s = session_mod.preflight, work.OPEN_WAIT_S

    def slow_preflight(*args, **kwargs):  # the pen or the log slow to answer
        gate.wait(WAIT_S)
        return real_preflight(*args, **kwargs)

    async def main() -> tuple[tuple, dict, dict, dict]:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        sid = (await faulted_session(service, sim, op, viewer))["session_id"]
        await clear_jam(service, sim)
        monkeypatch.setattr(work, "OPEN_WAIT_S", 0.05)
        monkeypatch.setattr(session_mod, "preflight", slow_preflight)
        with pytest.raises(ServiceError) as slow:
            await op.call("session.resume", session_id=sid, technician="ana")
        gate.set()
        abandoned = await viewer.next_notification("session.result", timeout_s=WAIT_S)
        monkeypatch.setattr(work, "OPEN_WAIT_S", real_wait_s)  # (not undo(): data_dir's too)
        monkeypatch.setattr(session_mod, "preflight", real_preflight)
        started = await op.call("session.resume", session_id=sid, technician="ana")
        final = await viewer.next_notification("session.result", timeout_s=WAIT_S)
        await op.close()
        await viewer.close()
        return refusal(slow), abandoned, started, final

    (_code, kind, message), abandoned, started, final = run(main())
    assert kind == "SessionBusy" and "plays nothing" in message
    assert abandoned["left_open"] is True
    assert set(started) == {"session_id", "planned_passes", "passes_left", "notes"}
    assert final["outcome"] == "completed"


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.text(max_size=5),
                 st.dictionaries(st.sampled_from(["session_id", "passes_left", "planned_passes",
                                                  "x"]),
                                 st.one_of(st.none(), st.integers(), st.text(max_size=5),
                                           st.lists(st.integers(), max_size=3),
                                           st.lists(st.text(max_size=2), max_size=3)))))
def test_the_cli_reads_any_resume_answer_without_a_traceback(answer):
    from smpdevice.cli.resume import started_answer

    try:
        sid, left, planned = started_answer(answer)
    except SmpError as exc:
        assert "not understood" in str(exc)
    else:
        assert isinstance(sid, str) and isinstance(planned, int)
        assert all(isinstance(i, int) for i in left)

