"""Scenario vectors of one firmware tick's order, the lease's edge, and review 20's findings.

docs/protocol.md section 7 ("One tick"): the lease is judged before the footswitch and the
needle drive; faults are judged against the state the tick began in, and every fault found in
one tick latches together in one EVENT FAULT_LATCHED (a cartridge pulled in the tick a lease
lapses is latched too, so CLEAR_FAULTS is refused while it is out). Section 8: a lapse is an
edge (once per lease, at the first tick with now >= renewal tick + lease_ms), and ARM needs no
lease. Section 5: a NACK BOOTING stays cached after the boot. Section 7: SET_FOOTSWITCH checks
its mode before the capability. Part of `scenarios.json` (scenarios.build_scenarios).
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
    BOOT,
    SETPOINTS,
    ack,
    advance,
    condition,
    event,
    nack,
    prelude,
    send,
)

_LAPSE_AND_PULLED = int(Fault.LEASE_EXPIRED | Fault.CARTRIDGE_REMOVED)


def _running_on_a_20_ms_lease(first_seq: int) -> list[dict[str, Any]]:
    """From IDLE with setpoints: a 20 ms lease, ARM, NEEDLE_START (3 commands)."""
    q = first_seq
    return [send(m.LeaseRenew(20), q, [ack(T.LEASE_RENEW, q)], S.IDLE),
            send(m.Arm(), q + 1, [ack(T.ARM, q + 1)], S.ARMED),
            send(m.NeedleStart(), q + 2, [ack(T.NEEDLE_START, q + 2)], S.RUNNING)]


def tick_scenarios() -> list[dict[str, Any]]:
    """The order within one tick, the lease's edge and boundary, a cached NACK BOOTING, and
    SET_FOOTSWITCH's order of checks on a pen without a footswitch."""
    idle = prelude(S.IDLE)[0]
    return [
        {"name": "lease_lapse_and_cartridge_removed_in_one_tick_latch_together",
         "about": "RUNNING on a 20 ms lease: nothing after 19 ticks; the cartridge is pulled "
                  "and the 20th tick finds both: one EVENT FAULT_LATCHED with LEASE_EXPIRED and "
                  "CARTRIDGE_REMOVED; CLEAR_FAULTS refused until the cartridge is back",
         "steps": [*idle, *_running_on_a_20_ms_lease(2), advance(19, [], S.RUNNING),
                   condition("cartridge_removed", [], S.RUNNING),
                   advance(1, [event(E.FAULT_LATCHED, S.FAULT, _LAPSE_AND_PULLED)], S.FAULT),
                   send(m.ClearFaults(), 5, [nack(T.CLEAR_FAULTS, 5, R.CONDITION_ACTIVE)],
                        S.FAULT),
                   condition("cartridge_inserted", [], S.FAULT),
                   send(m.ClearFaults(), 6, [ack(T.CLEAR_FAULTS, 6), event(E.CLEARED, S.IDLE)],
                        S.IDLE)]},
        {"name": "lease_lapse_while_armed_and_cartridge_removed_in_one_tick",
         "about": "ARMED on a 20 ms lease, the cartridge pulled before the 20th tick: the lapse "
                  "disarms (STATE_CHANGED), and the removal, judged against the state the tick "
                  "began in (ARMED), latches CARTRIDGE_REMOVED",
         "steps": [*idle, send(m.LeaseRenew(20), 2, [ack(T.LEASE_RENEW, 2)], S.IDLE),
                   send(m.Arm(), 3, [ack(T.ARM, 3)], S.ARMED), advance(19, [], S.ARMED),
                   condition("cartridge_removed", [], S.ARMED),
                   advance(1, [event(E.STATE_CHANGED, S.IDLE),
                               event(E.FAULT_LATCHED, S.FAULT, Fault.CARTRIDGE_REMOVED)],
                           S.FAULT)]},
        {"name": "lease_lapse_is_judged_before_the_footswitch",
         "about": "footswitch REQUIRED, RUNNING on a 20 ms lease, the pedal released before the "
                  "20th tick: the lease lapses first (FAULT, LEASE_EXPIRED), no "
                  "FOOTSWITCH_RELEASED",
         "steps": [*idle, condition("pedal_down", [], S.IDLE),
                   send(m.SetFootswitch(FM.REQUIRED), 9, [ack(T.SET_FOOTSWITCH, 9)], S.IDLE),
                   *_running_on_a_20_ms_lease(2), advance(19, [], S.RUNNING),
                   condition("pedal_up", [], S.RUNNING),
                   advance(1, [event(E.FAULT_LATCHED, S.FAULT, Fault.LEASE_EXPIRED)], S.FAULT)]},
        {"name": "lease_lapse_is_an_edge_arm_needs_no_lease",
         "about": "a lease that lapsed in IDLE sends nothing; ARM without a live lease is "
                  "accepted and stays ARMED (no lapse to come); NEEDLE_START is NACKed NO_LEASE",
         "steps": [*idle, send(m.LeaseRenew(10), 2, [ack(T.LEASE_RENEW, 2)], S.IDLE),
                   advance(20, [], S.IDLE), send(m.Arm(), 3, [ack(T.ARM, 3)], S.ARMED),
                   advance(100, [], S.ARMED),
                   send(m.NeedleStart(), 4, [nack(T.NEEDLE_START, 4, R.NO_LEASE)], S.ARMED)]},
        {"name": "nack_booting_stays_cached_after_the_boot",
         "about": "ARM while BOOTING is NACKed BOOTING; after EVENT BOOTED the same ARM (same "
                  "SEQ) gets that cached NACK again; a new SEQ is judged afresh",
         "steps": [send(m.Arm(), 5, [nack(T.ARM, 5, R.BOOTING)], S.BOOTING), BOOT,
                   send(m.Arm(), 5, [nack(T.ARM, 5, R.BOOTING)], S.IDLE),
                   send(SETPOINTS, 6, [ack(T.SET_SETPOINTS, 6)], S.IDLE),
                   send(m.Arm(), 7, [ack(T.ARM, 7)], S.ARMED)]},
        {"name": "footswitch_mode_is_checked_before_the_capability",
         "about": "a pen without Capability FOOTSWITCH: mode 3 is NACKed OUT_OF_LIMITS "
                  "FOOTSWITCH_MODE (not UNSUPPORTED); REQUIRED is NACKed UNSUPPORTED",
         "pen": {"without": ["FOOTSWITCH"]},
         "steps": [BOOT,
                   send(m.SetFootswitch(3), 2,
                        [nack(T.SET_FOOTSWITCH, 2, R.OUT_OF_LIMITS, L.FOOTSWITCH_MODE)], S.IDLE),
                   send(m.SetFootswitch(FM.REQUIRED), 3,
                        [nack(T.SET_FOOTSWITCH, 3, R.UNSUPPORTED)], S.IDLE)]},
    ]
