"""Session 21 (review 20 F3): both pens built from docs/protocol.md hold the needle out only in
ARMED and RUNNING, and TELEMETRY.depth_cmd_um says where the actuator is driven (0 in every
other state).

- the simulated pen, under random command sequences (every command in the catalogue, short
  leases that lapse, E-stops and clears), judged on every TELEMETRY frame at 1 kHz: the drive
  is 0 outside ARMED and RUNNING, and the measured depth is 0 once RETRACT_MAX_MS has passed
  there;
- the C reflex peer (firmware_protocol/c/reflex_peer.c, over a real pty), which has no
  physics but reports the actuator's command: SET_SETPOINTS in IDLE drives nothing, ARM
  extends, DISARM and RETRACT bring it back to 0.
"""

from __future__ import annotations

import random

import pytest

from firmware_protocol import encode
from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.frame import decode_frame
from firmware_protocol.timing import RETRACT_MAX_MS
from simulators.clock import VirtualClock
from simulators.firmware import PenFirmware
from simulators.pen_model import PenModel
from tests.firmware_protocol.test_reflex_peer import (  # noqa: F401 (fixtures)
    GCC,
    WAIT_S,
    Wire,
    peer_exe,
    pty_path,
)

OUT = (int(S.ARMED), int(S.RUNNING))


def _pool(rnd: random.Random) -> m.Message:
    return rnd.choice([
        m.SetSetpoints(rnd.choice([300, 1200, 2400]), 10000, 500, 100_000),
        m.Arm(), m.Arm(), m.Disarm(), m.NeedleStart(), m.NeedleStop(), m.Retract(),
        m.LeaseRenew(rnd.choice([30, 200, 2000])), m.LeaseRenew(2000), m.EStop(),
        m.ClearFaults(), m.ClearFaults(), m.SetTelemetryRate(1000), m.Ping(1),
    ])


@pytest.mark.parametrize("seed", range(6))
def test_the_simulated_pen_drives_the_actuator_out_only_when_armed_or_running(seed: int):
    rnd = random.Random(seed)
    fw = PenFirmware(PenModel(seed=seed), VirtualClock())
    for _ in range(60):
        fw.step()
    fw.receive_now(encode(m.SetTelemetryRate(1000), 1))
    last_out_ms: int | None = None
    out_seen = 0
    for i in range(400):
        fw.receive_now(encode(_pool(rnd), 2 + i % 250))
        for _ in range(rnd.choice([1, 5, 20, 60, 300])):
            fw.step()
        for raw in fw.take_frames():
            t = decode_frame(raw).message
            if not isinstance(t, m.Telemetry):
                continue
            if t.state in OUT:
                last_out_ms, out_seen = t.uptime_ms, out_seen + 1
                continue
            assert t.depth_cmd_um == 0, (seed, i, t)
            if last_out_ms is None or t.uptime_ms - last_out_ms > RETRACT_MAX_MS:
                assert t.depth_um == 0, (seed, i, t)  # retracted within RETRACT_MAX_MS
    assert out_seen > 0  # the sequence did arm the pen


needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc is not installed")




@needs_gcc
def test_the_reflex_peer_reports_the_actuator_driven_only_when_armed(pty_path: str) -> None:  # noqa: F811
    wire = Wire(pty_path)
    wire.send(m.IdentifyRequest(), 1)
    wire.send(m.SetTelemetryRate(200), 2)
    assert wire.send(m.SetSetpoints(800, 10_000, 500, 100_000), 3)[0][1] == m.Ack(3)
    t = wire.telemetry()
    assert (S(t.state), t.depth_cmd_um, t.depth_um) == (S.IDLE, 0, 0)  # stored, not driven
    wire.send(m.Arm(), 4)
    t = wire.telemetry()
    assert (S(t.state), t.depth_cmd_um, t.depth_um) == (S.ARMED, 800, 800)
    wire.send(m.Disarm(), 5)
    t = wire.telemetry()
    assert (S(t.state), t.depth_cmd_um) == (S.IDLE, 0)
    wire.send(m.Arm(), 6)  # the setpoints were kept: ARM extends it again
    assert wire.telemetry().depth_cmd_um == 800
    wire.send(m.Retract(), 7)  # retracted, the setpoints forgotten: armed, nothing out
    t = wire.telemetry()
    assert (S(t.state), t.depth_cmd_um) == (S.ARMED, 0)
