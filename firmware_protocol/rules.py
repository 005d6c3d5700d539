"""Which command the firmware accepts in which state, and what it refuses with.

This table is the contract that `docs/protocol.md` publishes and the simulator enforces. A
command outside its accepted states is NACKed with `refusal(state)`; inside them the firmware
may still refuse for a reason of its own (limits, lease, cartridge), listed in `EXTRA_CHECKS`.
"""

from __future__ import annotations

from firmware_protocol.codes import EventCode as E
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
    # Never while RUNNING: the mode of a running pass does not change under it.
    T.SET_FOOTSWITCH: frozenset({S.IDLE, S.ARMED}),
}

# What the firmware checks after the state, in this order, before it executes.
EXTRA_CHECKS: dict[T, tuple[R, ...]] = {
    T.SET_SETPOINTS: (R.OUT_OF_LIMITS,),
    T.ARM: (R.NO_SETPOINTS, R.NO_CARTRIDGE),
    T.NEEDLE_START: (R.NO_SETPOINTS, R.NO_CARTRIDGE, R.NO_LEASE, R.FOOTSWITCH_UP),
    T.LEASE_RENEW: (R.OUT_OF_LIMITS,),
    T.SET_TELEMETRY_RATE: (R.OUT_OF_LIMITS,),
    # A pen without Capability CALIBRATION_TABLE: UNSUPPORTED, before the payload's limits
    # (it has no table to judge them by). Like every check, after the state's own refusal.
    T.CALIBRATION_READ: (R.UNSUPPORTED,),
    T.CALIBRATION_WRITE: (R.UNSUPPORTED, R.OUT_OF_LIMITS),
    T.CLEAR_FAULTS: (R.CONDITION_ACTIVE,),
    T.SET_FOOTSWITCH: (R.OUT_OF_LIMITS, R.UNSUPPORTED),
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
# The boot is never skipped: an ESTOP while BOOTING is the one way to leave BOOTING before the
# boot completes, and a command that then leads to IDLE (CLEAR_FAULTS) leads back to BOOTING
# instead; the boot completes as usual: EVENT BOOTED, state IDLE, or FAULT with POWER_RESET
# after a brownout (that CLEAR_FAULTS cleared the E-stop, not the reset nobody was told of).
BEFORE_BOOT_COMPLETES: frozenset[S] = frozenset({S.BOOTING, S.ESTOP})


def transition(msg_type: T, state: S, booted: bool = True) -> S | None:
    """The state after an accepted `msg_type` in `state`, or None if it changes nothing;
    `booted` False: the pen's boot has not completed yet (IDLE becomes BOOTING, from the
    states a pen can be in then: BEFORE_BOOT_COMPLETES)."""
    after = TRANSITIONS.get(msg_type, {}).get(state)
    if after is S.IDLE and not booted and state in BEFORE_BOOT_COMPLETES:
        return S.BOOTING
    return after


# Commands whose (SEQ, TYPE, PAYLOAD) and reply enter the duplicate window, ACKed and NACKed
# alike. ESTOP always acts; IDENTIFY_REQUEST clears the window (a new connection) and is
# always answered afresh. A reboot also clears the window.
DEDUPLICATED: frozenset[T] = frozenset(ACCEPTED_IN) - {T.ESTOP, T.IDENTIFY_REQUEST}
CLEARS_WINDOW: frozenset[T] = frozenset({T.IDENTIFY_REQUEST})
# The E-stop's place in one read (docs/protocol.md section 9): the ESTOPs act first, then the
# other frames run in wire order, in ESTOP (where the table refuses motion). A command that
# would take the pen out of ESTOP (CLEAR_FAULTS) and came before the last ESTOP of its read is
# superseded: not executed, NACKed ESTOP_LATCHED, so it never undoes an E-stop sent after it.
SUPERSEDED_BY_ESTOP: frozenset[T] = frozenset(
    t for t, moves in TRANSITIONS.items() if moves.get(S.ESTOP, S.ESTOP) is not S.ESTOP)
# Whatever its SEQ, an ESTOP acts; any other command with SEQ 0 (which the host never uses,
# and which would make its reply look unsolicited) is ignored: no effect, no reply.
ACTS_WITH_SEQ_0: frozenset[T] = frozenset({T.ESTOP})

# EVENTs a command causes, sent right after its reply (ACK first, then EVENT), only when the
# command changes the state: a repeated ESTOP, or CLEAR_FAULTS in IDLE, ARMED or RUNNING, is
# ACKed and sends no EVENT.
COMMAND_EVENTS: dict[T, E] = {T.ESTOP: E.ESTOP_LATCHED, T.CLEAR_FAULTS: E.CLEARED}

# Changes the pen makes on its own, each reported with one EVENT (no other command causes an
# EVENT; a command's own state change is confirmed by its ACK).
SPONTANEOUS_EVENTS: tuple[tuple[str, str, E], ...] = (
    ("boot completes", "BOOTING -> IDLE, or -> FAULT (POWER_RESET) after a brownout, also if "
                       "an ESTOP taken while booting was cleared before then; stays ESTOP if "
                       "that ESTOP is not cleared (POWER_RESET added after a brownout)",
     E.BOOTED),
    ("faults found in one tick (also LEASE_EXPIRED: the lease lapses while RUNNING)",
     "IDLE, ARMED, RUNNING -> FAULT; FAULT and ESTOP stay, the flags are added; every fault "
     "found in the same tick latches together, in this one EVENT", E.FAULT_LATCHED),
    ("the lease lapses while ARMED", "ARMED -> IDLE, no fault; the actuator retracts, the "
                                     "setpoints are kept", E.STATE_CHANGED),
    ("footswitch mode REQUIRED: the pedal is released while RUNNING",
     "RUNNING -> ARMED in the first tick that sees the pedal up (the needle is not driven in "
     "it); setpoints and lease kept; pressing the pedal again starts nothing",
     E.FOOTSWITCH_RELEASED),
)

# What one 1 ms firmware tick does, in this order (docs/protocol.md section 7, "One tick").
# Commands act between ticks, each once the ticks that fell due before it have run.
TICK_ORDER: tuple[str, ...] = (
    "inter-byte timeout: a candidate held for INTER_BYTE_TIMEOUT_MS with no new byte is given "
    "up (section 11), and the frames behind it act as one read",
    "boot completion: BOOTING ends BOOT_MAX_MS after power-on at the latest (EVENT BOOTED)",
    "lease: a live lease whose end has come lapses (section 8); in RUNNING the drive is cut "
    "here, before step 5",
    "footswitch mode REQUIRED: the pedal up while RUNNING stops the needle (-> ARMED, EVENT "
    "FOOTSWITCH_RELEASED)",
    "needle drive: the motor is driven in this tick only if the state is RUNNING, by the pulse "
    "period and duty; the actuator drives to the setpoints' depth_um in ARMED and RUNNING, "
    "to 0 in every other state",
    "fault checks (section 10), judged against the state the tick began in (after step 2): "
    "every fault found, with LEASE_EXPIRED from step 3, latches together in one EVENT "
    "FAULT_LATCHED; a flag already latched is not reported again",
    "telemetry: a TELEMETRY frame falls due or not (section 12); it shows the state at the "
    "tick's end",
)

# What survives what. Rows: the pen's stored items; columns: events. "kept", "cleared", or
# what it becomes.
LIFETIME_EVENTS: tuple[str, ...] = (
    "NEEDLE_STOP", "DISARM", "RETRACT", "ESTOP", "fault latches", "CLEAR_FAULTS",
    "IDENTIFY_REQUEST (reconnect)", "reboot",
)
# "actuator depth": where the depth actuator is driven. It follows the setpoints' depth_um in
# ARMED and RUNNING only; in every other state it is 0, so a pen that is not armed never holds
# the needle out past the tip (a sharps hazard): DISARM and every other move to IDLE retract.
LIFETIMES: dict[str, tuple[str, ...]] = {
    "setpoints": ("kept", "kept", "cleared", "cleared", "cleared", "kept", "kept", "cleared"),
    "actuator depth": ("kept", "0 (retract)", "0 (retract)", "0 (retract)", "0 (retract)",
                       "kept", "kept", "0"),
    "lease": ("kept", "kept", "kept", "kept", "kept", "kept", "kept", "cleared"),
    "faults, E-stop latch": ("kept", "kept", "kept", "E-stop set", "flag added", "cleared",
                             "kept", "POWER_RESET only"),
    "telemetry rate": ("kept", "kept", "kept", "kept", "kept", "kept", "kept", "default"),
    "duplicate window": ("kept", "kept", "kept", "kept", "kept", "kept", "cleared", "cleared"),
    "calibration table": ("kept", "kept", "kept", "kept", "kept", "kept", "kept", "kept"),
    "footswitch mode": ("kept", "kept", "kept", "kept", "kept", "kept", "kept", "OFF"),
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
