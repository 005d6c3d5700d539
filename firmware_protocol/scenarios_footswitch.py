"""Scenario vectors of the footswitch as an enabling device (issue 15 part 4).

Footswitch mode REQUIRED: NEEDLE_START with the pedal up is refused, a release while RUNNING
stops the needle in the next tick, pressing again starts nothing; OPTIONAL and OFF never gate;
the mode's lifetime. Part of `scenarios.json` (firmware_protocol.scenarios.build_scenarios).
"""

from __future__ import annotations

from typing import Any

from firmware_protocol import messages as m
from firmware_protocol.codes import EventCode as E
from firmware_protocol.codes import Fault
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import FootswitchMode as FM
from firmware_protocol.codes import LimitField as L
from firmware_protocol.codes import MsgType as T
from firmware_protocol.codes import NackReason as R
from firmware_protocol.scenarios import (
    SETPOINTS,
    ack,
    advance,
    condition,
    event,
    nack,
    prelude,
    reply_to,
    send,
)


def footswitch_scenarios() -> list[dict[str, Any]]:
    """Footswitch mode REQUIRED as an enabling device; OPTIONAL and OFF never gate."""
    idle = prelude(S.IDLE)[0]
    up, down = (condition("pedal_up", [], S.IDLE), condition("pedal_down", [], S.IDLE))

    def mode(mode: FM, seq: int, state: S = S.IDLE) -> dict[str, Any]:
        return send(m.SetFootswitch(mode), seq, [ack(T.SET_FOOTSWITCH, seq)], state)

    armed = [send(m.LeaseRenew(2000), 3, [ack(T.LEASE_RENEW, 3)], S.IDLE),
             send(m.Arm(), 4, [ack(T.ARM, 4)], S.ARMED)]
    start = [send(m.NeedleStart(), 5, [ack(T.NEEDLE_START, 5)], S.RUNNING)]
    released = [condition("pedal_up", [], S.RUNNING),
                advance(1, [event(E.FOOTSWITCH_RELEASED, S.ARMED)], S.ARMED)]
    refused = send(m.NeedleStart(), 9, [nack(T.NEEDLE_START, 9, R.FOOTSWITCH_UP)], S.ARMED)
    return [
        {"name": "footswitch_required_start_refused_with_pedal_up",
         "about": "REQUIRED, pedal up: NEEDLE_START NACK FOOTSWITCH_UP; pedal down: it starts",
         "steps": [*idle, up, mode(FM.REQUIRED, 2), *armed, refused,
                   condition("pedal_down", [], S.ARMED),
                   send(m.NeedleStart(), 10, [ack(T.NEEDLE_START, 10)], S.RUNNING)]},
        {"name": "footswitch_release_stops_the_needle_in_one_tick",
         "about": "REQUIRED: release while RUNNING -> ARMED in the next tick with EVENT "
                  "FOOTSWITCH_RELEASED; pressing again starts nothing; the next start is an "
                  "explicit NEEDLE_START (setpoints and lease kept)",
         "steps": [*idle, down, mode(FM.REQUIRED, 2), *armed, *start, *released,
                   condition("pedal_down", [], S.ARMED), advance(100, [], S.ARMED),
                   send(m.NeedleStart(), 10, [ack(T.NEEDLE_START, 10)], S.RUNNING)]},
        {"name": "footswitch_optional_and_off_never_gate",
         "about": "OPTIONAL and OFF: the needle starts and runs with the pedal up; the mode "
                  "cannot change while RUNNING",
         "steps": [*idle, up, mode(FM.OPTIONAL, 2), *armed, *start, advance(50, [], S.RUNNING),
                   send(m.SetFootswitch(FM.REQUIRED), 6,
                        [nack(T.SET_FOOTSWITCH, 6, R.BAD_STATE)], S.RUNNING),
                   send(m.NeedleStop(), 7, [ack(T.NEEDLE_STOP, 7)], S.ARMED),
                   mode(FM.OFF, 8, S.ARMED),
                   send(m.NeedleStart(), 9, [ack(T.NEEDLE_START, 9)], S.RUNNING),
                   advance(50, [], S.RUNNING)]},
        {"name": "footswitch_mode_out_of_limits",
         "about": "mode 3 is no FootswitchMode: NACK OUT_OF_LIMITS FOOTSWITCH_MODE",
         "steps": [*idle, send(m.SetFootswitch(3), 2,
                               [nack(T.SET_FOOTSWITCH, 2, R.OUT_OF_LIMITS, L.FOOTSWITCH_MODE)],
                               S.IDLE)]},
        {"name": "footswitch_mode_survives_estop_and_reconnect",
         "about": "REQUIRED is kept across ESTOP, CLEAR_FAULTS and IDENTIFY_REQUEST",
         "steps": [*idle, up, mode(FM.REQUIRED, 2),
                   send(m.EStop(), 3, [ack(T.ESTOP, 3), event(E.ESTOP_LATCHED, S.ESTOP)],
                        S.ESTOP),
                   send(m.ClearFaults(), 4, [ack(T.CLEAR_FAULTS, 4), event(E.CLEARED, S.IDLE)],
                        S.IDLE),
                   send(m.IdentifyRequest(), 1, [reply_to(m.IdentifyRequest(), 1)], S.IDLE),
                   send(SETPOINTS, 5, [ack(T.SET_SETPOINTS, 5)], S.IDLE),
                   send(m.LeaseRenew(2000), 6, [ack(T.LEASE_RENEW, 6)], S.IDLE),
                   send(m.Arm(), 7, [ack(T.ARM, 7)], S.ARMED), refused]},
        {"name": "footswitch_mode_is_off_after_a_reboot",
         "about": "power reset: the mode is OFF again, the pedal does not gate until the host "
                  "sends REQUIRED anew",
         "steps": [*idle, up, mode(FM.REQUIRED, 2), condition("power_reset", [], S.BOOTING),
                   advance(60, [event(E.BOOTED, S.FAULT, Fault.POWER_RESET)], S.FAULT),
                   send(m.ClearFaults(), 3, [ack(T.CLEAR_FAULTS, 3), event(E.CLEARED, S.IDLE)],
                        S.IDLE),
                   send(SETPOINTS, 4, [ack(T.SET_SETPOINTS, 4)], S.IDLE),
                   send(m.LeaseRenew(2000), 5, [ack(T.LEASE_RENEW, 5)], S.IDLE),
                   send(m.Arm(), 6, [ack(T.ARM, 6)], S.ARMED),
                   send(m.NeedleStart(), 7, [ack(T.NEEDLE_START, 7)], S.RUNNING)]},
    ]
