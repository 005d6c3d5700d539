"""Transport: open a byte stream to a pen from a pyserial URL.

Accepted ports:
- a device path (`/dev/ttyACM0`, `COM3`), opened exclusively so two programs never drive one pen;
- `usb:SERIALNO`: the USB serial port whose USB serial number is SERIALNO, wherever the OS put
  it today (ttyACM0 one day, ttyACM1 the next);
- any pyserial URL: `socket://127.0.0.1:7000` (a simulator over TCP), `pensim://` (a simulated
  pen in this process), `loop://`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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
) -> serial.Serial:
    """Open `port` for the link. Raises TransportError with what to do when it cannot."""
    device = resolve_port(port)
    is_url = "://" in device
    try:
        if is_url:
            return serial.serial_for_url(device, baudrate=baudrate, timeout=timeout_s)
        return serial.Serial(device, baudrate=baudrate, timeout=timeout_s, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise TransportError(
            f"cannot open port {port!r}: {exc}. "
            "List the ports with `smp ports`, or use `pensim://` for the built-in simulator."
        ) from exc
