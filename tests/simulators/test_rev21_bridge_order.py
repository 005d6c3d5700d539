"""Review 21: the PTY and TCP bridges write the pen's frames in the order the pen made them.

Each bridge has two threads taking the pen's output: one takes the replies to a command with
`HostPort.exchange` (and every chunk due with them, TELEMETRY included), the other the frames
the pen writes by itself. Each took its chunks, then waited for the write lock: a thread
preempted between the two let the other write a later TELEMETRY first. The host read a report
sequence going back, which is how a pen that rebooted looks: concurrent callers over a pty once
stopped on "the pen rebooted (its reports started again at 13)" on a loaded machine.

The preemption is forced here: the pen -> host thread holds what it took for a moment while
commands keep the other thread exchanging. No wall-clock bound is asserted; the host only
checks that the telemetry sequence never goes back.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest
import serial

from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import MsgType
from firmware_protocol.frame import StreamDecoder, encode
from simulators.host_link import HostPort
from simulators.reach import PtyBridge, TcpBridge
from simulators.rx_buffer import is_telemetry
from simulators.sim import PenSimulator

HOLDS = 3  # preempted pen -> host takes
HOLD_S = 0.15  # long enough for several commands to be exchanged meanwhile
REPORTS = 60
WAIT_S = 20.0  # bounds a broken run only


@pytest.fixture
def slow_takes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The bridge's pen -> host thread pauses after taking chunks that hold a TELEMETRY."""
    held: list[int] = []
    real = HostPort.read_chunks

    def read_chunks(self: HostPort, timeout_s: float | None = None) -> list[bytes]:
        chunks = real(self, timeout_s)
        if (len(held) < HOLDS and threading.current_thread().name.startswith("pensim-")
                and any(is_telemetry(c) for c in chunks)):
            held.append(len(chunks))
            time.sleep(HOLD_S)  # the thread is preempted, as a loaded machine does
        return chunks

    monkeypatch.setattr(HostPort, "read_chunks", read_chunks)
    yield held


def _sequences_while_commanding(port: serial.SerialBase, held: list[int]) -> list[int]:
    """Ping the pen without pause (a reply exchanged each time) until the holds are done and
    `REPORTS` reports came; the telemetry sequence numbers the host read, in order."""
    decoder, seqs, token = StreamDecoder(), [], 0
    end_s = time.monotonic() + WAIT_S
    port.write(encode(m.SetTelemetryRate(200), 1))
    while time.monotonic() < end_s and (len(held) < HOLDS or len(seqs) < REPORTS):
        token += 1
        port.write(encode(m.Ping(token % 60000), token % 254 + 2))
        for frame in decoder.feed(port.read(max(1, port.in_waiting))):
            if frame.message.TYPE == MsgType.TELEMETRY:
                seqs.append(frame.message.telemetry_seq)
    assert len(held) == HOLDS, "the pen -> host thread never took a TELEMETRY"
    return seqs


def _booted(sim: PenSimulator) -> None:
    end_s = time.monotonic() + WAIT_S
    while sim.firmware.state is S.BOOTING and time.monotonic() < end_s:
        time.sleep(0.01)


def _went_back(seqs: list[int]) -> list[tuple[int, int]]:
    """Each pair of reports, one after the other, whose sequence number went back."""
    return [(a, b) for a, b in itertools.pairwise(seqs) if b <= a]


def test_the_pty_bridge_writes_telemetry_in_the_pens_order(pen_sim_realtime, slow_takes):
    _booted(pen_sim_realtime)
    with PtyBridge(pen_sim_realtime) as bridge, \
            serial.Serial(bridge.path, 115200, timeout=0.01) as port:
        seqs = _sequences_while_commanding(port, slow_takes)
    assert len(seqs) >= REPORTS
    assert _went_back(seqs) == [], "reports went back"


def test_the_tcp_bridge_writes_telemetry_in_the_pens_order(pen_sim_realtime, slow_takes):
    _booted(pen_sim_realtime)
    with TcpBridge(pen_sim_realtime) as bridge, \
            serial.serial_for_url(bridge.url, timeout=0.01) as port:
        seqs = _sequences_while_commanding(port, slow_takes)
    assert len(seqs) >= REPORTS
    assert _went_back(seqs) == [], "reports went back"
