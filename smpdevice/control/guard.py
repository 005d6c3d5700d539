"""The active zone the controller guard checks every setpoint against (a mixin of
`PenController`): the chosen zone, checked whole again, narrowed to what this pen can do and,
while a session for a client with a known epidermis is open, to that client's own floor.

The client's floor is the profile's `skin.epidermis_mm` + `EPIDERMAL_MARGIN_MM`, as in the
profile checks (layer 1), but enforced here on every setpoint, also those a program sends
while a pass runs (layer 2, docs/safety.md; review 9a R01). `TreatmentSession` sets it when it
opens or resumes and drops it when it closes or is suspended.
"""

from __future__ import annotations

from smpdevice import checks
from smpdevice.control.core import ControllerCore
from smpdevice.control.states import State, StateError
from smpdevice.control.zones import checked_zone
from smpdevice.envelope import (
    EnvelopeError,
    ZoneEnvelope,
    check_setpoints,
    for_skin,
    narrowed,
)

EPIDERMIS_RANGE_MM = (0.0, 5.0)  # as a profile's skin.epidermis_mm: above 0, at most 5 mm


class GuardMixin(ControllerCore):
    """The client's skin, and the narrowing of every zone the controller makes active."""

    _client_epidermis_mm: float | None = None

    @property
    def client_epidermis_mm(self) -> float | None:
        """The epidermis (mm) of the client whose session is open; None when not known or no
        session is open. Every zone's floor is raised to it + 0.05 mm meanwhile."""
        return self._client_epidermis_mm

    def set_client_skin(self, epidermis_mm: float | None) -> ZoneEnvelope | None:
        """Narrow every zone to a client's skin (floor = `epidermis_mm` + 0.05 mm) until it is
        set again; None drops it. Returns the active zone as narrowed now (None: no zone chosen,
        or not connected: the next connection narrows it).

        Narrowing is refused (EnvelopeError, nothing changed) while the pen is armed or
        running at setpoints below the client's floor; in idle such setpoints are forgotten
        (set them again). Dropping it always succeeds, also with the pen disconnected.
        """
        if epidermis_mm is not None:
            epidermis_mm = checks.finite_number("epidermis_mm", epidermis_mm,
                                                *EPIDERMIS_RANGE_MM, unit="mm", lo_open=True)
        try:
            return self._call(self._do_set_client_skin, epidermis_mm)
        except StateError:
            if epidermis_mm is not None and self.state is not State.DISCONNECTED:
                raise  # called from a listener, or while connecting: nothing changed
        # Not connected (kept for the next connection, which narrows the zone with it), or a
        # drop that could not reach the loop: the active zone stays narrower until set again.
        self._client_epidermis_mm = epidermis_mm
        return None

    def _do_set_client_skin(self, epidermis_mm: float | None) -> ZoneEnvelope | None:
        name = self.zone_name
        zone = None if name is None else self._narrowed_for(self.zones[name], epidermis_mm)
        sp = self.setpoints
        if zone is not None and sp is not None:
            violations = check_setpoints(zone, depth_mm=sp.depth_mm, speed_hz=sp.speed_hz,
                                         duty_pct=sp.duty_pct, period_ms=sp.period_ms)
            if violations and self.state in (State.ARMED, State.RUNNING):
                raise EnvelopeError(name or "?", violations, (
                    f"the setpoints in force are outside the '{name}' zone for this client "
                    f"(epidermis {epidermis_mm} mm): "
                    + "; ".join(str(v) for v in violations)
                    + ". Nothing changed: stop and disarm first, or set setpoints inside it."))
            if violations:
                self._forget_setpoints()
        self._client_epidermis_mm = epidermis_mm
        if zone is not None:
            self._zone = zone
        return self._zone

    def _pen_bounded(self, zone: ZoneEnvelope) -> ZoneEnvelope:
        """The zone the guard checks: `zone` checked whole again, narrowed to what the pen can
        do, then to the skin of the client whose session is open. Never wider than `zone`."""
        return self._narrowed_for(zone, self._client_epidermis_mm)

    def _narrowed_for(self, zone: ZoneEnvelope, epidermis_mm: float | None) -> ZoneEnvelope:
        return for_skin(narrowed(checked_zone(zone), **self.pen_limits()), epidermis_mm)
