"""How `smp serve` lets its clients go when it stops (`ServiceServer.close`), the pen at rest.

The session the close stopped ends its pass (recorded, `session.pass` and `session.result`
broadcast: "the service is shutting down") and every client's queued messages leave before
the connections are closed (1001), so the driver and the viewers hear how the pass ended
(docs/service.md "When smp serve stops"). Nothing here waits before the needle's stop: the
close stops the pen first, whatever the clients do. Every wait is bounded: a session slower
than TELL_WITHIN_S, a client that reads nothing (its socket backed up), a peer that never
answers the close (CLOSE_TIMEOUT_S) is not waited for.
"""

from __future__ import annotations

import asyncio
from typing import Any

from smpdevice.control.aio import run_in_new_thread

# How long a closing connection may take to answer the close: a hung peer must not hold the
# service's exit (the pen is at rest before any connection is closed; see server.close()).
CLOSE_TIMEOUT_S = 2.0
# How long the session stopped may take to end its pass and tell it, and the clients' queued
# messages to leave, before the connections close; how often the outboxes are looked at then.
TELL_WITHIN_S = 3.0
TELL_POLL_S = 0.01


async def tell_clients(service: Any, within_s: float) -> None:
    """With the pen at rest: let the session stopped end its pass (its records and its
    notifications), then every client's queued messages leave, at most `within_s` on the
    loop's clock in all. A client whose socket is backed up (it reads nothing) is not waited
    for; a session slower than that neither (its record is kept all the same, and the
    service's own close still joins it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    # its own thread, not the loop's default pool: a wait there could exceed `within_s`
    await asyncio.wrap_future(run_in_new_thread(service.work.join, within_s,
                                                name="smp-close-tell"))
    await asyncio.sleep(0)  # the broadcasts it handed the loop are queued by now
    while loop.time() < deadline and any(
            _waiting(client) for client in list(service.clients.values())):
        await asyncio.sleep(TELL_POLL_S)
    await asyncio.sleep(0)  # each writer hands its last message to its connection


def _waiting(client: Any) -> bool:
    """A client with messages still queued whose connection takes them (not closing, its
    socket's buffer under its high-water mark: else it is not reading and would hold the
    close for nothing)."""
    if client.closing or client.outbox.empty():
        return False
    transport = getattr(client.ws, "transport", None)
    if transport is None or transport.is_closing():
        return False
    try:
        return bool(transport.get_write_buffer_size() < transport.get_write_buffer_limits()[1])
    except (AttributeError, NotImplementedError):  # a transport that cannot say: a short wait
        return True


async def closed_within(server: Any, timeout_s: float, service: Any, door: Any) -> None:
    """Wait for `server`'s connections to close, at most `timeout_s`: a peer that reads
    nothing holds its Close frame unsent, so the connections left then are cut (the pen is at
    rest). A closing connection is no longer in `server.connections`: the service's own list
    of clients names them, and the door every socket from its accept (`door.open`), those
    that never finished their opening handshake too (a browser's spare socket, a hung
    client), which websockets would otherwise wait for up to OPEN_TIMEOUT_S each."""
    try:
        await asyncio.wait_for(asyncio.shield(server.wait_closed()), timeout_s)
    except TimeoutError:
        cut([client.ws for client in list(service.clients.values())]
            + (list(door.open) if door is not None else []))
        await server.wait_closed()


def cut(sockets: list[Any]) -> None:
    for ws in sockets:
        transport = getattr(ws, "transport", None)
        if transport is not None:
            transport.abort()
