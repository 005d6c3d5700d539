"""Review 14 (proto 2): a host port's full receive buffer dropped EVENTs.

What was wrong: the host port's 64 KiB receive buffer (`RX_LIMIT`, undocumented) dropped the
newest chunks once full, EVENTs and replies included. A QA script that advanced the
simulator 20 s in one step (100 Hz telemetry) and then read never heard of the brownout at
19 s (docs/protocol.md section 12: "Replies and EVENTs are never skipped"). Now the oldest whole
TELEMETRY frames give way (telemetry is lossy), replies and EVENTs are always kept, and
docs/simulator.md says so.
"""

from __future__ import annotations

from firmware_protocol import StreamDecoder, encode
from firmware_protocol import messages as m
from firmware_protocol.codes import EventCode, Fault, FirmwareState, MsgType
from simulators import PenModel, PenSimulator, VirtualClock
from simulators.host_link import RX_LIMIT
from simulators.testing import PenHost


def _armed_for_a_long_step() -> tuple[PenSimulator, PenHost]:
    sim = PenSimulator(model=PenModel(lease_max_ms=65535), clock=VirtualClock(),
                       link_faults="brownout@19")
    sim.advance(0.06)
    host = PenHost(sim.open_port())
    replies = [host.request(m.SetSetpoints(1000, 10000, 500, 100_000)),
               host.request(m.Arm()), host.request(m.LeaseRenew(18_000))]
    assert all(r.TYPE == MsgType.ACK for r in replies), replies
    host.poll()
    return sim, host


def test_every_event_of_one_long_step_reaches_the_host():
    sim, host = _armed_for_a_long_step()
    try:
        before = len(host.events)
        sim.advance(20.0)  # lease lapses while ARMED at 18 s, brownout at 19 s
        host.poll()
        seen = [(EventCode(e.event), FirmwareState(e.state)) for e in host.events[before:]]
        assert sim.firmware.faults & Fault.POWER_RESET  # the pen did reboot
        assert (EventCode.STATE_CHANGED, FirmwareState.IDLE) in seen, seen
        assert (EventCode.BOOTED, FirmwareState.FAULT) in seen, seen
        # the buffer stayed bounded: the oldest telemetry gave way, counted
        assert sim.link.stats["rx_telemetry_dropped"] > 0
        assert sim.link.stats["rx_overflow_bytes"] == 0
        # what is left of the telemetry is the newest, in order
        seqs = [t.telemetry_seq for t in host.telemetry[-50:]]
        assert seqs == sorted(seqs) and seqs[-1] == sim.firmware.telemetry_seq - 1
    finally:
        sim.close()


def test_a_reply_due_into_a_full_buffer_is_kept():
    sim = PenSimulator(clock=VirtualClock())
    try:
        port = sim.open_port()
        sim.advance(20.0)  # 2000 TELEMETRY frames: more than the buffer holds
        assert RX_LIMIT - 41 < port.in_waiting <= RX_LIMIT
        port.write(encode(m.Ping(99), 77))
        assert port.in_waiting > RX_LIMIT - 41  # the PONG is in, telemetry gave way
        frames = StreamDecoder().feed(port.read(RX_LIMIT * 2, 0))
        assert any(f.seq == 77 and f.message == m.Pong(99) for f in frames)
    finally:
        sim.close()
