"""The host's side of a `PenSimulator`: its ports, the bytes both ways, disconnect/reconnect.

A mixin of `PenSimulator` (simulators/sim.py), which owns the firmware, the clock, the link
faults and the queues this code fills and drains: `_in` (host -> pen, by arrival time) and
`_out` (pen -> host, by delivery time). Each `HostPort` has its own receive queue (`_rx`,
delivered, waiting for that port to read): every open port of the current connection gets
every chunk, so a tap that reads never takes the owner's bytes. Every method runs under the
simulator's condition `_cond`.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
import urllib.parse
from collections import deque

from simulators.causes import BY_HAND, Causes
from simulators.clock import Clock
from simulators.faults import LinkFaults
from simulators.firmware import PenFirmware
from simulators.rx_buffer import RX_LIMIT, make_room


class LinkDisconnected(ConnectionError):
    """The simulated port went away (disconnect) or belongs to a link since reconnected."""


class PortInUse(ConnectionError):
    """An exclusive port (what `pensim://` opens) is already open on this simulator."""

class HostLink:
    """Ports and host-side I/O of a `PenSimulator` (the attributes below are its own)."""

    name: str
    clock: Clock
    virtual: bool
    link: LinkFaults
    firmware: PenFirmware
    closed: bool
    connected: bool
    generation: int
    open_ports: int
    _owner: HostPort | None
    _causes: Causes
    _cond: threading.Condition
    _tick_cond: threading.Condition
    _exchanging: bool
    _readers = 0  # threads waiting in a read (`_wait`): with none, nobody needs a notify
    _byte_s: float
    _in_free_s: float
    _in: deque[tuple[float, bytes]]
    _out: deque[tuple[float, bytes]]
    _ports: list[HostPort]  # the open ports of the current connection: each gets every chunk

    @property
    def url(self) -> str:
        """`pensim://NAME`, the name percent-quoted (a `#`, `?` or space would cut it)."""
        return "pensim://" + urllib.parse.quote(self.name, safe="")

    def _run_until(self, t_s: float) -> None:
        raise NotImplementedError

    def _arrive_now(self, data: bytes) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ link control
    def disconnect(self) -> None:
        """The port disappears: open ports raise, bytes in flight are lost. The pen runs on
        (until `reconnect()`, whatever scheduled disconnect windows end meanwhile)."""
        with self._cond:
            self._run_until(self.clock.now())
            self._causes.hold("disconnect", BY_HAND)
            self._disconnect()

    def reconnect(self) -> None:
        """The port is back (every disconnect under way ends); open it again (ports opened
        before the disconnect stay dead)."""
        with self._cond:
            self._run_until(self.clock.now())
            self._causes.release("disconnect", BY_HAND)
            self._reconnect()

    def _disconnect(self) -> None:
        self.connected = False
        self._in.clear()
        self._out.clear()
        for port in self._ports:  # dead now: what they had not read is lost
            port._drop_rx()
        self._ports = []
        self._cond.notify_all()

    def _reconnect(self) -> None:
        if self.connected:
            return
        self.connected = True
        self.generation += 1
        self.firmware.decoder.reset()  # a half frame from the old link is garbage now
        self._cond.notify_all()

    def open_port(self, exclusive: bool = False) -> HostPort:
        """The host's end of the link (pyserial's pensim:// handler wraps an exclusive one).

        Like a serial device, at most one exclusive port is open at a time: a second raises
        PortInUse until the first closes (or dies with a disconnect). Non-exclusive ports are
        the test's back door (QA taps, bridges) and never conflict.
        """
        with self._cond:
            if self.closed:
                raise LinkDisconnected(f"simulator {self.name} is closed")
            if not self.connected:
                raise LinkDisconnected(f"simulator {self.name} is disconnected")
            owner = self._owner
            if exclusive and owner is not None and owner.is_open \
                    and owner.generation == self.generation:
                raise PortInUse(
                    f"{self.url} is in use: another program or port has it open; close that "
                    f"port first (a serial port has one owner at a time)"
                )
            port = HostPort(self)
            self._ports.append(port)
            if exclusive:
                self._owner = port
            return port

    # ------------------------------------------------------------------ host side I/O
    def _host_write(self, port: HostPort, data: bytes) -> None:
        with self._cond:
            port.check()
            now_s = self.clock.now()
            self._run_until(now_s)
            chunks = self.link.inbound_frames(bytes(data), now_s)
            if not chunks:
                return
            if not (self._byte_s or self._in) and len(chunks) == 1 and not chunks[0][0]:
                self._arrive_now(chunks[0][1])  # the common case: nothing waits before it
                return
            for delay_s, data in chunks:
                arrive_s = now_s
                if self._byte_s:
                    arrive_s = max(now_s, self._in_free_s) + len(data) * self._byte_s
                    self._in_free_s = arrive_s
                # by arrival time: a delayed frame is overtaken by later ones
                bisect.insort(self._in, (arrive_s + delay_s, data), key=lambda x: x[0])
            self._run_until(now_s)
            if self._in:
                self._tick_cond.notify()  # the real-time thread runs a paced arrival on time

    def _host_exchange(self, port: HostPort, data: bytes) -> list[bytes]:
        """Write, then take every chunk due now (the replies), under one hold of the lock: the
        caller delivers them itself, so no reader thread is woken for them."""
        with self._cond:
            self._exchanging = True
            try:
                port.check()
                now_s = self.clock.now()
                self._run_until(now_s)
                if data and not (self._byte_s or self._in or self._out or port._rx) \
                        and len(self._ports) == 1 and self._ports[0] is port \
                        and self.link.passthrough(now_s):
                    # Nothing queued either way, no other port to be given the replies and no
                    # fault to apply: what the queues would do (deliver them now), without them.
                    self.firmware.receive_now(bytes(data))
                    return self.firmware.take_frames()
                self._host_write(port, data)
            finally:
                self._exchanging = False
            self._promote()
            chunks = list(port._rx)
            port._drop_rx()
            if self._out or (self._readers and len(self._ports) > 1):
                # chunks due later (delay, pacing), or another port's reader blocked in a read
                # was given this exchange's replies (a tap's E-stop): wake them
                self._cond.notify_all()
            return chunks

    def _lose_in_flight(self) -> None:
        """A stall began at `link.stall_began_s`: whatever was in flight then (arriving or due
        later, either way) never arrives; what was due by then has arrived (R06)."""
        began_s = self.link.stall_began_s
        if began_s is None:
            return
        self.link.stall_began_s = None
        due_s = began_s + 1e-6  # the same rounding as _promote
        lost_in = [item for item in self._in if item[0] > began_s]
        lost_out = [item for item in self._out if item[0] > due_s]
        # in place: _run_until holds on to these deques
        if lost_in:
            kept = [item for item in self._in if item[0] <= began_s]
            self._in.clear()
            self._in.extend(kept)
            self.link.stats["stalled_bytes_in"] += sum(len(item[1]) for item in lost_in)
        if lost_out:
            kept = [item for item in self._out if item[0] <= due_s]
            self._out.clear()
            self._out.extend(kept)
            self.link.stats["stalled_frames"] += len(lost_out)

    def _promote(self) -> None:
        """Move chunks whose delivery time has come into every open port's receive buffer."""
        if self.link.stall_began_s is not None:
            self._lose_in_flight()
        elif not self._out:
            return  # nothing in flight (a virtual-time host asks after every step)
        now_s = self.clock.now() + 1e-6  # the firmware rounds clock time to whole ms the same way
        out, ports = self._out, self._ports
        while out and out[0][0] <= now_s:
            chunk = out.popleft()[1]
            for port in ports:
                if port._rx_bytes + len(chunk) > RX_LIMIT and not make_room(port, chunk,
                                                                            self.link.stats):
                    self.link.stats["rx_overflow_bytes"] += len(chunk)
                    continue
                port._rx.append(chunk)
                port._rx_bytes += len(chunk)

    def _wait(self, deadline: float | None) -> bool:
        """Wait for news (wall time); False when the deadline has passed."""
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            return False
        if self._out and not self.virtual:
            until = self._out[0][0] - self.clock.now()
            timeout = until if timeout is None else min(timeout, until)
        self._readers += 1  # counted under the lock: a notify skipped only when nobody waits
        try:
            self._cond.wait(None if timeout is None else max(timeout, 0.0005))
        finally:
            self._readers -= 1
        return True

    def _host_read(self, port: HostPort, size: int, timeout_s: float | None) -> bytes:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        out = bytearray()
        with self._cond:
            while True:
                port.check()
                if not self.virtual:
                    self._run_until(self.clock.now())
                self._promote()
                rx = port._rx
                while rx and len(out) < size:
                    chunk = rx.popleft()
                    take = size - len(out)
                    out += chunk[:take]
                    if len(chunk) > take:
                        rx.appendleft(chunk[take:])
                    port._rx_bytes -= min(take, len(chunk))
                if len(out) >= size or not self._wait(deadline):
                    return bytes(out)

    def _host_read_chunk(self, port: HostPort, timeout_s: float | None) -> bytes:
        chunks = self._host_take(port, timeout_s, every=False)
        return chunks[0] if chunks else b""

    def _host_read_chunks(self, port: HostPort, timeout_s: float | None) -> list[bytes]:
        """Every chunk due, in order, once at least one is (waiting up to timeout_s)."""
        return self._host_take(port, timeout_s, every=True)

    def _host_wait_chunk(self, port: HostPort, timeout_s: float | None) -> bool:
        """True once a chunk is due (left for a read), waiting up to timeout_s."""
        return bool(self._host_take(port, timeout_s, every=False, keep=True))

    def _host_take(self, port: HostPort, timeout_s: float | None, every: bool,
                   keep: bool = False) -> list[bytes]:
        """The next chunk due (or `every` one), waiting up to timeout_s; [] if none came.
        `keep`: only look (the chunks stay for a read)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while True:
                port.check()
                self._promote()
                rx = port._rx
                if rx and keep:
                    return [rx[0]]
                if rx:
                    chunks = list(rx) if every else [rx[0]]
                    for _ in chunks:
                        rx.popleft()
                    port._rx_bytes -= sum(map(len, chunks))
                    return chunks
                if not self._wait(deadline):
                    return []

    def _host_in_waiting(self, port: HostPort) -> int:
        with self._cond:
            port.check()
            if not self.virtual:
                self._run_until(self.clock.now())
            self._promote()
            return port._rx_bytes

    def _host_reset_input(self, port: HostPort) -> None:
        with self._cond:
            port.check()
            self._promote()
            port._drop_rx()


def _timeout(timeout_s: float | None) -> float | None:
    """A read's wall-time timeout: None (or inf) waits forever; NaN or a negative one is
    refused (NaN used to wait forever, whatever came). One longer than a condition can wait
    (threading.TIMEOUT_MAX, some 292 years) is forever too, not an OverflowError."""
    if timeout_s is None or timeout_s == math.inf:
        return None
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) \
            or not timeout_s >= 0:
        raise ValueError(f"timeout_s={timeout_s!r} is refused: give seconds >= 0, or None to "
                         "wait for ever")
    return None if timeout_s > threading.TIMEOUT_MAX else timeout_s


class HostPort:
    """The host's end of one connection to a simulator. Dead after a disconnect."""

    def __init__(self, sim: HostLink) -> None:
        self.sim = sim
        self.generation = sim.generation
        self.is_open = True
        self._rx: deque[bytes] = deque()  # delivered to this port, waiting to be read
        self._rx_bytes = 0
        sim.open_ports += 1

    def _drop_rx(self) -> None:
        """Forget what this port was delivered and has not read (under the sim's lock)."""
        self._rx.clear()
        self._rx_bytes = 0

    @property
    def alive(self) -> bool:
        """Open, on a running simulator, and of its current connection (check() raises why not)."""
        sim = self.sim
        return self.is_open and not sim.closed and sim.connected \
            and sim.generation == self.generation

    def check(self) -> None:
        sim = self.sim
        if not self.is_open:
            raise LinkDisconnected("port is closed")
        if sim.closed:
            raise LinkDisconnected(f"simulator {sim.name} was closed")
        if not sim.connected or sim.generation != self.generation:
            raise LinkDisconnected(f"simulator {sim.name} disconnected; reopen the port")

    def write(self, data: bytes) -> int:
        self.sim._host_write(self, data)
        return len(data)

    def exchange(self, data: bytes) -> list[bytes]:
        """Write `data` and return every chunk due now, in order (the replies, at once)."""
        return self.sim._host_exchange(self, data)

    def read(self, size: int = 1, timeout_s: float | None = None) -> bytes:
        """Up to `size` bytes; blocks until `size` or the (wall-time) timeout; None = forever."""
        return self.sim._host_read(self, size, _timeout(timeout_s))

    def read_chunk(self, timeout_s: float | None = None) -> bytes:
        """The next chunk as the pen wrote it (one frame unless split), or b"" on timeout."""
        return self.sim._host_read_chunk(self, _timeout(timeout_s))

    def read_chunks(self, timeout_s: float | None = None) -> list[bytes]:
        """Every chunk due now, in order, waiting up to timeout_s for the first ([] then)."""
        return self.sim._host_read_chunks(self, _timeout(timeout_s))

    def wait_chunk(self, timeout_s: float | None = None) -> bool:
        """True once a chunk is due, waiting up to timeout_s; it stays for a read. A bridge
        waits with this, then takes and writes under one lock (reach.py: order kept)."""
        return self.sim._host_wait_chunk(self, _timeout(timeout_s))

    @property
    def in_waiting(self) -> int:
        return self.sim._host_in_waiting(self)

    def reset_input_buffer(self) -> None:
        self.sim._host_reset_input(self)

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            with self.sim._cond:
                self.sim.open_ports -= 1
                if self.sim._owner is self:
                    self.sim._owner = None
                if self in self.sim._ports:
                    self.sim._ports.remove(self)
                self._drop_rx()
                self.sim._cond.notify_all()
