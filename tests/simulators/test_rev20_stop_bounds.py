"""Review 20 (F2): a safety stop cuts the needle drive within STOP_MS, and only then is it
reported; the actuator is back at 0 within RETRACT_MAX_MS (docs/protocol.md sections 9, 12).

The simulated pen decides the drive once per 1 ms tick from its state, so "the drive is cut"
is the state change itself: a tick that finds a lapse drives nothing, one that finds a fault
(after its physics) drives nothing from the next tick on, an ESTOP between ticks leaves the
next tick undriven. Each test watches the frame go out (`on_frame`) and the ticks around it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from firmware_protocol import encode
from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import MsgType
from firmware_protocol.frame import decode_frame
from firmware_protocol.timing import RETRACT_MAX_MS, STOP_MS
from simulators.clock import VirtualClock
from simulators.firmware import PenFirmware
from simulators.pen_model import PenModel

DEEPEST_UM = PenModel().depth_max_um


def _running(lease_ms: int = 2000) -> PenFirmware:
    """A booted pen RUNNING continuously (duty 100 %) at its deepest depth, actuator there."""
    fw = PenFirmware(PenModel(), VirtualClock())
    for _ in range(60):
        fw.step()
    for seq, msg in enumerate([m.SetSetpoints(DEEPEST_UM, 10000, 1000, 100_000),
                               m.LeaseRenew(lease_ms), m.Arm(), m.NeedleStart()], 1):
        fw.receive_now(encode(msg, seq))
    for _ in range(300):  # 2500 um at 10 mm/s: there after 250 ticks
        fw.step()
    assert fw.state is S.RUNNING and fw.physics.driven
    assert fw.physics.position_um == DEEPEST_UM
    fw.take_frames()
    return fw


def _watch(fw: PenFirmware, kind: MsgType) -> list[tuple[S, int]]:
    """(state, depth command) at the moment each frame of `kind` is written."""
    seen: list[tuple[S, int]] = []

    def on_frame(raw: bytes) -> None:
        if kind == decode_frame(raw).message.TYPE:
            seen.append((fw.state, fw.depth_cmd_um))

    fw.on_frame = on_frame
    return seen


def _retracted_within(fw: PenFirmware, ms: int) -> bool:
    for _ in range(ms):
        fw.step()
        if fw.physics.position_um == 0:
            return True
    return False


def test_estop_cuts_the_drive_before_its_ack_and_retracts_in_time() -> None:
    fw = _running()
    acks = _watch(fw, MsgType.ACK)
    fw.receive_now(encode(m.EStop(), 9))
    assert acks == [(S.ESTOP, 0)]  # the ACK went out with the pen already stopped
    fw.step()  # the first tick after the ESTOP's last byte
    assert not fw.physics.driven and STOP_MS >= 1
    assert _retracted_within(fw, RETRACT_MAX_MS - 1)


def test_a_lease_lapse_drives_nothing_in_the_tick_that_finds_it() -> None:
    fw = _running(lease_ms=400)
    events = _watch(fw, MsgType.EVENT)
    ticks = 0
    while not events:
        fw.step()
        ticks += 1
        assert ticks <= 400
    assert events == [(S.FAULT, 0)] and not fw.physics.driven  # that very tick
    assert _retracted_within(fw, RETRACT_MAX_MS)


@pytest.mark.parametrize("cause", ["winding_short", "cartridge_removed"])
def test_a_fault_stops_the_drive_within_stop_ms_and_is_reported_after(cause: str) -> None:
    fw = _running()
    events = _watch(fw, MsgType.EVENT)
    inject: Callable[[], None] = {
        "winding_short": lambda: setattr(fw.physics.cond, "winding_short", True),
        "cartridge_removed": lambda: setattr(fw.physics.cond, "cartridge_present", False),
    }[cause]
    inject()
    fw.step()  # the tick that finds it
    assert events == [(S.FAULT, 0)]  # reported with the drive already off for what follows
    for _ in range(STOP_MS):
        fw.step()
        assert not fw.physics.driven
    assert _retracted_within(fw, RETRACT_MAX_MS)


def test_the_simulated_pen_retracts_its_whole_travel_within_retract_max_ms() -> None:
    model = PenModel()
    assert model.depth_max_um / (model.depth_slew_mm_per_s * 1000) * 1000 <= RETRACT_MAX_MS
