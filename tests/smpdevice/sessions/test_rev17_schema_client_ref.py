"""`smp profile schema` (for session software in other languages) had no pattern for
`client_ref`: "Jane Doe" (a name) was valid by the schema and refused by `smp profile check`.
Now the schema's pattern and length are the check's own rule (review 17)."""

from __future__ import annotations

import re

import pytest

from smpdevice.sessions.profiles import ProfileError, parse_profile, profile_json_schema

PROFILE = {"schema_version": 1, "session_kind": "base_density", "client_ref": "C-0042",
           "zones": {"crown": {"needle": "1RL 0.25mm", "depth_mm": 0.5, "speed_hz": 90.0,
                               "duty_pct": 40.0, "period_ms": 100.0}}}
CANDIDATES = ["C-0042", "smp_2024_117", "007", "a1_", "Jane Doe", "jane@example.org", "abc",
              "12", "C-0042\n", "C-00é2", "C-٤٢", "x" * 63 + "1", "x" * 64 + "1", "", "-_-"]


def _by_schema(value: str) -> bool:
    rule = profile_json_schema()["properties"]["client_ref"]
    # JSON Schema patterns are ECMA-262: `$` is the end of the text, as fullmatch here
    return (rule["minLength"] <= len(value) <= rule["maxLength"]
            and re.fullmatch(rule["pattern"], value) is not None)


def test_the_schema_refuses_a_name_as_client_ref():
    assert _by_schema("C-0042")
    assert not _by_schema("Jane Doe")
    assert not _by_schema("jane@example.org")


@pytest.mark.parametrize("client_ref", CANDIDATES)
def test_the_schema_and_the_check_agree(client_ref):
    try:
        parse_profile({**PROFILE, "client_ref": client_ref})
        checked = True
    except ProfileError:
        checked = False
    assert _by_schema(client_ref) is checked
