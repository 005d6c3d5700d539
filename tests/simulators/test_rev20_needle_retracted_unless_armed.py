"""Review 20 (F3): the needle is out past the tip only in ARMED and RUNNING.

Before, SET_SETPOINTS drove the depth actuator in IDLE too and DISARM left it there: a disarmed
pen held the needle 1 mm past the tip (a sharps hazard). docs/protocol.md section 7: the
actuator drives to the setpoints' depth_um in ARMED and RUNNING only, to 0 in every other state;
DISARM and every other move to IDLE retract; the setpoints are kept, so ARM extends it again.
"""

from __future__ import annotations

from firmware_protocol import encode
from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import MsgType
from firmware_protocol.frame import decode_frame
from firmware_protocol.timing import RETRACT_MAX_MS
from simulators.clock import VirtualClock
from simulators.firmware import PenFirmware
from simulators.pen_model import PenModel

SETPOINTS = m.SetSetpoints(1000, 10000, 500, 100_000)


def _booted() -> PenFirmware:
    fw = PenFirmware(PenModel(), VirtualClock())
    _ticks(fw, 60)
    assert fw.state is S.IDLE
    return fw


def _ticks(fw: PenFirmware, n: int) -> None:
    for _ in range(n):
        fw.step()


def _send(fw: PenFirmware, msg: m.Message, seq: int) -> None:
    fw.receive_now(encode(msg, seq))


def _last_telemetry(fw: PenFirmware) -> m.Telemetry:
    frames = [decode_frame(raw).message for raw in fw.take_frames()]
    telemetry = [f for f in frames if f.TYPE == MsgType.TELEMETRY]
    assert telemetry
    return telemetry[-1]  # type: ignore[return-value]


def test_setpoints_in_idle_leave_the_needle_inside_the_tip() -> None:
    fw = _booted()
    _send(fw, SETPOINTS, 1)
    _ticks(fw, 200)
    t = _last_telemetry(fw)
    assert (fw.physics.position_um, t.depth_um, t.depth_cmd_um) == (0, 0, 0)
    assert fw.has_setpoints  # accepted and kept for ARM


def test_arm_extends_disarm_retracts_and_arm_extends_again() -> None:
    fw = _booted()
    _send(fw, SETPOINTS, 1)
    _send(fw, m.Arm(), 2)
    _ticks(fw, 200)
    assert fw.physics.position_um == 1000 and _last_telemetry(fw).depth_cmd_um == 1000
    _send(fw, m.Disarm(), 3)
    _ticks(fw, RETRACT_MAX_MS)
    assert fw.state is S.IDLE and fw.physics.position_um == 0
    assert _last_telemetry(fw).depth_cmd_um == 0
    _send(fw, m.Arm(), 4)  # the setpoints were kept: no new SET_SETPOINTS needed
    _ticks(fw, 200)
    assert fw.state is S.ARMED and fw.physics.position_um == 1000


def test_a_lease_lapse_while_armed_retracts() -> None:
    fw = _booted()
    _send(fw, SETPOINTS, 1)
    _send(fw, m.LeaseRenew(150), 2)
    _send(fw, m.Arm(), 3)
    _ticks(fw, 140)
    assert fw.state is S.ARMED and fw.physics.position_um > 0
    _ticks(fw, 10 + RETRACT_MAX_MS)
    assert fw.state is S.IDLE and fw.physics.position_um == 0
