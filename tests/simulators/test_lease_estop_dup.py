"""Dead-man lease, E-stop priority and latching, duplicate detection."""

from __future__ import annotations

import pytest

from firmware_protocol import encode
from firmware_protocol import messages as m
from firmware_protocol.codes import EventCode, Fault, MsgType
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import NackReason as R
from simulators.firmware import DEDUP_WINDOW
from tests.simulators.helpers import VALID_SETPOINTS, drive_to, make, state

# ---------------------------------------------------------------- lease


def test_lease_expiry_while_running_latches_within_one_tick() -> None:
    sim, host = drive_to(S.RUNNING)
    host.request(m.LeaseRenew(100))
    sim.advance(0.099)
    assert state(sim) is S.RUNNING
    sim.advance(0.001)  # the tick at which the lease ends
    fw = sim.firmware
    assert state(sim) is S.FAULT and fw.faults == Fault.LEASE_EXPIRED
    assert fw.depth_cmd_um == 0  # retracting
    sim.advance(0.001)
    assert fw.physics.driven is False
    host.poll()
    ev = host.events[-1]
    assert (ev.event, ev.state) == (EventCode.FAULT_LATCHED, S.FAULT)
    assert ev.faults == Fault.LEASE_EXPIRED


def test_renewing_keeps_the_needle_running_and_replaces_the_lease() -> None:
    sim, host = drive_to(S.RUNNING)
    for _ in range(10):
        host.request(m.LeaseRenew(60))
        sim.advance(0.05)
    assert state(sim) is S.RUNNING
    host.request(m.LeaseRenew(5))  # replaces, not extends
    assert sim.firmware.lease_remaining_ms() == 5
    sim.advance(0.005)
    assert state(sim) is S.FAULT


def test_lease_lapse_while_armed_goes_idle_without_fault() -> None:
    sim, host = drive_to(S.ARMED)
    host.request(m.LeaseRenew(30))
    sim.advance(0.03)
    assert state(sim) is S.IDLE and sim.firmware.faults == 0
    host.poll()
    assert (host.events[-1].event, host.events[-1].state) == (EventCode.STATE_CHANGED, S.IDLE)


def test_telemetry_reports_the_lease() -> None:
    sim, host = drive_to(S.ARMED)
    host.request(m.LeaseRenew(1000))
    sim.advance(0.1)
    host.poll()
    last = host.telemetry[-1]
    assert 890 <= last.lease_remaining_ms <= 910 and last.flags & 0x08


# ---------------------------------------------------------------- E-stop


@pytest.mark.parametrize("start", list(S), ids=[s.name for s in S])
def test_estop_in_every_state_latches_until_clear(start: S) -> None:
    sim, host = drive_to(start)
    reply = host.request(m.EStop())
    assert (reply.TYPE, reply.acked_type) == (MsgType.ACK, MsgType.ESTOP)
    assert state(sim) is S.ESTOP
    sim.advance(0.2)  # also after boot completes, nothing releases it
    assert state(sim) is S.ESTOP and sim.firmware.depth_cmd_um == 0
    assert host.request(m.Arm()).reason == R.ESTOP_LATCHED
    assert host.request(m.ClearFaults()).TYPE == MsgType.ACK
    assert state(sim) is S.IDLE
    assert host.request(m.Arm()).reason == R.NO_SETPOINTS  # nothing resumes by itself


def test_estop_acts_before_commands_queued_in_the_same_batch() -> None:
    sim, host = drive_to(S.IDLE)
    batch = encode(VALID_SETPOINTS, 10) + encode(m.Arm(), 11) + encode(m.EStop(), 12)
    before = len(host.replies)
    host.port.write(batch)
    host.poll()
    got = [(f.seq, f.message.TYPE, getattr(f.message, "reason", None))
           for f in host.replies[before:]]
    assert got == [
        (12, MsgType.ACK, None),
        (10, MsgType.NACK, R.ESTOP_LATCHED),
        (11, MsgType.NACK, R.ESTOP_LATCHED),
    ]
    assert host.events[-1].event == EventCode.ESTOP_LATCHED
    assert not sim.firmware.has_setpoints


def test_estop_is_never_deduplicated() -> None:
    sim, host = drive_to(S.RUNNING)
    host.request(m.EStop(), seq=20)
    host.request(m.ClearFaults(), seq=21)
    assert state(sim) is S.IDLE
    host.request(m.EStop(), seq=20)  # same seq, type, payload: still acts
    assert state(sim) is S.ESTOP
    assert sim.firmware.executed[MsgType.ESTOP] == 2


# ---------------------------------------------------------------- duplicates


def test_duplicate_gets_cached_reply_and_is_not_executed() -> None:
    sim, host = drive_to(S.ARMED)
    host.send(m.LeaseRenew(100), seq=30)
    host.poll()
    first = host.replies[-1]
    sim.advance(0.05)
    executed = sim.firmware.executed[MsgType.LEASE_RENEW]
    host.send(m.LeaseRenew(100), seq=30)  # a retransmission
    host.poll()
    assert host.replies[-1] == first
    assert sim.firmware.executed[MsgType.LEASE_RENEW] == executed
    assert sim.firmware.lease_remaining_ms() == 50  # not renewed a second time
    assert sim.firmware.duplicates == 1


def test_cached_nack_is_resent_byte_for_byte() -> None:
    sim, host = make()
    port = sim.open_port()
    port.read(1 << 16, 0)
    raw = encode(m.Arm(), 9)
    port.write(raw)
    a = port.read(1 << 16, 0)
    host.request(VALID_SETPOINTS)  # now ARM would succeed if executed again
    port.read(1 << 16, 0)
    port.write(raw)
    assert port.read(1 << 16, 0) == a
    assert state(sim) is S.IDLE


def test_same_seq_new_payload_is_a_new_command() -> None:
    sim, host = make()
    host.request(m.LeaseRenew(100), seq=5)
    host.request(m.LeaseRenew(300), seq=5)
    assert sim.firmware.lease_remaining_ms() == 300


def test_identify_request_clears_the_window() -> None:
    sim, host = make()
    host.request(m.LeaseRenew(100), seq=5)
    sim.advance(0.05)
    host.request(m.IdentifyRequest(), seq=1)
    host.request(m.LeaseRenew(100), seq=5)  # a new connection: executed again
    assert sim.firmware.lease_remaining_ms() == 100


def test_window_holds_the_last_16() -> None:
    sim, host = make()
    host.request(m.LeaseRenew(100), seq=1)
    for seq in range(2, 2 + DEDUP_WINDOW):
        host.request(m.Ping(seq), seq=seq)
    sim.advance(0.05)
    host.request(m.LeaseRenew(100), seq=1)  # pushed out of the window: executed again
    assert sim.firmware.lease_remaining_ms() == 100
    assert sim.firmware.duplicates == 0
