"""Review 18: the active zone handed out is a copy. Changing it in place (`object.__setattr__`
gets past pydantic's frozen models) never widens the live guard, and a setpoint past the
absolute caps (docs/safety.md) is refused whatever the active zone says."""

from __future__ import annotations

import pytest

from smpdevice.envelope import EnvelopeError, InvalidEnvelope
from tests.smpdevice.conftest import CROWN

pytestmark = pytest.mark.virtual_time


def test_a_changed_active_zone_never_lets_a_setpoint_past_the_caps(sim, pen):
    pen.set_zone("crown")
    object.__setattr__(pen.zone, "dermal_ceiling_mm", 2.0)  # changed in place, not given
    with pytest.raises((EnvelopeError, InvalidEnvelope)):
        pen.set_setpoints(**{**CROWN, "depth_mm": 1.2})
    assert pen.setpoints is None or pen.setpoints.depth_mm <= 0.75
    assert pen.zone is not None and pen.zone.dermal_ceiling_mm <= 0.75


def test_the_zones_returned_by_set_zone_and_set_client_skin_are_copies(sim, pen):
    chosen = pen.set_zone("crown")
    object.__setattr__(chosen, "dermal_ceiling_mm", 2.0)
    narrowed = pen.set_client_skin(0.1)
    assert narrowed is not None
    object.__setattr__(narrowed, "dermal_ceiling_mm", 2.0)
    with pytest.raises(EnvelopeError, match="dermal ceiling"):
        pen.set_setpoints(**{**CROWN, "depth_mm": 0.9})
    assert pen.zone is not None and pen.zone.dermal_ceiling_mm <= 0.75


def test_the_absolute_caps_hold_even_if_the_guards_own_zone_were_changed(sim, pen):
    pen.set_zone("crown")
    object.__setattr__(pen._zone, "dermal_ceiling_mm", 2.0)  # the last guard, reached by force
    object.__setattr__(pen._zone, "speed_max_hz", 500.0)
    with pytest.raises(EnvelopeError, match="absolute cap") as caught:
        pen.set_setpoints(**{**CROWN, "depth_mm": 1.2, "speed_hz": 200.0})
    assert {v.parameter for v in caught.value.violations} == {"depth_mm", "speed_hz"}
    assert pen.setpoints is None
