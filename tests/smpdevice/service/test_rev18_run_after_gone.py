"""A session.run or session.resume whose driving client has lost the drive before the session
opens opens nothing (docs/service.md: a closed connection takes back its requests in flight;
requests that move the pen "check again, at their turn, that their caller still drives
(-32004 if not)"). Seen live: a client that sent pen.drive, session.run and closed at once got
a session opened (left open, 0 passes) 10 ms after "client gone" was logged.

Each test holds the request between its first lease check and the session's opening (the
session thread slow to be scheduled, a slow pass log) and lets it go on once the drive was lost:
its connection closed, or the drive released and claimed again (a claim after a loss is not
the claim the request was sent under)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from smpdevice.passlog import PassLog
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from smpdevice.service.rpc import NOT_DRIVING

from .conftest import WAIT_S, connect, run, service_with_held_leases, wait_until
from .test_service_resume import clear_jam, faulted_session, log_path
from .test_service_work import CLEAR, PROFILE


@pytest.fixture
def sim(vsim):
    return vsim


@contextlib.contextmanager
def held_launch(work: Any) -> Iterator[tuple[threading.Event, threading.Event, threading.Event]]:
    """work.launch held at its start (its request's first lease check passed, nothing opened)
    until `go` is set; `done` once it returned or raised."""
    held, go, done = threading.Event(), threading.Event(), threading.Event()
    launch = work.launch

    def slow_launch(*args: Any, **kwargs: Any) -> Any:
        held.set()
        go.wait(WAIT_S)
        try:
            return launch(*args, **kwargs)
        finally:
            done.set()

    work.launch = slow_launch
    try:
        yield held, go, done
    finally:
        go.set()
        work.launch = launch


async def _gone_driver(service: Any, request: dict[str, Any], held: threading.Event,
                       go: threading.Event, done: threading.Event) -> None:
    """A driver sends `request` and closes once it is in hand; it goes on once the loss was
    acted on."""
    work, lease = service.server.service.work, service.server.service.lease
    async with websockets.connect(service.url) as ws:
        for ident, method, params in ((0, "rpc.hello", {"token": service.token(Role.OPERATOR)}),
                                      (1, "pen.drive", {"lease_ms": 1000})):
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": ident, "method": method,
                                      "params": params}))
            while json.loads(await ws.recv()).get("id") != ident:
                pass
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, **request}))
        await wait_until(held.is_set, what="the request in hand")
    await wait_until(lambda: lease.holder() is None and lease.unacted == 0,
                     what="the driver's loss acted on")
    go.set()
    await wait_until(done.is_set, what="the request's end")
    await wait_until(lambda: not (work.status() or {}).get("running"),
                     what="its session's end, if one was opened")


def test_a_session_run_of_a_driver_gone_before_it_opened_opens_nothing(sim, data_dir):
    with service_with_held_leases(sim, data_dir) as service, \
            held_launch(service.server.service.work) as (held, go, done):
        async def main() -> list[dict[str, Any]]:
            await _gone_driver(service, {"method": "session.run", "params": {
                "profile": PROFILE, "screening": CLEAR, "technician": "t",
                "leave_open": True}}, held, go, done)
            viewer = await connect(service, Role.VIEWER)
            sessions = (await viewer.call("sessions.list"))["sessions"]
            await viewer.close()
            return sessions

        sessions = run(main())
    assert sessions == [], f"a session was opened for a driver already gone: {sessions}"


def test_a_session_resume_of_a_driver_gone_before_it_opened_resumes_nothing(sim, data_dir):
    with service_with_held_leases(sim, data_dir) as service:
        async def left_open() -> str:
            viewer = await connect(service, Role.VIEWER)
            op = await connect(service, Role.OPERATOR)
            sid = (await faulted_session(service, sim, op, viewer))["session_id"]
            await clear_jam(service, sim)
            await op.close()
            await viewer.close()
            return sid

        sid = run(left_open())
        with PassLog.open(log_path(service)) as passlog:
            played = len(passlog.session(sid).passes)
        with held_launch(service.server.service.work) as (held, go, done):
            run(_gone_driver(service, {"method": "session.resume", "params": {
                "session_id": sid, "technician": "bo"}}, held, go, done))
        with PassLog.open(log_path(service)) as passlog:
            assert passlog.resumptions(sid) == [], "resumed for a driver already gone"
            assert len(passlog.session(sid).passes) == played
            assert passlog.session(sid).closed_at is None


def test_a_session_run_sent_before_the_drive_was_released_and_claimed_again_is_refused(
        sim, data_dir):
    with service_with_held_leases(sim, data_dir) as service, \
            held_launch(service.server.service.work) as (held, go, _done):
        async def main() -> tuple[ServiceError, list[dict[str, Any]]]:
            op = await connect(service, Role.OPERATOR)
            await op.drive(lease_ms=1000)
            run_call = asyncio.ensure_future(op.call(
                "session.run", profile=PROFILE, screening=CLEAR, technician="t"))
            await wait_until(held.is_set, what="session.run in hand")
            await op.release()
            await op.drive(lease_ms=1000)  # the same connection drives again: a new claim
            go.set()
            with pytest.raises(ServiceError) as refused:
                await run_call
            sessions = (await op.call("sessions.list"))["sessions"]
            await op.release()
            await op.close()
            return refused.value, sessions

        refused, sessions = run(main())
    assert refused.code == NOT_DRIVING, refused
    assert "pen.drive" in str(refused), refused
    assert sessions == [], sessions
