"""Treatment profiles: every malformed or unsafe profile is refused with a message that names
the field path, the value and the rule; all problems are reported at once."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from smpdevice.envelope import load_envelope
from smpdevice.errors import SmpError
from smpdevice.sessions.profiles import (
    ProfileError,
    SessionKind,
    TreatmentProfile,
    check_profile,
    load_profile,
    parse_needle,
    parse_profile,
    profile_hash,
    profile_json_schema,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
PROFILE_EXAMPLES = [EXAMPLES / name for name in (
    "session1_base_density.yaml", "session2_shading.yaml", "session3_adjustment.yaml",
    "scar_camouflage.yaml")]
DELETE = object()


def base() -> dict:
    return {
        "schema_version": 1,
        "session_kind": "base_density",
        "client_ref": "C-0042",
        "skin": {"epidermis_mm": 0.09},
        "zones": {
            "top": {"needle": "1RL 0.25mm", "depth_mm": 0.4, "speed_hz": 90, "duty_pct": 40,
                    "period_ms": 120},
            "donor_scar": {"needle": "1RL 0.25mm", "depth_mm": 0.3, "speed_hz": 70,
                           "duty_pct": 30, "period_ms": 120},
        },
        "plan": [{"zone": "top", "duration_s": 3}, {"zone": "donor_scar", "impressions": 20}],
    }


def with_(path: str, value) -> dict:
    """The base profile with the value at a dotted path (list indexes as numbers) replaced."""
    data = base()
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    node = data
    for key in keys[:-1]:
        node = node[key]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


def issues_of(data) -> list[str]:
    with pytest.raises(ProfileError) as info:
        parse_profile(data)
    return [str(i) for i in info.value.issues]


# (id, profile, the one expected message): each is a distinct way to be malformed or unsafe.
CASES = [
    ("no-schema-version", with_("schema_version", DELETE), "schema_version: is required"),
    ("schema-version-2", with_("schema_version", 2),
     "schema_version = 2: this smpdevice reads schema_version 1"),
    ("unknown-top-field", with_("colour", "dark"),
     "colour = 'dark': is not a known field"),
    ("unknown-session-kind", with_("session_kind", "session_4"),
     "session_kind = 'session_4': is not a session kind: use base_density"),
    ("client-ref-name", with_("client_ref", "John Smith"),
     "client_ref = 'John Smith': is not a pseudonymous reference"),
    ("client-ref-email", with_("client_ref", "john4@example.com"),
     "client_ref = 'john4@example.com': is not a pseudonymous reference"),
    ("client-ref-no-digit", with_("client_ref", "johnsmith"),
     "client_ref = 'johnsmith': is not a pseudonymous reference"),
    ("no-zones", {**with_("zones", {}), "plan": []},
     "zones = {}: dictionary should have at least 1 item"),
    ("zone-not-in-envelope", with_("zones.eyebrows", base()["zones"]["top"]),
     "zones.eyebrows = 'eyebrows': is not a zone of the safety envelope (known: crown,"),
    ("zone-not-a-mapping", with_("zones.top", "fast"),
     "zones.top = 'fast': is not a mapping"),
    ("unknown-zone-field", with_("zones.top.needle_size", 10),
     "zones.top.needle_size = 10: is not a known field"),
    ("missing-depth", with_("zones.top.depth_mm", DELETE), "zones.top.depth_mm: is required"),
    ("needle-unparsable", with_("zones.top.needle", "size 10"),
     "zones.top.needle = 'size 10': is not a needle like '1RL 0.25mm'"),
    ("needle-count", with_("zones.top.needle", "7RL 0.25mm"),
     "zones.top.needle = '7RL 0.25mm': needle count 7 is not one of 1, 3, 5"),
    ("needle-grouping", with_("zones.top.needle", "3RF 0.25mm"),
     "zones.top.needle = '3RF 0.25mm': needle grouping 'RF' is not RL"),
    ("needle-too-thick", with_("zones.top.needle", "1RL 0.40mm"),
     "zones.top.needle = '1RL 0.40mm': needle diameter 0.4 mm is outside 0.18..0.35 mm"),
    ("needle-too-fine", with_("zones.top.needle", "1RL 0.12mm"),
     "needle diameter 0.12 mm is outside 0.18..0.35 mm"),
    ("too-deep", with_("zones.top.depth_mm", 0.9),
     "zones.top.depth_mm = 0.9: is deeper than the dermal ceiling 0.75 mm of zone 'top'"),
    ("too-shallow", with_("zones.top.depth_mm", 0.1),
     "zones.top.depth_mm = 0.1: is shallower than the epidermal floor 0.25 mm of zone 'top'"),
    ("shallow-for-this-skin", with_("skin.epidermis_mm", 0.28),
     "zones.donor_scar.depth_mm = 0.3: is shallower than the epidermal floor 0.33 mm of zone "
     "'donor_scar' (skin.epidermis_mm + margin)"),
    ("depth-a-string", with_("zones.top.depth_mm", "0.4"),
     "zones.top.depth_mm = '0.4': is not a number"),
    ("depth-a-boolean", with_("zones.top.depth_mm", True),
     "zones.top.depth_mm = true: is not a number"),
    ("depth-nan", with_("zones.top.depth_mm", float("nan")),
     "zones.top.depth_mm = nan: is not a finite number"),
    ("speed-too-fast", with_("zones.top.speed_hz", 200),
     "zones.top.speed_hz = 200.0: is above the maximum 130 Hz of zone 'top'"),
    ("speed-negative", with_("zones.top.speed_hz", -5),
     "zones.top.speed_hz = -5: must be above 0 Hz"),
    ("scar-too-fast", with_("zones.donor_scar.speed_hz", 100),
     "zones.donor_scar.speed_hz = 100.0: is above the maximum 90 Hz of zone 'donor_scar'"),
    ("duty-zero", with_("zones.top.duty_pct", 0),
     "zones.top.duty_pct = 0: must be above 0 %"),
    ("duty-over-100", with_("zones.top.duty_pct", 150),
     "zones.top.duty_pct = 150: must be at most 100 %"),
    ("duty-too-low", with_("zones.top.duty_pct", 5),
     "zones.top.duty_pct = 5.0: is below the minimum 15 % of zone 'top'"),
    ("period-too-short", with_("zones.top.period_ms", 20),
     "zones.top.period_ms = 20.0: is below the minimum 50 ms of zone 'top'"),
    ("overworks-one-spot",
     with_("zones.top", {"needle": "1RL 0.25mm", "depth_mm": 0.4, "speed_hz": 130,
                         "duty_pct": 70, "period_ms": 300}),
     "zones.top = 27.3: strokes per impression (speed_hz x period_ms x duty_pct) is above the "
     "maximum 12 of zone 'top'"),
    ("epidermis-negative", with_("skin.epidermis_mm", -0.1),
     "skin.epidermis_mm = -0.1: must be above 0 mm"),
    ("plan-both", with_("plan.0", {"zone": "top", "duration_s": 3, "impressions": 10}),
     "plan[0] = {\"zone\": \"top\", \"duration_s\": 3, \"impressions\": 10}: give exactly one "
     "of duration_s or impressions"),
    ("plan-neither", with_("plan.0", {"zone": "top"}),
     "plan[0] = {\"zone\": \"top\"}: give exactly one of duration_s or impressions"),
    ("plan-unknown-zone", with_("plan.0.zone", "nape"),
     "plan[0].zone = 'nape': is not one of this profile's zones (donor_scar, top)"),
    ("plan-too-long", with_("plan.0.duration_s", 700),
     "plan[0].duration_s = 700.0: is above the longest pass 600 s of zone 'top'; split it"),
    ("plan-too-many-impressions", with_("plan.1.impressions", 5000),
     "plan[1].impressions = 5000: takes 600 s at period_ms 120, above the longest pass 300 s "
     "of zone 'donor_scar'"),
    ("plan-fractional-impressions", with_("plan.1.impressions", 2.5),
     "plan[1].impressions = 2.5: is not a whole number"),
    ("plan-zero-duration", with_("plan.0.duration_s", 0),
     "plan[0].duration_s = 0: must be above 0 s"),
]


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_or_unsafe_profile_is_refused_with_its_message(data, expected):
    issues = issues_of(data)
    assert len(issues) == 1, issues
    assert expected in issues[0]


def test_there_are_at_least_twenty_kinds():
    assert len({c[0] for c in CASES}) >= 20


def test_every_error_is_reported_at_once():
    data = base()
    data["client_ref"] = "Jane Doe"  # shape error
    data["zones"]["top"]["depth_mm"] = 0.9  # envelope error in a zone that is valid on its own
    data["zones"]["crown"] = {"needle": "9RL 0.25mm", "depth_mm": 0.4, "speed_hz": 90,
                              "duty_pct": 40, "period_ms": 120}
    data["zones"]["donor_scar"]["speed_hz"] = 120
    data["plan"].append({"zone": "top", "duration_s": 900})
    data["plan"].append({"zone": "sides", "duration_s": 2})
    data["extra"] = 1
    issues = issues_of(data)
    expected = ["client_ref = 'Jane Doe'", "zones.top.depth_mm = 0.9", "zones.crown.needle",
                "zones.donor_scar.speed_hz = 120.0", "plan[2].duration_s = 900.0",
                "plan[3].zone = 'sides'", "extra = 1"]
    for text in expected:
        assert any(i.startswith(text) for i in issues), (text, issues)
    assert len(issues) == len(expected)


def test_plan_naming_an_invalid_zone_is_not_also_called_unknown():
    data = with_("zones.top.needle", "9RL 0.25mm")
    assert issues_of(data) == ["zones.top.needle = '9RL 0.25mm': needle count 9 is not one "
                               "of 1, 3, 5"]


def test_error_message_lists_every_issue_and_says_what_to_do():
    with pytest.raises(ProfileError) as info:
        parse_profile(with_("zones.top.depth_mm", 0.9), source="x.yaml")
    text = str(info.value)
    assert text.startswith("profile x.yaml has 1 error (fix them and run `smp profile check`")
    assert "zones.top.depth_mm = 0.9" in text
    assert isinstance(info.value, SmpError)


def test_pen_hard_limits_narrow_the_zone():
    issues = []
    with pytest.raises(ProfileError) as info:
        parse_profile(base(), pen_limits={"depth_mm": (0.1, 0.35)})
    issues = [str(i) for i in info.value.issues]
    assert issues == ["zones.top.depth_mm = 0.4: is deeper than the dermal ceiling 0.35 mm of "
                      "zone 'top' (zone envelope within the pen's hard limits)"]


def test_pen_that_cannot_reach_a_zone_is_an_issue_not_a_crash():
    with pytest.raises(ProfileError) as info:
        parse_profile(base(), pen_limits={"speed_hz": (150.0, 200.0)})
    assert [i.path for i in info.value.issues] == ["zones.top", "zones.donor_scar"]
    assert "the pen cannot reach this zone's speed_hz window" in info.value.issues[0].rule


def test_custom_envelope_is_used():
    envelope = load_envelope()
    envelope["top"] = envelope["top"].model_copy(update={"dermal_ceiling_mm": 0.38})
    assert issues_of_with(base(), envelope) == [
        "zones.top.depth_mm = 0.4: is deeper than the dermal ceiling 0.38 mm of zone 'top'"]


def issues_of_with(data, envelope):
    with pytest.raises(ProfileError) as info:
        parse_profile(data, envelope)
    return [str(i) for i in info.value.issues]


def test_check_profile_against_a_newly_connected_pen():
    profile = parse_profile(base())
    assert check_profile(profile) == []
    issues = check_profile(profile, pen_limits={"depth_mm": (0.1, 0.35)})
    assert [i.path for i in issues] == ["zones.top.depth_mm"]


def test_top_level_must_be_a_mapping():
    assert issues_of([1, 2]) == [
        "the profile is a list; its top level must be a mapping (schema_version, session_kind, "
        "client_ref, zones, ...)"]


# --- files ---------------------------------------------------------------------------------


def test_yaml_and_json_files_give_the_same_profile(tmp_path):
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(base()))
    (tmp_path / "p.json").write_text(json.dumps(base()))
    a, b = load_profile(tmp_path / "p.yaml"), load_profile(tmp_path / "p.json")
    assert a == b and profile_hash(a) == profile_hash(b)


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("bad.yaml", "zones: [unclosed", "is not valid YAML"),
    ("bad.json", "{\"schema_version\": 1,", "is not valid JSON"),
    ("list.yaml", "- 1\n- 2\n", "the top level is a list; it must be a mapping"),
    ("empty.yaml", "", "the file is empty; it must hold a mapping"),
])
def test_unreadable_files_are_clear(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert expected in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ProfileError) as info:
        load_profile(tmp_path / "nope.yaml")
    assert "nope.yaml has 1 error" in str(info.value)
    assert "no such file; check the path" in str(info.value)


@pytest.mark.parametrize("path", PROFILE_EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid_with_short_plans(path):
    profile = load_profile(path)
    assert 3 <= len(profile.plan) <= 4
    for planned in profile.plan:
        seconds = planned.duration_s or planned.impressions * \
            profile.zones[planned.zone].period_ms / 1000
        assert 2 <= seconds <= 4


def test_examples_cover_the_sessions():
    kinds = {load_profile(p).session_kind for p in PROFILE_EXAMPLES}
    assert {SessionKind.base_density, SessionKind.shading_definition, SessionKind.adjustment,
            SessionKind.scar_camouflage} <= kinds
    scar = load_profile(EXAMPLES / "scar_camouflage.yaml")
    assert "donor_scar" in scar.zones


# --- hash, needle, schema ------------------------------------------------------------------


def test_hash_is_canonical_and_sensitive():
    a = parse_profile(base())
    reordered = base()
    reordered["zones"] = dict(reversed(list(reordered["zones"].items())))
    reordered["zones"]["top"]["needle"] = "1rl 0.250 mm"  # same needle, other spelling
    assert profile_hash(parse_profile(reordered)) == profile_hash(a)
    assert profile_hash(parse_profile(with_("zones.top.depth_mm", 0.41))) != profile_hash(a)
    assert len(profile_hash(a)) == 64


def test_needle_is_parsed():
    needle = parse_needle("3rs 0.3 mm")
    assert (needle.count, needle.grouping, needle.diameter_mm) == (3, "RS", 0.3)
    assert str(needle) == "3RS 0.3mm"
    assert parse_profile(base()).zones["top"].needle_spec.diameter_mm == 0.25


def test_session_numbers():
    assert [k.number for k in SessionKind] == [1, 2, 3, None, None]


def test_json_schema_is_generated():
    schema = profile_json_schema()
    assert schema["title"] == "SMP treatment profile"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"schema_version", "session_kind", "client_ref", "zones"}
    assert schema["properties"]["schema_version"]["const"] == 1
    json.dumps(schema)


def test_profile_is_immutable():
    profile = parse_profile(base())
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        profile.client_ref = "C-1"  # type: ignore[misc]
    assert isinstance(copy.deepcopy(profile), TreatmentProfile)
