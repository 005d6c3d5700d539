"""Review 8a: a driver lost while its request is on the wire (R04); the request cap in UTF-8
bytes, not characters (R02).

R04: the pen answers 150 ms late here (a slow adapter), so a driver's `pen.arm` is still
unanswered when the driver loses the pen (re-hello below operator, `pen.release`, a closed
connection). The pen then looks idle; the ARM lands after the first stop. Losing the pen must
still leave it stopped and disarmed, never ARMED with nobody driving. The clients' lease clock
stands still: no lease runs out, so the loss under test is the only one.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest
import websockets

from simulators import PenSimulator, VirtualClock
from smpdevice.control import State
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceClient, ServiceError
from smpdevice.service.limits import MAX_MESSAGE_BYTES
from smpdevice.service.rpc import RpcError, parse
from smpdevice.service.runner import ServiceHandle
from tests.smpdevice.conftest import CROWN

from .conftest import WAIT_S, connect, run, service_with_held_leases, wait_until

REPLY_DELAY_S = 0.15


@pytest.fixture
def slow_sim() -> Iterator[PenSimulator]:
    # on a clock its service drives (as `pensim://?clock=virtual`): a loaded machine cannot
    # starve the slow pen past a request's tries, as on the wall clock
    with PenSimulator(seed=5, link_faults=f"delay={REPLY_DELAY_S}",
                      clock=VirtualClock(host_driven=True)) as s:
        yield s


@pytest.fixture
def service(slow_sim, data_dir) -> Iterator[ServiceHandle]:
    with service_with_held_leases(slow_sim, data_dir) as handle:
        yield handle


async def _arm_in_flight(service: ServiceHandle, sim: PenSimulator
                         ) -> tuple[ServiceClient, asyncio.Future]:
    """A driver with zone and setpoints whose `pen.arm` the pen has carried out (it is armed)
    and not yet answered: the service still sees the pen idle, for up to REPLY_DELAY_S.
    (On a starved machine the answer may come first: the loss then finds the pen armed.)"""
    op = await connect(service, Role.OPERATOR)
    await op.drive(lease_ms=10_000)
    await op.call("pen.set_zone", zone="crown")
    await op.call("pen.set_setpoints", **CROWN)
    arm = asyncio.ensure_future(op.call("pen.arm"))
    await wait_until(lambda: sim.firmware.state.name == "ARMED", what="the pen armed")
    return op, arm


def _firmware_idle(sim: PenSimulator) -> bool:
    return sim.firmware.state.name == "IDLE"


@pytest.mark.parametrize("how", ["hello as viewer", "pen.release"])
def test_a_driver_losing_the_pen_while_its_arm_is_in_flight_leaves_it_disarmed(
        service, slow_sim, how):
    svc = service.server.service

    async def main() -> None:
        op, arm = await _arm_in_flight(service, slow_sim)
        if how == "pen.release":
            await op.call("pen.release")
        else:
            assert (await op.call("rpc.hello", token=service.token(Role.VIEWER)))["role"] == \
                "viewer"
        # By the answer: lost, and what the ARM left is disarmed (the ARM ran first, or it
        # was refused at its turn as no longer the driver's).
        assert svc.lease.holder() is None
        assert svc.pen.state is State.IDLE, svc.pen.state
        await asyncio.gather(arm, return_exceptions=True)
        await wait_until(lambda: _firmware_idle(slow_sim), what="the pen itself disarmed")
        assert svc.pen.state is State.IDLE and svc.lease.holder() is None
        await op.close()

    run(main())


def test_a_driver_disconnecting_while_its_arm_is_in_flight_leaves_the_pen_disarmed(
        service, slow_sim):
    svc = service.server.service

    seen: list[State] = []
    svc.pen.add_state_listener(lambda old, new, why: seen.append(new))

    async def main() -> None:
        op, arm = await _arm_in_flight(service, slow_sim)
        await op.close()  # the ARM goes on in the service: nobody waits for its answer
        await asyncio.gather(arm, return_exceptions=True)
        await wait_until(lambda: svc.lease.holder() is None, what="the driver lost")
        await svc.apen.call(lambda: None)  # the call worker got past the ARM
        assert State.ARMED in seen  # the ARM landed after the loss's first stop
        # Old code: ARMED with no driver until the pen's lease lapsed (a FAULT, never idle).
        await wait_until(lambda: svc.pen.state is State.IDLE and _firmware_idle(slow_sim),
                         what="the pen stopped and disarmed after the disconnect")

    run(main())


def test_a_request_queued_behind_a_long_call_runs_only_while_its_caller_drives(service):
    svc = service.server.service
    long_call_may_end = threading.Event()

    async def main() -> None:
        op = await connect(service, Role.OPERATOR)
        await op.drive(lease_ms=10_000)
        await op.call("pen.set_zone", zone="crown")
        await op.call("pen.set_setpoints", **CROWN)
        me = svc.clients[(await op.call("pen.state"))["you"]]
        # A long call holds the one call worker (as a calibration spin or a reconnect does).
        long_call = asyncio.ensure_future(svc.apen.call(long_call_may_end.wait, WAIT_S))
        arm = asyncio.ensure_future(op.call("pen.arm"))  # checked as the driver's: queued
        await wait_until(lambda: me.inflight >= 1, what="the ARM taken")
        release = asyncio.ensure_future(op.call("pen.release"))
        await wait_until(lambda: svc.lease.holder() is None, what="the pen released")
        long_call_may_end.set()
        assert await long_call
        with pytest.raises(ServiceError) as refused:
            await arm  # its turn came after the release: it moves nothing
        assert refused.value.code == -32004, refused.value
        assert "nobody drives it" in str(refused.value)
        assert (await release)["ok"]
        assert svc.pen.state is State.IDLE
        await op.close()

    try:
        run(main())
    finally:
        long_call_may_end.set()


# ---------------------------------------------------------------- R02: the cap in UTF-8 bytes

def _request_of(size_bytes: int, char: str) -> str:
    """An rpc.ping whose UTF-8 encoding is exactly `size_bytes`, mostly of `char`."""
    head, tail = '{"jsonrpc":"2.0","id":1,"method":"rpc.ping","params":{"p":"', '"}}'
    width = len(char.encode("utf-8", "surrogatepass"))
    room = size_bytes - len(head) - len(tail)
    body = char * (room // width) + "x" * (room % width)
    text = head + body + tail
    assert len(text.encode("utf-8", "surrogatepass")) == size_bytes
    return text


@pytest.mark.parametrize("char", ["x", "\u00e9", "\u4e00", "\U0001f600", "\ud800"])
def test_the_request_cap_counts_utf8_bytes(char):
    at_cap = parse(_request_of(MAX_MESSAGE_BYTES, char))
    assert at_cap.method == "rpc.ping"
    with pytest.raises(RpcError) as refused:
        parse(_request_of(MAX_MESSAGE_BYTES + 1, char))
    assert refused.value.code == -32600
    assert f"message of {MAX_MESSAGE_BYTES + 1} bytes" in refused.value.message


def test_a_text_frame_over_the_cap_in_bytes_is_refused_and_the_connection_lives(service):
    async def reply(ws) -> dict:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if "method" not in message:
                return message

    async def main() -> list[object]:
        async with websockets.connect(service.url, max_size=None) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.hello",
                                      "params": {"token": service.token(Role.VIEWER)}}))
            await reply(ws)
            await ws.send(_request_of(MAX_MESSAGE_BYTES + 1, "\u00e9"))  # ~131,000 characters
            error = (await reply(ws))["error"]
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "rpc.ping"}))
            return [error["code"], error["message"], (await reply(ws))["result"]]

    code, message, pong = run(main())
    assert (code, pong) == (-32600, {"ok": True})
    assert f"{MAX_MESSAGE_BYTES + 1} bytes" in str(message)
