"""A POSIX serial port or pty read and written on its descriptor, its taps shown every byte.

pyserial's `write` selects for writability after every frame, its `read` selects once more and
`in_waiting` is one more system call: on the request path each costs about as much as the
pty's own round trip. The link uses these on a port `raw_port` accepts (a bare POSIX pyserial
port, or one inside taps such as `smpdevice.transport.TappedPort`); any other port is read
and written through its object, so any other wrapper sees every byte.
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import serial


@dataclass(frozen=True, slots=True)
class RawPort:
    """A POSIX serial port or pty read and written on its descriptor (`os.read`/`os.write`:
    pyserial's `write` selects for writability after every frame, its `read` selects again
    and `in_waiting` is one more system call). The taps of the wrappers around it see every
    byte all the same (`shows`: `TappedPort.show`, outermost first)."""

    fd: int
    serial: Any  # the pyserial port: a write the kernel took only in part ends through it
    shows: tuple[Callable[[str, bytes], None], ...]


def raw_port(port: Any) -> RawPort | None:
    """`port`'s descriptor for raw I/O when it is a POSIX pyserial port, bare or inside
    wrappers that each show the bytes to a tap (`show`); None otherwise (then every byte goes
    through the port object, so any other wrapper sees them)."""
    shows = []
    inner = port
    while hasattr(inner, "inner") and inner is not getattr(inner, "inner", None):
        show = getattr(inner, "show", None)
        if show is None:
            return None  # a wrapper that would not see the bytes: use the port object
        shows.append(show)
        inner = inner.inner
    posix = getattr(serial, "serialposix", None)
    if posix is None or type(inner) is not posix.Serial:  # a subclass may read differently
        return None
    try:
        return RawPort(int(inner.fileno()), inner, tuple(shows))
    except (OSError, ValueError, serial.SerialException):
        return None


def write_raw(raw: RawPort, data: bytes) -> None:
    """Write all of `data` (its taps see it first, so a recording never has a reply before
    its command); what the kernel does not take at once is written by pyserial."""
    for show in raw.shows:
        show("host", data)
    try:
        n = os.write(raw.fd, data)
    except (BlockingIOError, InterruptedError):
        n = 0
    if n < len(data):
        raw.serial.write(data[n:])


def read_raw(raw: RawPort) -> bytes:
    """What the descriptor holds now (select said it was readable). A port opened by
    pyserial reads b"" when empty (VMIN=0), also after another thread took what a stale
    `select` saw; as in pyserial's `read`, readable *now* with nothing to read is a
    disconnected port."""
    hung_up = False
    try:
        data = os.read(raw.fd, 4096)
        if not data and select.select([raw.fd], [], [], 0)[0]:
            data = os.read(raw.fd, 4096)
            hung_up = not data
    except (BlockingIOError, InterruptedError):
        return b""
    except OSError as exc:
        raise serial.SerialException(f"read failed: {exc}") from exc
    if hung_up:
        raise serial.SerialException(
            "device reports readiness to read but returned no data "
            "(device disconnected or multiple access on port?)")
    if not data:
        return data
    for show in raw.shows:
        show("pen", data)
    return data
