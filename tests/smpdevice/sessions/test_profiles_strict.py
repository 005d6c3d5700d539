"""Profiles and screening files read strictly (issue 11 item 4): duplicate keys, bombs, YAML 1.2,
linear-time strings, plan limits from the envelope, finite numbers; and adversarial documents."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpdevice.cli import main
from smpdevice.envelope import Envelope, NumberError, SessionLimits, load_envelope
from smpdevice.loader import LoadError
from smpdevice.sessions.profiles import (
    MAX_NEEDLE_CHARS,
    ProfileError,
    check_profile,
    load_profile,
    parse_needle,
    parse_profile,
)
from smpdevice.sessions.screening import ScreeningIncomplete, load_screening_file
from tests.smpdevice.sessions.test_profiles import base

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def rules_of(exc: ProfileError) -> list[str]:
    return [str(i) for i in exc.issues]


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- duplicate keys: the wrong client ---------------------------------------------------------


def test_duplicated_client_ref_is_refused_naming_both_lines(tmp_path):
    text = yaml.safe_dump(base(), sort_keys=False).replace(
        "client_ref: C-0042\n", "client_ref: C-0042\nclient_ref: C-0099\n")
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert "'client_ref' appears twice in one mapping on lines 3 and 4" in str(info.value)
    result = CliRunner().invoke(main, ["profile", "check", str(path)], catch_exceptions=False)
    assert result.exit_code == 1 and "ok" not in result.stdout
    assert "lines 3 and 4" in result.stderr


def test_duplicated_client_ref_in_json_is_refused(tmp_path):
    text = json.dumps(base(), indent=1).replace('"client_ref": "C-0042",',
                                                '"client_ref": "C-0042",\n "client_ref": "C-9",')
    with pytest.raises(ProfileError, match="'client_ref' appears twice .* lines 4 and 5"):
        load_profile(write(tmp_path, text, "p.json"))


@pytest.mark.parametrize("ref", ["C-0042\n", "C-0042\r", " C-0042", "C-0042 ", "C-00\u202e42"])
def test_a_client_ref_with_stray_whitespace_or_controls_is_refused(ref):
    """A trailing newline once passed `^...$` and split the client's history in two."""
    with pytest.raises(ProfileError, match="client_ref"):
        parse_profile({**base(), "client_ref": ref})


# --- bombs ------------------------------------------------------------------------------------


def test_alias_bomb_profile_is_refused_at_its_first_anchor(tmp_path):
    bomb = "a: &a ['x','x','x','x','x','x','x','x','x']\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(9)) + "client_ref: *j\n"
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, bomb))
    assert len(info.value.issues) == 1 and "line 1: the anchor &a" in str(info.value)
    assert len(str(info.value)) < 300


def test_a_50_mb_profile_is_refused_by_the_size_cap(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:
        f.write(yaml.safe_dump(base()).encode())
        f.truncate(50 * 2**20)
    with pytest.raises(ProfileError, match="above the cap of 1,048,576 bytes"):
        load_profile(path)


def test_a_1_69_million_pass_plan_is_refused_with_a_clear_message(tmp_path):
    data = base()
    data["plan"] = [{"zone": "top", "duration_s": 3}] * 1_690_000
    with pytest.raises(ProfileError) as info:  # through the API: refused before each is checked
        parse_profile(data)
    assert rules_of(info.value) == [
        "plan: has 1690000 passes, above the envelope's session.max_passes 400; split the "
        "treatment into sessions"]
    text = json.dumps({**base(), "plan": [{"zone": "top", "duration_s": 3}] * 20_000})
    with pytest.raises(ProfileError, match="more than 5,000 values"):  # through a file
        load_profile(write(tmp_path, text, "p.json"))


# --- plan limits from the envelope --------------------------------------------------------------


def test_plan_passes_and_needle_time_are_limited_by_the_envelope():
    many = {**base(), "plan": [{"zone": "top", "duration_s": 3}] * 401}
    with pytest.raises(ProfileError, match="has 401 passes, above the envelope's session."
                                           "max_passes 400"):
        parse_profile(many)
    long = {**base(), "plan": [{"zone": "top", "duration_s": 600}] * 19}  # 11,400 s
    with pytest.raises(ProfileError) as info:
        parse_profile(long)
    assert rules_of(info.value) == [
        "plan: asks for 11400 s (3.2 h) of needle time, above the envelope's "
        "session.max_needle_s 10800 s; split the treatment into sessions"]


def test_plan_limits_follow_the_envelope_file(tmp_path):
    (tmp_path / "env.yaml").write_text("session: {max_passes: 1}\n")
    with pytest.raises(ProfileError, match="has 2 passes, above the envelope's session."
                                           "max_passes 1;"):
        parse_profile(base(), load_envelope(tmp_path / "env.yaml"))
    (tmp_path / "env.yaml").write_text("session: {max_needle_s: 2}\n")
    zones = load_envelope(tmp_path / "env.yaml")
    with pytest.raises(ProfileError, match=r"asks for 5.4 s \(0.0 h\) of needle time, above "
                                           "the envelope's session.max_needle_s 2 s"):
        parse_profile(base(), zones)  # 3 s + 20 impressions x 120 ms
    profile = parse_profile(base())
    strict = Envelope(zones, SessionLimits(max_passes=1))
    assert any("max_passes 1;" in str(i) for i in check_profile(profile, strict))


# --- YAML 1.2 numbers, finite numbers, bounded strings -----------------------------------------


def test_1e9_is_a_number_not_text(tmp_path):
    text = yaml.safe_dump(base()).replace("speed_hz: 90", "speed_hz: 1e9")
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, text))
    assert "zones.top.speed_hz = 1000000000.0: is above the maximum 130 Hz" in str(info.value)


@pytest.mark.parametrize("literal", [".inf", ".nan", "1e999", "-.inf"])
def test_non_finite_numbers_in_a_profile_file_are_refused(tmp_path, literal):
    text = yaml.safe_dump(base()).replace("depth_mm: 0.4", f"depth_mm: {literal}")
    with pytest.raises(ProfileError, match="is not finite"):
        load_profile(write(tmp_path, text))


@pytest.mark.parametrize("path, value, word", [
    ("depth_mm", math.nan, "not a finite number"), ("speed_hz", math.inf, "not a finite"),
    ("duty_pct", True, "not a number"), ("period_ms", 10**400, "too large a number"),
    ("period_ms", "120", "not a number"),
])
def test_api_values_that_are_not_finite_numbers_are_named(path, value, word):
    data = base()
    data["zones"]["top"][path] = value
    with pytest.raises(ProfileError) as info:
        parse_profile(data)
    assert [i.path for i in info.value.issues] == [f"zones.top.{path}"]
    assert word in str(info.value)


def test_huge_impressions_and_schema_version_true_are_refused():
    data = base()
    data["plan"][1]["impressions"] = 10**30
    with pytest.raises(ProfileError, match=r"plan\[1\].impressions"):
        parse_profile(data)
    with pytest.raises(ProfileError, match="schema_version"):
        parse_profile({**base(), "schema_version": True})


def test_a_25000_character_needle_is_refused_by_length():
    data = base()
    data["zones"]["top"]["needle"] = "1RL " + "0" * 25_000 + "x"
    with pytest.raises(ProfileError) as info:
        parse_profile(data)
    assert f"at most {MAX_NEEDLE_CHARS} characters" in str(info.value)
    assert len(str(info.value)) < 1000


@pytest.mark.parametrize("text", [
    "1" * 31 + "x", "1RL " + "0" * 27 + "x", "1RL" + " " * 28 + "x", "1RL 0." + "5" * 25 + "m",
    "1" + "R" * 30 + "x", "\t" * 31 + "1",
])
def test_needle_inputs_built_to_backtrack_are_refused(text):
    with pytest.raises(ValueError, match="is not a needle"):
        parse_needle(text)


@given(st.text(max_size=60))
@settings(max_examples=400)
def test_parse_needle_accepts_only_valid_needles_and_raises_only_value_error(text):
    try:
        needle = parse_needle(text)
    except ValueError:
        return
    assert needle.count in (1, 3, 5) and needle.grouping in ("RL", "RS")
    assert parse_needle(str(needle)) == needle


@pytest.mark.parametrize("field, value", [
    ("client_ref", "C" + "1" * 100_000), ("needle", "x" * 100_000),
])
def test_long_strings_are_refused_with_a_short_message(field, value):
    data = base()
    if field == "client_ref":
        data["client_ref"] = value
    else:
        data["zones"]["top"]["needle"] = value
    with pytest.raises(ProfileError) as info:
        parse_profile(data)
    assert len(str(info.value)) < 1000


def test_long_zone_names_are_refused():
    data = base()
    data["zones"]["z" * 10_000] = data["zones"]["top"]
    with pytest.raises(ProfileError) as info:
        parse_profile(data)
    assert len(str(info.value)) < 2000


# --- screening files ----------------------------------------------------------------------------


def test_screening_file_goes_through_the_strict_loader(tmp_path):
    assert load_screening_file(EXAMPLES / "screening_clear.yaml").refusal_reasons() == []
    text = (EXAMPLES / "screening_clear.yaml").read_text()
    first = next(line for line in text.splitlines() if line.startswith("open_sores"))
    dup = write(tmp_path, text + first.replace("false", "true") + "\n", "s.yaml")
    with pytest.raises(LoadError, match="'open_sores' appears twice"):
        load_screening_file(dup)
    yes = write(tmp_path, text.replace("open_sores: false", "open_sores: yes"), "yes.yaml")
    with pytest.raises(ScreeningIncomplete, match="not true/false: open_sores"):
        load_screening_file(yes)  # YAML 1.2: `yes` is text, never silently a boolean


# --- adversarial documents ----------------------------------------------------------------------

_leaf = (st.floats() | st.integers() | st.integers(min_value=2**60) | st.booleans() | st.none()
         | st.text(max_size=12) | st.sampled_from(["1RL 0.25mm", "top", "C-1", "base_density"]))
_value = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
_KEYS = ["schema_version", "session_kind", "client_ref", "skin", "zones", "plan", "zone",
         "needle", "depth_mm", "speed_hz", "duty_pct", "period_ms", "duration_s", "impressions"]


# Built once, not at every draw of _mutated_profiles; the same draws.
_EDITS = st.integers(1, 4)
_DEPTH = st.integers(0, 2)
_A_KEY = st.sampled_from(_KEYS)


@st.composite
def _mutated_profiles(draw):
    data = base()
    for _ in range(draw(_EDITS)):
        node = data
        for _depth in range(draw(_DEPTH)):
            children = [k for k, v in (node.items() if isinstance(node, dict) else
                                       enumerate(node)) if isinstance(v, dict | list)]
            if not children:
                break
            node = node[draw(st.sampled_from(children))]
        key = draw(_A_KEY) if isinstance(node, dict) else \
            draw(st.integers(0, max(len(node) - 1, 0)))
        if isinstance(node, list) and not node:
            continue
        node[key] = draw(_value)
    return data


@given(_mutated_profiles())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_profiles_are_accepted_safe_or_refused_typed(data):
    try:
        profile = parse_profile(data)
    except ProfileError as exc:
        assert exc.issues and all(str(i) for i in exc.issues)
        json.dumps([i.as_dict() for i in exc.issues], allow_nan=False)
        return
    except NumberError:
        return
    assert check_profile(profile, load_envelope()) == []
    for zone in profile.zones.values():
        for v in (zone.depth_mm, zone.speed_hz, zone.duty_pct, zone.period_ms):
            assert math.isfinite(v)


@given(_mutated_profiles(), st.sampled_from(["p.yaml", "p.json"]))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture])
def test_mutated_profile_files_are_accepted_or_refused_typed(tmp_path, data, name):
    text = json.dumps(data, allow_nan=True) if name.endswith(".json") else \
        yaml.safe_dump(data, allow_unicode=True)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_profile(path)
    except ProfileError as exc:
        assert exc.issues


def test_the_largest_plan_the_envelope_allows_fits_in_a_file(tmp_path):
    # The loader's value cap must never refuse a plan the envelope's absolute cap allows.
    (tmp_path / "env.yaml").write_text("session: {max_passes: 600, max_needle_s: 18000}\n")
    zones = load_envelope(tmp_path / "env.yaml")
    data = {**base(), "plan": [{"zone": "top", "duration_s": 3} for _ in range(600)]}
    assert len(load_profile(write(tmp_path, yaml.safe_dump(data)), zones).plan) == 600
    assert len(load_profile(write(tmp_path, json.dumps(data), "p.json"), zones).plan) == 600
