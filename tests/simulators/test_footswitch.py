"""The simulated footswitch (issue 15 part 4): the pedal API, the `pedal_up` fault spec, and the
firmware's footswitch modes on a virtual clock."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol import encode
from firmware_protocol import messages as m
from firmware_protocol.codes import Capability, EventCode, FootswitchMode, MsgType, TelemetryFlag
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import NackReason as R
from simulators import DeviceFault, PenFirmware, PenModel, ScheduledFault, VirtualClock
from simulators.faults import parse_fault_spec
from tests.simulators.helpers import VALID_SETPOINTS, make, state

REQUIRED, OPTIONAL, OFF = FootswitchMode.REQUIRED, FootswitchMode.OPTIONAL, FootswitchMode.OFF


def _running(mode: FootswitchMode, **model):
    sim, host = make(**model)
    assert host.request(m.SetFootswitch(mode)).TYPE == MsgType.ACK
    host.start_needle(lease_ms=2000)
    assert state(sim) is S.RUNNING
    return sim, host


def _flags(sim) -> TelemetryFlag:
    return TelemetryFlag(sim.firmware.telemetry().flags)


def test_the_pedal_is_down_by_default_and_the_api_moves_it() -> None:
    sim, _ = make()
    assert sim.pedal_down and TelemetryFlag.FOOTSWITCH in _flags(sim)
    sim.release_pedal()
    assert not sim.pedal_down and TelemetryFlag.FOOTSWITCH not in _flags(sim)
    sim.press_pedal()
    assert sim.pedal_down


def test_the_mode_is_off_after_boot_so_a_released_pedal_gates_nothing() -> None:
    sim, host = make(pedal_down_at_start=False)
    assert sim.firmware.footswitch_mode is OFF
    host.start_needle(lease_ms=2000)
    sim.advance(0.1)
    assert state(sim) is S.RUNNING


def test_required_release_stops_the_needle_in_the_next_tick_and_never_restarts() -> None:
    sim, host = _running(REQUIRED)
    sim.advance(0.2)
    host.poll()
    sim.release_pedal()
    assert state(sim) is S.RUNNING  # the pedal is read in the firmware's tick ...
    sim.advance(0.001)  # ... the next one (1 ms) stops the needle before driving it
    assert state(sim) is S.ARMED
    assert not sim.firmware.physics.driven
    assert TelemetryFlag.NEEDLE_RUNNING not in _flags(sim)
    events = [f.message for f in host.poll() if f.message.TYPE == MsgType.EVENT]
    assert [(e.event, e.state) for e in events] == [(EventCode.FOOTSWITCH_RELEASED, S.ARMED)]
    assert sim.firmware.faults == 0 and sim.firmware.has_setpoints  # a stop, not a fault

    sim.press_pedal()
    sim.advance(0.5)
    assert state(sim) is S.ARMED  # pressing again starts nothing
    impressions = sim.firmware.impressions
    sim.advance(0.3)
    assert sim.firmware.impressions == impressions
    host.request(m.LeaseRenew(2000))
    assert host.request(m.NeedleStart()).TYPE == MsgType.ACK  # an explicit start does
    assert state(sim) is S.RUNNING


def test_required_start_with_the_pedal_up_is_refused() -> None:
    sim, host = make()
    host.request(VALID_SETPOINTS)
    host.request(m.SetFootswitch(REQUIRED))
    host.request(m.LeaseRenew(2000))
    host.request(m.Arm())
    sim.release_pedal()
    nack = host.request(m.NeedleStart())
    assert (nack.TYPE, nack.reason) == (MsgType.NACK, R.FOOTSWITCH_UP)
    assert state(sim) is S.ARMED


@pytest.mark.parametrize("mode", [OPTIONAL, OFF])
def test_optional_and_off_never_stop_the_needle(mode: FootswitchMode) -> None:
    sim, host = _running(mode)
    sim.release_pedal()
    sim.advance(0.3)
    assert state(sim) is S.RUNNING
    assert not [f for f in host.poll() if f.message.TYPE == MsgType.EVENT]


def test_the_mode_cannot_change_while_running() -> None:
    sim, host = _running(OPTIONAL)
    nack = host.request(m.SetFootswitch(REQUIRED))
    assert (nack.TYPE, nack.reason) == (MsgType.NACK, R.BAD_STATE)
    assert sim.firmware.footswitch_mode is OPTIONAL


def test_a_pen_without_a_footswitch_refuses_required_and_never_reports_the_pedal() -> None:
    sim, host = make(footswitch_fitted=False)
    caps = Capability(sim.firmware._identify_request(None).capabilities)
    assert Capability.FOOTSWITCH not in caps
    assert TelemetryFlag.FOOTSWITCH not in _flags(sim) and not sim.pedal_down
    nack = host.request(m.SetFootswitch(REQUIRED))
    assert (nack.TYPE, nack.reason) == (MsgType.NACK, R.UNSUPPORTED)
    assert host.request(m.SetFootswitch(OPTIONAL)).TYPE == MsgType.ACK


def test_the_fault_spec_pedal_up_parses_like_every_timed_fault() -> None:
    plan = parse_fault_spec("pedal_up@1.5-2.5,pedal-up@4")
    assert plan.schedule == [ScheduledFault(1.5, "pedal_up", 2.5), ScheduledFault(4.0, "pedal_up")]
    assert [r.fault for r in parse_fault_spec("pedal_up~0.2").random] == [DeviceFault.PEDAL_UP]
    with pytest.raises(ValueError, match="pedal_down"):
        parse_fault_spec("pedal_down@1")


def test_a_scheduled_release_stops_a_required_pass_and_the_pedal_comes_back() -> None:
    sim, host = make()
    sim.schedule(ScheduledFault(0.3, "pedal_up", 0.5))  # after the simulator started
    host.request(m.SetFootswitch(REQUIRED))
    host.start_needle(lease_ms=2000)
    sim.advance(0.2)
    assert state(sim) is S.RUNNING and sim.pedal_down
    sim.advance(0.15)  # past 0.3 s
    assert state(sim) is S.ARMED and not sim.pedal_down
    sim.advance(0.3)  # past 0.5 s: pressed again, still armed
    assert sim.pedal_down and state(sim) is S.ARMED


@settings(max_examples=40, deadline=None)
@given(run_ms=st.integers(min_value=1, max_value=400), period_ms=st.integers(20, 200),
       duty_permille=st.integers(50, 1000))
def test_any_release_while_running_stops_within_one_tick(run_ms: int, period_ms: int,
                                                         duty_permille: int) -> None:
    fw = PenFirmware(PenModel(), VirtualClock())
    for _ in range(60):
        fw.step()
    for seq, msg in enumerate((m.SetSetpoints(1000, 10_000, duty_permille, period_ms * 1000),
                               m.SetFootswitch(REQUIRED), m.LeaseRenew(2000), m.Arm(),
                               m.NeedleStart()), start=1):
        fw.receive_now(encode(msg, seq))
    for _ in range(run_ms):
        fw.step()
    assert fw.state is S.RUNNING
    fw.physics.cond.pedal_down = False
    fw.step()
    assert fw.state is S.ARMED and not fw.physics.driven

