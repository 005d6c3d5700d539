"""Depth gauges: the instrument that reads the needle's TRUE protrusion during calibration.

Three kinds, one interface (`read_mm(request)`):
- `SimulatorGauge`: the gauge of a simulated pen in this process (`pensim://NAME`, or the
  simulator behind an open `pensim://` port);
- `TcpGauge`: a gauge served over TCP (`tcp://127.0.0.1:PORT`, what `smp sim` serves; a USB
  gauge behind a small bridge speaks the same line protocol: `READ\\n` -> `0.5234\\n`);
- `ManualGauge` (in `smpdevice.ui.gauges`, it prompts a person): a dial gauge read and typed
  by the technician, every entry checked by `smpdevice.calibration.readings`.

`open_gauge` (also in `smpdevice.ui.gauges`) picks one from a URL.
"""

from __future__ import annotations

import math
import select
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from smpdevice.calibration.readings import EntryError, check_range
from smpdevice.control.calibration import CalibrationError
from smpdevice.errors import SmpError

DEFAULT_TIMEOUT_S = 2.0
MAX_LINE_BYTES = 64  # a reading is a few characters; a longer line is never one
SHOWN_CHARS = 40  # of an answer that is not a reading, in the message


class GaugeError(SmpError):
    """The gauge cannot be reached or gave something that is not a reading."""


class RedoPoint(Exception):  # a request, not a failure
    """The technician asked to redo the previous point (typed `r`)."""


class CalibrationAborted(CalibrationError):
    """The technician aborted the calibration (typed `q`); nothing was saved."""

    exit_code = 1

    def __init__(self, message: str = "calibration aborted by the technician; nothing was saved."):
        super().__init__(message)


@dataclass(frozen=True)
class GaugeRequest:
    """What the workflow wants read, and what a valid reading looks like."""

    label: str  # e.g. "depth point 3 of 6"
    actuator_mm: float
    low_mm: float = 0.0
    high_mm: float = 3.0
    expected_mm: float | None = None  # for the factor-10 check of typed values
    allow_zero: bool = True  # 0 = tip inside the cartridge; meaningless for a depth point
    check: Callable[[float], None] | None = None  # extra check of a typed value (EntryError)
    redo: str = "redo previous point"  # what `r` does at this prompt (a prompt says it)


class Gauge(Protocol):
    manual: bool
    description: str

    def read_mm(self, request: GaugeRequest) -> float: ...

    def close(self) -> None: ...


def _check_automatic(value: float, request: GaugeRequest, source: str) -> float:
    try:
        check_range(value, request.low_mm, request.high_mm, what="gauge reading", unit="mm")
    except EntryError as exc:
        raise GaugeError(f"{source}: {exc}") from exc
    return value


class SimulatorGauge:
    """The gauge of an in-process simulated pen (reads its hidden true protrusion)."""

    manual = False

    def __init__(self, target: Any) -> None:
        """`target`: a `pensim://NAME` URL, a simulator name, an open `pensim://` port, or
        the `PenSimulator` itself."""
        import simulators

        sim = target if isinstance(target, simulators.PenSimulator) else simulators.lookup(target)
        if sim is None:
            raise GaugeError(
                f"no simulated pen is running behind {target!r} in this process. "
                "For a simulator in another process pass --gauge tcp://127.0.0.1:PORT "
                "(printed by `smp sim`)."
            )
        self.simulator = sim
        self.description = f"simulator gauge of {sim.url}"

    def read_mm(self, request: GaugeRequest) -> float:
        return _check_automatic(self.simulator.gauge.read_mm(), request, self.description)

    def close(self) -> None:
        """Nothing to close: the simulator belongs to whoever started it."""


def _tcp_address(url: object) -> tuple[str, int]:
    """(host, port) of tcp://HOST:PORT, or GaugeError; urllib raises ValueError for a port
    out of 0..65535, a non-numeric one or an unclosed [IPv6 bracket: the same bad URL."""
    bad = GaugeError(f"bad gauge URL {url!r}; expected tcp://HOST:PORT with PORT 1..65535, "
                     "e.g. tcp://127.0.0.1:7100")
    if not isinstance(url, str):
        raise bad
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise bad from None
    if parts.scheme != "tcp" or not host or port is None or not 1 <= port <= 65535:
        raise bad
    return host, port


class TcpGauge:
    """A gauge over TCP: send `READ\\n`, get one line with the reading in mm."""

    manual = False

    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url
        self.address = _tcp_address(url)
        self.timeout_s = timeout_s
        self.description = f"gauge at {url}"
        self._sock: socket.socket | None = None
        self._buf = bytearray()  # received, not yet read as an answer
        self._connect()

    def _connect(self) -> None:
        try:
            self._sock = socket.create_connection(self.address, timeout=self.timeout_s)
        except OSError as exc:
            raise GaugeError(
                f"cannot reach the gauge at {self.url}: {exc.strerror or exc}. "
                "Is `smp sim` (or the gauge bridge) running, and is the port right?"
            ) from exc
        self._buf.clear()

    def _exchange(self) -> bytes:
        if self._sock is None:  # closed after an answer that was not a reading
            self._connect()
        assert self._sock is not None
        unasked = self._unasked()
        if unasked:  # one READ answered twice: every later answer would be the one before
            self.close()
            raise GaugeError(f"the gauge at {self.url} sent {_shown(unasked)} without being "
                             "asked (more than one line for one READ?): its answers cannot be "
                             "matched to the points, so none is used. Check the gauge bridge: "
                             "it must answer each READ with exactly one line")
        self._sock.sendall(b"READ\n")
        return self._readline()

    def _unasked(self) -> bytes:
        """What the gauge sent since its last answer; b"" when nothing. A connection it
        closed meanwhile is an OSError (reconnected once by `read_mm`)."""
        assert self._sock is not None
        if self._buf:
            return bytes(self._buf)
        if not select.select([self._sock], [], [], 0)[0]:
            return b""
        data = self._sock.recv(MAX_LINE_BYTES, socket.MSG_PEEK)
        if not data:
            raise ConnectionResetError("the gauge closed the connection")
        return data

    def _readline(self) -> bytes:
        """One line (with its newline), at most MAX_LINE_BYTES + 1 bytes: a stream never fills
        memory; what follows it stays for `_unasked`."""
        assert self._sock is not None
        buf = self._buf
        while b"\n" not in buf and len(buf) <= MAX_LINE_BYTES:
            chunk = self._sock.recv(4096)
            if not chunk:
                if not buf:
                    raise ConnectionResetError("the gauge closed the connection")
                break
            buf += chunk
        end = buf.find(b"\n") + 1 or min(len(buf), MAX_LINE_BYTES + 1)
        line = bytes(buf[:end])
        del buf[:end]
        return line

    def read_mm(self, request: GaugeRequest) -> float:
        try:
            try:
                line = self._exchange()
            except OSError:  # one reconnect: a gauge bridge may have restarted
                self.close()
                self._connect()
                line = self._exchange()
        except OSError as exc:
            raise GaugeError(
                f"the gauge at {self.url} stopped answering: {exc}. Check it and retry."
            ) from exc
        if len(line) > MAX_LINE_BYTES:  # the rest of that line is still unread: start afresh
            self.close()
            raise GaugeError(f"the gauge at {self.url} answered {_shown(line)}, a line longer "
                             f"than {MAX_LINE_BYTES} bytes, not a reading. Check the gauge "
                             "bridge: it must answer READ with one number per line")
        text = line.decode("ascii", "replace").strip()
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise GaugeError(f"the gauge at {self.url} answered {_shown(line)}, not a reading")
        return _check_automatic(value, request, self.description)

    def close(self) -> None:
        self._buf.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _shown(line: bytes) -> str:
    """An answer as the message shows it: escaped, and cut short past SHOWN_CHARS."""
    text = line.decode("ascii", "replace").strip()
    if len(text) <= SHOWN_CHARS and len(line) <= MAX_LINE_BYTES:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}... (cut short)"
