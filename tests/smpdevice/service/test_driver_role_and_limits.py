"""Review 7b: a driver demoted by `rpc.hello` (R07), a rate-limited heartbeat (R08), answers
over what a client accepts (R03), requests over the service's cap (R04).

The clients' lease clock stands still here: nothing loses the pen by its lease running out, so
a pen lost (or kept) is the behaviour under test, never a descheduled test process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
import websockets
from hypothesis import given, settings
from hypothesis import strategies as st

from smpdevice.control import State
from smpdevice.service import connection
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError, encode_request
from smpdevice.service.limits import MAX_ANSWER_BYTES, MAX_INBOUND_BYTES, MAX_MESSAGE_BYTES
from smpdevice.service.pen_service import HANDLERS
from smpdevice.service.runner import ServiceHandle

from .conftest import connect, drive_needle, run, service_with_held_leases, wait_until


@pytest.fixture
def service(sim, data_dir) -> Iterator[ServiceHandle]:
    with service_with_held_leases(sim, data_dir) as handle:
        yield handle


# ---------------------------------------------------------------- R07: re-hello below operator

def test_a_driver_that_re_authenticates_as_viewer_loses_the_pen_at_once(service):
    lower = Role.VIEWER
    svc = service.server.service

    async def main() -> None:
        op = await connect(service, Role.OPERATOR)
        await drive_needle(op, lease_ms=10_000)
        await wait_until(lambda: svc.pen.state is State.RUNNING, what="the needle running")
        hello = await op.call("rpc.hello", token=service.token(lower))
        assert hello["role"] == lower.label
        # Lost by the time the answer comes: the lease clock stands still, so nothing else did.
        assert svc.lease.holder() is None
        assert svc.pen.state is State.IDLE  # stopped and disarmed, as on pen.release
        with pytest.raises(ServiceError) as refused:
            await op.call("pen.heartbeat")
        assert refused.value.code == -32003  # a viewer: not its role any more
        other = await connect(service, Role.OPERATOR)
        assert (await other.call("pen.drive", lease_ms=1000))["ok"]  # nobody holds it now
        await other.close()
        await op.close()

    run(main())


def test_a_re_hello_that_keeps_a_driving_role_keeps_the_pen(service):
    svc = service.server.service

    async def main() -> None:
        tech = await connect(service, Role.TECHNICIAN)
        await drive_needle(tech, lease_ms=10_000)
        await wait_until(lambda: svc.pen.state is State.RUNNING, what="the needle running")
        me = svc.lease.holder()
        hello = await tech.call("rpc.hello", token=service.token(Role.TECHNICIAN),
                                role="operator")
        assert hello["role"] == "operator"
        assert svc.lease.holder() == me
        assert svc.pen.state is State.RUNNING
        await tech.call("pen.stop")
        await tech.close()

    run(main())


# ---------------------------------------------------------------- R08: rate-limited heartbeat

def test_a_rate_limited_heartbeat_does_not_end_the_heartbeats(service, monkeypatch):
    """A bucket of 2 requests/s against a beat every 0.25 s: some beats are refused -32005
    (real refusals by the real limiter); the client must beat on."""
    monkeypatch.setattr(connection, "RATE_PER_S", 2.0)
    monkeypatch.setattr(connection, "BURST", 2.0)
    accepted: list[int] = []
    original = HANDLERS["pen.heartbeat"]

    async def counted(svc, client, params):
        accepted.append(client.bucket.refused)  # how many were refused before this one
        return await original(svc, client, params)

    monkeypatch.setitem(HANDLERS, "pen.heartbeat", counted)

    async def main() -> None:
        op = await connect(service, Role.OPERATOR)
        await op.drive(lease_ms=1000)  # a beat every 0.25 s
        await wait_until(lambda: sum(1 for r in accepted if r > 0) >= 3,
                         what="three heartbeats accepted after one was rate limited")
        assert not op._heartbeat.done()
        await op.close()

    run(main())


# ---------------------------------------------------------------- R03: answers and the client

def _answer_of(size: int) -> object:
    """A handler whose JSON-RPC answer (id 2) is exactly `size` bytes."""
    frame = len(json.dumps({"jsonrpc": "2.0", "id": 2, "result": ""}, separators=(",", ":")))

    async def big(svc, client, params):
        return "x" * (size - frame)
    return big


def test_the_client_takes_the_largest_answer_and_a_larger_one_is_a_clear_error(service,
                                                                               monkeypatch):
    async def main() -> None:
        viewer = await connect(service, Role.VIEWER)  # rpc.hello was id 1: ping is id 2
        monkeypatch.setitem(HANDLERS, "rpc.ping", _answer_of(MAX_ANSWER_BYTES))
        assert len(await viewer.call("rpc.ping")) > MAX_ANSWER_BYTES - 100
        monkeypatch.setitem(HANDLERS, "rpc.ping", _answer_of(MAX_ANSWER_BYTES + 1))
        with pytest.raises(ServiceError) as refused:
            await viewer.call("rpc.ping")
        assert refused.value.code == -32000
        assert "max_answer_bytes" in str(refused.value)
        assert refused.value.data["max_answer_bytes"] == MAX_ANSWER_BYTES
        monkeypatch.setitem(HANDLERS, "rpc.ping", HANDLERS["rpc.describe"])
        assert await viewer.call("rpc.ping")  # the connection lives
        await viewer.close()

    run(main())


def test_describe_names_the_answer_cap(service):
    async def main() -> dict:
        viewer = await connect(service, Role.VIEWER)
        described = await viewer.call("rpc.describe")
        await viewer.close()
        return described

    described = run(main())
    assert described["max_answer_bytes"] == MAX_ANSWER_BYTES
    assert described["max_message_bytes"] == MAX_MESSAGE_BYTES


# ---------------------------------------------------------------- R04: requests over the cap

async def _reply(ws) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if "method" not in message:
            return message


@pytest.mark.parametrize("size", [MAX_MESSAGE_BYTES + 1, 1_100_000, MAX_INBOUND_BYTES - 200])
def test_a_request_over_the_cap_gets_one_clear_error_and_the_connection_lives(service, size):
    async def main() -> list[object]:
        async with websockets.connect(service.url, max_size=None) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.hello",
                                      "params": {"token": service.token(Role.OPERATOR)}}))
            await _reply(ws)
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "pen.drive",
                                      "params": {"lease_ms": 1000}}))
            assert "result" in await _reply(ws)
            await ws.send("#" * size)
            error = (await _reply(ws))["error"]
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "rpc.ping"}))
            return [error["code"], error["data"]["max_message_bytes"],
                    (await _reply(ws))["result"], service.server.service.lease.holder()]

    code, cap, pong, holder = run(main())
    assert (code, cap, pong) == (-32600, MAX_MESSAGE_BYTES, {"ok": True})
    assert holder is not None  # the driver kept the pen


def test_the_python_client_refuses_an_oversized_request_itself(service):
    async def main() -> object:
        op = await connect(service, Role.OPERATOR)
        with pytest.raises(ServiceError) as refused:
            await op.call("session.check", profile="#" + "x" * MAX_MESSAGE_BYTES)
        assert "max_message_bytes" in str(refused.value)
        pong = await op.call("rpc.ping")
        await op.close()
        return pong

    assert run(main()) == {"ok": True}


@settings(max_examples=40, deadline=None)
@given(chars=st.integers(0, 2 * MAX_MESSAGE_BYTES), char=st.sampled_from(["x", "é", "😀", "\n"]))
def test_a_request_is_encoded_within_the_cap_or_refused_before_sending(chars, char):
    params = {"profile": char * chars}
    try:
        text = encode_request(7, "session.check", params)
    except ServiceError as exc:
        assert "max_message_bytes" in str(exc) and exc.code is None
        assert len(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "session.check",
                               "params": params}).encode()) > MAX_MESSAGE_BYTES
    else:
        assert len(text.encode()) <= MAX_MESSAGE_BYTES
        assert json.loads(text)["params"] == params
