"""Review 14 (proto 4): an in-process tap that read took the owner's bytes.

What was wrong: every `HostPort` of a simulator shared one receive buffer, so a tap
(`sim.open_port()`, `PenHost`) that read took the owner's bytes: the owner's PING never got its
PONG, and no telemetry reached it while the tap read. docs/simulator.md says taps "are not
owners and never conflict". Now each port has its own receive queue and gets every chunk the
pen writes from when it opens.
"""

from __future__ import annotations

import serial

import simulators  # also registers the pensim:// handler
from firmware_protocol import StreamDecoder, encode
from firmware_protocol import messages as m
from firmware_protocol.codes import MsgType


def _frames(data: bytes):
    return list(StreamDecoder().feed(data))


def test_a_reading_tap_does_not_take_the_owners_reply():
    sim = simulators.PenSimulator(name="rev14-tap-bench", clock=simulators.VirtualClock())
    try:
        sim.advance(0.06)
        with serial.serial_for_url("pensim://rev14-tap-bench", timeout=0) as owner:
            tap = sim.open_port()
            owner.write(encode(m.Ping(42), 5))
            seen_by_tap = _frames(tap.read(1 << 20, 0))  # the tap looks at the line
            got = _frames(owner.read(1 << 20))
            assert any(f.seq == 5 and f.message == m.Pong(42) for f in got), got
            assert any(f.seq == 5 and f.message == m.Pong(42) for f in seen_by_tap)
            sim.advance(0.05)
            tap.read(1 << 20, 0)
            telemetry = [f for f in _frames(owner.read(1 << 20))
                         if f.message.TYPE == MsgType.TELEMETRY]
            assert len(telemetry) >= 4, "the tap took the owner's telemetry"
            tap.close()
    finally:
        sim.close()


def test_each_port_gets_the_replies_to_the_others_commands_in_order():
    with simulators.PenSimulator(clock=simulators.VirtualClock()) as sim:
        a, b = sim.open_port(), sim.open_port()
        sim.advance(0.06)
        a.write(encode(m.Ping(1), 1))
        got_b = b"".join(b.exchange(encode(m.Ping(2), 2)))  # the exchange path too
        for data in (a.read(1 << 20, 0), got_b):
            pongs = [(f.seq, f.message) for f in _frames(data) if f.message.TYPE == MsgType.PONG]
            assert pongs == [(1, m.Pong(1)), (2, m.Pong(2))]
        a.close()
        b.write(encode(m.Ping(3), 3))  # a closed port no longer holds anything back
        assert [f.seq for f in _frames(b.read(1 << 20, 0))
                if f.message.TYPE == MsgType.PONG] == [3]
        b.close()
