"""Putting a virtual-clock simulator into each firmware state, for the rule tests."""

from __future__ import annotations

from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import MsgType
from simulators import PenModel, PenSimulator, VirtualClock
from simulators.testing import PenHost

VALID_SETPOINTS = m.SetSetpoints(depth_um=1000, speed_centihz=10000, duty_permille=500,
                                 period_us=100_000)


def make(seed: int = 0, boot: bool = True, **model) -> tuple[PenSimulator, PenHost]:
    """A virtual-clock pen (PenModel fields in `model`) and a host connected from power-on."""
    sim = PenSimulator(model=PenModel(seed=seed, **model), clock=VirtualClock())
    host = PenHost(sim.open_port())  # connected from power-on: sees the BOOTED event
    if boot:
        sim.advance(0.06)
    return sim, host


def state(sim: PenSimulator) -> S:
    return sim.firmware.state


def drive_to(target: S, seed: int = 0) -> tuple[PenSimulator, PenHost]:
    """A booted pen in `target`; IDLE, ARMED and RUNNING have setpoints, ARMED a lease."""
    sim, host = make(seed, boot=target is not S.BOOTING)
    if target is S.BOOTING:
        return sim, host
    if target is S.ESTOP:
        host.request(m.EStop())
    elif target is S.FAULT:
        host.start_needle(lease_ms=10)
        sim.advance(0.02)  # the lease lapses while running: LEASE_EXPIRED, no lasting cause
    else:
        host.request(VALID_SETPOINTS)
        if target in (S.ARMED, S.RUNNING):
            host.request(m.Arm())
            host.request(m.LeaseRenew(2000))
        if target is S.RUNNING:
            host.request(m.NeedleStart())
    assert state(sim) is target, (state(sim), target)
    return sim, host


def valid_command(mtype: MsgType) -> m.Message:
    """A command of `mtype` whose payload passes every limit check."""
    return {
        MsgType.IDENTIFY_REQUEST: m.IdentifyRequest(),
        MsgType.PING: m.Ping(0xDEADBEEF),
        MsgType.SET_SETPOINTS: VALID_SETPOINTS,
        MsgType.ARM: m.Arm(),
        MsgType.DISARM: m.Disarm(),
        MsgType.NEEDLE_START: m.NeedleStart(),
        MsgType.NEEDLE_STOP: m.NeedleStop(),
        MsgType.RETRACT: m.Retract(),
        MsgType.LEASE_RENEW: m.LeaseRenew(500),
        MsgType.ESTOP: m.EStop(),
        MsgType.CLEAR_FAULTS: m.ClearFaults(),
        MsgType.SET_TELEMETRY_RATE: m.SetTelemetryRate(50),
        MsgType.CALIBRATION_READ: m.CalibrationRead(),
        MsgType.CALIBRATION_WRITE: m.CalibrationWrite.from_points([(500, 150), (1500, 1120)], 1),
        MsgType.SET_FOOTSWITCH: m.SetFootswitch(2),  # REQUIRED (the simulated pedal is down)
    }[mtype]
