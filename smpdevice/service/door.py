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
- a connection younger than GRACE_S is never cut for a newer one (bursts of connections that
  close again at once cut every E-stop client in its handshake: review 14b); when every one
  that could give way is that young, the newcomer is cut instead;
- TCP and the Unix socket (0600: this user only) wait in pools of their own, and a TCP
  newcomer never cuts a Unix one: nothing on the network keeps a local E-stop out.
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

MAX_PENDING = 64  # connections without rpc.hello, per pool (TCP, Unix socket)
GRACE_S = 0.5  # a connection's handshake and hello take milliseconds: never cut before this
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
        # without a hello yet, oldest first: connection -> (its pool, when it came)
        self.pending: OrderedDict[Any, tuple[str, float]] = OrderedDict()
        self.cut = 0
        self._logged_s = 0.0

    def admit(self, conn: Any, pool: str = "tcp") -> bool:
        """A connection was accepted into `pool` ("tcp" or "unix"): keep it (True) or cut it
        now (False)."""
        for old in [c for c in self.pending if _authenticated(c)]:
            del self.pending[old]  # said hello since: no longer pending
        now = time.monotonic()
        while len(self.open) >= self.max_connections or self._waiting(pool) >= self.max_pending:
            room = self._give_way(pool, now, full=len(self.open) >= self.max_connections)
            if room is None:  # nobody may give way: the newcomer is cut
                self._cut(conn, "every connection the service can hold is taken, none for "
                                f"{GRACE_S:g} s without rpc.hello")
                return False
            del self.pending[room]
            self._cut(room, "room for a newer connection: it had not sent rpc.hello")
        self.open.add(conn)
        self.pending[conn] = (pool, now)
        return True

    def _waiting(self, pool: str) -> int:
        return sum(1 for kind, _ in self.pending.values() if kind == pool)

    def _give_way(self, pool: str, now: float, full: bool) -> Any:
        """The connection cut for a newcomer of `pool`: the oldest without a hello for
        GRACE_S, of its pool (or, all descriptors taken, of any pool a newcomer of `pool` may
        cut: a TCP one never cuts a Unix one; a Unix one cuts a TCP one whatever its age)."""
        for conn, (kind, since) in self.pending.items():
            if kind == pool and now - since >= GRACE_S:
                return conn
            if pool == "unix" and kind == "tcp" and full:
                return conn
        return None

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


def door_connection(door: Door, pool: str = "tcp") -> type[ServerConnection]:
    """websockets' connection class, counted by `door` in `pool` from accept to close."""

    class DoorConnection(ServerConnection):
        service_client: Any = None  # the connection's Client, once serve_client runs

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            door.admit(self, pool)

        def connection_lost(self, exc: Exception | None) -> None:
            door.forget(self)
            super().connection_lost(exc)

    return DoorConnection
