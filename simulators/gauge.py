"""The technician's depth gauge: reads the TRUE needle protrusion, not what the pen reports.

It is a separate instrument, not part of the firmware protocol. In-process: `sim.gauge.read_mm()`.
Over TCP (what `smp sim` serves, loopback only), a line protocol:

    client: READ\\n        gauge: 0.5234\\n      (mm, 4 decimals)
    client: anything else  gauge: ERR unknown command, send READ\\n
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable


class Gauge:
    """Reads the true protrusion through the pen's hidden offset and gain (and any drift)."""

    RESOLUTION_MM = 0.0001

    def __init__(self, read_true_mm: Callable[[], float]) -> None:
        self._read_true_mm = read_true_mm
        self.reads = 0

    def read_mm(self) -> float:
        """True protrusion in mm; 0.0 while the needle is still inside the cartridge."""
        self.reads += 1
        return round(max(0.0, self._read_true_mm()), 4)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        gauge: Gauge = self.server.gauge  # type: ignore[attr-defined]
        for line in self.rfile:
            if line.strip().upper() == b"READ":
                self.wfile.write(f"{gauge.read_mm():.4f}\n".encode())
            else:
                self.wfile.write(b"ERR unknown command, send READ\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class GaugeServer:
    """Serves a gauge on 127.0.0.1:port (0 = any free port) in a daemon thread."""

    def __init__(self, gauge: Gauge, port: int = 0) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.gauge = gauge  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name="pensim-gauge", daemon=True,
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def read_gauge(host: str, port: int, timeout_s: float = 2.0) -> float:
    """Client side: one READ from a gauge server (what calibration does with a USB gauge)."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(b"READ\n")
        reply = sock.makefile("rb").readline()
    return float(reply)
