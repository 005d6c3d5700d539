"""A client's own floor (`for_skin`) is never below epidermis + margin: rounded up to 0.1 um,
never down (it was rounded to the nearest, so 0.17344 mm gave a floor of 0.2234 mm, below the
0.22344 mm the margin asks for)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smpdevice.envelope import DEFAULT_ZONES, EPIDERMAL_MARGIN_MM, for_skin


@pytest.mark.parametrize(("epidermis", "floor"), [(0.35, 0.40), (0.17344, 0.2235),
                                                  (0.09, 0.20), (0.6, 0.65)])
def test_the_clients_floor_is_rounded_up_never_down(epidermis, floor):
    assert for_skin(DEFAULT_ZONES["hairline"], epidermis).epidermal_floor_mm == floor


@given(st.sampled_from(sorted(DEFAULT_ZONES)), st.floats(0.0, 5.0))
def test_property_the_floor_covers_the_epidermis_and_the_margin(name, epidermis):
    zone = DEFAULT_ZONES[name]
    floor = for_skin(zone, epidermis).epidermal_floor_mm
    assert floor >= epidermis + EPIDERMAL_MARGIN_MM - 1e-12
    assert floor >= zone.epidermal_floor_mm
    assert floor <= max(zone.epidermal_floor_mm, epidermis + EPIDERMAL_MARGIN_MM) + 0.0001
