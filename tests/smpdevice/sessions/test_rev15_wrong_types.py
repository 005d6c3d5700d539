"""Review 15 A10 (profiles, envelope): public calls given an argument of the wrong type
raised bare AttributeError/TypeError or answered nonsense (`check_profile(profile,
"zones.yaml")` named the zones "., a, e, l, m ..."); a zone copied with a NaN limit made
`check_setpoints` find no violation. Now InvalidArgument (or NumberError), an SmpError.

Promised: docs/integration.md "Errors": every error an integrator can cause is an SmpError;
a wrong type is InvalidArgument, named in the message.
"""

from __future__ import annotations

import math

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.envelope import DEFAULT_ZONES, NumberError, check_setpoints, envelope_record
from smpdevice.errors import SmpError
from smpdevice.sessions.profiles import check_profile, load_profile, parse_profile

PROFILE = {"schema_version": 1, "session_kind": "base_density", "client_ref": "C-0042",
           "zones": {"crown": {"needle": "1RL 0.25mm", "depth_mm": 0.4, "speed_hz": 90,
                               "duty_pct": 40, "period_ms": 120}},
           "plan": [{"zone": "crown", "duration_s": 3}]}
SETPOINTS = {"depth_mm": 0.5, "speed_hz": 100, "duty_pct": 40, "period_ms": 100}
CROWN = DEFAULT_ZONES["crown"]

CASES = {
    "check_profile(dict)": (lambda p: check_profile(PROFILE), "profile"),
    "check_profile(envelope=path)": (lambda p: check_profile(p, "zones.yaml"), "envelope"),
    "check_profile(envelope={zone: dict})": (
        lambda p: check_profile(p, {"crown": CROWN.model_dump()}), "envelope"),
    "check_profile(pen_limits=list)": (lambda p: check_profile(p, pen_limits=[1]), "pen_limits"),
    "parse_profile(envelope={zone: 5})": (lambda p: parse_profile(PROFILE, {"crown": 5}),
                                          "envelope"),
    "parse_profile(pen_limits='x')": (lambda p: parse_profile(PROFILE, pen_limits="x"),
                                      "pen_limits"),
    "parse_profile(pen_limits={unknown})": (
        lambda p: parse_profile(PROFILE, pen_limits={"depth": (0.0, 1.0)}), "pen_limits"),
    "parse_profile(pen_limits=NaN)": (
        lambda p: parse_profile(PROFILE, pen_limits={"depth_mm": (math.nan, 1.0)}),
        "pen_limits"),
    "load_profile(5)": (lambda p: load_profile(5), "path"),
    "check_setpoints('crown')": (lambda p: check_setpoints("crown", **SETPOINTS), "zone"),
    "envelope_record(list)": (lambda p: envelope_record([1]), "zones"),
    "envelope_record({zone: 5})": (lambda p: envelope_record({"crown": 5}), "zone"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_wrong_type_is_a_typed_error_naming_the_argument(case):
    call, named = CASES[case]
    with pytest.raises(InvalidArgument, match=named):
        call(parse_profile(PROFILE))


@pytest.mark.parametrize("field", ["dermal_ceiling_mm", "epidermal_floor_mm", "speed_max_hz",
                                   "duty_max_pct", "period_max_ms",
                                   "max_strokes_per_impression"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_zone_copied_with_a_limit_not_finite_refuses_never_passes(field, bad):
    zone = CROWN.model_copy(update={field: bad})
    with pytest.raises(NumberError, match=field):
        check_setpoints(zone, **SETPOINTS)
    with pytest.raises(SmpError, match=field):
        envelope_record({"crown": zone})
    with pytest.raises(SmpError, match=field):  # a profile checked against it is refused
        check_profile(parse_profile(PROFILE), {"crown": zone})


def test_the_right_types_still_pass():
    profile = parse_profile(PROFILE, DEFAULT_ZONES, pen_limits={"depth_mm": (0.0, 2.0)})
    assert check_profile(profile, DEFAULT_ZONES, pen_limits={"speed_hz": (30.0, 180.0)}) == []
    assert check_setpoints(CROWN, **SETPOINTS) == []
    assert len(envelope_record(DEFAULT_ZONES)["sha256"]) == 64
