"""An E-stop, or any latch of the pen, wins over a `session.run` or `session.resume` the service
received before it (review 19, finding 3): one not yet opened is refused and opens nothing,
even once a technician has cleared the latch ("nothing resumes by itself, not after a clear").
Before, the service's E-stop asked the session to stop without counting it as a stop, and the
launch cleared that ask: a run held in its checks (a slow pass log) opened after the clear and
played all its passes. Held at its launch (its checks done) and right before its first record
(open_session running), as test_stop_before_open.py holds a run. Real service on loopback,
virtual pen."""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from smpdevice.control import State
from smpdevice.passlog import PassLog
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceClient, ServiceError
from tests.smpdevice.service.conftest import (  # noqa: F401  (fixtures)
    WAIT_S,
    connect,
    data_dir,
    run,
    service_with_held_leases,
    vsim,
    wait_until,
)
from tests.smpdevice.service.test_service_resume import clear_jam, faulted_session
from tests.smpdevice.service.test_service_work import CLEAR, PROFILE

RUN = {"profile": PROFILE, "screening": CLEAR, "technician": "t", "quick_pass_s": 0.4}


@pytest.fixture
def sim(vsim):
    return vsim


def hold(work: Any, where: str) -> tuple[threading.Event, threading.Event]:
    """Hold the next session.run/.resume in hand: at its launch (`launch`) or inside its
    opening, before its first record (`first_record`). (received, go)."""
    received, go = threading.Event(), threading.Event()
    launch = work.launch

    def held_launch(client_id: str, open_session: Any, **kw: Any) -> dict[str, Any]:
        def held_open(before_record: Any) -> Any:
            if where == "first_record":
                received.set()
                go.wait(WAIT_S)
            return open_session(before_record)

        if where == "launch":
            received.set()
            go.wait(WAIT_S)
        work.launch = launch  # once: a request sent again is not held
        return launch(client_id, held_open, **kw)

    work.launch = held_launch
    return received, go


async def refused_after_estop_and_clear(service: Any, op: ServiceClient, method: str,
                                        params: dict[str, Any], where: str) -> ServiceError:
    """`method` held in hand; a viewer's E-stop (confirmed) and a technician's clear; then it
    goes on: the ServiceError it answers (an AssertionError if it opened)."""
    received, go = hold(service.server.service.work, where)
    viewer = await connect(service, Role.VIEWER)
    tech = await connect(service, Role.TECHNICIAN)
    first = asyncio.ensure_future(op.call(method, **params))
    await wait_until(received.is_set, what=f"{method} in hand")
    assert (await viewer.call("pen.estop"))["confirmed"] is True
    await tech.call("pen.clear_faults", reason="the client moved; safe now")
    go.set()
    try:
        opened = await first
    except ServiceError as refused:
        return refused
    finally:
        await viewer.close()
        await tech.close()
    raise AssertionError(f"{method} received before the E-stop opened after it: {opened}")


@pytest.mark.parametrize("where", ["launch", "first_record"])
def test_an_estop_wins_over_a_session_run_received_before_it(sim, data_dir, where):
    with service_with_held_leases(sim, data_dir) as service:
        work = service.server.service.work

        async def main() -> tuple[ServiceError, Any, str]:
            op = await connect(service, Role.OPERATOR)
            await op.drive(lease_ms=1000)
            refused = await refused_after_estop_and_clear(service, op, "session.run", RUN, where)
            status = work.status()
            again = await op.call("session.run", **RUN)  # sent after the clear: it opens
            await op.call("session.stop")
            await wait_until(lambda: not (work.status() or {}).get("running"),
                             what="the second session ended")
            await op.close()
            return refused, status, again["session_id"]

        refused, status, again = run(main())
    assert "not opened" in str(refused) and "E-stop" in str(refused), str(refused)
    assert status is None  # nothing was opened
    assert again


@pytest.mark.parametrize("where", ["launch", "first_record"])
def test_an_estop_wins_over_a_session_resume_received_before_it(sim, data_dir, where):
    with service_with_held_leases(sim, data_dir) as service:
        path = service.server.service.passlog_path

        async def main() -> tuple[str, ServiceError, dict]:
            viewer = await connect(service, Role.VIEWER)
            op = await connect(service, Role.OPERATOR)
            sid = (await faulted_session(service, sim, op, viewer))["session_id"]
            await clear_jam(service, sim)
            refused = await refused_after_estop_and_clear(
                service, op, "session.resume", {"session_id": sid, "technician": "bo"}, where)
            again = await op.call("session.resume", session_id=sid, technician="bo")
            result = await viewer.next_notification("session.result", timeout_s=WAIT_S,
                                                    where=lambda r: r["session_id"] == sid)
            await op.close()
            await viewer.close()
            return sid, refused, {**again, "outcome": result["outcome"]}

        sid, refused, again = run(main())
    assert "not opened" in str(refused) and "E-stop" in str(refused), str(refused)
    assert again["session_id"] == sid and again["outcome"] == "completed"
    with PassLog(path, readonly=True) as log:
        assert len(log.resumptions(sid)) == 1  # the refused one recorded nothing


def test_a_latch_of_the_pen_itself_wins_too_once_cleared(sim, data_dir):
    """Not only the service's E-stop: a fault the pen latched by itself (a brownout: it
    reboots into POWER_RESET) while a run was in hand refuses it, even once cleared."""
    with service_with_held_leases(sim, data_dir) as service:
        work = service.server.service.work
        pen = service.server.service.pen

        async def main() -> ServiceError | dict:
            op = await connect(service, Role.OPERATOR)
            tech = await connect(service, Role.TECHNICIAN)
            await op.drive(lease_ms=1000)
            received, go = hold(work, "launch")
            first = asyncio.ensure_future(op.call("session.run", **RUN))
            await wait_until(received.is_set, what="session.run in hand")
            sim.inject("brownout")
            await wait_until(lambda: pen.state is State.FAULT, what="the pen's fault")
            sim.clear("brownout")
            await tech.call("pen.clear_faults", reason="the supply is steady again")
            await wait_until(lambda: pen.state is State.IDLE, what="idle")
            go.set()
            try:
                answer: ServiceError | dict = await first
            except ServiceError as refused:
                answer = refused
            await op.close()
            await tech.close()
            return answer

        answer = run(main())
    assert isinstance(answer, ServiceError), f"a session opened after the pen's fault: {answer}"
    assert "not opened" in str(answer) and "fault" in str(answer), str(answer)
