"""Each device fault: the needle stops, the fault latches, CLEAR_FAULTS waits for the cause."""

from __future__ import annotations

import pytest

from firmware_protocol import messages as m
from firmware_protocol.codes import EventCode, Fault, MsgType
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import NackReason as R
from simulators import DeviceFault, PenSimulator, VirtualClock
from simulators.testing import PenHost
from tests.simulators.helpers import drive_to, state

CASES = [
    (DeviceFault.JAM, Fault.JAM),
    (DeviceFault.OVERCURRENT, Fault.OVERCURRENT),
    (DeviceFault.OVERTEMPERATURE, Fault.OVERTEMPERATURE),
    (DeviceFault.ENCODER_LOSS, Fault.ENCODER_LOSS),
    (DeviceFault.DEPTH_DRIFT, Fault.DEPTH_OUT_OF_BAND),
    (DeviceFault.CARTRIDGE_REMOVED, Fault.CARTRIDGE_REMOVED),
]


@pytest.mark.parametrize(("fault", "flag"), CASES, ids=[c[0].value for c in CASES])
def test_device_fault_stops_latches_and_waits_for_its_cause(
    fault: DeviceFault, flag: Fault
) -> None:
    sim, host = drive_to(S.RUNNING)
    host.request(m.SetSetpoints(1000, 10000, 1000, 100_000))  # continuous running
    sim.advance(0.2)
    assert sim.firmware.physics.speed_hz > 90
    sim.inject(fault)
    sim.advance(0.1)
    fw = sim.firmware
    assert state(sim) is S.FAULT
    assert fw.faults == flag  # this fault and no other
    assert fw.depth_cmd_um == 0 and fw.physics.driven is False
    host.poll()
    assert any(e.event == EventCode.FAULT_LATCHED and e.faults & flag for e in host.events)
    assert not host.telemetry[-1].flags & 0x01  # NEEDLE_RUNNING off
    # while the cause persists, CLEAR_FAULTS is refused
    sim.advance(0.5)
    reply = host.request(m.ClearFaults())
    assert (reply.TYPE, reply.reason) == (MsgType.NACK, R.CONDITION_ACTIVE)
    assert state(sim) is S.FAULT
    sim.clear(fault)
    if fault is DeviceFault.OVERTEMPERATURE:
        assert host.request(m.ClearFaults()).reason == R.CONDITION_ACTIVE  # still hot
        for _ in range(30):
            if fw.physics.temp_c < sim.model.temp_max_c - sim.model.temp_clear_hysteresis_c:
                break
            sim.advance(1.0)
    sim.advance(0.3)  # (the actuator finishes retracting)
    assert state(sim) is S.FAULT  # nothing resumes by itself
    assert host.request(m.ClearFaults()).TYPE == MsgType.ACK
    assert state(sim) is S.IDLE and fw.faults == 0
    assert host.request(m.Arm()).reason == R.NO_SETPOINTS  # and must be set up again


def test_jam_collapses_speed_and_spikes_current() -> None:
    sim, host = drive_to(S.RUNNING)
    host.request(m.SetSetpoints(1000, 10000, 1000, 100_000))
    sim.advance(0.2)
    sim.inject(DeviceFault.JAM)
    peak = 0.0
    for _ in range(15):
        sim.firmware.step()
        peak = max(peak, sim.firmware.physics.current_a)
    assert sim.firmware.physics.speed_hz < 10
    assert peak > 1.0
    assert sim.firmware.faults == Fault.JAM


def test_cartridge_removed_in_idle_is_not_a_fault_but_blocks_arming() -> None:
    sim, host = drive_to(S.IDLE)
    sim.inject(DeviceFault.CARTRIDGE_REMOVED)
    sim.advance(0.1)
    assert state(sim) is S.IDLE and sim.firmware.faults == 0
    assert host.request(m.Arm()).reason == R.NO_CARTRIDGE


def test_brownout_reboots_into_power_reset_fault() -> None:
    sim, host = drive_to(S.RUNNING)
    sim.advance(0.3)
    host.poll()
    assert host.telemetry[-1].telemetry_seq > 20 and host.telemetry[-1].strokes > 10
    sim.inject(DeviceFault.BROWNOUT)
    assert state(sim) is S.BOOTING and sim.firmware.lease_until_ms is None
    assert host.request(m.NeedleStart()).reason == R.BOOTING
    sim.advance(0.06)
    host.poll()
    assert state(sim) is S.FAULT and sim.firmware.faults == Fault.POWER_RESET
    booted = [e for e in host.events if e.event == EventCode.BOOTED][-1]
    assert (booted.state, booted.faults) == (S.FAULT, Fault.POWER_RESET)
    after = [t for t in host.telemetry if t.uptime_ms < 100 and t.state == S.FAULT]
    assert after and after[0].telemetry_seq == 0 and after[0].strokes == 0
    assert sim.firmware.physics.driven is False
    assert host.request(m.ClearFaults()).TYPE == MsgType.ACK  # no lasting cause
    assert state(sim) is S.IDLE


def test_faults_on_a_schedule_from_a_spec() -> None:
    clock = VirtualClock()
    sim = PenSimulator(clock=clock, link_faults="jam@0.5-0.8")
    host = PenHost(sim.open_port())
    sim.advance(0.06)
    host.start_needle(lease_ms=2000)
    sim.advance(0.43)
    assert state(sim) is S.RUNNING
    sim.advance(0.1)
    assert sim.firmware.faults == Fault.JAM
    assert host.request(m.ClearFaults()).reason == R.CONDITION_ACTIVE
    sim.advance(0.3)  # past 0.8 s: the jam is gone
    assert host.request(m.ClearFaults()).TYPE == MsgType.ACK
    sim.close()


def _random_fault_times(seed: int) -> list[int]:
    sim = PenSimulator(seed=seed, clock=VirtualClock(), link_faults="brownout~2")
    PenHost(sim.open_port())
    boots = []
    for _ in range(300):
        before = sim.firmware.boots
        sim.advance(0.01)
        if sim.firmware.boots != before:
            boots.append(sim.firmware.now_ms)
    sim.close()
    return boots


def test_random_device_faults_repeat_with_the_seed() -> None:
    a = _random_fault_times(1)
    assert len(a) >= 1 and a == _random_fault_times(1)
    assert a != _random_fault_times(2)
