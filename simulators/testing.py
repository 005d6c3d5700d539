"""A minimal host for tests and QA scripts: sends commands, sorts what the pen says.

Not the smpdevice controller (no retries, no lease thread, no safety envelope): just enough
protocol to drive a simulator directly and look at every frame.

    sim = PenSimulator(clock=VirtualClock()); sim.advance(0.1)
    host = PenHost(sim.open_port())
    assert host.request(m.Arm()).TYPE == MsgType.NACK
"""

from __future__ import annotations

import time
from typing import Protocol

from firmware_protocol import StreamDecoder, encode
from firmware_protocol import messages as m
from firmware_protocol.codes import MsgType
from firmware_protocol.frame import Frame


class _Port(Protocol):
    def write(self, data: bytes) -> int | None: ...

    def read(self, size: int, timeout_s: float | None = None) -> bytes: ...


class PenHost:
    """Talks to a HostPort (or any object with write/read(size, timeout_s))."""

    def __init__(self, port: _Port) -> None:
        self.port = port
        self.decoder = StreamDecoder()
        self.seq = 0
        self.frames: list[Frame] = []  # everything received, in order
        self.telemetry: list[m.Telemetry] = []
        self.events: list[m.Event] = []
        self.replies: list[Frame] = []  # every reply frame (ACK, NACK, IDENTIFY, ...)

    def next_seq(self) -> int:
        self.seq = self.seq % 255 + 1  # 1..255; 0 is the pen's unsolicited seq
        return self.seq

    def send(self, msg: m.Message, seq: int | None = None) -> int:
        seq = self.next_seq() if seq is None else seq
        self.port.write(encode(msg, seq))
        return seq

    def poll(self, timeout_s: float = 0.0) -> list[Frame]:
        """Read what is waiting (up to timeout_s for the first bytes) and sort it."""
        before = len(self.frames)
        self._read_some(timeout_s)
        return self.frames[before:]

    def request(self, msg: m.Message, seq: int | None = None, timeout_s: float = 1.0):
        """Send `msg` and return the reply carrying its seq (None if none came in time)."""
        seq = self.send(msg, seq)
        return self.wait_reply(seq, timeout_s)

    def wait_reply(self, seq: int, timeout_s: float = 1.0):
        deadline = time.monotonic() + timeout_s
        seen = len(self.replies)
        while True:
            for frame in self.replies[seen:]:
                if frame.seq == seq:
                    return frame.message
            seen = len(self.replies)
            if time.monotonic() >= deadline:
                return None
            self._read_some(min(0.05, max(0.0, deadline - time.monotonic())))

    def _read_some(self, timeout_s: float) -> None:
        data = self.port.read(1, timeout_s) if timeout_s > 0 else b""
        data += self.port.read(1 << 16, 0)
        for frame in self.decoder.feed(data):
            self.frames.append(frame)
            msg = frame.message
            if msg.TYPE == MsgType.TELEMETRY:
                self.telemetry.append(msg)
            elif msg.TYPE == MsgType.EVENT:
                self.events.append(msg)
            else:
                self.replies.append(frame)

    def start_needle(
        self,
        depth_um: int = 1000,
        speed_centihz: int = 10000,
        duty_permille: int = 1000,
        period_us: int = 100_000,
        lease_ms: int = 500,
    ) -> list[m.Message]:
        """SET_SETPOINTS, ARM, LEASE_RENEW, NEEDLE_START; returns the four replies."""
        return [
            self.request(m.SetSetpoints(depth_um, speed_centihz, duty_permille, period_us)),
            self.request(m.Arm()),
            self.request(m.LeaseRenew(lease_ms)),
            self.request(m.NeedleStart()),
        ]
