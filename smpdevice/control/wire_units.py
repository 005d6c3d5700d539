"""The setpoints in the wire's integer units (for the guard, control/guard.py): rounded to
the nearest unit unless that lands past a limit of the active zone, and checked again, read
back from the integers, whenever the zone or the client's floor changes while they are kept
(review 16: what the pen runs lies inside every limit at every moment the needle can run).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from firmware_protocol import units
from firmware_protocol.messages import Arm, NeedleStart, SetSetpoints
from smpdevice.control.core import ControllerCore
from smpdevice.control.pen import Setpoints
from smpdevice.control.states import OFFLINE, SAFE, State, StateError
from smpdevice.envelope import (
    EnvelopeError,
    Violation,
    ZoneEnvelope,
    check_setpoints,
    strokes_per_impression,
)
from smpdevice.link.items import Operation


def note_wire(pen: ControllerCore, message: SetSetpoints) -> None:
    """`message` is what the pen now holds for `pen.setpoints` (rewired reads it back)."""
    pen.__dict__["_wire_sent"] = message
    pen._actuator_cmd_mm = message.depth_um / 1000


def generation(pen: ControllerCore) -> tuple[int, object, object]:
    """What setpoints on their way were computed under: a count bumped by every change of
    zone, client floor or calibration (`bump`), and the zone and calibration themselves."""
    return (pen.__dict__.get("_sp_generation", 0), pen._zone,
            getattr(pen, "_calibration", None))


def bump(pen: ControllerCore) -> None:
    """The zone, the client's floor or the calibration changed (in the loop thread):
    setpoints still on their way were computed for the old ones and never come in force."""
    pen.__dict__["_sp_generation"] = pen.__dict__.get("_sp_generation", 0) + 1


def require_current(pen: ControllerCore, computed_under: tuple[int, object, object]) -> None:
    """At the pen's ACK of setpoints: refuse to put them in force (none are: set them again)
    when the zone, floor or calibration changed, or the pen faulted, since they were checked
    (review 16: the pen would run values checked against limits no longer active)."""
    if generation(pen) != computed_under or pen.state in SAFE | OFFLINE:
        pen._forget_setpoints()
        raise StateError("the setpoints were not put in force: the zone, the client's floor "
                         "or the calibration changed (or the pen stopped) while they were on "
                         "their way to the pen, so they were checked against limits no longer "
                         "active. No setpoints are in force: set them again.")


def starting(pen: ControllerCore) -> bool:
    """An ARM or NEEDLE_START not yet acknowledged is queued or on the wire: the pen may run
    already while the controller still says idle or armed (treated as running)."""
    engine = getattr(pen, "_eng", None)
    ops = list(getattr(engine, "ops", ()))  # a snapshot: the engine changes it
    return any(isinstance(step, (Arm, NeedleStart))
               for op in ops for step in op.steps[op.index:])


def rewired(pen: ControllerCore, name: str, zone: ZoneEnvelope) -> SetSetpoints | None:
    """The setpoints in force, kept through a change of zone or client floor (their floats
    fit `zone`): the integers the pen holds must fit `zone` too. None when they do (or none
    are in force); else the same setpoints rounded for `zone`, to send now (idle or armed).
    Refused while running (the needle would run the old integers until the pen has the new)
    and, armed, when no integer fits; in idle those setpoints are forgotten (set them again)."""
    sp, sent = pen.setpoints, pen.__dict__.get("_wire_sent")
    calibration = getattr(pen, "_calibration", None)
    if sp is None or calibration is None:
        return None
    to_depth_mm = calibration.to_depth_mm
    back = None if sent is None else _read_back(sent, to_depth_mm)
    if back is not None and _inside(zone, back):
        return None
    message = wire_setpoints(zone, to_depth_mm, calibration.to_actuator_mm, sp)
    running = pen.state is State.RUNNING or starting(pen)
    if isinstance(message, SetSetpoints) and not running:
        return message
    if running or pen.state is State.ARMED:
        violations = message if isinstance(message, list) else [] if back is None else \
            check_setpoints(zone, depth_mm=back.depth_mm, speed_hz=back.speed_hz,
                            duty_pct=back.duty_pct, period_ms=back.period_ms)
        raise EnvelopeError(name, violations, (
            f"the values the pen holds, rounded to the wire's units for the previous limits, "
            f"are outside the '{name}' zone as it would be: "
            + "; ".join(str(v) for v in violations) + ". Nothing changed: "
            + ("stop first, then change it" if running
               else "disarm first, or set setpoints further inside it") + "."))
    pen._forget_setpoints()
    return None


def resend(pen: ControllerCore, message: SetSetpoints,
           result: Callable[[], ZoneEnvelope | None]) -> Operation:
    """Send `message` (the setpoints in force, rounded for the new limits): until the pen
    acknowledges it, no setpoints are in force (a failure leaves them to be set again)."""
    sp = pen.setpoints
    pen._forget_setpoints()
    computed_under = generation(pen)

    def done() -> ZoneEnvelope | None:
        require_current(pen, computed_under)
        pen.setpoints = sp
        note_wire(pen, message)
        return result()

    return Operation([message], done)


def _read_back(sent: SetSetpoints, to_depth_mm: Callable[[float], float]) -> Setpoints:
    return Setpoints(depth_mm=to_depth_mm(sent.depth_um / 1000),
                     speed_hz=sent.speed_centihz / 100, duty_pct=sent.duty_permille / 10,
                     period_ms=sent.period_us / 1000)


def wire_setpoints(zone: ZoneEnvelope, to_depth_mm: Callable[[float], float],
                   to_actuator_mm: Callable[[float], float],
                   sp: Setpoints) -> SetSetpoints | list[Violation]:
    """`sp` (inside `zone`) in the wire's integer units, each rounded to the nearest unit
    unless that lands past a limit of `zone` (depth in skin through the calibration's
    `to_depth_mm`, speed, duty, period, strokes per impression): then one unit toward the
    inside. What goes out is what was checked, read back from the integers. The violations
    instead when no integer fits (a window narrower than one wire unit)."""
    depth_um = _inward(units.mm_to_um(to_actuator_mm(sp.depth_mm)),
                       lambda n: to_depth_mm(n / 1000),
                       zone.epidermal_floor_mm, zone.dermal_ceiling_mm)
    centihz = _inward(units.hz_to_centihz(sp.speed_hz), units.centihz_to_hz,
                      zone.speed_min_hz, zone.speed_max_hz)
    permille = _inward(units.pct_to_permille(sp.duty_pct), units.permille_to_pct,
                       zone.duty_min_pct, zone.duty_max_pct)
    period_us = _inward(units.ms_to_us(sp.period_ms), units.us_to_ms,
                        zone.period_min_ms, zone.period_max_ms)
    most = zone.max_strokes_per_impression
    if strokes_per_impression(centihz / 100, permille / 10, period_us / 1000) > most:
        # the product rounded up past the limit: one unit down in the field closest to what
        # was asked, else shorten the period (or the duty, then the speed) by the fewest
        # units that bring it back, within its own limit
        centihz, permille, period_us = _fewer_strokes(zone, sp, centihz, permille,
                                                        period_us)
    back = _read_back(SetSetpoints(depth_um=depth_um, speed_centihz=centihz,
                                   duty_permille=permille, period_us=period_us), to_depth_mm)
    if not _inside(zone, back):
        return check_setpoints(zone, depth_mm=back.depth_mm, speed_hz=back.speed_hz,
                               duty_pct=back.duty_pct, period_ms=back.period_ms)
    return SetSetpoints(depth_um=depth_um, speed_centihz=centihz, duty_permille=permille,
                        period_us=period_us)


def _inward(n: int, value: Callable[[int], float], low: float, high: float) -> int:
    """`n`, or the integer next to it toward the inside of [low, high] when `value(n)` is
    outside (nearest rounding is off by half a unit at most: one step brings it in, unless
    the window is narrower than a unit, which the caller's final check then refuses)."""
    v = value(n)
    if low <= v <= high:
        return n
    up = value(n + 1) > v  # which way a larger integer moves (a calibration may invert)
    step = (-1 if up else 1) if v > high else (1 if up else -1)
    return n + step


def _fewer_strokes(zone: ZoneEnvelope, sp: Setpoints, centihz: int, permille: int,
                   period_us: int) -> tuple[int, int, int]:
    most = zone.max_strokes_per_impression
    fields = [period_us, permille, centihz]
    scales = (1000.0, 10.0, 100.0)
    lows = (zone.period_min_ms, zone.duty_min_pct, zone.speed_min_hz)
    asked = (sp.period_ms * 1000, sp.duty_pct * 10, sp.speed_hz * 100)
    # one unit down from nearest, in the field that then lies closest to what was asked
    # (the one rounded up: within one unit of it); many units only when none of them fits
    near: list[tuple[float, list[int]]] = []
    for i in range(3):
        trial = list(fields)
        trial[i] -= 1
        if trial[i] / scales[i] >= lows[i] and _strokes(*trial) <= most:
            near.append((abs(trial[i] - asked[i]), trial))
    if near:
        trial = min(near, key=lambda t: t[0])[1]
        return trial[2], trial[1], trial[0]
    for i in range(3):
        trial = list(fields)
        trial[i] = math.floor(fields[i] * most / _strokes(*trial))
        while trial[i] > 0 and _strokes(*trial) > most:  # floats: a unit or two at most
            trial[i] -= 1
        if trial[i] / scales[i] >= lows[i]:
            return trial[2], trial[1], trial[0]
    return centihz, permille, period_us  # nothing fits: the caller's check refuses


def _strokes(period_us: int, permille: int, centihz: int) -> float:
    return strokes_per_impression(centihz / 100, permille / 10, period_us / 1000)


def _inside(zone: ZoneEnvelope, sp: Setpoints) -> bool:
    return (zone.epidermal_floor_mm <= sp.depth_mm <= zone.dermal_ceiling_mm
            and zone.speed_min_hz <= sp.speed_hz <= zone.speed_max_hz
            and zone.duty_min_pct <= sp.duty_pct <= zone.duty_max_pct
            and zone.period_min_ms <= sp.period_ms <= zone.period_max_ms
            and strokes_per_impression(sp.speed_hz, sp.duty_pct, sp.period_ms)
            <= zone.max_strokes_per_impression)
