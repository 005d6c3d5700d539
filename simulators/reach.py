"""Reaching a simulator from outside the process: a pseudo-terminal, or TCP on loopback.

Both bridge bytes between an OS endpoint and a `HostPort` of a real-time `PenSimulator`, with
two daemon threads (host -> pen, pen -> host) that block with short timeouts, so an idle bridge
costs next to no CPU. The host -> pen thread hands each command to `HostPort.exchange` and
writes the replies itself, at once: no other thread is woken per command (docs/performance.md,
"The simulator's answer time"). Each chunk the pen wrote (one frame, unless a link fault split
it) goes out whole: pyserial's socket:// does not set TCP_NODELAY, so the sender must not dribble.

A PTY whose host stops reading fills up: what it does not take waits in the bridge's `_Outbox`
(the rest of a frame it took the start of first, whole), and goes out once poll says the pty
takes bytes again (POLLOUT, in the host -> pen thread). While bytes wait, TELEMETRY frames are
skipped (a pen's rule for its transmit queue) and replies and EVENTs are kept (docs/protocol.md
section 12), so an answer never queues behind stale telemetry.

While the simulator is disconnected the PTY drops bytes both ways (a cable pulled behind a USB
adapter) and TCP closes the client and refuses new ones; after `reconnect()` both work again.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import tty
from collections import Counter, deque
from collections.abc import Callable
from functools import partial

from simulators.rx_buffer import RX_LIMIT, is_telemetry, make_room
from simulators.sim import HostPort, LinkDisconnected, PenSimulator

_IDLE_S = 0.05  # how long a bridge thread blocks before looking at its stop flag
_WRITE_MAX = 4096  # bytes joined into one write of a backlog (a pty takes about this at once)


class _Bridge:
    def __init__(self, sim: PenSimulator) -> None:
        if sim.virtual:
            raise ValueError("a PTY or TCP bridge needs a real-time simulator (clock=None)")
        self.sim = sim
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=f"pensim-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _open(self) -> HostPort | None:
        """A port on the simulator, or None while it is disconnected (retried by the caller)."""
        try:
            return self.sim.open_port()
        except LinkDisconnected:
            self._stop.wait(_IDLE_S)
            return None

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=1.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Outbox:
    """What the pty has not taken yet: `tail`, the rest of a chunk whose start went out (it
    must follow, whole), then whole chunks in order (`_rx`, `_rx_bytes`: the shape
    rx_buffer.make_room works on, so the same frames give way as in a port's buffer)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.tail = b""
        self._rx: deque[bytes] = deque()
        self._rx_bytes = 0
        self.stats: Counter[str] = Counter()

    @property
    def pending(self) -> bool:
        return bool(self.tail or self._rx)

    def send(self, chunks: list[bytes]) -> None:
        """Write `chunks` after whatever waits; with nothing waiting (the common case) they
        go out at once, in one write. A TELEMETRY frame that comes while bytes wait is skipped,
        as a pen skips one that falls due while its transmit queue holds bytes (protocol.md
        section 12): a reply then waits behind no stale telemetry. OSError: the pty is gone."""
        if self.pending:
            for chunk in chunks:
                if is_telemetry(chunk):
                    self.stats["rx_telemetry_dropped"] += 1
                else:
                    self._queue(chunk)
            self.flush()
            return
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            written = os.write(self.fd, data)  # inline: the answer path's every command
        except BlockingIOError:
            written = 0
        if written < len(data):
            self._keep_rest(chunks, written)

    def flush(self) -> None:
        """Write what waits, oldest first, until the pty takes no more."""
        while self.pending:
            if self.tail:
                self.tail = self.tail[self._write(self.tail):]
                if self.tail:
                    return
                continue
            chunks, size = [], 0
            while self._rx and size < _WRITE_MAX:
                chunks.append(self._rx.popleft())
                size += len(chunks[-1])
            self._rx_bytes -= size
            written = self._write(b"".join(chunks))
            self._keep_rest(chunks, written, front=True)
            if written < size:
                return

    def _write(self, data: bytes) -> int:
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0  # full: the host is not reading

    def _keep_rest(self, chunks: list[bytes], written: int, front: bool = False) -> None:
        """Keep what `written` bytes of `chunks` (joined) left: the cut chunk's rest as the
        tail, the untouched chunks whole (back at the front when they came from there)."""
        rest: list[bytes] = []
        for chunk in chunks:
            if written >= len(chunk):
                written -= len(chunk)
            elif written:
                self.tail, written = chunk[written:], 0
            else:
                rest.append(chunk)
        if front:
            self._rx.extendleft(reversed(rest))
            self._rx_bytes += sum(map(len, rest))
        else:
            for chunk in rest:
                self._queue(chunk)

    def _queue(self, chunk: bytes) -> None:
        if self._rx_bytes + len(chunk) > RX_LIMIT and not make_room(self, chunk, self.stats):
            self.stats["rx_overflow_bytes"] += len(chunk)
            return
        self._rx.append(chunk)
        self._rx_bytes += len(chunk)


class PtyBridge(_Bridge):
    """A pseudo-terminal in raw mode; the host opens `path` (e.g. /dev/pts/5) with pyserial."""

    def __init__(self, sim: PenSimulator) -> None:
        super().__init__(sim)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: bytes pass untouched
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._port_lock = threading.Lock()
        self._out_lock = threading.Lock()
        self._port: HostPort | None = None
        self._outbox = _Outbox(self._master)
        self.stats = self._outbox.stats  # rx_telemetry_dropped, rx_overflow_bytes: the pty's
        self._spawn(self._pen_to_host, "pty-out")
        self._spawn(self._host_to_pen, "pty-in")

    def _current_port(self) -> HostPort | None:
        port = self._port
        if port is not None and port.alive:
            return port  # the common case, without the lock (exchange checks it again)
        with self._port_lock:
            port = self._port
            if port is not None:
                try:
                    port.check()
                    return port
                except LinkDisconnected:
                    port.close()
                    self._port = None
            self._port = self._open()
            return self._port

    def _pen_to_host(self) -> None:
        """What the pen writes by itself (telemetry, events): the simulator's thread made it.
        While the pty is full it keeps taking them into the outbox, where old telemetry
        gives way (the port's own buffer stays empty); _host_to_pen flushes the outbox."""
        while not self._stop.is_set():
            port = self._current_port()
            if port is None:
                continue
            try:
                if port.wait_chunk(_IDLE_S) and not self._write_out(partial(port.read_chunks, 0)):
                    return  # at 1 kHz telemetry, several chunks per wake
            except LinkDisconnected:
                continue

    def _write_out(self, take: Callable[[], list[bytes]] | None) -> bool:
        """Take the chunks due (`take()`: a read, or an exchange; None: only flush the
        outbox) and send them, False once the pty is gone. Taken and written under one hold
        of the lock: one writer at a time, so frames never interleave, and chunks go out in
        the order they were taken (a reply's exchange taking a later TELEMETRY while the other
        thread held an earlier one wrote them out of order: a host reads a report sequence
        that goes back as a pen that rebooted). LinkDisconnected from `take` is raised."""
        with self._out_lock:
            chunks = take() if take is not None else []
            try:
                if chunks:
                    self._outbox.send(chunks)
                else:
                    self._outbox.flush()
            except OSError:
                return False
        return True

    def _host_to_pen(self) -> None:
        """Commands, on the raw fd with poll. The simulator answers within the write, so the
        reply goes out from this same thread at once: no hand-off to another thread per frame."""
        master = self._master
        poller = select.poll()  # registered once: cheaper per command than select()
        poller.register(master, select.POLLIN)
        idle_ms = int(_IDLE_S * 1000)
        room_wanted = False
        while not self._stop.is_set():
            outbox = self._outbox
            if room_wanted != outbox.pending:  # a full pty: wake on room too
                room_wanted = not room_wanted
                poller.modify(master, select.POLLIN | (select.POLLOUT if room_wanted else 0))
            ready = poller.poll(idle_ms)
            if not ready:
                continue
            if ready[0][1] & select.POLLOUT and not self._write_out(None):
                return
            if not ready[0][1] & select.POLLIN:
                continue
            try:
                data = os.read(master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not data:
                continue
            port = self._port  # as it was (the common case): exchange checks it is alive
            try:
                if port is None:
                    raise LinkDisconnected("no port yet")
                written = self._write_out(partial(port.exchange, data))  # the replies, now
            except LinkDisconnected:  # none yet, or of an old connection: open a new one
                port = self._current_port()
                if port is None:
                    continue  # disconnected: dropped
                try:
                    written = self._write_out(partial(port.exchange, data))
                except LinkDisconnected:
                    continue
            if not written:
                return

    def close(self) -> None:
        super().close()
        with self._port_lock:
            if self._port is not None:
                self._port.close()
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class TcpBridge(_Bridge):
    """A TCP server on 127.0.0.1 (one client at a time); reach it as `socket://127.0.0.1:PORT`."""

    def __init__(self, sim: PenSimulator, port: int = 0) -> None:
        super().__init__(sim)
        try:
            self._server = socket.create_server(("127.0.0.1", port))
        except OSError as exc:  # name the port ("Address already in use" alone names none);
            # the errno stays, for `smp sim` to word its usage error (cli/sim.py _listening)
            raise OSError(exc.errno, f"TCP port {port} on 127.0.0.1: {exc.strerror or exc}") \
                from exc
        self._server.settimeout(_IDLE_S * 4)
        self.port = self._server.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self._spawn(self._accept_loop, "tcp-accept")

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            port = self._open()
            if port is None:
                conn.close()  # the pen is unplugged: refuse
                continue
            self._serve(conn, port)

    def _serve(self, conn: socket.socket, port: HostPort) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(_IDLE_S)
        done = threading.Event()
        send_lock = threading.Lock()  # one sender at a time: see PtyBridge._write_out

        def send(take: Callable[[], list[bytes]]) -> None:
            with send_lock:  # taken and sent under one hold: in the order taken
                chunks = take()
                if chunks:
                    conn.sendall(b"".join(chunks))

        def pen_to_host() -> None:
            while not (done.is_set() or self._stop.is_set()):
                try:
                    if port.wait_chunk(_IDLE_S):
                        send(partial(port.read_chunks, 0))  # never waits
                except (LinkDisconnected, OSError):
                    break
            done.set()

        writer = threading.Thread(target=pen_to_host, name="pensim-tcp-out", daemon=True)
        writer.start()
        while not (done.is_set() or self._stop.is_set()):
            try:
                data = conn.recv(4096)
            except TimeoutError:
                try:
                    port.check()
                except LinkDisconnected:
                    break
                continue
            except OSError:
                break
            if not data:
                break  # the client closed
            try:
                send(partial(port.exchange, data))  # the replies go out from here, at once
            except (LinkDisconnected, OSError):
                break
        done.set()
        writer.join(timeout=1.0)
        port.close()
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
        conn.close()

    def close(self) -> None:
        super().close()
        self._server.close()
