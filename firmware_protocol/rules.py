"""Which command the firmware accepts in which state, and what it refuses with.

This table is the contract that `docs/protocol.md` publishes and the simulator enforces. A
command outside its accepted states is NACKed with `refusal(state)`; inside them the firmware
may still refuse for a reason of its own (limits, lease, cartridge), listed in `EXTRA_CHECKS`.
"""

from __future__ import annotations

from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import MsgType as T
from firmware_protocol.codes import NackReason as R

_ANY = frozenset(S)
_UP = _ANY - {S.BOOTING}

ACCEPTED_IN: dict[T, frozenset[S]] = {
    T.IDENTIFY_REQUEST: _ANY,
    T.PING: _ANY,
    T.ESTOP: _ANY,
    T.NEEDLE_STOP: _UP,
    T.RETRACT: _UP,
    T.LEASE_RENEW: _UP,
    T.SET_TELEMETRY_RATE: _UP,
    T.CALIBRATION_READ: _UP,
    T.CLEAR_FAULTS: _UP,
    T.SET_SETPOINTS: frozenset({S.IDLE, S.ARMED, S.RUNNING}),
    T.ARM: frozenset({S.IDLE, S.ARMED}),
    T.DISARM: frozenset({S.IDLE, S.ARMED}),
    T.NEEDLE_START: frozenset({S.ARMED, S.RUNNING}),
    T.CALIBRATION_WRITE: frozenset({S.IDLE}),
}

# What the firmware checks after the state, in this order, before it executes.
EXTRA_CHECKS: dict[T, tuple[R, ...]] = {
    T.SET_SETPOINTS: (R.OUT_OF_LIMITS,),
    T.ARM: (R.NO_SETPOINTS, R.NO_CARTRIDGE),
    T.NEEDLE_START: (R.NO_SETPOINTS, R.NO_CARTRIDGE, R.NO_LEASE),
    T.LEASE_RENEW: (R.OUT_OF_LIMITS,),
    T.SET_TELEMETRY_RATE: (R.OUT_OF_LIMITS,),
    T.CALIBRATION_WRITE: (R.OUT_OF_LIMITS,),
    T.CLEAR_FAULTS: (R.CONDITION_ACTIVE,),
}

# State changes a command causes when accepted (state before -> state after).
TRANSITIONS: dict[T, dict[S, S]] = {
    T.ESTOP: {s: S.ESTOP for s in S},
    T.ARM: {S.IDLE: S.ARMED},
    T.DISARM: {S.ARMED: S.IDLE},
    T.NEEDLE_START: {S.ARMED: S.RUNNING},
    T.NEEDLE_STOP: {S.RUNNING: S.ARMED},
    T.RETRACT: {S.RUNNING: S.ARMED},
    T.CLEAR_FAULTS: {S.FAULT: S.IDLE, S.ESTOP: S.IDLE},
}


def refusal(state: S) -> R:
    """The NACK reason for a command that is not accepted in `state`."""
    if state is S.BOOTING:
        return R.BOOTING
    if state is S.FAULT:
        return R.FAULT_LATCHED
    if state is S.ESTOP:
        return R.ESTOP_LATCHED
    return R.BAD_STATE


def accepts(msg_type: T, state: S) -> bool:
    return state in ACCEPTED_IN.get(msg_type, frozenset())
