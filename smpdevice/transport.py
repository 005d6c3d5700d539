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
import re
import urllib.parse
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
    if not wanted.strip():
        raise TransportError(f"port {port!r}: usb: needs the pen's USB serial number, e.g. "
                             "usb:A1B2C3 (`smp ports` lists them)")
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


_HINT = ("Use a device path (/dev/ttyACM0, COM3), usb:SERIALNO, socket://HOST:PORT (e.g. "
         "socket://127.0.0.1:7000 for `smp sim --tcp 7000`) or pensim:// (the built-in "
         "simulator); list the ports with `smp ports`.")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
# a host name, an IPv4 address or an [IPv6] one (with a %zone), in ASCII
_HOST = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9._-]+)?\]")
_LOGGING = ("debug", "info", "warning", "error")
# options pyserial's own handlers take; their refusals are misleading (pyserial formats the
# message twice: socket://...:99999 said "'debug|info|warning|error'"), so they are checked here
_OPTIONS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "socket": {"logging": _LOGGING}, "loop": {"logging": _LOGGING},
    "rfc2217": {"logging": _LOGGING, "ign_set_control": None, "poll_modem": None, "timeout": None}}


def _refuse(port: str, what: str) -> TransportError:
    return TransportError(f"port {port!r}: {what}. {_HINT}")


def _check_options(port: str, scheme: str, query: str) -> None:
    allowed = _OPTIONS[scheme]
    try:
        options = urllib.parse.parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _refuse(port, f"the options {query!r} are not name=value pairs joined by &") from None
    for name, values in options.items():
        if name not in allowed:
            known = ", ".join(allowed) or "none"
            raise _refuse(port, f"{scheme}:// has no option {name!r}; known: {known}")
        choices = allowed[name]
        if len(values) > 1:
            raise _refuse(port, f"option {name} is given {len(values)} times; give it once")
        if choices is not None and values[0] not in choices:
            raise _refuse(port, f"option {name}={values[0]!r} is not one of {', '.join(choices)}")
        if name == "timeout" and not (re.fullmatch(r"[0-9]{1,4}(?:\.[0-9]{1,6})?", values[0])
                                      and float(values[0]) > 0):  # float() took 'nan'
            raise _refuse(port, f"option timeout={values[0]!r} is no number of seconds: give "
                                "one > 0 in ASCII digits, e.g. timeout=3")


def _check_host_port(port: str, scheme: str, rest: str) -> None:
    """`rest` of socket:// and rfc2217:// URLs: HOST:PORT, nothing else."""
    where, _, query = rest.partition("?")
    example = f"e.g. {scheme}://127.0.0.1:7000"
    if "/" in where or "#" in where or "@" in where:
        raise _refuse(port, f"{scheme}:// takes HOST:PORT only (no path, user or fragment); "
                            f"{example}")
    host, colon, number = where.rpartition(":")
    if not colon or where.endswith("]"):
        raise _refuse(port, f"{scheme}:// needs HOST:PORT, the TCP port number is missing; "
                            f"{example}")
    if not host:
        raise _refuse(port, f"{scheme}:// needs a host before :{number}; {example}")
    if not _HOST.fullmatch(host):
        raise _refuse(port, f"host {host!r} is no ASCII host name or address; {example}")
    if not re.fullmatch(r"[0-9]{1,5}", number) or not 1 <= int(number) <= 65535:
        what = "is out of range" if re.fullmatch(r"[0-9]+", number) else "is no whole number"
        raise _refuse(port, f"TCP port number {number!r} {what}: give a whole number "
                            f"1..65535 in ASCII digits; {example}")
    _check_options(port, scheme, query)


# Duplicates simulators/protocol_pensim.py `_EXAMPLES` (+ its ranges): it has no public table.
_PENSIM_NUMBERS = {"seed": 3, "lease": 1500, "telemetry": 200, "baud": 115200}


def _check_pensim_numbers(port: str, query: str) -> None:
    """A pensim option that takes a whole number and got text is "no whole number" (its
    handler, which checks the ranges, said "out of range" for `seed=abc`)."""
    for name, value in urllib.parse.parse_qsl(query.replace("+", "%2B"), keep_blank_values=True):
        if name in _PENSIM_NUMBERS and not re.fullmatch(r"-?[0-9]+", value):
            # the handler's own ranges (pensim:// is the simulators package's handler)
            from simulators import pen_model

            low, high = {"seed": (-pen_model.SEED_MAX, pen_model.SEED_MAX),
                         "lease": pen_model.LEASE_MAX_MS_RANGE,
                         "telemetry": pen_model.TELEMETRY_HZ_RANGE,
                         "baud": pen_model.BAUD_RANGE}[name]
            raise _refuse(port, f"pensim option {name}={value!r} is no whole number: give a "
                                f"whole number {low}..{high} in ASCII digits, e.g. "
                                f"pensim://?{name}={_PENSIM_NUMBERS[name]}")


def check_port(port: object) -> str:
    """`port` if it is a port this module can try to open, else TransportError saying what is
    wrong with it (type, empty, unknown scheme, host, port number, options)."""
    if not isinstance(port, str):
        raise TransportError(f"port={port!r} is refused: a port is text (a device path or a "
                             f"URL), not {type(port).__name__}. {_HINT}")
    if not port.strip() or "\x00" in port:
        raise _refuse(port, "it is empty or has a NUL character")
    if "://" not in port:
        return port
    scheme, _, rest = port.partition("://")
    if not _SCHEME.fullmatch(scheme):
        raise _refuse(port, f"URL scheme {scheme!r} is not valid: lower-case ASCII letters "
                            "(socket, rfc2217, loop, pensim, spy, alt, hwgrep)")
    if scheme in ("socket", "rfc2217"):
        _check_host_port(port, scheme, rest)
    elif scheme in ("spy", "alt") and "://" in rest:  # pyserial opens the inner as a path
        raise _refuse(port, f"{scheme}:// wraps a device path ({scheme}:///dev/ttyACM0), not "
                            f"another URL ({rest.partition('?')[0]!r})")
    elif scheme == "pensim":  # its handler checks each option; a repeat used to win silently
        query = rest.partition("?")[2]
        # read as its handler reads it (simulators/protocol_pensim.py): `+` stays `+`
        names = [name for name, _ in urllib.parse.parse_qsl(query.replace("+", "%2B"),
                                                            keep_blank_values=True)]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise _refuse(port, f"pensim option {twice[0]} is given {names.count(twice[0])} "
                                "times; give each option once")
        _check_pensim_numbers(port, query)
    elif scheme == "loop":
        where, _, query = rest.partition("?")
        if where:
            raise _refuse(port, f"loop:// takes no address (got {where!r}); write loop://")
        _check_options(port, scheme, query)
    return port


def open_port(
    port: str, *, baudrate: int = DEFAULT_BAUD, timeout_s: float = 0.05
) -> TappedPort:
    """Open `port` for the link: a pyserial port in a `TappedPort` (it behaves as the port;
    a session's recording taps it). Raises TransportError with what to do when it cannot."""
    device = resolve_port(check_port(port))
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
    except Exception as exc:  # a URL handler's own bug (pyserial's loop:// raised KeyError)
        raise TransportError(
            f"cannot open port {port!r}: its handler failed ({type(exc).__name__}: {exc}). "
            + _HINT) from exc


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
