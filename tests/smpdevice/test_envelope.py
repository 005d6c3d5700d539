"""The safety envelope: strict model, absolute caps, `smp envelope check`, the record in force."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpdevice.cli import main
from smpdevice.envelope import (
    CAPS,
    DEFAULT_ZONES,
    Envelope,
    InvalidEnvelope,
    NumberError,
    SessionLimits,
    ZoneEnvelope,
    check_setpoints,
    envelope_record,
    finite_number,
    for_skin,
    load_envelope,
    narrowed,
    parse_envelope,
)
from smpdevice.errors import SmpError
from smpdevice.loader import LoadError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CROWN = DEFAULT_ZONES["crown"].model_dump()


def write(tmp_path: Path, text: str | bytes, name: str = "env.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# --- the file can no longer switch limits off ---------------------------------------------------


@pytest.mark.parametrize("field", ["max_pass_s", "max_strokes_per_impression",
                                   "dermal_ceiling_mm"])
@pytest.mark.parametrize("literal", [".inf", ".nan", "1e999"])
def test_non_finite_limit_in_a_file_is_refused(tmp_path, field, literal):
    path = write(tmp_path, f"crown:\n  {field}: {literal}\n")
    with pytest.raises(LoadError, match="not finite") as info:
        load_envelope(path)
    assert info.value.line == 2


@pytest.mark.parametrize("value, word", [
    ("true", "not a number"), ("'0.9'", "not a number"), ("yes", "not a number"),
    ("[1]", "not a number"), ("null", "not a number"),
])
def test_bools_strings_and_nulls_are_not_numbers(tmp_path, value, word):
    path = write(tmp_path, f"hairline:\n  dermal_ceiling_mm: {value}\n")
    with pytest.raises(InvalidEnvelope) as info:
        load_envelope(path)
    assert len(info.value.issues) == 1
    assert "hairline.dermal_ceiling_mm = " in str(info.value) and word in str(info.value)


def test_duplicate_keys_in_an_envelope_are_refused_naming_both_lines(tmp_path):
    path = write(tmp_path, "crown:\n  max_pass_s: 60\n  max_pass_s: 6000\n")
    with pytest.raises(LoadError, match="lines 2 and 3"):
        load_envelope(path)


def test_json_envelope_with_nan_is_refused(tmp_path):
    path = write(tmp_path, '{"crown": {"max_pass_s": NaN}}', "env.json")
    with pytest.raises(LoadError, match="NaN is not finite"):
        load_envelope(path)


@pytest.mark.parametrize("field, value, cap", [
    ("dermal_ceiling_mm", 1.5, "1 mm"), ("max_pass_s", 601, "600 s"),
    ("max_strokes_per_impression", 21, "20"), ("speed_max_hz", 151, "150 Hz"),
    ("period_max_ms", 5000, "1000 ms"), ("epidermal_floor_mm", 0.01, "0.05 mm"),
    ("duty_min_pct", 1, "5 %"),
])
def test_no_file_can_exceed_the_absolute_caps(tmp_path, field, value, cap):
    path = write(tmp_path, f"crown: {{{field}: {value}}}\n")
    with pytest.raises(InvalidEnvelope) as info:
        load_envelope(path)
    assert f"crown.{field} = {value}" in str(info.value)
    assert f"the absolute cap {cap}" in str(info.value)


def test_a_new_zone_must_give_every_limit(tmp_path):
    path = write(tmp_path, "eyebrow: {max_pass_s: 30}\n")
    with pytest.raises(InvalidEnvelope) as info:
        load_envelope(path)
    assert {i.path for i in info.value.issues} >= {"eyebrow.dermal_ceiling_mm",
                                                   "eyebrow.speed_max_hz"}


def test_floor_above_ceiling_is_named_once(tmp_path):
    path = write(tmp_path, "crown: {epidermal_floor_mm: 0.8, dermal_ceiling_mm: 0.5}\n")
    with pytest.raises(InvalidEnvelope, match="epidermal_floor_mm \\(0.8\\) is above"):
        load_envelope(path)


def test_zone_names_are_bounded(tmp_path):
    path = write(tmp_path, f"'{'x' * 500}': {json.dumps(CROWN)}\n")
    with pytest.raises(InvalidEnvelope, match="is not a zone name"):
        load_envelope(path)


def test_valid_overrides_narrow_and_set_plan_limits(tmp_path):
    path = write(tmp_path, "crown: {max_pass_s: 120}\nsession: {max_passes: 40, "
                           "max_needle_s: 3600}\n")
    zones = load_envelope(path)
    assert isinstance(zones, Envelope) and zones["crown"].max_pass_s == 120
    assert zones["hairline"] == DEFAULT_ZONES["hairline"]
    assert zones.session == SessionLimits(max_passes=40, max_needle_s=3600)
    assert load_envelope().session == SessionLimits()


@pytest.mark.parametrize("session, word", [
    ("{max_passes: 2000}", "absolute cap 600"), ("{max_needle_s: 1e6}", "absolute cap 18000"),
    ("{max_passes: 10.5}", "not a whole number"), ("{max_needle_s: 0}", "is not above"),
    ("5", "not a mapping"), ("{passes: 3}", "not a known field"),
])
def test_session_limits_are_checked(tmp_path, session, word):
    with pytest.raises(InvalidEnvelope, match=word):
        load_envelope(write(tmp_path, f"session: {session}\n"))


def test_default_zones_fit_inside_the_caps():
    for zone in DEFAULT_ZONES.values():
        ZoneEnvelope(**zone.model_dump())  # re-validated against the caps
        assert zone.dermal_ceiling_mm <= CAPS["depth_mm"][1]
        assert zone.max_pass_s <= CAPS["max_pass_s"][1]
    SessionLimits(**SessionLimits().model_dump())


# --- the API: typed errors naming parameter, value and range ------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "0.9", 10**400, None])
def test_zone_envelope_api_refuses_non_numbers_with_a_typed_error(value):
    with pytest.raises(InvalidEnvelope) as info:
        ZoneEnvelope(**{**CROWN, "max_pass_s": value})
    assert isinstance(info.value, SmpError)
    assert "max_pass_s" in str(info.value) and "http" not in str(info.value)


@pytest.mark.parametrize("name", ["depth_mm", "speed_hz", "duty_pct", "period_ms"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "0.4", 10**400, None])
def test_check_setpoints_refuses_what_is_not_a_finite_number(name, value):
    setpoints = {"depth_mm": 0.4, "speed_hz": 90.0, "duty_pct": 40.0, "period_ms": 120.0}
    setpoints[name] = value
    with pytest.raises(NumberError) as info:
        check_setpoints(DEFAULT_ZONES["crown"], **setpoints)
    message = str(info.value)
    assert message.startswith(f"{name} = ") and "allowed:" in message and ".." in message


def test_check_setpoints_still_reports_ordinary_violations():
    out = check_setpoints(DEFAULT_ZONES["crown"], depth_mm=0.9, speed_hz=90, duty_pct=40,
                          period_ms=120)
    assert [v.parameter for v in out] == ["depth_mm"]


def test_finite_number_names_the_range():
    assert finite_number("depth_mm", 1, 0, 2) == 1.0
    with pytest.raises(NumberError, match=r"depth_mm = 3 is out of range; allowed: 0..2 mm"):
        finite_number("depth_mm", 3, 0, 2)


def test_for_skin_and_narrowed_refuse_nan():
    with pytest.raises(NumberError, match="epidermis_mm"):
        for_skin(DEFAULT_ZONES["crown"], math.nan)
    with pytest.raises(NumberError, match="depth_mm upper bound"):
        narrowed(DEFAULT_ZONES["crown"], depth_mm=(0.0, math.nan))


# --- the record of the envelope in force --------------------------------------------------------


def test_envelope_record_hash_is_recomputable_and_changes_with_any_limit(tmp_path):
    record = envelope_record(load_envelope())
    content = {k: v for k, v in record.items() if k != "sha256"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    assert record["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert record["zones"]["crown"]["max_pass_s"] == 600.0
    json.dumps(record, allow_nan=False)  # plain data
    changed = envelope_record(load_envelope(write(tmp_path, "crown: {max_pass_s: 599}\n")))
    assert changed["sha256"] != record["sha256"]
    assert envelope_record(dict(DEFAULT_ZONES))["sha256"] == record["sha256"]


# --- `smp envelope check` -----------------------------------------------------------------------


def test_envelope_check_ok_on_stdout(tmp_path):
    path = write(tmp_path, "crown: {max_pass_s: 120}\n")
    result = run("envelope", "check", str(path))
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.startswith(f"ok: {path} (7 zones") and "envelope hash: " in result.stdout


def test_envelope_check_prints_one_line_per_issue_on_stderr(tmp_path):
    path = write(tmp_path, "crown: {max_pass_s: 6000, dermal_ceiling_mm: true}\n"
                           "top: {speed_max_hz: '0.9'}\n")
    result = run("envelope", "check", str(path))
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"{path}: 3 errors"
    assert sorted(lines[1:]) == sorted([
        f"{path}: crown.dermal_ceiling_mm = true: is not a number (write it without quotes; "
        "true/false are not numbers)",
        f"{path}: crown.max_pass_s = 6000: is above the absolute cap 600 s",
        f"{path}: top.speed_max_hz = '0.9': is not a number (write it without quotes; "
        "true/false are not numbers)",
    ])


def test_envelope_check_json():
    result = run("envelope", "check", str(EXAMPLES / "nope.yaml"), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["ok"] is False


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "dir.yaml").mkdir()
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as f:
        f.truncate(3 * 2**20)
    return {
        "no such file": tmp_path / "missing.yaml",
        "is a directory": tmp_path / "dir.yaml",
        "not UTF-8": write(tmp_path, bytes(range(256)) * 4, "binary.yaml"),
        "above the cap": huge,
        "not UTF-8 ": write(tmp_path, "crown: {note: 'caf\xe9'}\n".encode("latin-1"), "l1.yaml"),
        "empty": write(tmp_path, b"", "empty.yaml"),
    }


@pytest.mark.parametrize("command", [("envelope", "check"), ("profile", "check")])
def test_check_commands_answer_bad_files_with_one_line_on_stderr(tmp_path, command):
    for word, path in _bad_files(tmp_path).items():
        result = run(*command, str(path))
        assert result.exit_code == 1, path
        assert result.stdout == "", path
        assert word.strip() in result.stderr, (path, result.stderr)
        assert "Traceback" not in result.output
        issue_lines = [x for x in result.stderr.splitlines() if not x.endswith("1 error")]
        assert len(issue_lines) == 1, result.stderr


def test_a_bad_envelope_for_profile_check_and_run_is_one_line_per_issue(tmp_path):
    path = write(tmp_path, "crown: {max_pass_s: 6000, dermal_ceiling_mm: true}\n")
    for args in (["profile", "check", str(EXAMPLES / "session1_base_density.yaml"),
                  "--envelope", str(path)],
                 ["run", str(EXAMPLES / "session1_base_density.yaml"), "--port", "pensim://",
                  "--screening", str(EXAMPLES / "screening_clear.yaml"), "-t", "ana",
                  "--envelope", str(path)]):
        result = run(*args)
        assert result.exit_code != 0
        err = result.stderr
        assert "http" not in err and "pydantic" not in err and "Input should" not in err
        lines = err.strip().splitlines()
        assert lines[0].startswith("error: envelope ") and "2 errors" in lines[0]
        assert sorted(x.strip() for x in lines[1:]) == [
            "crown.dermal_ceiling_mm = true: is not a number (write it without quotes; "
            "true/false are not numbers)",
            "crown.max_pass_s = 6000: is above the absolute cap 600 s"]


# --- properties ---------------------------------------------------------------------------------

_anything = (st.floats() | st.integers() | st.integers(min_value=10**20) | st.booleans()
             | st.none() | st.text(max_size=8) | st.lists(st.integers(), max_size=2))


@given(st.dictionaries(st.sampled_from(sorted(CROWN)), _anything, max_size=4),
       st.sampled_from(["crown", "hairline", "donor_scar", "new_zone"]))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_override_is_accepted_inside_the_caps_or_refused_typed(fields, zone):
    try:
        zones = parse_envelope({zone: fields}, "prop.yaml")
    except InvalidEnvelope as exc:
        assert exc.issues and all(str(i) for i in exc.issues)
        return
    for z in zones.values():
        for name, value in z.model_dump().items():
            assert isinstance(value, float) and math.isfinite(value), name
        assert CAPS["depth_mm"][0] <= z.epidermal_floor_mm <= z.dermal_ceiling_mm \
            <= CAPS["depth_mm"][1]
        assert 0 < z.max_pass_s <= CAPS["max_pass_s"][1]
        assert 0 < z.max_strokes_per_impression <= CAPS["max_strokes_per_impression"][1]
        assert z.speed_max_hz <= CAPS["speed_hz"][1] and z.period_max_ms <= CAPS["period_ms"][1]


@pytest.fixture(scope="module")
def env_file(tmp_path_factory) -> Path:
    """One file each example writes anew (a directory per example was a mktemp, which lists
    the whole base directory, per example)."""
    return tmp_path_factory.mktemp("env") / "env.yaml"


@given(st.text(max_size=300))
@settings(max_examples=200)
def test_any_text_file_is_an_envelope_or_a_typed_refusal(env_file, text):
    path = env_file
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:  # anything but these typed refusals escapes and fails the test
        zones = load_envelope(path)
    except (LoadError, InvalidEnvelope) as err:
        assert str(err)
        return
    assert zones and all(z.epidermal_floor_mm <= z.dermal_ceiling_mm for z in zones.values())


@given(st.dictionaries(st.sampled_from(sorted(CROWN)),
                       st.floats(min_value=0.01, max_value=2000, allow_nan=False), max_size=5))
@settings(max_examples=200)
def test_a_valid_envelope_round_trips_through_its_record(fields):
    try:
        zones = parse_envelope({"crown": fields})
    except InvalidEnvelope:
        return
    record = envelope_record(zones)
    again = parse_envelope({**record["zones"], "session": record["session"]})
    assert envelope_record(again) == record


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX devices and FIFOs")
def test_a_real_process_refuses_a_device_and_a_fifo_in_one_line(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # opening it for reading blocks, unless the loader opens it non-blocking
    for args in (["envelope", "check", "/dev/zero"], ["profile", "check", str(fifo)]):
        result = subprocess.run([sys.executable, "-m", "smpdevice", *args], capture_output=True,
                                text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert result.returncode == 1 and result.stdout == ""
        assert "not a regular file" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 2  # "FILE: 1 error" + the issue
