"""The request path over a pty without waste: the port is read and written on its descriptor
(the recording tap still sees every byte both ways), and a burst of requests does not wake the
link's reader thread once per request (it stands by and comes back by itself, so telemetry
still flows once the callers are done).

Over a real pty these run on wall time (marked `realtime`); none asserts a duration.
"""

from __future__ import annotations

import os
import threading

import pytest
import serial

from firmware_protocol import StreamDecoder
from smpdevice.control import PenController
from smpdevice.link.rawport import raw_port, read_raw
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.virtual_time import wait_until

GENEROUS_S = 10.0  # bounds a broken run only


def _decoded(chunks: list[bytes]) -> list[tuple[int, str]]:
    decoder = StreamDecoder()
    frames = [f for chunk in chunks for f in decoder.feed(chunk)]
    return [(f.seq, type(f.message).__name__) for f in frames]


@pytest.mark.realtime
def test_the_tap_sees_every_byte_both_ways_while_the_link_writes_the_descriptor(pen_sim_pty):
    sim, path = pen_sim_pty
    with PenController.connect(path, calibration=true_calibration(sim), telemetry_hz=1) as pen:
        pen.set_zone("crown")
        link, port = pen.link, pen.link.port
        through_pyserial: list[str] = []
        inner = port.inner
        write, read = inner.write, inner.read
        inner.write = lambda data: (through_pyserial.append("write"), write(data))[1]
        inner.read = lambda size=1: (through_pyserial.append("read"), read(size))[1]
        seen: dict[str, list[bytes]] = {"host": [], "pen": []}
        lock = threading.Lock()

        def tap(direction: str, data: bytes) -> None:
            with lock:
                seen[direction].append(data)

        link.history.clear()  # it holds the last 64 frames: 20 requests and their replies fit
        port.set_tap(tap)
        for i in range(20):
            pen.set_setpoints(**{**CROWN, "depth_mm": 0.4 + i / 100})
        port.set_tap(None)
        assert through_pyserial == []  # neither pyserial's write nor its read: the descriptor
        history = list(link.history)
        sent = [(seq, type(m).__name__) for (_t, d, seq, m) in history if d == "tx"]
        replies = [(seq, type(m).__name__) for (_t, d, seq, m) in history
                   if d == "rx" and seq != 0]
        assert len(sent) >= 20
        assert _decoded(seen["host"]) == sent  # every frame written, in order, nothing else
        assert [f for f in _decoded(seen["pen"]) if f[0] != 0] == replies


@pytest.mark.realtime
def test_a_burst_of_requests_does_not_wake_the_reader_thread_per_request(pen_sim_pty):
    sim, path = pen_sim_pty
    with PenController.connect(path, calibration=true_calibration(sim), telemetry_hz=200) as pen:
        pen.set_zone("crown")
        link = pen.link
        pokes: list[int] = []
        poke = link._poke_reader

        def counted() -> None:
            pokes.append(1)
            poke()

        link._poke_reader = counted  # type: ignore[method-assign]
        for _ in range(200):
            pen.set_setpoints(**CROWN)
        # the reader is woken out of its select at most once per burst (plus a few: telemetry
        # it read between requests brings it back to select now and then); it was 200
        assert len(pokes) < 50, len(pokes)
        # ... and it does come back by itself: telemetry keeps coming with no caller reading
        got = link.stats.telemetry_received
        wait_until(sim, lambda: link.stats.telemetry_received >= got + 10, GENEROUS_S)
        assert link.lost is None


def test_an_empty_read_is_no_disconnect_but_a_hung_up_port_is() -> None:
    """pyserial opens a port with VMIN=0: a read finding nothing (another reader took what a
    stale select saw) returns b"", which is not a lost port; a hung-up port is."""
    master, slave = os.openpty()
    port = serial.Serial(os.ttyname(slave), timeout=0.05)
    try:
        raw = raw_port(port)
        assert raw is not None and raw.fd == port.fileno()
        assert read_raw(raw) == b""  # nothing there: fine
        os.write(master, b"\x01\x02")
        got = bytearray()
        wait_until(None, lambda: got.extend(read_raw(raw)) or got == b"\x01\x02", GENEROUS_S)
        os.close(master)
        master = -1
        with pytest.raises(serial.SerialException):
            read_raw(raw)
    finally:
        port.close()
        os.close(slave)
        if master >= 0:
            os.close(master)


def test_a_port_wrapped_by_something_that_is_no_tap_is_not_read_raw() -> None:
    """Raw I/O would bypass a wrapper that reads or writes for itself: only taps qualify."""
    master, slave = os.openpty()
    port = serial.Serial(os.ttyname(slave), timeout=0.05)

    class Wrapper:
        def __init__(self, inner: object) -> None:
            self.inner = inner

    try:
        assert raw_port(Wrapper(port)) is None
        assert raw_port(port) is not None
        assert raw_port(serial.serial_for_url("loop://")) is None
    finally:
        port.close()
        os.close(slave)
        os.close(master)
