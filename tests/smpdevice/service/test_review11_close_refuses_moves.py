"""B6 (review 11): `ServiceServer.close()` brings the pen to rest "before any connection is
closed" (server.py close/_stop_pen). Then it waits up to CLOSE_TIMEOUT_S for each connection's
closing handshake. A connection whose peer has not answered the service's Close frame yet is
still read meanwhile (RFC 6455: data may follow a Close until the peer's Close comes), so
requests it sends then still run: can the pen be driven, armed and started again after the
close's stop, while the service is closing?

A raw WebSocket client (hand-made frames over a real TCP socket) stands for a client that keeps
sending after the service's Close frame: any client whose requests were in its socket buffer
or on the wire when the close began (a console's start click, a script's pipelined calls).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import threading
import time

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.service.auth import Role
from tests.smpdevice.conftest import CROWN
from tests.smpdevice.service.conftest import WAIT_S, run, service_with_held_leases

pytestmark = pytest.mark.usefixtures("data_dir")


class RawWs:
    """A minimal RFC 6455 client that never answers a Close frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.ids = iter(range(1, 1 << 30))

    @classmethod
    async def open(cls, host: str, port: int) -> RawWs:
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /rpc HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send(self, method: str, **params: object) -> int:
        ident = next(self.ids)
        payload = json.dumps({"jsonrpc": "2.0", "id": ident, "method": method,
                              "params": params}).encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                bytes([0x80 | 126]) + struct.pack("!H", n))
        self.writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        return ident

    async def frame(self) -> tuple[int, bytes]:
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def answer(self, ident: int) -> dict:
        while True:
            op, data = await self.frame()
            assert op == 1, (op, data)
            msg = json.loads(data)
            if msg.get("id") == ident:
                return msg


def test_no_needle_runs_again_after_the_close_has_stopped_it(sim, data_dir):
    with service_with_held_leases(sim, data_dir) as handle:
        ran_after_close = threading.Event()
        closing = threading.Event()
        seen: list[float] = []
        done = threading.Event()

        def watch() -> None:  # the pen's own state, looked at every 2 ms from the close on
            closing.wait(WAIT_S)
            while not done.wait(0.002):
                if sim.firmware.state is FirmwareState.RUNNING:
                    seen.append(time.monotonic())
                    ran_after_close.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

        async def main() -> list[int]:
            host, port = "127.0.0.1", handle.server.port
            ws = await RawWs.open(host, port)
            hello = await ws.answer(ws.send("rpc.hello", token=handle.token(Role.OPERATOR),
                                            role="operator"))
            assert "result" in hello, hello
            stopper = asyncio.ensure_future(asyncio.to_thread(handle.stop))
            while True:  # the service's Close frame (1001): the close has begun
                op, _data = await ws.frame()
                if op == 8:
                    break
            closing.set()
            # Sent after the service's Close, never answering it: the service still reads
            # them until CLOSE_TIMEOUT_S has passed.
            ws.send("pen.drive", lease_ms=5000)
            ws.send("pen.set_zone", zone="crown")
            ws.send("pen.set_setpoints", **CROWN)
            ws.send("pen.arm")
            ws.send("pen.start")
            await ws.writer.drain()
            await stopper
            ws.writer.close()
            return []

        run(main())
        done.set()
        watcher.join(WAIT_S)
        assert not ran_after_close.is_set(), (
            "the needle ran again after the close had stopped it and disarmed: a connection "
            "still open (its closing handshake unanswered) drove, armed and started the pen; "
            f"it ran {seen[-1] - seen[0]:.2f} s" if seen else "")
