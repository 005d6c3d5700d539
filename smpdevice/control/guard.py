"""The active zone the controller guard checks every setpoint against (a mixin of
`PenController`): the chosen zone, checked whole again, narrowed to what this pen can do and,
while a session for a client with a known epidermis is open, to that client's own floor.

The client's floor is the profile's `skin.epidermis_mm` + `EPIDERMAL_MARGIN_MM`, as in the
profile checks (layer 1), but enforced here on every setpoint, also those a program sends
while a pass runs (layer 2, docs/safety.md). Each holder keeps its own value: every open
`TreatmentSession` (set when it opens or resumes, dropped when it closes or is suspended) and
`set_client_skin` by hand; the guard enforces the thickest of them, so opening or closing a
second session on the pen never drops the floor of one still open. A client whose floor is
deeper than a zone's dermal ceiling cannot be treated in that zone: the narrowing, or choosing
such a zone, is refused saying so.
"""

from __future__ import annotations

import contextlib
import threading

from smpdevice import checks
from smpdevice.control.core import ControllerCore
from smpdevice.control.states import State, StateError
from smpdevice.control.wire_units import bump, resend, rewired, starting, wire_setpoints
from smpdevice.control.zones import checked_zone
from smpdevice.envelope import (
    EnvelopeError,
    NumberError,
    Violation,
    ZoneEnvelope,
    check_setpoints,
    for_skin,
    narrowed,
)
from smpdevice.errors import SmpError
from smpdevice.link.items import Operation
from smpdevice.link.wire import LinkError

__all__ = ["GuardMixin", "wire_setpoints"]  # wire_setpoints: where its callers found it

EPIDERMIS_RANGE_MM = (0.0, 5.0)  # as a profile's skin.epidermis_mm: above 0, at most 5 mm
BY_HAND = "set_client_skin"  # the holder of the value `set_client_skin` sets
CHOOSING, HOLDING, USING = "choosing", "holding", "using"  # what a zone with no depth refuses


class GuardMixin(ControllerCore):
    """The clients' skin, and the narrowing of every zone the controller makes active."""

    @property
    def _client_skins(self) -> dict[object, float]:
        """Epidermis (mm) by holder: each open session's client, and one set by hand."""
        skins = self.__dict__.get("_client_skins_by_holder")
        if skins is None:  # per controller, made on first use (never a shared class default)
            skins = self.__dict__.setdefault("_client_skins_by_holder", {})
        return skins

    @property
    def _skins_lock(self) -> threading.Lock:
        """Serialises each change of the holders (read, change, swap): two holders changing
        at once, on the loop or with the pen disconnected, never lose one of the changes."""
        lock = self.__dict__.get("_client_skins_lock")
        if lock is None:
            lock = self.__dict__.setdefault("_client_skins_lock", threading.Lock())
        return lock

    @property
    def client_epidermis_mm(self) -> float | None:
        """The epidermis (mm) the guard narrows every zone to (its floor to it + 0.05 mm): the
        thickest of the open sessions' clients and of one set by hand; None when none is."""
        return max(self._client_skins.values(), default=None)

    def set_client_skin(self, epidermis_mm: float | None) -> ZoneEnvelope | None:
        """Narrow every zone to a client's skin (floor = `epidermis_mm` + 0.05 mm) until it is
        set again; None drops it. An open session's floor is its own and stays until that
        session closes or is suspended: the guard enforces the thickest skin held. Returns the
        active zone as narrowed now (None: no zone chosen, or not connected: the next
        connection narrows it).

        Refused (EnvelopeError, nothing changed) when the floor would be deeper than the active
        zone's dermal ceiling (this client cannot be treated in that zone), and while the pen
        is armed or running at setpoints below it; in idle such setpoints are forgotten (set
        them again). Setpoints kept whose integers on the wire fall below it are sent again,
        rounded for it (idle or armed), or refused while running (wire_units.py `rewired`).
        Dropping it always succeeds, also with the pen disconnected.
        """
        zone = self._hold_client_skin(BY_HAND, epidermis_mm, refuse_empty=True)
        return None if zone is None else zone.model_copy()  # never the guard's own

    def _hold_client_skin(self, holder: object, epidermis_mm: float | None, *,
                          refuse_empty: bool) -> ZoneEnvelope | None:
        """Set (None: drop) `holder`'s client skin. `refuse_empty` False (a session opening in
        idle, whose own zones the profile checks passed): an active zone this client cannot
        be treated in is deselected instead of refusing (each pass chooses its zone)."""
        if epidermis_mm is not None:
            epidermis_mm = checks.finite_number("epidermis_mm", epidermis_mm,
                                                *EPIDERMIS_RANGE_MM, unit="mm", lo_open=True)
        try:
            return self._call(self._do_hold_client_skin, holder, epidermis_mm, refuse_empty)
        except (StateError, LinkError) as exc:  # LinkError: the link went as it was called
            if epidermis_mm is not None and (isinstance(exc, LinkError)
                                             or self.state is not State.DISCONNECTED):
                raise  # called from a listener, or while connecting: nothing changed
        # Not connected (kept for the next connection, which narrows the zone with it), or a
        # drop that could not reach the loop: the active zone stays narrower until set again.
        with self._skins_lock:
            skins = self._skins_with(holder, epidermis_mm)
            if epidermis_mm is not None and refuse_empty and self.zone_name is not None:
                # as the zone was last narrowed to this pen (its identity is kept); never
                # connected: no pen limits yet, the zone's own check comes when it is chosen
                with contextlib.suppress(StateError):
                    self._refuse_outside(self.zone_name, skins)
            self._keep_skins(skins)
        return None

    def _keep_skins(self, skins: dict[object, float]) -> None:
        self.__dict__["_client_skins_by_holder"] = skins  # swapped whole: a reader never
        # sees it half-changed (client_epidermis_mm is read from any thread)

    def _skins_with(self, holder: object, epidermis_mm: float | None) -> dict[object, float]:
        skins = dict(self._client_skins)
        if epidermis_mm is None:
            skins.pop(holder, None)
        else:
            skins[holder] = epidermis_mm
        return skins

    def _do_hold_client_skin(self, holder: object, epidermis_mm: float | None,
                             refuse_empty: bool) -> ZoneEnvelope | Operation | None:
        with self._skins_lock:
            return self._hold_on_loop(holder, epidermis_mm, refuse_empty)

    def _hold_on_loop(self, holder: object, epidermis_mm: float | None,
                      refuse_empty: bool) -> ZoneEnvelope | Operation | None:
        skins = self._skins_with(holder, epidermis_mm)
        thickest = max(skins.values(), default=None)
        moved = thickest != self.client_epidermis_mm
        live = self.state in (State.ARMED, State.RUNNING) or starting(self)  # review 16
        name = self.zone_name
        zone = None if name is None else self._narrowed_for(self.zones[name], thickest)
        if name is not None and zone is not None and epidermis_mm is not None and _empty(zone):
            if refuse_empty or live:
                raise self._no_depth_error(name, zone, thickest, HOLDING)
            self.zone_name, self._zone, zone = None, None, None  # each pass chooses its own
            self._forget_setpoints()
        sp = self.setpoints
        if zone is not None and sp is not None:
            violations = check_setpoints(zone, depth_mm=sp.depth_mm, speed_hz=sp.speed_hz,
                                         duty_pct=sp.duty_pct, period_ms=sp.period_ms)
            if violations and live:
                raise EnvelopeError(name or "?", violations, (
                    f"the setpoints in force are outside the '{name}' zone for this client "
                    f"(epidermis {thickest} mm): "
                    + "; ".join(str(v) for v in violations)
                    + ". Nothing changed: stop and disarm first, or set setpoints inside it."))
            if violations:
                self._forget_setpoints()
        message = None if zone is None else rewired(self, name or "?", zone)
        if moved:  # setpoints on their way were checked against the old floor
            bump(self)
        self._keep_skins(skins)
        if zone is not None:
            self._zone = zone
        return self._zone if message is None else resend(self, message, lambda: self._zone)

    def _require_fits_client(self, name: str, zone: ZoneEnvelope) -> None:
        """Refuse making `zone` (as `_pen_bounded` narrowed it) active when it allows no depth
        (the client's floor deeper than its ceiling, or a window the pen cannot reach with
        its calibration), saying which."""
        if _empty(zone):
            raise self._no_depth_error(name, zone, self.client_epidermis_mm, CHOOSING)

    def _refuse_outside(self, name: str, skins: dict[object, float]) -> None:
        thickest = max(skins.values(), default=None)
        zone = self._narrowed_for(self.zones[name], thickest)
        if _empty(zone):
            raise self._no_depth_error(name, zone, thickest, HOLDING)

    def _pen_bounded(self, zone: ZoneEnvelope) -> ZoneEnvelope:
        """The zone the guard checks: `zone` checked whole again, narrowed to what the pen can
        do, then to the thickest client skin held. Never wider than `zone`; empty (floor above
        ceiling: every depth refused) when that client cannot be treated in it, or when the
        pen cannot reach its depth window with this calibration (never an error here: a new
        calibration is applied all the same, and each refusal then says why)."""
        return self._narrowed_for(zone, self.client_epidermis_mm)

    def _narrowed_for(self, zone: ZoneEnvelope, epidermis_mm: float | None) -> ZoneEnvelope:
        limits = self.pen_limits()
        depth = limits.pop("depth_mm", None)  # with a calibration only
        bounded = narrowed(checked_zone(zone), **limits)  # the pen's own, fixed at connect
        if depth is not None:
            bounded = _depth_bounded(bounded, depth)
        return for_skin(bounded, epidermis_mm)

    def _rebound_zone(self) -> None:
        """The calibration (or the pen) changed: narrow the active zone again. One that now
        allows no depth stays active, empty, and the log says why at once."""
        if self.zone_name is None:
            return
        self._zone = zone = self._pen_bounded(self.zones[self.zone_name])
        if _empty(zone):
            _, why, todo = self._why_no_depth(self.zone_name, zone, self.client_epidermis_mm)
            self._log.warning("no depth allowed in the active zone", zone=self.zone_name,
                              why=why, what_to_do=todo)

    def _no_depth_blocker(self) -> str | None:
        """Why the active zone allows no depth (for arm and set_setpoints), None if it does."""
        zone, name = self._zone, self.zone_name
        if zone is None or name is None or not _empty(zone):
            return None
        _, why, todo = self._why_no_depth(name, zone, self.client_epidermis_mm, USING)
        return f"{why}. Nothing was sent: {todo}"

    def _why_no_depth(self, name: str, zone: ZoneEnvelope, epidermis_mm: float | None,
                      action: str = USING) -> tuple[Violation, str, str]:
        """(the limit broken, why, what to do) for `zone`, `name` narrowed, that allows no
        depth; `action` is what is refused (a zone chosen, a client's skin held, a setpoint)."""
        own = checked_zone(self.zones[name])
        depth = self.pen_limits().get("depth_mm")
        floor, ceiling = zone.epidermal_floor_mm, zone.dermal_ceiling_mm
        recalibrate = "calibrate the pen again (check the cartridge)"
        if depth is not None and (depth[1] < own.epidermal_floor_mm
                                  or depth[0] > own.dermal_ceiling_mm):
            shallow = depth[1] < own.epidermal_floor_mm
            return (Violation("depth_mm", depth[1] if shallow else depth[0],
                              own.epidermal_floor_mm if shallow else own.dermal_ceiling_mm,
                              "(the deepest the pen reaches with this calibration) is shallower "
                              "than the zone's epidermal floor" if shallow else
                              "(the shallowest the pen reaches with this calibration) is deeper "
                              "than the zone's dermal ceiling"),
                    f"with this calibration the pen reaches {depth[0]:g} to {depth[1]:g} mm in "
                    f"skin, outside the '{name}' zone's window {own.epidermal_floor_mm:g} to "
                    f"{own.dermal_ceiling_mm:g} mm: no depth can be accepted in this zone",
                    f"{recalibrate}, or choose another zone")
        skin = epidermis_mm if epidermis_mm is not None else float("nan")
        violation = Violation("epidermis_mm", skin, ceiling,
                              "puts the client's floor deeper than the dermal ceiling")
        ends = ("check the measured epidermis" if action == HOLDING else
                "end the session of this client (close() or suspend(); set_client_skin(None) "
                "drops a floor set by hand)")
        if depth is not None and depth[1] < own.dermal_ceiling_mm:  # the pen's reach is less
            return (violation,
                    f"the client's skin floor {floor:g} mm (epidermis_mm={skin:g} + 0.05 mm) "
                    f"is above what the '{name}' zone allows with this calibration "
                    f"({ceiling:g} mm: the pen reaches no deeper with it): no depth can be "
                    "accepted for this client",
                    f"{recalibrate}: with a calibration that reaches past {floor:g} mm this "
                    f"client can be treated; or {ends}")
        return (violation, f"this client's epidermal floor {floor:g} mm (epidermis_mm={skin:g} "
                f"+ 0.05 mm) is deeper than the '{name}' zone's dermal ceiling {ceiling:g} mm "
                "(for this pen): this client cannot be treated in this zone",
                ("choose a zone this client can be treated in first (set_zone), or " + ends)
                if action == HOLDING else f"choose another zone, or {ends}")

    def _no_depth_error(self, name: str, zone: ZoneEnvelope, epidermis_mm: float | None,
                        action: str) -> EnvelopeError:
        violation, why, todo = self._why_no_depth(name, zone, epidermis_mm, action)
        skin = epidermis_mm if epidermis_mm is not None else float("nan")
        refused = f"zone={name!r}" if action == CHOOSING else f"epidermis_mm={skin:g}"
        return EnvelopeError(name, [violation],
                             f"{refused} is refused: {why}. Nothing changed: {todo}.")


def _empty(zone: ZoneEnvelope) -> bool:
    return zone.epidermal_floor_mm > zone.dermal_ceiling_mm


def _depth_bounded(zone: ZoneEnvelope, depth_mm: tuple[float, float]) -> ZoneEnvelope:
    """`zone` narrowed to the pen's depth range in skin (through its calibration); left empty
    (floor above ceiling), never refused, when the two do not meet."""
    try:
        return narrowed(zone, depth_mm=depth_mm)
    except NumberError:
        raise  # a bound that is no finite number narrows nothing: never used
    except SmpError:  # the windows do not meet: every depth is refused
        return zone.model_copy(update={
            "epidermal_floor_mm": max(zone.epidermal_floor_mm, depth_mm[0]),
            "dermal_ceiling_mm": min(zone.dermal_ceiling_mm, depth_mm[1])})
