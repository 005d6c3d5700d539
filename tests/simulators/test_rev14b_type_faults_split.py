"""Review 14b (simulator): host->pen type faults and the E-stop's one read.

`LinkFaults.inbound_frames` judged each host write alone, so a frame that came in two writes
(a TCP segment boundary over `smp sim --tcp`, a host that writes in pieces) was two typeless
pieces and escaped `drop_type` / `delay_type`, `*` too: the pen executed a frame the fault spec
said was lost. A frame's start is now held for the write that brings its rest.

Held (guards): [PING, NEEDLE_START, ESTOP] in one write is one read under type faults with
baud pacing and pen->host faults (split, dup, junk, delay): the NEEDLE_START is NACKed
ESTOP_LATCHED and the needle never runs.
"""

from __future__ import annotations

import pytest

from firmware_protocol import encode
from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState, MsgType, NackReason
from simulators import PenSimulator, VirtualClock
from simulators.testing import PenHost


@pytest.mark.parametrize("spec", ["drop_type=*", "drop_type=ESTOP", "delay_type=ESTOP:1"])
def test_a_frame_written_in_two_pieces_still_meets_its_type_fault(spec):
    sim = PenSimulator(seed=1, clock=VirtualClock(), link_faults=spec)
    try:
        sim.advance(0.06)
        host = PenHost(sim.open_port())
        frame = encode(m.EStop(), 9)
        host.port.write(frame[:3])
        sim.advance(0.001)
        host.port.write(frame[3:])
        sim.advance(0.01)
        host.poll()
        # lost (or 1 s late) written whole, and so in two writes: IDLE, no reply yet
        assert sim.firmware.state is FirmwareState.IDLE, f"{spec}: {host.replies}"
    finally:
        sim.close()


def _armed(spec: str, baud: int | None) -> tuple[PenSimulator, PenHost]:
    sim = PenSimulator(seed=1, clock=VirtualClock(), link_faults=spec, baud=baud)
    sim.advance(0.06)
    host = PenHost(sim.open_port())
    for msg in (m.SetSetpoints(1000, 10000, 500, 100_000), m.Arm(), m.LeaseRenew(500)):
        host.send(msg)
        sim.advance(0.01)
        host.poll()
    return sim, host


@pytest.mark.parametrize("baud", [None, 115200])
@pytest.mark.parametrize("spec", ["drop_type=CALIBRATION_READ", "delay_type=PING:0.5",
                                  "delay_type=*:0.01",
                                  "drop_type=PING,split=1,dup=1,junk=1,delay=0.01"])
def test_needle_start_before_estop_in_one_write_under_combined_faults(spec, baud):
    sim, host = _armed(spec, baud)
    try:
        host.port.write(encode(m.Ping(1), 9) + encode(m.NeedleStart(), 10)
                        + encode(m.EStop(), 11))
        sim.advance(0.1)
        host.poll()
        replies = {f.seq: f.message for f in host.replies}
        assert replies[11] == m.Ack(int(MsgType.ESTOP))
        assert replies[10] == m.Nack(MsgType.NEEDLE_START, NackReason.ESTOP_LATCHED, 0)
        assert sim.firmware.telemetry().impressions == 0
        assert sim.firmware.state is FirmwareState.ESTOP
    finally:
        sim.close()
