"""docs/service.md: "Three failed hellos ... close the connection", also when the hellos come
as JSON-RPC notifications (no id: never answered, but counted all the same)."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from smpdevice.service.auth import Role
from tests.smpdevice.service.conftest import run


async def _closed(ws) -> bool:
    """Whether the service closed the connection (a ping is answered otherwise)."""
    try:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": "p", "method": "rpc.ping"}))
        while True:
            m = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if m.get("id") == "p":
                return False
    except websockets.ConnectionClosed:
        return True


def _hello(token: str, ident: int | None = None) -> str:
    m: dict = {"jsonrpc": "2.0", "method": "rpc.hello", "params": {"token": token}}
    if ident is not None:
        m["id"] = ident
    return json.dumps(m)


@pytest.mark.parametrize("first_as", ["viewer", "nobody"])
def test_three_failed_hellos_as_notifications_close_the_connection(service, first_as):
    async def go() -> None:
        async with websockets.connect(service.url) as ws:
            if first_as == "viewer":  # the token any monitor reads
                await ws.send(_hello(service.token(Role.VIEWER), ident=1))
                while json.loads(await asyncio.wait_for(ws.recv(), 30)).get("id") != 1:
                    pass
            for _ in range(3):
                await ws.send(_hello("guess-" + "x" * 30))  # no id: never answered
            assert await _closed(ws)

    run(go())


def test_two_failed_hellos_as_notifications_leave_it_open(service):
    async def go() -> None:
        async with websockets.connect(service.url) as ws:
            for _ in range(2):
                await ws.send(_hello("guess-" + "x" * 30))
            await ws.send(_hello(service.token(Role.VIEWER), ident=1))
            assert not await _closed(ws)

    run(go())

