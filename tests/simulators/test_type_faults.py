"""Link faults by message type: host->pen frames of a type lost or late (drop_type, delay_type)."""

from __future__ import annotations

import pytest

from firmware_protocol import encode
from firmware_protocol import messages as m
from firmware_protocol.codes import Fault, MsgType
from firmware_protocol.codes import FirmwareState as S
from simulators import PenSimulator, VirtualClock, parse_fault_spec
from simulators.testing import PenHost


def _running(spec: str, lease_ms: int = 300) -> tuple[PenSimulator, PenHost]:
    sim = PenSimulator(clock=VirtualClock(), link_faults=spec)
    host = PenHost(sim.open_port())
    sim.advance(0.06)
    replies = host.start_needle(lease_ms=lease_ms)
    assert [r.TYPE for r in replies] == [MsgType.ACK] * 4
    assert sim.firmware.state is S.RUNNING
    return sim, host


def test_drop_type_loses_only_estop_frames() -> None:
    sim, host = _running("drop_type=ESTOP")
    assert host.request(m.EStop(), timeout_s=0) is None  # lost on the way: no reply
    sim.advance(0.01)
    assert sim.firmware.state is S.RUNNING and sim.firmware.executed[MsgType.ESTOP] == 0
    assert host.request(m.Ping(5)) == m.Pong(5)  # every other type still gets through
    assert host.request(m.LeaseRenew(300)).TYPE == MsgType.ACK
    assert sim.link.stats["dropped_frames_in"] == 1
    sim.advance(0.3)  # the host stopped renewing: the lease alone stops the needle
    assert sim.firmware.state is S.FAULT and sim.firmware.faults == Fault.LEASE_EXPIRED


def test_drop_type_finds_the_frame_among_others_in_one_write() -> None:
    sim, host = _running("drop_type=ESTOP+NEEDLE_STOP")
    host.port.write(encode(m.Ping(1), 201) + encode(m.EStop(), 202) + encode(m.NeedleStop(), 203)
                    + encode(m.Ping(2), 204))
    host.poll()
    assert [f.seq for f in host.replies[-2:]] == [201, 204]
    assert sim.firmware.state is S.RUNNING and sim.link.stats["dropped_frames_in"] == 2


def test_drop_type_star_drops_every_host_frame_but_telemetry_flows() -> None:
    sim, host = _running("")
    sim.link.drop_inbound(*parse_fault_spec("drop_type=*").link.drop_in)  # after the start
    seen = len(host.telemetry)
    assert host.request(m.Ping(1), timeout_s=0) is None
    sim.advance(0.05)
    host.poll()
    assert len(host.telemetry) > seen  # pen -> host is untouched
    sim.advance(0.3)
    assert sim.firmware.faults == Fault.LEASE_EXPIRED


def test_delay_type_delivers_estop_late_and_in_arrival_order() -> None:
    sim, host = _running("delay_type=ESTOP:0.5", lease_ms=2000)
    estop_seq = host.send(m.EStop())
    assert host.request(m.Ping(3)) == m.Pong(3)  # a later frame overtakes the late ESTOP
    sim.advance(0.499)
    assert sim.firmware.state is S.RUNNING
    sim.advance(0.001)
    assert sim.firmware.state is S.ESTOP
    host.poll()
    assert [f.message.TYPE for f in host.replies if f.seq == estop_seq] == [MsgType.ACK]
    assert sim.link.stats["delayed_frames_in"] == 1


def test_clear_inbound_ends_the_type_faults() -> None:
    sim, host = _running("drop_type=ESTOP")
    sim.link.clear_inbound()
    assert host.request(m.EStop()).TYPE == MsgType.ACK
    assert sim.firmware.state is S.ESTOP


def test_on_demand_drop_inbound_matches_the_spec() -> None:
    sim, host = _running("")
    sim.link.drop_inbound(MsgType.ESTOP)
    assert host.request(m.EStop(), timeout_s=0) is None
    assert sim.firmware.state is S.RUNNING


@pytest.mark.parametrize(("spec", "error"), [
    ("drop_type=TELEMETRY", "no host->pen message type"),
    ("drop_type=ESTOPP", "no host->pen message type"),
    ("delay_type=ESTOP", "TYPE:SECONDS"),
    ("delay_type=ESTOP:-1", "finite number of seconds"),
    ("delay_type=ESTOP:nan", "finite number of seconds"),
    ("delay_type=ESTOP:inf", "finite number of seconds"),
    ("drop=1.5", "probability"),
    ("drop=nan", "probability"),
    ("delay=inf", "seconds >= 0"),
    ("drop_typ=ESTOP", "drop_type, delay_type"),
])
def test_bad_type_fault_specs_are_clear_errors(spec: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_fault_spec(spec)


def test_spec_parses_into_the_config() -> None:
    plan = parse_fault_spec("drop_type=estop+needle_stop,delay_type=*:0.25")
    assert plan.link.drop_in == (MsgType.ESTOP, MsgType.NEEDLE_STOP)
    assert MsgType.LEASE_RENEW in plan.link.delay_in and plan.link.delay_in_s == 0.25
    assert MsgType.TELEMETRY not in plan.link.delay_in and plan.link.any
