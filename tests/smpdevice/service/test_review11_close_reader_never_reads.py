"""B6 (review 11): docs/service.md "a hung client (no answer to the close) holds the exit at
most 2 s" (CLOSE_TIMEOUT_S). A client hung the other way: it asked for large answers and then
never reads, so the service's socket cannot even take the Close frame. Does the close still
end within the bound?"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from smpdevice.service.auth import Role
from tests.smpdevice.service.conftest import WAIT_S, run, service_with_held_leases
from tests.smpdevice.service.test_review11_close_refuses_moves import RawWs

pytestmark = pytest.mark.usefixtures("data_dir")
BOUND_S = 2.0 + 1.5  # CLOSE_TIMEOUT_S and the close's own stop, with room for a loaded PC


def test_a_client_that_never_reads_holds_the_close_at_most_the_bound(sim, data_dir):
    with service_with_held_leases(sim, data_dir) as handle:
        service = handle.server.service
        took = [0.0]

        async def main() -> None:
            port = handle.server.port
            ws = await RawWs.open("127.0.0.1", port)
            sock = ws.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            ws.send("rpc.hello", token=handle.token(Role.VIEWER), role="viewer")
            await ws.answer(1)
            ws.writer.transport.pause_reading()  # from now on, nothing is read

            def stuck() -> bool:
                return any(c.outbox.qsize() > 8 for c in service.clients.values())
            for _ in range(4000):  # large answers, never read, until the service's writes back up
                ws.send("rpc.describe")
                if _ % 50 == 0:
                    await ws.writer.drain()
                    await asyncio.sleep(0.01)
                    if stuck():
                        break
            assert stuck(), "the service's writes never backed up"
            began = time.monotonic()
            closer = threading.Thread(target=handle.stop, daemon=True)
            closer.start()
            await asyncio.to_thread(closer.join, WAIT_S)
            took[0] = time.monotonic() - began
            ws.writer.transport.abort()

        run(main())
    assert took[0] < BOUND_S, f"the close took {took[0]:.1f} s"
