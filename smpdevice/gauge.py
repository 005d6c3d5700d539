"""Depth gauges: the instrument that reads the needle's TRUE protrusion during calibration.

Three kinds, one interface (`read_mm(request)`):
- `SimulatorGauge`: the gauge of a simulated pen in this process (`pensim://NAME`, or the
  simulator behind an open `pensim://` port);
- `TcpGauge`: a gauge served over TCP (`tcp://127.0.0.1:PORT`, what `smp sim` serves; a USB
  gauge behind a small bridge speaks the same line protocol: `READ\\n` -> `0.5234\\n`);
- `ManualGauge`: a person reading a dial gauge and typing the value, with every entry checked
  (a number, in range, not a factor-10 typo, growing with the actuator). At any prompt `r`
  redoes the previous point and `q` aborts without saving.
"""

from __future__ import annotations

import math
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import click

from smpdevice.calibration import CalibrationError
from smpdevice.calibration_fit import EntryError, check_range, parse_reading
from smpdevice.errors import SmpError

DEFAULT_TIMEOUT_S = 2.0


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
        """`target`: a `pensim://NAME` URL, a simulator name, or an open `pensim://` port."""
        import simulators

        sim = simulators.lookup(target)
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


class TcpGauge:
    """A gauge over TCP: send `READ\\n`, get one line with the reading in mm."""

    manual = False

    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
            raise GaugeError(f"bad gauge URL {url!r}; expected tcp://HOST:PORT, e.g. "
                             "tcp://127.0.0.1:7100")
        self.url = url
        self.address = (parts.hostname, parts.port)
        self.timeout_s = timeout_s
        self.description = f"gauge at {url}"
        self._sock: socket.socket | None = None
        self._reader: Any = None
        self._connect()

    def _connect(self) -> None:
        try:
            self._sock = socket.create_connection(self.address, timeout=self.timeout_s)
        except OSError as exc:
            raise GaugeError(
                f"cannot reach the gauge at {self.url}: {exc.strerror or exc}. "
                "Is `smp sim` (or the gauge bridge) running, and is the port right?"
            ) from exc
        self._reader = self._sock.makefile("rb")

    def _exchange(self) -> bytes:
        assert self._sock is not None
        self._sock.sendall(b"READ\n")
        line = self._reader.readline()
        if not line:
            raise ConnectionResetError("the gauge closed the connection")
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
        text = line.decode("ascii", "replace").strip()
        try:
            value = float(text)
        except ValueError:
            raise GaugeError(f"the gauge at {self.url} answered {text!r}, not a reading") from None
        if not math.isfinite(value):
            raise GaugeError(f"the gauge at {self.url} answered {text!r}, not a reading")
        return _check_automatic(value, request, self.description)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _click_prompt(text: str) -> str:
    return click.prompt(text, default="", show_default=False, prompt_suffix=" ")


class ManualGauge:
    """A technician with a dial gauge: prompts, checks each entry, re-asks until it is valid."""

    manual = True
    description = "manual gauge (typed by the technician)"

    def __init__(
        self,
        prompt: Callable[[str], str] = _click_prompt,
        echo: Callable[[str], None] = click.echo,
    ) -> None:
        self.prompt = prompt
        self.echo = echo

    def _ask(self, question: str, parse: Callable[[str], float | None]) -> float | None:
        while True:
            text = self.prompt(question).strip()
            if text.lower() == "q":
                raise CalibrationAborted()
            if text.lower() == "r":
                raise RedoPoint()
            try:
                return parse(text)
            except EntryError as exc:
                self.echo(f"  refused: {exc}")

    def read_mm(self, request: GaugeRequest) -> float:
        hint = f" (expected about {request.expected_mm:.2f})" if request.expected_mm else ""
        self.echo(
            f"{request.label}: the actuator is at {request.actuator_mm:.3f} mm. "
            f"Read the gauge{hint}."
        )

        def parse(text: str) -> float:
            low = request.low_mm
            value = parse_reading(
                text, low=low, high=request.high_mm, expected=request.expected_mm
            )
            if value <= 0 and not request.allow_zero:
                raise EntryError(
                    "a reading of 0 mm means the tip is still inside the cartridge, but it "
                    "must be out here. Check that the gauge touches the tip, then re-enter."
                )
            if request.check is not None:
                request.check(value)
            return value

        value = self._ask("  gauge reading in mm (r = redo previous point, q = abort):", parse)
        assert value is not None
        return value

    def read_tachometer_hz(
        self, commanded_hz: float, low_hz: float, high_hz: float
    ) -> float | None:
        """An optional tachometer reading; blank skips it."""

        def parse(text: str) -> float | None:
            if not text:
                return None
            return parse_reading(
                text, low=low_hz, high=high_hz, expected=commanded_hz,
                what="tachometer reading", unit="Hz",
            )

        return self._ask(
            f"  tachometer reading in Hz at {commanded_hz:g} Hz (blank = no tachometer, "
            "r = redo previous speed, q = abort):",
            parse,
        )

    def close(self) -> None:
        """Nothing to close."""


def open_gauge(
    gauge_url: str | None,
    *,
    port_url: str | None = None,
    port: Any = None,
    manual: ManualGauge | None = None,
) -> Gauge:
    """The gauge for a calibration run.

    `gauge_url`: `tcp://HOST:PORT`, `pensim://NAME`, `manual`, or None. With None, a `pensim://`
    pen's own gauge is used (found through `port`, the open port object, or `port_url`);
    otherwise a `ManualGauge`.
    """
    if gauge_url is None:
        if port_url is not None and port_url.startswith("pensim://"):
            return SimulatorGauge(port if port is not None else port_url)
        return manual or ManualGauge()
    if gauge_url == "manual":
        return manual or ManualGauge()
    if gauge_url.startswith("tcp://"):
        return TcpGauge(gauge_url)
    if gauge_url.startswith("pensim://"):
        return SimulatorGauge(gauge_url)
    raise GaugeError(
        f"unknown gauge {gauge_url!r}; use tcp://HOST:PORT (a gauge server such as `smp sim` "
        "prints), pensim://NAME (a simulator in this process) or manual"
    )
