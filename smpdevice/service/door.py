"""How many connections `smp serve` holds, so that anyone's E-stop can always get in.

Each connection holds a file descriptor. Taken without a cap, idle TCP connections from any
local process (no token needed) used them all: every accept then failed ("Too many open
files", asyncio retrying each second), and `smp estop --service` waited 10 s. So:

- connections in all stay `FD_RESERVE` descriptors under the process's limit (the service's own
  files, the pass log, the pen's port: opened later, they must not fail), and an accept never
  fails for want of one;
- connections that have not said `rpc.hello` (handshaking, or open and silent) are at most
  `MAX_PENDING`. When a connection comes and either cap is reached, the oldest connection that
  has not said hello is cut to make room: a newcomer (an E-stop client: connect, hello, E-stop
  take a few milliseconds) always gets in, unless every descriptor is held by authenticated
  clients, when the newcomer is cut instead.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections import OrderedDict
from typing import Any

import structlog
from websockets.asyncio.server import ServerConnection

log = structlog.get_logger("smpdevice.service")

MAX_PENDING = 64  # connections without rpc.hello
FD_RESERVE = 32  # descriptors kept free for the service's own files
# asyncio accepts up to `backlog` sockets per wake-up, before the door sees any (it is the
# listen queue too): three wake-ups' worth are kept free. Asyncio's 100 where descriptors allow.
MAX_BACKLOG = 100
MIN_CONNECTIONS = 8  # even under a tiny descriptor limit
LOG_EVERY_S = 5.0  # one log line per burst of cut connections, not one per connection


def open_fds() -> int:
    """Descriptors this process holds now (Linux, macOS: /dev/fd); 64 where it cannot tell."""
    for where in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(where))
        except OSError:
            continue
    return 64


def fd_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY or soft > 1 << 20 else soft


def accept_backlog() -> int:
    """The listen queue, and the most sockets asyncio accepts at one wake-up."""
    return max(8, min(MAX_BACKLOG, fd_limit() // 8))


def connection_cap() -> int:
    """How many connections fit under the descriptor limit with `FD_RESERVE` to spare, and
    room for three wake-ups' worth of accepts in flight."""
    spare = FD_RESERVE + 3 * accept_backlog()
    return max(MIN_CONNECTIONS, fd_limit() - open_fds() - spare)


class Door:
    """Counts the service's connections (TCP and Unix socket alike: they share descriptors)."""

    def __init__(self, max_connections: int | None = None,
                 max_pending: int = MAX_PENDING) -> None:
        self.max_connections = max_connections or connection_cap()
        self.max_pending = max(1, min(max_pending, self.max_connections // 2))
        log.info("connection caps", connections=self.max_connections, pending=self.max_pending)
        self.open: set[Any] = set()
        self.pending: OrderedDict[Any, None] = OrderedDict()  # oldest first
        self.cut = 0
        self._logged_s = 0.0

    def admit(self, conn: Any) -> bool:
        """A connection was accepted: keep it (True) or cut it now (False)."""
        for old in [c for c in self.pending if _authenticated(c)]:
            del self.pending[old]  # said hello since: no longer pending
        while self.pending and (len(self.open) >= self.max_connections
                                or len(self.pending) >= self.max_pending):
            oldest, _ = self.pending.popitem(last=False)
            self._cut(oldest, "room for a newer connection: it had not sent rpc.hello")
        if len(self.open) >= self.max_connections:  # every one authenticated
            self._cut(conn, "every connection the service can hold is taken")
            return False
        self.open.add(conn)
        self.pending[conn] = None
        return True

    def forget(self, conn: Any) -> None:
        self.open.discard(conn)
        self.pending.pop(conn, None)

    def _cut(self, conn: Any, why: str) -> None:
        self.open.discard(conn)
        self.cut += 1
        transport = getattr(conn, "transport", None)
        if transport is not None:
            transport.abort()
        now = time.monotonic()
        if now - self._logged_s >= LOG_EVERY_S:
            self._logged_s = now
            log.warning("connection cut", why=why, cut_so_far=self.cut,
                        connections=len(self.open), pending=len(self.pending))


def _authenticated(conn: Any) -> bool:
    client = getattr(conn, "service_client", None)
    return client is not None and client.role is not None


def door_connection(door: Door) -> type[ServerConnection]:
    """websockets' connection class, counted by `door` from accept to close."""

    class DoorConnection(ServerConnection):
        service_client: Any = None  # the connection's Client, once serve_client runs

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            door.admit(self)

        def connection_lost(self, exc: Exception | None) -> None:
            door.forget(self)
            super().connection_lost(exc)

    return DoorConnection
