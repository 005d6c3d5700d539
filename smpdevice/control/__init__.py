"""Control: the state machine, its guards and policy tables, and the pen controller.

    states.py       State, TRANSITIONS, POLICY, RECONCILE, errors: the whole state policy
    controller.py   PenController: guards, reconciliation, safety stops, public API
    calibrating.py  the `calibrating` state's requests (a mixin of PenController)
    spin.py         a speed check's own stop (SpinCancel) and SpinStopped
    options.py      the controller's options, checked before anything is opened or sent
    footswitch.py   the footswitch setting (required | optional | off) and what it needs
    sim_time.py     a `pensim://?clock=virtual` pen's clock, adopted and driven (a mixin)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smpdevice.lazy import lazy_exports

if TYPE_CHECKING:
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
        StartOvertaken,
        State,
        StateError,
        build_machine,
    )

# Each name is imported from its module when first used: `from smpdevice.control.calibration
# import Calibration` (a service client, `smp profile`) must not import the controller, the
# link, structlog and rich (issue 13: start-up).
_HOME = {
    "PenController": "smpdevice.control.controller",
    "FOOTSWITCH_MODES": "smpdevice.control.footswitch",
    "FootswitchError": "smpdevice.control.footswitch",
    "DEFAULT_LEASE_MS": "smpdevice.control.options",
    "DEFAULT_TELEMETRY_HZ": "smpdevice.control.options",
    "LEASE_RANGE_MS": "smpdevice.control.options",
    "ARM_GUARDS": "smpdevice.control.states",
    "POLICY": "smpdevice.control.states",
    "RECONCILE": "smpdevice.control.states",
    "TRANSITIONS": "smpdevice.control.states",
    "DifferentPen": "smpdevice.control.states",
    "EStopUnconfirmed": "smpdevice.control.states",
    "FaultInfo": "smpdevice.control.states",
    "HandshakeError": "smpdevice.control.states",
    "PenFault": "smpdevice.control.states",
    "StartOvertaken": "smpdevice.control.states",
    "State": "smpdevice.control.states",
    "StateError": "smpdevice.control.states",
    "build_machine": "smpdevice.control.states",
}


if not TYPE_CHECKING:  # mypy reads the imports above, and still flags a name not there
    __getattr__, __dir__ = lazy_exports(__name__, _HOME, globals())


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
    "StartOvertaken",
    "State",
    "StateError",
    "build_machine",
]
