"""The technician's depth gauge: reads the TRUE needle protrusion, not what the pen reports.

It is a separate instrument, not part of the firmware protocol. In-process: `sim.gauge.read_mm()`.
Over TCP (what `smp sim` serves, loopback only), a line protocol:

    client: READ\\n        gauge: 0.5234\\n      (mm, 4 decimals)
    client: anything else  gauge: ERR unknown command, send READ\\n
"""

from __future__ import annotations

import contextlib
import math
import random
import socket
import socketserver
import sys
import threading
from collections.abc import Callable


class Gauge:
    """Reads the true protrusion through the pen's hidden offset and gain (and any drift).

    Like a real dial or digital gauge it is not perfect: each reading has seeded Gaussian noise
    (`noise_mm`, sd) and the gauge bows over its travel (`nonlinearity_mm` at mid-travel, zero
    at both ends, sign and size from the seed), so a calibration fit shows real residuals.
    A tip inside the cartridge reads exactly 0.0 (the gauge's stop).
    """

    RESOLUTION_MM = 0.0001
    TRAVEL_MM = 3.0

    def __init__(self, read_true_mm: Callable[[], float], noise_mm: float = 0.0,
                 nonlinearity_mm: float = 0.0, seed: int = 0) -> None:
        self._read_true_mm = read_true_mm
        self._rng = random.Random(f"{seed}:gauge")
        self.noise_mm = noise_mm
        self.bow_mm = nonlinearity_mm * self._rng.choice((-1, 1)) * self._rng.uniform(0.5, 1.0)
        self.reads = 0

    def error_mm(self, true_mm: float) -> float:
        """The gauge's systematic error at `true_mm` (its bow), without noise."""
        x = min(max(true_mm, 0.0), self.TRAVEL_MM)
        return self.bow_mm * math.sin(math.pi * x / self.TRAVEL_MM)

    def read_mm(self) -> float:
        """True protrusion in mm (+ the gauge's error); 0.0 while the tip is in the cartridge."""
        self.reads += 1
        true_mm = self._read_true_mm()
        if true_mm <= 0.0:
            return 0.0
        noise = self._rng.gauss(0.0, self.noise_mm) if self.noise_mm else 0.0
        return round(max(0.0, true_mm + self.error_mm(true_mm) + noise), 4)


MAX_LINE_BYTES = 64  # a command is READ; a longer line is never one (the client's bound too)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # reset, broken pipe: the client left
            self._serve()

    def _serve(self) -> None:
        gauge: Gauge = self.server.gauge  # type: ignore[attr-defined]
        while line := self.rfile.readline(MAX_LINE_BYTES + 1):
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                # never buffer an endless line: say so once and hang up
                self.wfile.write(f"ERR line longer than {MAX_LINE_BYTES} bytes, "
                                 "send READ\n".encode())
                return
            if line.strip().upper() == b"READ":
                self.wfile.write(f"{gauge.read_mm():.4f}\n".encode())
            else:
                self.wfile.write(b"ERR unknown command, send READ\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        """One line, never a traceback, for what a client's handling raised (the gauge goes on
        serving the others)."""
        error = sys.exc_info()[1]
        print(f"gauge: client {client_address[0]}:{client_address[1]} dropped: "
              f"{type(error).__name__}: {error}", file=sys.stderr)


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
