"""Review 19 (fix2): the service's `stops_asked` counted the pen's latches (fault, estop) but not
a lost pen. docs/safety.md: "Entering `fault`, `estop` or `disconnected` counts as a stop too
... a start decided before one never goes out, even once it is cleared or the pen
reconnected"; README: "An E-stop, a fault or a lost pen ... also when it was cleared or the pen
reconnected ...: no pass begins by itself after it". A session.run received before the pen was
lost, held in its checks, opened and played once the pen was reconnected. It now counts the
controller's own `pen.interruptions` (fault, E-stop, lost pen; not the program's close), and a
run received while the pen is latched or lost is refused as it arrives."""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import asyncio

import pytest

from smpdevice.control import State
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.service.conftest import (  # noqa: F401  (fixtures)
    connect,
    data_dir,
    run,
    service_with_held_leases,
    vsim,
    wait_until,
)
from tests.smpdevice.service.test_rev19_estop_before_open import RUN, hold


@pytest.fixture
def sim(vsim):
    return vsim


def test_a_pen_lost_and_reconnected_wins_over_a_run_received_before(sim, data_dir):
    with service_with_held_leases(sim, data_dir) as service:
        work = service.server.service.work
        pen = service.server.service.pen

        async def main() -> ServiceError | dict:
            op = await connect(service, Role.OPERATOR)
            await op.drive(lease_ms=1000)
            received, go = hold(work, "launch")
            first = asyncio.ensure_future(op.call("session.run", **RUN))
            await wait_until(received.is_set, what="session.run in hand")
            sim.disconnect()
            await wait_until(lambda: pen.state is State.DISCONNECTED, what="the pen lost")
            sim.reconnect()
            await asyncio.to_thread(pen.reconnect)
            await wait_until(lambda: pen.state is State.IDLE, what="idle again")
            go.set()
            try:
                answer: ServiceError | dict = await first
            except ServiceError as refused:
                answer = refused
            if isinstance(answer, dict):
                await op.call("session.stop")
                await wait_until(lambda: not (work.status() or {}).get("running"),
                                 what="the session ended")
            await op.close()
            return answer

        answer = run(main())
    assert isinstance(answer, ServiceError), \
        f"a session received before the pen was lost opened after its reconnect: {answer}"


def test_a_run_received_while_the_pen_is_latched_never_opens_after_the_clear(sim, data_dir):
    """docs/safety.md: latches stay "until a person clears them; nothing resumes by itself, not
    after a clear". A session.run sent while the pen is in `estop` is refused when handled at
    once; held in its checks (a slow pass log) it opens once a technician clears the E-stop."""
    with service_with_held_leases(sim, data_dir) as service:
        work = service.server.service.work
        pen = service.server.service.pen

        async def main() -> ServiceError | dict:
            op = await connect(service, Role.OPERATOR)
            viewer = await connect(service, Role.VIEWER)
            tech = await connect(service, Role.TECHNICIAN)
            await op.drive(lease_ms=1000)
            assert (await viewer.call("pen.estop"))["confirmed"] is True
            with pytest.raises(ServiceError):  # handled at once: refused, the pen is latched
                await op.call("session.run", **RUN)
            received, go = hold(work, "launch")
            first = asyncio.ensure_future(op.call("session.run", **RUN))
            # held in its checks (the old code), or refused as it arrived (latched)
            await wait_until(lambda: received.is_set() or first.done(),
                             what="session.run in hand")
            await tech.call("pen.clear_faults", reason="the client moved; safe now")
            await wait_until(lambda: pen.state is State.IDLE, what="idle")
            go.set()
            try:
                answer: ServiceError | dict = await first
            except ServiceError as refused:
                answer = refused
            if isinstance(answer, dict):
                await op.call("session.stop")
                await wait_until(lambda: not (work.status() or {}).get("running"),
                                 what="the session ended")
            for c in (op, viewer, tech):
                await c.close()
            return answer

        answer = run(main())
    assert isinstance(answer, ServiceError), \
        f"a session.run sent while the pen was E-stopped opened after the clear: {answer}"
    assert "estop" in str(answer) and "\n" not in str(answer)


def test_a_run_received_while_the_pen_is_lost_never_opens_after_the_reconnect(sim, data_dir):
    """Beyond the example: a session.run arriving while the pen is disconnected is refused
    (one line) when handled at once; held in its checks, it never opens after the reconnect
    either: the loss it was received under counts as a stop that came before it."""
    with service_with_held_leases(sim, data_dir) as service:
        work = service.server.service.work
        pen = service.server.service.pen

        async def main() -> tuple[str, ServiceError | dict]:
            op = await connect(service, Role.OPERATOR)
            await op.drive(lease_ms=1000)
            sim.disconnect()
            await wait_until(lambda: pen.state is State.DISCONNECTED, what="the pen lost")
            with pytest.raises(ServiceError) as at_once:
                await op.call("session.run", **RUN)
            received, go = hold(work, "launch")
            first = asyncio.ensure_future(op.call("session.run", **RUN))
            await wait_until(lambda: received.is_set() or first.done(),
                             what="session.run in hand")
            sim.reconnect()
            await asyncio.to_thread(pen.reconnect)
            await wait_until(lambda: pen.state is State.IDLE, what="idle again")
            await op.drive(lease_ms=1000)
            go.set()
            try:
                answer: ServiceError | dict = await first
            except ServiceError as refused:
                answer = refused
            if isinstance(answer, dict):
                await op.call("session.stop")
                await wait_until(lambda: not (work.status() or {}).get("running"),
                                 what="the session ended")
            await op.close()
            return str(at_once.value), answer

        at_once, answer = run(main())
    assert "\n" not in at_once
    assert isinstance(answer, ServiceError), \
        f"a session.run sent while the pen was lost opened after its reconnect: {answer}"
    assert "disconnected" in str(answer)
