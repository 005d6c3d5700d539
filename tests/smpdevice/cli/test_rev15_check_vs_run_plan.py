"""Review 15, S7: `smp profile check` said "ok: ... 0 planned passes" (exit 0) for a profile
`smp run` refuses ("has no plan of passes to play; add a `plan:` list", exit 2). docs/safety.md:
"what a check says, a run does". The check now refuses it with the run's sentence, exit 1 as
any profile it refuses, in text and --json, whether the plan is `[]` or left out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]
HEAD = """schema_version: 1
session_kind: base_density
client_ref: C-0042
zones:
  top: {needle: 1RL 0.25mm, depth_mm: 0.40, speed_hz: 90, duty_pct: 40, period_ms: 120}
"""
NO_PLAN = "has no plan of passes to play; add a `plan:` list"


@pytest.mark.parametrize("plan", ["plan: []\n", ""])
def test_profile_check_refuses_what_run_refuses(tmp_path, plan):
    env = {**os.environ, "SMP_DATA_DIR": str(tmp_path / "data"),
           "SMP_KEY_DIR": str(tmp_path / "keys"), "SMP_CONFIG": str(tmp_path / "none.toml")}
    shell.calibrated(tmp_path / "data")
    profile = tmp_path / "session.yaml"
    profile.write_text(HEAD + plan)
    run = shell.smp(("run", str(profile), "--port", "pensim://?clock=virtual", "-t", "ana",
                     "--screening", str(ROOT / "examples/screening_clear.yaml")), env=env,
                    cwd=ROOT)
    assert run.returncode == 2 and NO_PLAN in run.stderr, run.stderr
    check = shell.smp(("profile", "check", str(profile)), env=env, cwd=ROOT)
    assert check.returncode == 1, check.stdout
    assert f"{profile}: {NO_PLAN}" in check.stderr and "ok:" not in check.stdout
    as_json = shell.smp(("profile", "check", str(profile), "--json"), env=env, cwd=ROOT)
    answer = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and answer["ok"] is False
    assert [e["rule"] for e in answer["errors"]] == [NO_PLAN]
