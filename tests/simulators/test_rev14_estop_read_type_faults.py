"""Review 14 (proto 1): the E-stop's place in one read held only without type faults.

What was wrong: with any type fault configured, even on unrelated types (`delay_type=PING:0.5`,
`drop_type=CALIBRATION_READ`: "all else passes"), `LinkFaults.inbound_frames` cut a host write
into one chunk per frame and the pen read each alone. [NEEDLE_START, ESTOP] in one write then
started the needle (ACK, one impression) before the E-stop, and [CLEAR_FAULTS, ESTOP] cleared
the latch it should never undo (docs/protocol.md section 9). Now the frames of one write that
arrive together are one read, whatever the type faults drop or delay around them.
"""

from __future__ import annotations

import pytest

from firmware_protocol import encode
from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState, MsgType, NackReason
from simulators import PenSimulator, VirtualClock
from simulators.testing import PenHost

UNRELATED_TYPE_FAULTS = ["delay_type=PING:0.5", "drop_type=CALIBRATION_READ"]


def _armed(spec: str | None) -> tuple[PenSimulator, PenHost]:
    sim = PenSimulator(seed=1, clock=VirtualClock(), link_faults=spec)
    sim.advance(0.06)  # booted
    host = PenHost(sim.open_port())
    replies = [host.request(m.SetSetpoints(1000, 10000, 500, 100_000)), host.request(m.Arm()),
               host.request(m.LeaseRenew(500))]
    assert all(r is not None and r.TYPE == MsgType.ACK for r in replies), replies
    return sim, host


def _reply(host: PenHost, seq: int) -> m.Message:
    return next(f.message for f in host.replies if f.seq == seq)


@pytest.mark.parametrize("spec", [None, *UNRELATED_TYPE_FAULTS])
def test_needle_start_before_estop_in_one_write_never_starts_the_needle(spec):
    sim, host = _armed(spec)
    try:
        host.port.write(encode(m.NeedleStart(), 10) + encode(m.EStop(), 11))  # one read
        sim.advance(0.005)
        host.poll()
        assert _reply(host, 11).TYPE == MsgType.ACK
        assert _reply(host, 10) == m.Nack(MsgType.NEEDLE_START, NackReason.ESTOP_LATCHED, 0)
        assert sim.firmware.telemetry().impressions == 0, f"{spec}: the needle ran"
        assert sim.firmware.state is FirmwareState.ESTOP
    finally:
        sim.close()


@pytest.mark.parametrize("spec", [None, *UNRELATED_TYPE_FAULTS])
def test_clear_faults_before_estop_in_one_write_is_superseded(spec):
    sim, host = _armed(spec)
    try:
        assert host.request(m.EStop()).TYPE == MsgType.ACK
        host.port.write(encode(m.ClearFaults(), 20) + encode(m.EStop(), 21))  # one read
        sim.advance(0.005)
        host.poll()
        assert _reply(host, 20) == m.Nack(MsgType.CLEAR_FAULTS, NackReason.ESTOP_LATCHED, 0)
        assert sim.firmware.state is FirmwareState.ESTOP
    finally:
        sim.close()


def test_a_frame_the_type_fault_takes_out_of_the_write_does_not_split_the_rest():
    """[NEEDLE_START, PING (delayed 0.5 s), ESTOP]: the two undelayed frames are still one read;
    the PING comes later, alone."""
    sim, host = _armed("delay_type=PING:0.5")
    try:
        host.port.write(encode(m.NeedleStart(), 30) + encode(m.Ping(7), 31)
                        + encode(m.EStop(), 32))
        sim.advance(0.005)
        host.poll()
        assert _reply(host, 30) == m.Nack(MsgType.NEEDLE_START, NackReason.ESTOP_LATCHED, 0)
        assert not [f for f in host.replies if f.seq == 31]  # still on its way
        assert sim.link.stats["delayed_frames_in"] == 1
        sim.advance(0.5)
        host.poll()
        assert _reply(host, 31) == m.Pong(7)
        assert sim.firmware.telemetry().impressions == 0
    finally:
        sim.close()
