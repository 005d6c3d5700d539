"""Review 15 (K1): the C reflex peer keeps its replies and EVENTs when the pty is full.

docs/protocol.md section 12: "TELEMETRY is lossy; replies and EVENTs are not ... a pen skips
a TELEMETRY frame that falls due while its transmit queue still holds bytes ... Replies and
EVENTs are never skipped." Section 8: a lease lapse while RUNNING "sends EVENT FAULT_LATCHED".
The peer used to write TELEMETRY whatever was queued and drop a frame (or its rest) on EAGAIN:
a host that paused reading lost the EVENT and got a frame cut in half.

Real time by nature (a separate process behind a pty): the host's pause is the condition under
test (long enough at 1000 Hz telemetry to fill the pty); every read after it waits on a
condition. Marked realtime: a starved peer would not fill the pty in the pause.
"""

from __future__ import annotations

import itertools
import time

import pytest
import serial

from firmware_protocol import messages as m
from firmware_protocol.codes import EventCode, FirmwareState
from firmware_protocol.frame import StreamDecoder, encode
from tests.firmware_protocol.test_reflex_peer import GCC, peer_exe, pty_path  # noqa: F401

pytestmark = [pytest.mark.realtime,
              pytest.mark.skipif(GCC is None, reason="gcc is not installed: no reflex peer")]

LEASE_MS = 2000  # the peer's lease_max_ms: the longest time the pty has to fill
PAUSE_S = LEASE_MS / 1000 + 0.6  # 1000 Hz x 41 bytes: more than the pty holds (~68 KB)
WAIT_S = 10.0


def _start(port: serial.Serial, decoder: StreamDecoder, commands: list[m.Message]) -> None:
    for seq, msg in enumerate(commands, start=1):
        port.write(encode(msg, seq))
    replies = 0
    deadline = time.monotonic() + WAIT_S
    while replies < len(commands) and time.monotonic() < deadline:
        for f in decoder.feed(port.read(max(1, port.in_waiting))):
            replies += not isinstance(f.message, (m.Telemetry, m.Event))
    assert replies == len(commands)


def _read_until(port: serial.Serial, decoder: StreamDecoder, done) -> list[m.Message]:
    """Every frame read until `done(frames so far)` holds; fails after WAIT_S."""
    got: list[m.Message] = []
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        got += [f.message for f in decoder.feed(port.read(max(1, port.in_waiting)))]
        if done(got):
            return got
    raise AssertionError(f"condition not met: {len(got)} frames, decoder {decoder.stats}")


def test_lease_lapse_event_survives_a_host_that_paused_reading(pty_path: str) -> None:  # noqa: F811
    port = serial.Serial(pty_path, timeout=0.05)
    decoder = StreamDecoder()
    _start(port, decoder, [m.IdentifyRequest(), m.SetTelemetryRate(1000),
                           m.SetSetpoints(1000, 10000, 500, 100000), m.Arm(),
                           m.LeaseRenew(LEASE_MS), m.NeedleStart()])
    # The host pauses (a loaded machine, a GC pause) past the lease: the pen must stop
    # the needle on its own and still report it once the host reads again.
    time.sleep(PAUSE_S)
    got = _read_until(port, decoder, lambda got: any(
        isinstance(x, m.Telemetry) and x.state == FirmwareState.FAULT for x in got))
    events = [x.event for x in got if isinstance(x, m.Event)]
    assert events == [EventCode.FAULT_LATCHED], f"events {events}, decoder {decoder.stats}"
    assert decoder.stats.bad_crc == decoder.stats.garbage_bytes == 0, decoder.stats
    seqs = [x.telemetry_seq for x in got if isinstance(x, m.Telemetry)]
    assert seqs == sorted(seqs) and max(b - a for a, b in itertools.pairwise(seqs)) > 1, (
        "no TELEMETRY was skipped (counted in telemetry_seq) while the pty was full")


def test_replies_and_an_estop_sent_while_the_pty_is_full_all_arrive_whole(
        pty_path: str) -> None:  # noqa: F811
    """Beyond the lease: commands the host sends while not reading are acted on at once (the
    E-stop latches) and every reply, in order, and the E-stop's EVENT reach it afterwards."""
    port = serial.Serial(pty_path, timeout=0.05)
    decoder = StreamDecoder()
    _start(port, decoder, [m.IdentifyRequest(), m.SetTelemetryRate(1000)])
    time.sleep(LEASE_MS / 1000)  # the pty fills with telemetry
    pings = [m.Ping(token=0xA000 + i) for i in range(60)]
    port.write(b"".join(encode(p, 3 + i) for i, p in enumerate(pings)))
    port.write(encode(m.EStop(), 100))
    time.sleep(0.3)  # still not reading: the replies wait in the peer's queue
    got = _read_until(port, decoder, lambda got: any(
        isinstance(x, m.Telemetry) and x.state == FirmwareState.ESTOP for x in got))
    pongs = [x.token for x in got if isinstance(x, m.Pong)]
    assert pongs == [p.token for p in pings], f"pongs {len(pongs)}, decoder {decoder.stats}"
    assert m.Ack(int(m.EStop.TYPE)) in got
    assert [x.event for x in got if isinstance(x, m.Event)] == [EventCode.ESTOP_LATCHED]
    assert decoder.stats.bad_crc == decoder.stats.garbage_bytes == 0, decoder.stats
