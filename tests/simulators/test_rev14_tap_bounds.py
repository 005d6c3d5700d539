"""Review 14b (simulator): per-port receive queues, as first made, had two defects.

- A port that never reads (a QA tap left open) kept every reply and EVENT past RX_LIMIT: its
  buffer grew for as long as the session ran (156,000 bytes after 6 virtual s, +26 KB a
  virtual second), and the search for a TELEMETRY frame to give way scanned all of them for
  every chunk (CPU per step growing with the session: 0.01 -> 1.39 CPU-s per 100 steps). Now
  replies and EVENTs are kept past the limit only up to RX_KEPT_MAX, and the search looks at
  the oldest SCAN_MAX chunks (the CPU figures: a benchmark's business, not a test's).
- A reply that `exchange` on one port put into another port's buffer woke nobody: the owner
  blocked in a read got the ACK of a tap's E-stop only at its read's timeout."""

from __future__ import annotations

import threading
import time

from firmware_protocol import encode
from firmware_protocol import messages as m
from firmware_protocol.codes import MsgType
from simulators import PenSimulator, VirtualClock
from simulators.rx_buffer import RX_KEPT_MAX, RX_LIMIT

# 20 PINGs in one write: 20 PONGs (15 bytes each) a 10 ms step
_BURST = b"".join(encode(m.Ping(i), i + 1) for i in range(20))
READ_TIMEOUT_S = 60.0  # the owner's read: woken at once, or only after this


def test_a_tap_that_never_reads_holds_a_bounded_buffer():
    sim = PenSimulator(seed=1, clock=VirtualClock())
    try:
        sim.advance(0.06)
        owner = sim.open_port(exclusive=True)
        tap = sim.open_port()
        for _ in range(600):  # the owner sends a burst and reads every step; the tap never
            owner.write(_BURST)
            sim.advance(0.01)
            owner.reset_input_buffer()
        held = tap.in_waiting
        assert RX_LIMIT <= held <= RX_KEPT_MAX, held
        assert sim.link.stats["rx_overflow_bytes"] > 0  # what came past it: dropped, counted
    finally:
        sim.close()


def test_owner_blocked_in_read_is_woken_by_a_taps_exchange():
    sim = PenSimulator(seed=1, clock=VirtualClock())
    try:
        sim.advance(0.06)
        owner = sim.open_port(exclusive=True)
        tap = sim.open_port()
        owner.exchange(encode(m.SetTelemetryRate(0), 1))  # nothing else would wake the owner
        owner.reset_input_buffer()
        tap.reset_input_buffer()
        got: dict[str, object] = {}
        reader = threading.Thread(target=lambda: got.update(chunk=owner.read_chunk(
            READ_TIMEOUT_S)), daemon=True)
        reader.start()
        deadline = time.monotonic() + 30.0
        while sim._readers == 0:  # the owner waits in its read
            assert time.monotonic() < deadline, "the owner never started its read"
            time.sleep(0.001)
        replies = tap.exchange(encode(m.EStop(), 9))
        assert replies and replies[0] == encode(m.Ack(int(MsgType.ESTOP)), 9)
        reader.join(READ_TIMEOUT_S / 3)  # woken by the exchange, long before its timeout
        assert not reader.is_alive(), "the owner's read was not woken by the tap's E-stop"
        assert got["chunk"] == encode(m.Ack(int(MsgType.ESTOP)), 9)
    finally:
        sim.close()
