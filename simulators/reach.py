"""Reaching a simulator from outside the process: a pseudo-terminal, or TCP on loopback.

Both bridge bytes between an OS endpoint and a `HostPort` of a real-time `PenSimulator`, with
two daemon threads (host -> pen, pen -> host) that block with short timeouts, so an idle bridge
costs next to no CPU. The host -> pen thread hands each command to `HostPort.exchange` and
writes the replies itself, at once: no other thread is woken per command (docs/performance.md,
"The simulator's answer time"). Each chunk the pen wrote (one frame, unless a link fault split
it) goes out whole: pyserial's socket:// does not set TCP_NODELAY, so the sender must not dribble.

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

from simulators.sim import HostPort, LinkDisconnected, PenSimulator

_IDLE_S = 0.05  # how long a bridge thread blocks before looking at its stop flag


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
        """What the pen writes by itself (telemetry, events): the simulator's thread made it."""
        while not self._stop.is_set():
            port = self._current_port()
            if port is None:
                continue
            try:
                chunks = port.read_chunks(_IDLE_S)  # at 1 kHz telemetry, several per wake
            except LinkDisconnected:
                continue
            if chunks and not self._write_out(b"".join(chunks)):
                return

    def _write_out(self, chunk: bytes) -> bool:
        with self._out_lock:  # whole chunks, one writer at a time: frames never interleave
            try:
                os.write(self._master, chunk)
            except BlockingIOError:
                pass  # nobody is reading the terminal: the bytes are lost, as on a UART
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
        while not self._stop.is_set():
            if not poller.poll(idle_ms):
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
                chunks = port.exchange(data)  # the replies, due now
            except LinkDisconnected:  # none yet, or of an old connection: open a new one
                port = self._current_port()
                if port is None:
                    continue  # disconnected: dropped
                try:
                    chunks = port.exchange(data)
                except LinkDisconnected:
                    continue
            if chunks and not self._write_out(b"".join(chunks)):  # one chunk: no copy
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
        send_lock = threading.Lock()  # whole chunks, one sender at a time

        def send(chunk: bytes) -> None:
            with send_lock:
                conn.sendall(chunk)

        def pen_to_host() -> None:
            while not (done.is_set() or self._stop.is_set()):
                try:
                    chunks = port.read_chunks(_IDLE_S)
                    if chunks:
                        send(b"".join(chunks))
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
                chunks = port.exchange(data)  # the replies go out from this thread, at once
                if chunks:
                    send(b"".join(chunks))
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
