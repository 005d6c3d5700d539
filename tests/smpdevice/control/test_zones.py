"""Every envelope a controller takes is checked whole, wherever it comes from, and stays
read-only (review 9a R04).

`ZoneEnvelope(...)` checks its limits when constructed, but pydantic's `model_copy(update=...)`
and `model_construct()` skip every validator: a zone derived that way may hold a ceiling of
2 mm, NaN (which passes every comparison) or an unknown field. The controller rebuilds each
zone (`smpdevice.control.zones`), so none reaches the guard unchecked, and nobody can swap one
in after connect.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpdevice.control import PenController
from smpdevice.control.zones import FrozenEnvelope, checked_zone, frozen_envelope
from smpdevice.envelope import (
    CAPS,
    DEFAULT_ZONES,
    InvalidEnvelope,
    SessionLimits,
    ZoneEnvelope,
    envelope_record,
    parse_envelope,
)
from smpdevice.errors import SmpError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time

CROWN = DEFAULT_ZONES["crown"]
BAD = {
    "ceiling past the cap": {"dermal_ceiling_mm": 2.0},
    "NaN ceiling": {"dermal_ceiling_mm": math.nan},
    "infinite pass": {"max_pass_s": math.inf},
    "strokes past the cap": {"max_strokes_per_impression": 1000.0},
    "speed past the cap": {"speed_max_hz": 180.0},
    "floor above ceiling": {"epidermal_floor_mm": 0.9, "dermal_ceiling_mm": 0.5},
    "text for a number": {"dermal_ceiling_mm": "0.5"},
    "unknown field": {"dermal_ceiling": 0.5},
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_copied_zone_that_breaks_a_rule_is_refused_at_connect(kind):
    zone = CROWN.model_copy(update=BAD[kind])
    with virtual_sim(seed=3) as sim, pytest.raises(InvalidEnvelope) as err:
        PenController.connect(sim.url, calibration=true_calibration(sim), clock=sim.clock,
                              zones={"crown": zone})
    assert "\n  crown" in str(err.value)  # names the zone (and the field)


def test_a_constructed_zone_without_its_checks_is_refused_too():
    zone = ZoneEnvelope.model_construct(**{**CROWN.model_dump(), "dermal_ceiling_mm": 1.5})
    with pytest.raises(InvalidEnvelope, match=r"crown\.dermal_ceiling_mm = 1\.5"):
        PenController("pensim://", zones={"crown": zone})


def test_the_controllers_zones_are_read_only_and_its_own():
    given_zones = {"crown": CROWN.model_copy(update={"dermal_ceiling_mm": 0.6})}
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim), clock=sim.clock,
                                zones=given_zones) as pen):
        wide = CROWN.model_copy(update={"dermal_ceiling_mm": 2.0})
        with pytest.raises(TypeError):
            pen.zones["crown"] = wide  # type: ignore[index]
        with pytest.raises(SmpError, match="fixed when it is made"):
            pen.zones = {"crown": wide}  # type: ignore[assignment]
        given_zones["crown"] = wide  # the caller's own dict, changed after connect
        assert pen.set_zone("crown").dermal_ceiling_mm <= 0.6
        with pytest.raises(SmpError, match="deeper than the dermal ceiling"):
            pen.set_setpoints(depth_mm=0.9, speed_hz=90, duty_pct=40, period_ms=120)


def test_an_envelope_files_session_limits_reach_the_controller():
    """The plan limits of a station's envelope file were dropped by the controller's copy (a
    session checked its plan against the defaults and recorded another hash)."""
    envelope = parse_envelope({"session": {"max_passes": 5, "max_needle_s": 60.0},
                               "crown": {"dermal_ceiling_mm": 0.6}}, "station.yaml")
    pen = PenController("pensim://", zones=envelope)
    assert pen.zones.session == SessionLimits(max_passes=5, max_needle_s=60.0)
    assert envelope_record(pen.zones) == envelope_record(envelope)
    widened = envelope.session.model_copy(update={"max_passes": 10_000})
    envelope.session = widened
    with pytest.raises(InvalidEnvelope, match=r"session\.max_passes = 10000"):
        PenController("pensim://", zones=envelope)


def test_frozen_envelope_is_a_fresh_copy_of_plain_zones():
    class Wider(ZoneEnvelope):
        pass

    frozen = frozen_envelope({"crown": Wider(**CROWN.model_dump())})
    assert isinstance(frozen, FrozenEnvelope)
    assert type(frozen["crown"]) is ZoneEnvelope and frozen["crown"] == CROWN
    assert frozen.session == SessionLimits()
    with pytest.raises(AttributeError):
        frozen.session = SessionLimits(max_passes=600)  # type: ignore[misc]
    with pytest.raises(InvalidEnvelope, match="is not a ZoneEnvelope"):
        frozen_envelope({"crown": {"dermal_ceiling_mm": 0.5}})  # type: ignore[dict-item]


_FIELDS = sorted(ZoneEnvelope.model_fields)
_NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                     st.integers(-10**6, 10**6), st.floats(0, 2000))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_FIELDS), _NUMBERS, min_size=1, max_size=4))
def test_whatever_a_copy_holds_the_controller_keeps_only_zones_inside_the_caps(update):
    """Property: a zone the controller accepts is finite, ordered and inside every cap."""
    try:
        zone = checked_zone(CROWN.model_copy(update=update))
    except InvalidEnvelope:
        return
    for low_name, high_name, cap in (
        ("epidermal_floor_mm", "dermal_ceiling_mm", "depth_mm"),
        ("speed_min_hz", "speed_max_hz", "speed_hz"),
        ("duty_min_pct", "duty_max_pct", "duty_pct"),
        ("period_min_ms", "period_max_ms", "period_ms"),
    ):
        low, high = getattr(zone, low_name), getattr(zone, high_name)
        assert math.isfinite(low) and math.isfinite(high)
        assert CAPS[cap][0] <= low <= high <= CAPS[cap][1]
    assert 0 < zone.max_strokes_per_impression <= CAPS["max_strokes_per_impression"][1]
    assert 0 < zone.max_pass_s <= CAPS["max_pass_s"][1]
