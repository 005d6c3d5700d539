"""The controller's states and its whole state policy, as tables.

- `TRANSITIONS`: the moves of the state machine (the `transitions` library refuses any other);
- `POLICY`: in which states each request is allowed;
- `LEASED`: the states in which the lease is renewed;
- `RECONCILE`: what the controller does when the pen reports a state it did not expect.

The same state names appear in the docs and the logs; the diagram in the docs is drawn from
`build_machine`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from transitions import Machine

from firmware_protocol.codes import Fault, FirmwareState
from firmware_protocol.messages import (
    Arm,
    IdentifyRequest,
    LeaseRenew,
    NeedleStart,
    SetSetpoints,
    SetTelemetryRate,
)
from smpdevice.errors import SmpError
from smpdevice.link.wire import LinkTimeout


class State(StrEnum):
    """Controller states; the same names appear in the docs and the logs."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    IDLE = "idle"
    ARMED = "armed"
    RUNNING = "running"
    CALIBRATING = "calibrating"
    FAULT = "fault"
    ESTOP = "estop"


_S = State
# (trigger, sources, destination). The machine refuses any other move.
TRANSITIONS: list[tuple[str, list[State], State]] = [
    ("connect", [_S.DISCONNECTED], _S.CONNECTING),
    ("connected", [_S.CONNECTING], _S.IDLE),
    ("connected_faulted", [_S.CONNECTING], _S.FAULT),
    ("connected_estopped", [_S.CONNECTING], _S.ESTOP),
    ("connect_failed", [_S.CONNECTING], _S.DISCONNECTED),
    ("arm", [_S.IDLE], _S.ARMED),
    ("disarm", [_S.ARMED], _S.IDLE),
    ("start", [_S.ARMED], _S.RUNNING),
    ("stop", [_S.RUNNING], _S.ARMED),
    ("begin_calibration", [_S.IDLE], _S.CALIBRATING),
    ("end_calibration", [_S.CALIBRATING], _S.IDLE),
    ("fault_detected", [_S.IDLE, _S.ARMED, _S.RUNNING, _S.CALIBRATING], _S.FAULT),
    ("estop_latched", [_S.IDLE, _S.ARMED, _S.RUNNING, _S.CALIBRATING, _S.FAULT], _S.ESTOP),
    ("cleared", [_S.FAULT, _S.ESTOP], _S.IDLE),
    ("link_lost", [s for s in State if s is not _S.DISCONNECTED], _S.DISCONNECTED),
]

# Arm needs all three; the reason for each failed guard is given by the controller.
ARM_GUARDS = ["has_calibration", "has_zone", "has_setpoints"]

# request -> (states it is allowed in, how the refusal names it)
POLICY: dict[str, tuple[frozenset[State], str]] = {
    "set_calibration": (frozenset({_S.IDLE, _S.CALIBRATING}), "change the calibration"),
    "set_zone": (frozenset({_S.IDLE, _S.ARMED}), "change zone"),
    "set_setpoints": (frozenset({_S.IDLE, _S.ARMED, _S.RUNNING}), "change setpoints"),
    "arm": (frozenset({_S.IDLE}), "arm"),
    "disarm": (frozenset({_S.ARMED}), "disarm"),
    "start": (frozenset({_S.ARMED}), "start the needle"),
    # armed too: a stop queued behind a start (Ctrl-C while starting) must stop what it starts
    "stop": (frozenset({_S.RUNNING, _S.ARMED}), "stop the needle"),
    "retract": (frozenset({_S.IDLE, _S.ARMED, _S.RUNNING, _S.CALIBRATING, _S.FAULT, _S.ESTOP}),
                "retract"),
    "clear_faults": (frozenset({_S.FAULT, _S.ESTOP}), "clear faults"),
    "begin_calibration": (frozenset({_S.IDLE}), "begin calibration"),
    "calibration_move": (frozenset({_S.CALIBRATING}), "move the actuator for calibration"),
    "calibration_spin": (frozenset({_S.CALIBRATING}), "spin the motor for calibration"),
    "end_calibration": (frozenset({_S.CALIBRATING}), "end calibration"),
}

LEASED = frozenset({_S.ARMED, _S.RUNNING, _S.CALIBRATING})  # the lease is renewed in these
SAFE = frozenset({_S.FAULT, _S.ESTOP})  # latched: nothing moves until clear_faults()
OFFLINE = frozenset({_S.DISCONNECTED, _S.CONNECTING})
CLOSED_BY_PROGRAM = "closed"  # the reason of the `disconnected` that `close()` fires: no lost pen

# Frames that could move the needle or keep it moving: never sent once a stop is latched.
MOTION = (LeaseRenew, Arm, NeedleStart, SetSetpoints)
# Requests that never change the pen's state (running, armed, ...): pending ones do not make
# its reports stale, so a stream of them never starves reconciliation (review r03).
NEUTRAL = (SetSetpoints, SetTelemetryRate, IdentifyRequest)


@dataclass(frozen=True)
class Reconcile:
    """When the pen reports `pen` while the controller is in `ctl`: do `action`, with `reason`.

    `settled`: only once no operation is pending and the report postdates the last one (a
    report from before a command was answered is stale). `action` is a trigger, or "stop" (send
    NEEDLE_STOP and go to fault). The first matching row wins."""

    pen: Callable[[FirmwareState, Fault], bool]
    ctl: frozenset[State]
    settled: bool
    action: str
    reason: str
    carry_faults: bool = False  # the pen's fault flags belong in the reason


_RUNNING = frozenset({_S.RUNNING, _S.CALIBRATING})
HOST_ESTOP = "E-stop requested by the host"  # the reason of this host's own estop()
RECONCILE: list[Reconcile] = [
    # The pen runs a needle nobody here started (a start whose replies were all lost, another
    # host): stop it now, and make a person look before anything else runs.
    Reconcile(lambda s, f: s is FirmwareState.RUNNING, frozenset(State) - _RUNNING - OFFLINE,
              True, "stop", "the pen ran the needle without a confirmed start; stopped it"),
    Reconcile(lambda s, f: s is FirmwareState.ESTOP, frozenset(State) - {_S.ESTOP} - OFFLINE,
              False, "estop_latched", "the pen latched an E-stop", carry_faults=True),
    Reconcile(lambda s, f: s is FirmwareState.FAULT or bool(f), frozenset(State) - SAFE - OFFLINE,
              False, "fault_detected", "the pen latched a fault", carry_faults=True),
    Reconcile(lambda s, f: s is not FirmwareState.RUNNING, frozenset({_S.RUNNING}), True,
              "fault_detected", "the needle stopped unexpectedly (pen {pen_state})"),
    Reconcile(lambda s, f: s is FirmwareState.IDLE, frozenset({_S.ARMED}), True,
              "fault_detected", "the pen left armed by itself (lease lapsed?)"),
]


_MOVING = frozenset({FirmwareState.IDLE, FirmwareState.ARMED, FirmwareState.RUNNING})
# While calibrating the pen is idle, armed (a depth move: the needle out at the point, never
# spinning) or running (a speed check); which of them, the host knows from what the pen
# confirmed (`expected`, calibrating.py). A settled report of another is the pen doing what
# nobody asked: running during a depth move is stopped, and an armed pen gone idle (its lease
# lapsed: the needle retracted under a reading) is a fault, as in `armed`.
CALIBRATING_RECONCILE: list[Reconcile] = [
    Reconcile(lambda s, f: s is FirmwareState.RUNNING, frozenset({_S.CALIBRATING}), True,
              "stop", "the pen ran the needle while calibrating without a confirmed speed "
              "check start (expected {expected}); stopped it"),
    Reconcile(lambda s, f: s in _MOVING, frozenset({_S.CALIBRATING}), True, "fault_detected",
              "the pen went {pen_state} by itself while calibrating (expected {expected}; an "
              "armed pen whose lease lapsed disarms and retracts): the needle is not where the "
              "calibration put it"),
]


def reconcile(pen_state: FirmwareState, faults: Fault, state: State, settled: bool,
              expected: frozenset[FirmwareState] | None = None) -> Reconcile | None:
    """The first `RECONCILE` row that applies, if any; then, calibrating with a settled report
    and the pen states the calibration `expected`, the first `CALIBRATING_RECONCILE` row for
    a pen state outside them."""
    for row in RECONCILE:
        if state in row.ctl and (settled or not row.settled) and row.pen(pen_state, faults):
            return row
    if expected is None or pen_state in expected or not settled:
        return None
    for row in CALIBRATING_RECONCILE:
        if state in row.ctl and row.pen(pen_state, faults):
            return row
    return None


# ---- errors


class StateError(SmpError):
    """The request is not allowed in the controller's current state. One refused because a
    fault or an E-stop is latched carries `latched`, so a caller that reaches the pen another
    way (a service: `--service URL`) can reword its clear command (`reached_by`)."""

    latched: Latched | None = None

    def reached_by(self, *reach: str) -> StateError:
        """This refusal with its clear command reaching the pen by `reach` (self if none)."""
        if self.latched is None:
            return self
        return self.latched.error(reach)


@dataclass(frozen=True)
class Latched:
    """A request refused by a latched fault or E-stop: what, why, what it needs."""

    what: str
    state: State
    fault: object
    allowed: str

    def error(self, reach: tuple[str, ...]) -> StateError:
        """`reach`: how the reader reaches the pen, `("--port", URL)` at the station (the API's
        `clear_faults()` too) or `("--service", URL)` through `smp serve` (`pen.clear_faults`,
        which logs a reason: `smp clear --service` asks for it, or takes `--reason TEXT`)."""
        from smpdevice.outcomes import command

        clear = command("smp", "clear", *reach)
        how = (f"{clear} (it asks why it is safe, or takes --reason TEXT; over the API: "
               "pen.clear_faults {reason})" if reach[:1] == ("--service",) else
               f"clear_faults(), or at the command line {clear}")
        err = StateError(f"cannot {self.what} while {self.state.value} ({self.fault}); remove "
                         f"the cause, then clear it: {how}; needs {self.allowed}")
        err.latched = self
        return err


class StartOvertaken(StateError):
    """A needle start refused at its turn: a stop, a retract, an E-stop, a fault or a lost link
    came after the start was decided (`unless_stopped_since`); a latch cleared since, or a
    reconnect, never lets such a start through (nothing resumes by itself)."""


class HandshakeError(SmpError):
    """The pen on the port is not one this host can drive."""


class DifferentPen(HandshakeError):
    """`reconnect()` found another pen on the port than the one it had (`serial`)."""

    def __init__(self, message: str, serial: str) -> None:
        super().__init__(message)
        self.serial = serial


class PenFault(SmpError):
    """The pen latched a fault or an E-stop while a request was in progress."""


class EStopUnconfirmed(LinkTimeout):
    """The E-stop is latched here and the lease is no longer renewed, but the pen has not
    confirmed it (yet): the pen stops the needle by itself when its lease runs out."""


@dataclass
class FaultInfo:
    """Why the controller entered `fault` or `estop`."""

    reason: str
    faults: Fault = field(default_factory=lambda: Fault(0))
    at_s: float = field(default_factory=time.monotonic)

    def __str__(self) -> str:
        names = ", ".join(self.faults.names) if self.faults else ""
        return f"{self.reason}" + (f" ({names})" if names else "")


def build_machine(model: Any) -> Machine:
    """The controller's state machine (also used to draw the diagram in the docs)."""
    machine = Machine(
        model=model,
        states=[s.value for s in State],
        initial=State.DISCONNECTED.value,
        auto_transitions=False,  # to_<state>() shortcuts would skip every guard
        ignore_invalid_triggers=False,
    )
    for trigger, sources, dest in TRANSITIONS:
        conditions: list[str | Callable[..., bool | None]] = (
            list(ARM_GUARDS) if trigger == "arm" else [])
        machine.add_transition(
            trigger, [s.value for s in sources], dest.value, conditions=conditions
        )
    return machine
