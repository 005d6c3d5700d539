"""Review 14b (svc, adversarial): what the first door and character budget (review 14) still
let through, each fixed:
- bursts of token-less TCP connects cut `smp estop` over the Unix socket in its hello (the door
  cut the oldest pending connection, of either kind): the Unix socket now waits in a pool of
  its own, and no connection younger than GRACE_S is cut for a newer one;
- the budget was per connection: viewers reconnecting after each 2 x 250 KiB got a fresh burst
  every time (another client's E-stop: median 44 ms, max 186 ms beside 8 of them); it is now
  per role, shared by that role's connections;
- an E-stop that was the 16th strike ran, but its answer was dropped by the flooding close;
- a request refused for the budget was answered with "id": null: its caller waited out its
  own timeout (60 s) instead of hearing "slow down"."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import websockets

from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceClient
from tests.smpdevice.service.conftest import WAIT_S, wait_until

# No token: bursts of 120 TCP connects, closed 3 ms later, for up to 40 s.
BURSTS = r"""
import socket, sys, time
port = int(sys.argv[1]); end = time.monotonic() + 40
while time.monotonic() < end:
    socks = []
    for _ in range(120):
        s = socket.socket(); s.setblocking(False)
        try: s.connect(("127.0.0.1", port))
        except OSError: pass
        socks.append(s)
    time.sleep(0.003)
    for s in socks: s.close()
"""


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


async def _try_estop(url: str, token: str) -> str:
    try:
        client = await asyncio.wait_for(
            ServiceClient.connect(url, token=token, role=Role.VIEWER), 10)
        try:
            answer = await asyncio.wait_for(client.estop(), 10)
        finally:
            await client.close()
        return "ok" if answer["confirmed"] else "unconfirmed"
    except Exception as exc:  # cut by the door, or timed out: the E-stop did not get in
        return f"{type(exc).__name__}: {str(exc)[:80]}"


def test_tokenless_tcp_connect_bursts_keep_a_unix_socket_estop_out(service):
    """Measured before: 13 of 20 refused ("cannot reach the pen service")."""
    flood = subprocess.Popen([sys.executable, "-c", BURSTS, str(_port(service.url))])
    try:
        door = service.server.door
        asyncio.run(wait_until(lambda: door.cut > 500, what="the bursts cutting connections"))
        url = f"unix://{service.socket_path}"
        outcomes = [asyncio.run(_try_estop(url, service.token(Role.VIEWER))) for _ in range(10)]
    finally:
        flood.kill()
        flood.wait(10)
    assert outcomes == ["ok"] * 10, outcomes


def test_a_viewer_that_reconnects_gets_no_fresh_burst(service):
    """The third 250 KiB request, each on a new connection of the same role, is over the
    role's budget (two fit its burst): refused unread, -32005 (read and answered -32602 for
    its unknown params before: every new connection had a full burst)."""
    from smpdevice.service.client_wire import ServiceError

    async def go() -> list[object]:
        codes: list[object] = []
        for _ in range(3):
            client = await ServiceClient.connect(service.url, token=service.token(Role.VIEWER),
                                                 role=Role.VIEWER)
            try:
                await client.call("rpc.ping", timeout_s=WAIT_S, pad="x" * 250_000)
            except ServiceError as exc:
                codes.append(exc.code)
            finally:
                await client.close()
        return codes

    assert asyncio.run(go()) == [-32602, -32602, -32005]


def test_the_estop_that_makes_the_16th_strike_is_run_and_answered(service):
    """Its answer comes before the flooding close (it was dropped: the client saw only 1008,
    and `smp estop` would have said "NOT sent" of an E-stop that ran)."""
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.ping",
                      "params": {"pad": "x" * 250_000}})
    estop = json.dumps({"jsonrpc": "2.0", "id": 77, "method": "pen.estop",
                        "params": {"pad": "x" * 250_000}})

    async def go() -> tuple[list[dict], int | None]:
        async with websockets.connect(service.url, max_size=None) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "rpc.hello",
                                      "params": {"token": service.token(Role.VIEWER)}}))
            await ws.recv()
            client = next(iter(service.server.service.clients.values()))
            answers = []
            while client.strikes < 15:  # two fit the burst; each refusal after is a strike
                await ws.send(big)
                answers.append(json.loads(await ws.recv()))
            await ws.send(estop)
            try:
                while True:
                    answers.append(json.loads(await asyncio.wait_for(ws.recv(), WAIT_S)))
            except websockets.ConnectionClosed:
                pass
            return answers, ws.close_code

    answers, code = asyncio.run(go())
    assert service.pen.state.value == "estop"  # it ran
    assert code == 1008
    assert any(a.get("id") == 77 and a.get("result", {}).get("confirmed") for a in answers), \
        "the E-stop ran but its answer was dropped by the flooding close"


def test_a_request_refused_for_the_budget_is_answered_to_its_caller(service):
    """Its id is read from the message's head alone, where every client puts it."""
    from smpdevice.service.client_wire import ServiceError

    async def go() -> list[object]:
        client = await ServiceClient.connect(service.url, token=service.token(Role.OPERATOR),
                                             role=Role.OPERATOR)
        codes: list[object] = []
        try:
            for _ in range(3):  # the burst holds two of these
                try:
                    await client.call("rpc.ping", timeout_s=5, pad="x" * 250_000)
                except ServiceError as exc:
                    codes.append(exc.code)
        finally:
            await client.close()
        return codes

    codes = asyncio.run(go())
    assert codes[2] == -32005, codes  # the third: refused for the budget, told to its caller
