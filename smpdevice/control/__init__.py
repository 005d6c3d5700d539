"""Control: the state machine, its guards and policy tables, and the pen controller.

    states.py       State, TRANSITIONS, POLICY, RECONCILE, errors: the whole state policy
    controller.py   PenController: guards, reconciliation, safety stops, public API
    calibrating.py  the `calibrating` state's requests (a mixin of PenController)
    spin.py         a speed check's own stop (SpinCancel) and SpinStopped
    options.py      the controller's options, checked before anything is opened or sent
    footswitch.py   the footswitch setting (required | optional | off) and what it needs
    sim_time.py     a `pensim://?clock=virtual` pen's clock, adopted and driven (a mixin)
"""

from smpdevice.control.controller import PenController
from smpdevice.control.footswitch import FOOTSWITCH_MODES, FootswitchError
from smpdevice.control.options import DEFAULT_LEASE_MS, DEFAULT_TELEMETRY_HZ, LEASE_RANGE_MS
from smpdevice.control.states import (
    ARM_GUARDS,
    POLICY,
    RECONCILE,
    TRANSITIONS,
    DifferentPen,
    EStopUnconfirmed,
    FaultInfo,
    HandshakeError,
    PenFault,
    State,
    StateError,
    build_machine,
)

__all__ = [
    "ARM_GUARDS",
    "DEFAULT_LEASE_MS",
    "DEFAULT_TELEMETRY_HZ",
    "FOOTSWITCH_MODES",
    "LEASE_RANGE_MS",
    "POLICY",
    "RECONCILE",
    "TRANSITIONS",
    "DifferentPen",
    "EStopUnconfirmed",
    "FaultInfo",
    "FootswitchError",
    "HandshakeError",
    "PenController",
    "PenFault",
    "State",
    "StateError",
    "build_machine",
]
