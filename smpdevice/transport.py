"""Transport: open a byte stream to a pen from a pyserial URL.

Accepted ports:
- a device path (`/dev/ttyACM0`, `COM3`), opened exclusively so two programs never drive one pen;
- `usb:SERIALNO`: the USB serial port whose USB serial number is SERIALNO, wherever the OS put
  it today (ttyACM0 one day, ttyACM1 the next);
- any pyserial URL: `socket://127.0.0.1:7000` (a simulator over TCP), `pensim://` (a simulated
  pen in this process), `loop://`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import serial
from serial.tools import list_ports

from smpdevice.errors import SmpError

DEFAULT_BAUD = 115200
DEFAULT_PORT = "pensim://"

if "simulators" not in serial.protocol_handler_packages:
    # pyserial resolves `pensim://` by importing simulators.protocol_pensim on first use.
    serial.protocol_handler_packages.append("simulators")


class TransportError(SmpError):
    """The port cannot be opened or used."""


@dataclass(frozen=True)
class PortInfo:
    device: str
    description: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    manufacturer: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def available_ports() -> list[PortInfo]:
    """Serial ports the OS knows of, with their USB identity where there is one."""
    return [
        PortInfo(p.device, p.description or "", p.vid, p.pid, p.serial_number, p.manufacturer)
        for p in sorted(list_ports.comports(), key=lambda p: p.device)
    ]


def resolve_port(port: str) -> str:
    """Turn `usb:SERIALNO` into today's device path; other ports pass through."""
    if not port.startswith("usb:"):
        return port
    wanted = port[4:]
    for info in available_ports():
        if info.serial_number == wanted:
            return info.device
    known = ", ".join(
        f"{p.device} ({p.serial_number})" for p in available_ports() if p.serial_number
    )
    raise TransportError(
        f"no serial port with USB serial number {wanted!r} is connected"
        + (f"; connected: {known}" if known else "; no USB serial ports are connected")
        + ". Check the cable, or list ports with `smp ports`."
    )


def open_port(
    port: str, *, baudrate: int = DEFAULT_BAUD, timeout_s: float = 0.05
) -> TappedPort:
    """Open `port` for the link: a pyserial port in a `TappedPort` (it behaves as the port;
    a session's recording taps it). Raises TransportError with what to do when it cannot."""
    device = resolve_port(port)
    is_url = "://" in device
    try:
        if is_url:
            return TappedPort(serial.serial_for_url(device, baudrate=baudrate, timeout=timeout_s))
        return TappedPort(serial.Serial(device, baudrate=baudrate, timeout=timeout_s,
                                        exclusive=True))
    except (serial.SerialException, OSError, ValueError) as exc:
        raise TransportError(
            f"cannot open port {port!r}: {exc}. "
            "List the ports with `smp ports`, or use `pensim://` for the built-in simulator."
        ) from exc


# A tap sees ("host" | "pen", bytes). It runs in the reading or writing thread: it must only
# queue (smpdevice.records.frames.FrameWriter.add), never wait.
Tap = Callable[[str, bytes], None]
PREAMBLE_BYTES = 8192  # the first bytes of a connection, kept for a recording (the handshake)


class TappedPort:
    """A pyserial port that shows the bytes crossing it to a tap (the session's recording).

    Everything else is the wrapped port's (attributes are read and set on it). Until a tap is
    set, the first `PREAMBLE_BYTES` each way are kept (the handshake, so a recording can
    replay the connection). A tap that raises is dropped and logged: recording never fails
    the link. The host's bytes are shown before they are written, so a recording never has a
    reply before its command.
    """

    _OWN = frozenset({"inner", "tap", "preamble", "_preamble_left", "_tap_lock"})

    def __init__(self, inner: Any) -> None:
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "tap", None)
        object.__setattr__(self, "preamble", [])  # [(direction, bytes)], in order
        object.__setattr__(self, "_preamble_left", {"host": PREAMBLE_BYTES,
                                                    "pen": PREAMBLE_BYTES})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.inner, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self.inner, name)

    def set_tap(self, tap: Tap | None) -> None:
        self.tap = tap

    def show(self, direction: str, data: bytes) -> None:
        """Show bytes that crossed the port to the tap (or keep them for the preamble). The
        link's raw I/O on a POSIX port calls it for the bytes it reads and writes on the
        descriptor itself, so the tap sees them as if they went through this wrapper."""
        tap = self.tap
        if tap is None:
            left = self._preamble_left[direction]
            if left > 0:
                self._preamble_left[direction] = left - len(data)
                self.preamble.append((direction, bytes(data[:left])))
            return
        try:
            tap(direction, bytes(data))
        except Exception as exc:  # recording never fails the link
            self._drop_tap(exc)

    def _drop_tap(self, exc: Exception) -> None:
        self.tap = None
        import structlog

        structlog.get_logger("smpdevice.transport").error(
            "frame recording tap failed and was removed; the link goes on", error=str(exc))

    @property
    def in_waiting(self) -> int:
        return self.inner.in_waiting

    def read(self, size: int = 1) -> bytes:
        data = self.inner.read(size)
        if data:
            self.show("pen", data)
        return data

    def write(self, data: bytes, /) -> int | None:
        self.show("host", data)
        return self.inner.write(data)

    def close(self) -> None:
        with contextlib.suppress(AttributeError):
            self.inner.close()
