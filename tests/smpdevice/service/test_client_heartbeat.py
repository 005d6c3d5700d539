"""The Python client keeps its driver lease with heartbeats: one answer that comes later than
the client waits for it (a busy service, a slow clinic PC) must not end the heartbeats for
good. Only a refusal (no longer the driver), a closed connection or `stop_heartbeats()` ends
them, and `stop_heartbeats()` always does (Python 3.11's `asyncio.wait_for` can swallow it)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from smpdevice.service.auth import Role
from smpdevice.service.client import SyncServiceClient
from smpdevice.service.pen_service import HANDLERS
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration

from .conftest import PEN_LEASE_MS, WAIT_S, connect, run

LATE_S = 1.5  # later than the client's 1 s wait for a heartbeat's answer (lease 1000 ms)


@pytest.fixture
def service(sim, data_dir) -> Iterator[ServiceHandle]:
    """The clients' lease clock stands still: the test is about the client's heartbeats, not
    the dead-man (which a descheduled test process could otherwise trip)."""
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim),
                             lease_clock=lambda: 0.0)
    with ServiceHandle(options) as handle:
        yield handle


def test_one_late_heartbeat_answer_does_not_stop_the_heartbeats(service, monkeypatch):
    beats: list[int] = []
    fourth = threading.Event()
    original = HANDLERS["pen.heartbeat"]

    async def late_once(svc, client, params):
        answer = await original(svc, client, params)
        beats.append(1)
        if len(beats) >= 4:
            fourth.set()
        if len(beats) == 1:
            await asyncio.sleep(LATE_S)
        return answer

    monkeypatch.setitem(HANDLERS, "pen.heartbeat", late_once)
    with SyncServiceClient.connect(service.url, token=service.token(Role.OPERATOR)) as op:
        op.drive(lease_ms=1000)  # a beat every 0.25 s, each answer awaited for 1 s
        assert fourth.wait(30), f"the heartbeats stopped after {len(beats)}"


def test_heartbeats_stopped_just_as_an_answer_arrives_stay_stopped(service):
    """The cancel lands in the turn of the loop that delivers a heartbeat's answer, before the
    heartbeat task resumes: Python 3.11's `wait_for` returned that answer and the task beat on
    for ever, so a client "falling silent" kept its driver lease (the needle ran on; CI)."""
    async def main() -> None:
        op = await connect(service, Role.OPERATOR)
        await op.drive(lease_ms=400)  # a beat every 0.1 s
        task = op._heartbeat
        assert task is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while not op._pending:  # the next heartbeat, on its way
            assert loop.time() < deadline, "no heartbeat was sent"
            await asyncio.sleep(0.001)
        (answer,) = op._pending.values()
        answer.add_done_callback(lambda _answer: op.stop_heartbeats())
        done, _ = await asyncio.wait({task}, timeout=WAIT_S)
        assert task in done, "the heartbeats went on after stop_heartbeats()"
        assert answer.done()
        await op.close()

    run(main())
