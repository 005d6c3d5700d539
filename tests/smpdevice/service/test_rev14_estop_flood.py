"""Review 14 (svc): an E-stop waited behind other clients' big messages.

Every message of a connection was scanned and JSON-read on the service's one event loop before
any rate limit looked at it (~9 ms for 256 KiB of integers, more with the GIL shared with the
pen's threads), and a message refused for its params was not "flooding" until 5,000 in a row.
So four viewers sending 250 KiB requests back to back took every other client's E-stop from
1.2 ms (median) to 110-130 ms, for minutes, none disconnected. docs/service.md: E-stop "is
exempt from all of it but the size cap"; "a client that keeps flooding ... is disconnected".

Now a message over 1 KiB is charged its length to the connection's budget before it is read;
one over the budget is refused unread (its E-stop still runs), and a client refused for a rate
16 times without pausing is disconnected. Before rpc.hello only a hello is read.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time

import websockets

from smpdevice.service.auth import Role
from tests.smpdevice.service.conftest import WAIT_S, connect, service_with_held_leases

FLOODERS = 4
# Each connection says hello, then sends ~250 KiB requests (under the 256 KiB cap) back to back
# until the service closes it, and prints how it was closed.
FLOOD = r"""
import asyncio, json, sys, websockets
url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = ",".join(["1234567"] * 32000)
msg = '{"jsonrpc":"2.0","id":1,"method":"rpc.ping","params":{"x":[' + body + ']}}'
async def one():
    async with websockets.connect(url, max_size=None, max_queue=None) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "rpc.hello",
                                  "params": {"token": token}}))
        await ws.recv()
        print("in", flush=True)
        async def drain():
            async for _ in ws:
                pass
        reader = asyncio.ensure_future(drain())
        try:
            while True:
                await ws.send(msg)
        except websockets.ConnectionClosed:
            pass
        print("closed", ws.close_code, ws.close_reason, flush=True)
async def main():
    await asyncio.gather(*[one() for _ in range(n)])
asyncio.run(main())
"""


def _hello(token: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 0, "method": "rpc.hello",
                       "params": {"token": token}})


def test_big_messages_of_other_viewers_do_not_hold_up_an_estop(vsim, data_dir):
    with service_with_held_leases(vsim, data_dir) as service:
        flood = subprocess.Popen([sys.executable, "-c", FLOOD, service.url,
                                  service.token(Role.VIEWER), str(FLOODERS)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            for _ in range(FLOODERS):  # every flooder authenticated and sending
                assert flood.stdout.readline().strip() == "in"  # type: ignore[union-attr]

            async def estops() -> list[float]:
                client = await connect(service, Role.VIEWER)
                taken = []
                try:
                    for _ in range(15):
                        started = time.perf_counter()
                        answer = await client.estop()
                        taken.append((time.perf_counter() - started) * 1000)
                        assert answer["confirmed"]
                finally:
                    await client.close()
                return taken

            taken_ms = asyncio.run(estops())
            out, _ = flood.communicate(timeout=WAIT_S)  # ends once every flooder was closed
        finally:
            if flood.poll() is None:
                flood.kill()
                flood.wait(10)
    assert statistics.median(taken_ms) < 50, sorted(round(t, 1) for t in taken_ms)
    closed = [line for line in out.splitlines() if line.startswith("closed")]
    assert len(closed) == FLOODERS and all("1008" in line and "flooding" in line
                                           for line in closed), out


def test_an_estop_in_a_big_message_over_the_budget_still_runs(service):
    """Refused unread for its size, but not for its E-stop: the lenient scan still tells it."""
    big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.ping",
                      "params": {"pad": "x" * 250_000}})
    estop = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "pen.estop",
                        "params": {"pad": "x" * 261_000}})  # at the cap: no refill covers it
    client = None

    async def go() -> tuple[dict, dict, int]:
        nonlocal client
        async with websockets.connect(service.url, max_size=None) as ws:
            await ws.send(_hello(service.token(Role.VIEWER)))
            assert "result" in json.loads(await ws.recv())
            client = next(iter(service.server.service.clients.values()))
            for _ in range(8):  # the budget holds two of these; the third is refused unread
                await ws.send(big)
                refused = json.loads(await ws.recv())
                if refused["error"]["code"] == -32005:
                    break
            strikes = client.strikes
            await ws.send(estop)
            answer = json.loads(await ws.recv())
            return refused, answer, client.strikes - strikes

    refused, answer, strikes = asyncio.run(go())
    # its id, read from its head alone: the caller hears the refusal (review 14b)
    assert refused["id"] == 1 and "not read" in refused["error"]["message"], refused
    assert answer["id"] == 7 and answer["result"]["confirmed"], answer
    assert strikes == 1, "the E-stop was not over the budget (a stall of ~4 s in between?)"
    assert service.pen.state.value == "estop"


def test_before_hello_a_big_message_is_a_failed_hello(service):
    async def go() -> tuple[list[dict], int | None, str]:
        async with websockets.connect(service.url, max_size=None) as ws:
            answers = []
            for _ in range(3):
                await ws.send('{"jsonrpc":"2.0","id":1,"method":"rpc.ping","params":{"x":"'
                              + "y" * 10_000 + '"}}')
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), WAIT_S)))
            await asyncio.wait_for(ws.wait_closed(), WAIT_S)
            return answers, ws.close_code, ws.close_reason

    answers, code, reason = asyncio.run(go())
    assert all(a["id"] is None and a["error"]["code"] == -32001 for a in answers), answers
    assert (code, reason) == (1008, "too many failed rpc.hello")


def test_a_client_flooding_small_requests_is_disconnected(service):
    """Refused for the request rate (each still read: it could be a stop) over and over: before,
    one request accepted in every 5,000 kept the connection, read at full speed, for ever."""
    ping = json.dumps({"jsonrpc": "2.0", "method": "rpc.ping"})  # a notification: no answers

    async def go() -> tuple[int, int | None, str]:
        async with websockets.connect(service.url, max_queue=None) as ws:
            await ws.send(_hello(service.token(Role.VIEWER)))
            await ws.recv()
            for sent in range(1, 100_001):
                try:
                    await ws.send(ping)
                except websockets.ConnectionClosed:
                    break
                if sent % 64 == 0:
                    await asyncio.sleep(0)  # let this client read the service's close
            return sent, ws.close_code, ws.close_reason

    sent, code, reason = asyncio.run(go())
    assert code == 1008 and "flooding" in reason, (sent, code, reason)
