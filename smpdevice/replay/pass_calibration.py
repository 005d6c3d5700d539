"""Each replayed pass on the calibration its record names (review 20 R1, session 21).

The calibration may change between two passes of a session (`set_calibration` while idle; the
service installs the store's newest once the pen is idle again, `service/session_gate.py`):
the host converts every depth through it, so the passes after a swap send other SET_SETPOINTS.
Each pass's begin record names its own (`calibration`: id, offset_mm, gain, rev 20). The
replay installs it on its controller at the session's check before that pass (the last point
the replayed session passes before it sets the pass up), as live it was in force by then.
A pass record made before passes named their calibration (None) installs nothing: the pass
plays on whatever is in force, as before.

What the record keeps is what a depth is converted with; the rest (pen, technician, dates,
made on a simulator) is the recording's calibration's, so the swapped one is judged valid
at the replayed time as the recorded one is. Nothing is sent to the pen: an install from
idle writes no table there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from smpdevice.errors import SmpError
from smpdevice.records.model import PASS_CALIBRATION_KEYS

log = structlog.get_logger("smpdevice.replay")


def as_recorded(base: Any, named: dict[str, Any]) -> Any:
    """The calibration `named` ({calibration_id, offset_mm, gain}: a pass record's) with the
    provenance of `base` (the recording's): checked whole, as any calibration installed."""
    from smpdevice.control.calibration import Calibration

    return Calibration.model_validate({
        "calibration_id": named["calibration_id"], "offset_mm": named["offset_mm"],
        "gain": named["gain"], "pen_serial": base.pen_serial, "technician": base.technician,
        "created_at": base.created_at, "expires_at": base.expires_at,
        "simulated": base.simulated})


def as_named(calibration: Any) -> tuple[Any, ...]:
    """What a pass record names of a calibration ({calibration_id, offset_mm, gain})."""
    return tuple(calibration.get(key) for key in PASS_CALIBRATION_KEYS)


def in_force(calibration: Any) -> tuple[Any, ...] | None:
    """`as_named` of a controller's calibration; None without one."""
    if calibration is None:
        return None
    return tuple(getattr(calibration, key) for key in PASS_CALIBRATION_KEYS)


def on_each_pass_s_own(pen: Any, expected: list[Any], begun: Callable[[], int],
                       check: Callable[[], None], notes: list[str]) -> Callable[[], None]:
    """The replayed session's check between passes (`between_point`): `check` (the recorded
    pen's), then the calibration of the next pass to begin (`expected[begun()]`, the part's
    recorded passes) installed on `pen` if another is in force and the pen is idle. Armed
    there (the pass before left it armed; live, whoever swapped had disarmed it: a swap is
    idle only), it is installed as the pass is set up, once the session's own disarm for
    another zone made it idle: `pen.set_zone` of this replayed controller is wrapped for
    that. One still not installable then is noted: what the pass sends shows the difference."""
    from smpdevice.control import State

    base = pen.calibration
    set_zone = pen.set_zone

    def wanted() -> tuple[int, dict[str, Any] | None]:
        n = begun()
        named = getattr(expected[n], "calibration", None) if n < len(expected) else None
        if named is None or base is None or in_force(pen.calibration) == as_named(named):
            return n, None  # (a refit kept under the same id is another calibration)
        return n, named

    def install(last_chance: bool) -> None:
        n, named = wanted()
        if named is None or (not last_chance and pen.state is not State.IDLE):
            return
        try:
            pen.set_calibration(as_recorded(base, named))
        except (SmpError, KeyError, TypeError, ValueError) as exc:
            notes.append(f"pass {n + 1}'s calibration {named.get('calibration_id')} could not "
                         f"be installed before it: {exc}")
            log.warning("replayed pass's calibration not installed", error=str(exc))

    def between() -> None:
        check()
        install(last_chance=False)

    def setting_zone(zone: str) -> Any:
        install(last_chance=True)
        return set_zone(zone)

    pen.set_zone = setting_zone  # this replay's own controller: the pass's set-up
    return between
