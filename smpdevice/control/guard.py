"""The active zone the controller guard checks every setpoint against (a mixin of
`PenController`): the chosen zone, checked whole again, narrowed to what this pen can do and,
while a session for a client with a known epidermis is open, to that client's own floor.

The client's floor is the profile's `skin.epidermis_mm` + `EPIDERMAL_MARGIN_MM`, as in the
profile checks (layer 1), but enforced here on every setpoint, also those a program sends
while a pass runs (layer 2, docs/safety.md; review 9a R01). Each holder keeps its own value:
every open `TreatmentSession` (set when it opens or resumes, dropped when it closes or is
suspended) and `set_client_skin` by hand; the guard enforces the thickest of them, so opening
or closing a second session on the pen never drops the floor of one still open (review 10a
R01). A client whose floor is deeper than a zone's dermal ceiling cannot be treated in that
zone: the narrowing, or choosing such a zone, is refused saying so (review 10a R03).
"""

from __future__ import annotations

import contextlib
import threading

from smpdevice import checks
from smpdevice.control.core import ControllerCore
from smpdevice.control.states import State, StateError
from smpdevice.control.zones import checked_zone
from smpdevice.envelope import (
    EnvelopeError,
    Violation,
    ZoneEnvelope,
    check_setpoints,
    for_skin,
    narrowed,
)

EPIDERMIS_RANGE_MM = (0.0, 5.0)  # as a profile's skin.epidermis_mm: above 0, at most 5 mm
BY_HAND = "set_client_skin"  # the holder of the value `set_client_skin` sets


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
        them again). Dropping it always succeeds, also with the pen disconnected.
        """
        return self._hold_client_skin(BY_HAND, epidermis_mm, refuse_empty=True)

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
        except StateError:
            if epidermis_mm is not None and self.state is not State.DISCONNECTED:
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
                             refuse_empty: bool) -> ZoneEnvelope | None:
        with self._skins_lock:
            return self._hold_on_loop(holder, epidermis_mm, refuse_empty)

    def _hold_on_loop(self, holder: object, epidermis_mm: float | None,
                      refuse_empty: bool) -> ZoneEnvelope | None:
        skins = self._skins_with(holder, epidermis_mm)
        thickest = max(skins.values(), default=None)
        name = self.zone_name
        zone = None if name is None else self._narrowed_for(self.zones[name], thickest)
        if name is not None and zone is not None and epidermis_mm is not None and _empty(zone):
            if refuse_empty or self.state in (State.ARMED, State.RUNNING):
                raise _outside_error(name, zone, thickest)
            self.zone_name, self._zone, zone = None, None, None  # each pass chooses its own
            self._forget_setpoints()
        sp = self.setpoints
        if zone is not None and sp is not None:
            violations = check_setpoints(zone, depth_mm=sp.depth_mm, speed_hz=sp.speed_hz,
                                         duty_pct=sp.duty_pct, period_ms=sp.period_ms)
            if violations and self.state in (State.ARMED, State.RUNNING):
                raise EnvelopeError(name or "?", violations, (
                    f"the setpoints in force are outside the '{name}' zone for this client "
                    f"(epidermis {thickest} mm): "
                    + "; ".join(str(v) for v in violations)
                    + ". Nothing changed: stop and disarm first, or set setpoints inside it."))
            if violations:
                self._forget_setpoints()
        self._keep_skins(skins)
        if zone is not None:
            self._zone = zone
        return self._zone

    def _require_fits_client(self, name: str, zone: ZoneEnvelope) -> None:
        """Refuse making `zone` (as `_pen_bounded` narrowed it) active when the client's floor
        is deeper than its ceiling: no depth could be accepted in it."""
        if _empty(zone):
            raise _outside_error(name, zone, self.client_epidermis_mm, choosing=True)

    def _refuse_outside(self, name: str, skins: dict[object, float]) -> None:
        thickest = max(skins.values(), default=None)
        zone = self._narrowed_for(self.zones[name], thickest)
        if _empty(zone):
            raise _outside_error(name, zone, thickest)

    def _pen_bounded(self, zone: ZoneEnvelope) -> ZoneEnvelope:
        """The zone the guard checks: `zone` checked whole again, narrowed to what the pen can
        do, then to the thickest client skin held. Never wider than `zone`; empty (floor above
        ceiling: every depth refused) when that client cannot be treated in it."""
        return self._narrowed_for(zone, self.client_epidermis_mm)

    def _narrowed_for(self, zone: ZoneEnvelope, epidermis_mm: float | None) -> ZoneEnvelope:
        return for_skin(narrowed(checked_zone(zone), **self.pen_limits()), epidermis_mm)


def _empty(zone: ZoneEnvelope) -> bool:
    return zone.epidermal_floor_mm > zone.dermal_ceiling_mm


def _outside_error(name: str, zone: ZoneEnvelope, epidermis_mm: float | None, *,
                   choosing: bool = False) -> EnvelopeError:
    floor, ceiling = zone.epidermal_floor_mm, zone.dermal_ceiling_mm
    skin = epidermis_mm if epidermis_mm is not None else float("nan")  # (never: no empty zone)
    violation = Violation("epidermis_mm", skin, ceiling,
                          "puts the client's floor deeper than the dermal ceiling")
    why = (f"this client's epidermal floor {floor:g} mm (epidermis_mm={skin:g} "
           f"+ 0.05 mm) is deeper than the '{name}' zone's dermal ceiling {ceiling:g} mm (for "
           "this pen): this client cannot be treated in this zone")
    if choosing:
        return EnvelopeError(name, [violation], (
            f"zone={name!r} is refused: {why}. Nothing changed: choose another zone, or end "
            "the session of this client (close() or suspend(); set_client_skin(None) drops "
            "a floor set by hand)."))
    return EnvelopeError(name, [violation], (
        f"epidermis_mm={skin:g} is refused: {why}. Nothing changed: choose a zone "
        "this client can be treated in first (set_zone), or check the measured epidermis."))
