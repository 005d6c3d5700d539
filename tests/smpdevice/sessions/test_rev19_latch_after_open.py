"""Review 19 (fixd1): a fault the pen latches by itself right after a served session's opening
record, cleared by a technician before the session's play() begins, is forgotten: the session
plays every pass (outcome completed), as if nothing had happened.

docs/safety.md (service, review 19): "A `session.stop` wins over every `session.run` ... So do
an E-stop and any fault or E-stop the pen latched by itself (review 19), even once a technician
has cleared it: the request is looked at on its turn and again right before its first record";
"The layers": nothing resumes by itself, not after a clear; README: "An E-stop, a fault or a
lost pen between two passes ends the run as one mid-pass would (exit 5, 4 or 6, left open),
also when it was cleared ... before the next pass". The window left: after `before_record`
and the opening record, before play() takes its counts (`_watch_from_now`): nothing looks.

Real service on loopback, virtual pen, real pass log; the session's thread is held right after
its opening record (a slow disk) while the pen latches a fault (a brownout) and a
technician clears it."""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from smpdevice.control import State
from smpdevice.records.sqlite import PassLog
from smpdevice.service.auth import Role
from tests.smpdevice.service.conftest import (  # noqa: F401  (fixtures)
    WAIT_S,
    connect,
    data_dir,
    run,
    service_with_held_leases,
    vsim,
    wait_until,
)
from tests.smpdevice.service.test_service_work import CLEAR, PROFILE


@pytest.fixture
def sim(vsim):
    return vsim


def test_a_fault_latched_and_cleared_right_after_the_opening_record_ends_the_run(
        sim, data_dir, monkeypatch):
    opened, go = threading.Event(), threading.Event()
    original = PassLog.open_session

    def held_open_session(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if not opened.is_set():  # recorded open: the session's thread waits here
            opened.set()
            go.wait(WAIT_S)
        return result

    monkeypatch.setattr(PassLog, "open_session", held_open_session)
    with service_with_held_leases(sim, data_dir) as service:
        pen = service.pen

        async def main() -> dict[str, Any]:
            viewer = await connect(service, Role.VIEWER)
            tech = await connect(service, Role.TECHNICIAN)
            op = await connect(service, Role.OPERATOR)
            await op.drive(lease_ms=1000)
            run_call = op.call("session.run", profile=PROFILE, screening=CLEAR,
                               technician="t", quick_pass_s=0.3, leave_open=True)
            answer = asyncio.ensure_future(run_call)
            await wait_until(opened.is_set, what="the opening recorded")
            sim.inject("brownout")  # the pen reboots into POWER_RESET: a fault by itself
            await wait_until(lambda: pen.state is State.FAULT, what="fault latched")
            sim.clear("brownout")
            await tech.call("pen.clear_faults", reason="the supply is steady again")
            await wait_until(lambda: pen.state is State.IDLE, what="idle")
            go.set()
            await answer
            result = await viewer.next_notification("session.result", timeout_s=WAIT_S)
            for client in (op, tech, viewer):
                await client.close()
            return result

        result = run(main())
    assert result["summary"].get("outcomes", {}).get("completed", 0) == 0, result["summary"]
    assert result["outcome"] == "fault", result["outcome"]  # exit 4, left open
