"""Scenario vectors of the E-stop's place in one read, and of an E-stop cleared while booting.

docs/protocol.md section 9: the ESTOPs of one read act first, in wire order; then the other
frames, in wire order, in ESTOP (motion refused by the table), except that a CLEAR_FAULTS before
the last ESTOP is superseded (not executed, NACK ESTOP_LATCHED, cached in the duplicate window
like any NACK). So a CLEAR_FAULTS the host sent before an E-stop never clears its latch.
Section 10: an E-stop cleared before the boot completes sends the pen back to BOOTING, never
straight to IDLE; after a brownout the boot still completes into FAULT with POWER_RESET (the
clear ended the E-stop, not the reset the host was never told of). Part of `scenarios.json`
(firmware_protocol.scenarios.build_scenarios).
"""

from __future__ import annotations

from typing import Any

from firmware_protocol import messages as m
from firmware_protocol.codes import EventCode as E
from firmware_protocol.codes import Fault
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import MsgType as T
from firmware_protocol.codes import NackReason as R
from firmware_protocol.frame import encode
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


def one_read(frames: list[tuple[m.Message, int]], expect: list, state: S) -> dict[str, Any]:
    """Several frames written at once: the pen receives them in one read."""
    data = b"".join(encode(msg, seq) for msg, seq in frames)
    return {"send_hex": [data.hex()], "expect": expect, "state": state.name}


def _latched(seq: int, faults: int = 0) -> list[dict[str, Any]]:
    return [ack(T.ESTOP, seq), event(E.ESTOP_LATCHED, S.ESTOP, faults)]


def estop_read_scenarios() -> list[dict[str, Any]]:
    """An ESTOP and the frames around it in one read; CLEAR_FAULTS of an E-stop while booting."""
    running, armed = prelude(S.RUNNING)[0], prelude(S.ARMED)[0]
    fault, fault_flags = prelude(S.FAULT)
    clear, estop = m.ClearFaults(), m.EStop()
    superseded_clear = nack(T.CLEAR_FAULTS, 5, R.ESTOP_LATCHED)
    return [
        {"name": "estop_supersedes_an_earlier_clear_faults_of_its_read_running",
         "about": "[CLEAR_FAULTS 5, ESTOP 6] in one read while RUNNING: the ESTOP acts first, the "
                  "older CLEAR_FAULTS is NACKed ESTOP_LATCHED and not executed; its "
                  "retransmission gets the cached NACK; a new CLEAR_FAULTS clears",
         "steps": [*running,
                   one_read([(clear, 5), (estop, 6)], [*_latched(6), superseded_clear], S.ESTOP),
                   send(clear, 5, [superseded_clear], S.ESTOP),
                   send(clear, 7, [ack(T.CLEAR_FAULTS, 7), event(E.CLEARED, S.IDLE)], S.IDLE)]},
        {"name": "estop_supersedes_an_earlier_clear_faults_of_its_read_fault",
         "about": "[CLEAR_FAULTS 5, ESTOP 6] in one read in FAULT (LEASE_EXPIRED): latched "
                  "E-stop, the fault flag kept, the CLEAR_FAULTS NACKed ESTOP_LATCHED",
         "steps": [*fault,
                   one_read([(clear, 5), (estop, 6)], [*_latched(6, fault_flags), superseded_clear],
                            S.ESTOP)]},
        {"name": "estop_acts_before_an_earlier_needle_start_of_its_read",
         "about": "[NEEDLE_START 5, ESTOP 6] in one read while ARMED: the ESTOP first, then the "
                  "NEEDLE_START, refused ESTOP_LATCHED: the needle never starts",
         "steps": [*armed,
                   one_read([(m.NeedleStart(), 5), (estop, 6)],
                            [*_latched(6), nack(T.NEEDLE_START, 5, R.ESTOP_LATCHED)], S.ESTOP)]},
        {"name": "estop_then_clear_faults_in_one_read_run_in_order",
         "about": "[ESTOP 5, CLEAR_FAULTS 6]: the frame after the ESTOP runs as usual, after it",
         "steps": [*running,
                   one_read([(estop, 5), (clear, 6)],
                            [*_latched(5), ack(T.CLEAR_FAULTS, 6), event(E.CLEARED, S.IDLE)],
                            S.IDLE)]},
        {"name": "estop_supersedes_a_clear_faults_before_the_last_estop_of_its_read",
         "about": "[NEEDLE_STOP 5, ESTOP 6, SET_SETPOINTS 7, CLEAR_FAULTS 8, ESTOP 9, PING 10]: "
                  "both ESTOPs first (one EVENT); then in wire order, in ESTOP: NEEDLE_STOP "
                  "ACKed, SET_SETPOINTS refused ESTOP_LATCHED by the table, CLEAR_FAULTS "
                  "superseded (NACK ESTOP_LATCHED), PING answered",
         "steps": [*running,
                   one_read([(m.NeedleStop(), 5), (estop, 6), (SETPOINTS, 7), (clear, 8),
                             (estop, 9), (m.Ping(10), 10)],
                            [*_latched(6), ack(T.ESTOP, 9), ack(T.NEEDLE_STOP, 5),
                             nack(T.SET_SETPOINTS, 7, R.ESTOP_LATCHED),
                             nack(T.CLEAR_FAULTS, 8, R.ESTOP_LATCHED), reply_to(m.Ping(10), 10)],
                            S.ESTOP)]},
        {"name": "estop_while_booting_cleared_finishes_booting",
         "about": "ESTOP while BOOTING, CLEAR_FAULTS before the boot completes: back to BOOTING "
                  "(EVENT CLEARED says BOOTING), ARM refused BOOTING; the boot then completes "
                  "as usual (EVENT BOOTED, IDLE)",
         "steps": [send(estop, 1, _latched(1), S.ESTOP),
                   send(clear, 2, [ack(T.CLEAR_FAULTS, 2), event(E.CLEARED, S.BOOTING)],
                        S.BOOTING),
                   send(m.Arm(), 3, [nack(T.ARM, 3, R.BOOTING)], S.BOOTING),
                   advance(60, [event(E.BOOTED, S.IDLE, Fault(0))], S.IDLE)]},
        {"name": "estop_while_rebooting_after_a_brownout_cleared_still_reports_power_reset",
         "about": "brownout while RUNNING; ESTOP while it reboots, CLEAR_FAULTS before the boot "
                  "completes (back to BOOTING): the boot still completes into FAULT with "
                  "POWER_RESET (EVENT BOOTED says so), the reset is never wiped unreported; a "
                  "CLEAR_FAULTS then acknowledges it",
         "steps": [*running,
                   condition("power_reset", [], S.BOOTING),
                   send(estop, 5, _latched(5, Fault.POWER_RESET), S.ESTOP),
                   send(clear, 6, [ack(T.CLEAR_FAULTS, 6), event(E.CLEARED, S.BOOTING)],
                        S.BOOTING),
                   advance(60, [event(E.BOOTED, S.FAULT, Fault.POWER_RESET)], S.FAULT),
                   send(m.Arm(), 7, [nack(T.ARM, 7, R.FAULT_LATCHED)], S.FAULT),
                   send(clear, 8, [ack(T.CLEAR_FAULTS, 8), event(E.CLEARED, S.IDLE)], S.IDLE)]},
    ]
