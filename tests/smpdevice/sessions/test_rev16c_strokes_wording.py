"""Review 16 (b16d).

A profile just over a zone's strokes-per-impression maximum (8.0000052 in 'hairline') is
refused as "zones.hairline = 8.0: ... is above the maximum 8": the value shown equals the limit
it is said to be above. Promise: README "clear errors" (each issue names its value and limit)."""

from __future__ import annotations

import os

import pytest

from smpdevice.envelope import strokes_per_impression
from smpdevice.sessions.profiles import ProfileError, parse_profile
from tests.smpdevice import shell


def test_the_strokes_value_shown_is_above_the_limit_it_names(tmp_path):
    profile = tmp_path / "strokes.yaml"
    profile.write_text(
        "schema_version: 1\nsession_kind: base_density\nclient_ref: C-0042\nzones:\n"
        "  hairline: {needle: 1RL 0.25mm, depth_mm: 0.32, speed_hz: 110, duty_pct: 60, "
        "period_ms: 121.2122}\nplan:\n  - {zone: hairline, duration_s: 0.5}\n")
    env = {**os.environ, "SMP_SERVICE": "", "SMP_DATA_DIR": str(tmp_path),
           "SMP_CONFIG": str(tmp_path / "none.toml")}
    out = shell.smp(["profile", "check", str(profile)], env=env)  # in this process (shell.py)
    assert out.returncode == 1, out
    assert "above the maximum 8 " in out.stderr, out.stderr
    assert "zones.hairline = 8.0:" not in out.stderr, out.stderr


@pytest.mark.parametrize("over", [1e-9, 5e-7, 1e-5, 3e-3])
def test_any_strokes_just_over_the_maximum_shows_past_it(over):
    speed_hz, duty_pct = 110.0, 60.0
    period_ms = 8.0 * (1 + over) / (speed_hz * duty_pct / 100) * 1000
    assert strokes_per_impression(speed_hz, duty_pct, period_ms) > 8.0
    with pytest.raises(ProfileError) as caught:
        parse_profile({
            "schema_version": 1, "session_kind": "base_density", "client_ref": "C-0042",
            "zones": {"hairline": {"needle": "1RL 0.25mm", "depth_mm": 0.32,
                                   "speed_hz": speed_hz, "duty_pct": duty_pct,
                                   "period_ms": period_ms}},
            "plan": [{"zone": "hairline", "duration_s": 0.5}]})
    [issue] = [i for i in caught.value.issues if "strokes per impression" in i.rule]
    assert issue.value > 8.0, issue
    assert "zones.hairline = 8:" not in str(issue) and "= 8.0:" not in str(issue), str(issue)
